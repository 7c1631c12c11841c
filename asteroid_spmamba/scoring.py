"""Separation scores with the best permutation: SDR, SDRi, SI-SNR, SI-SNRi.

``score_utterance`` is the one function the training/evaluation code and the command line share:

* the estimates are reordered by the permutation that maximises the mean SI-SNR;
* ``sdr`` is BSS-eval SDR (Asteroid's ``get_metrics`` / pb_bss_eval ``mir_eval``, no further
  permutation), ``sdr_i`` the same minus the SDR of the mixture taken as estimate of every source;
* ``si_snr`` is the scale-invariant SNR with zero-mean signals (= Asteroid's "si_sdr"),
  ``si_snr_i`` its improvement over the mixture.

Each value is the mean over sources, in dB.

Command line: ``asteroid-spmamba score REF_DIR EST_DIR [-o CSV]``. ``REF_DIR`` is in the Echo2Mix
layout (``ID/mix.wav``, ``ID/spk1_reverb.wav``, ``ID/spk2_reverb.wav``), ``EST_DIR`` holds one
folder per utterance ID with one wav per source (any names, taken in sorted order). The means are
printed and the per-utterance CSV (``utt_id, sdr, sdr_i, si_snr, si_snr_i``) is written atomically.

References:
    E. Vincent, R. Gribonval, C. Fevotte, "Performance measurement in blind audio source
    separation", IEEE TASLP 2006.
    J. Le Roux, S. Wisdom, H. Erdogan, J. R. Hershey, "SDR - half-baked or well done?", ICASSP 2019.
"""

import csv
import itertools
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Optional, Union

import numpy as np
import soundfile as sf

from ._stack import user_stacklevel

METRICS = ("sdr", "sdr_i", "si_snr", "si_snr_i", "level_db")
CSV_COLUMNS = ("utt_id",) + METRICS
EPS = 1e-8


def _as_numpy(x, name: str, ndim: int) -> np.ndarray:
    if hasattr(x, "detach"):  # torch tensor
        x = x.detach().cpu().numpy()
    x = np.asarray(x, dtype=np.float64)
    if ndim == 1 and x.ndim == 2 and x.shape[0] == 1:
        x = x[0]
    if ndim == 2 and x.ndim == 1:
        x = x[None]
    if x.ndim != ndim:
        raise ValueError(
            f"{name} must have shape {'(time,)' if ndim == 1 else '(n_src, time)'}, got {x.shape}."
        )
    if not np.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or Inf samples.")
    return x


def si_snr(reference, estimate) -> np.ndarray:
    """Scale-invariant SNR in dB of ``estimate`` against ``reference``
    (zero-mean, last axis is time).

    ``alpha = <s, s_hat> / ||s||^2``, ``SI-SNR = 10 log10(||alpha s||^2 / ||s_hat - alpha s||^2)``.
    Shapes broadcast; returns one value per leading index.
    """
    ref = np.asarray(reference, dtype=np.float64)
    est = np.asarray(estimate, dtype=np.float64)
    ref = ref - ref.mean(-1, keepdims=True)
    est = est - est.mean(-1, keepdims=True)
    alpha = (ref * est).sum(-1, keepdims=True) / ((ref**2).sum(-1, keepdims=True) + EPS)
    target = alpha * ref
    noise = est - target
    return 10 * np.log10(((target**2).sum(-1) + EPS) / ((noise**2).sum(-1) + EPS))


def best_permutation(refs, ests) -> tuple[int, ...]:
    """Permutation ``p`` maximising the mean SI-SNR of ``ests[p[k]]`` against ``refs[k]``."""
    refs = np.asarray(refs, dtype=np.float64)
    ests = np.asarray(ests, dtype=np.float64)
    n = refs.shape[0]
    pair = si_snr(refs[:, None, :], ests[None, :, :])  # (ref k, est j)
    return max(itertools.permutations(range(n)), key=lambda p: pair[np.arange(n), list(p)].mean())


def score_utterance(mix, refs, ests, sample_rate: int) -> dict[str, float]:
    """Score one utterance with the best permutation.

    Args:
        mix: mixture, ``(time,)`` or ``(1, time)``.
        refs: reference sources ``(n_src, time)``.
        ests: estimated sources ``(n_src, time)``, in any order.
        sample_rate: sample rate in Hz (BSS-eval does not depend on it; kept for Asteroid's API).

    numpy arrays or torch tensors; all of the same length (trim first).

    Returns:
        ``{"sdr", "sdr_i", "si_snr", "si_snr_i", "level_db"}``: means over sources, in dB.
        ``level_db`` is what the scale-invariant scores cannot see: each estimate's level minus its
        reference's (energy ratio, dB; silent references left out, NaN if all are).
    """
    from asteroid.metrics import get_metrics

    mix = _as_numpy(mix, "mix", 1)
    refs = _as_numpy(refs, "refs", 2)
    ests = _as_numpy(ests, "ests", 2)
    if refs.shape != ests.shape:
        raise ValueError(
            f"refs {refs.shape} and ests {ests.shape} must have the same shape (n_src, time); trim "
            "or pad the estimates to the reference length first."
        )
    if mix.shape[-1] != refs.shape[-1]:
        raise ValueError(f"mix has {mix.shape[-1]} samples but the sources have {refs.shape[-1]}.")
    perm = best_permutation(refs, ests)
    ests = ests[list(perm)]
    silent = ~ests.any(-1)
    if silent.any():
        # an output judged absent (all zeros) is a missed speaker; BSS-eval refuses silence, so it
        # is scored as white noise 60 dB under the mixture (fixed seed: the same score every time)
        floor = np.sqrt(np.mean(mix.astype(np.float64) ** 2)) * 1e-3
        noise = np.random.default_rng(971).standard_normal(ests.shape) * floor
        ests = np.where(silent[:, None], noise, ests)
    with warnings.catch_warnings():
        # pb_bss_eval calls mir_eval's bss_eval_sources, which mir_eval flags as deprecated
        warnings.filterwarnings("ignore", category=FutureWarning, module=r"pb_bss_eval|mir_eval")
        bss = get_metrics(
            mix[None],
            refs,
            ests,
            sample_rate=sample_rate,
            metrics_list=["sdr"],
            compute_permutation=False,
            average=True,
        )
    out_si = float(si_snr(refs, ests).mean())
    in_si = float(si_snr(refs, mix[None]).mean())
    return {
        "sdr": float(bss["sdr"]),
        "sdr_i": float(bss["sdr"] - bss["input_sdr"]),
        "si_snr": out_si,
        "si_snr_i": out_si - in_si,
        "level_db": level_difference_db(refs, ests),
    }


def level_difference_db(refs, ests) -> float:
    """Mean over sources of ``10 log10(||est_k||^2 / ||ref_k||^2)`` (estimates in the references'
    order); sources whose reference is silent are left out (NaN if all are)."""
    refs = np.asarray(refs, dtype=np.float64)
    ests = np.asarray(ests, dtype=np.float64)
    ref_energy, est_energy = (refs**2).sum(-1), (ests**2).sum(-1)
    keep = ref_energy > 0
    if not keep.any():
        return float("nan")
    return float(np.mean(10 * np.log10((est_energy[keep] + EPS) / ref_energy[keep])))


def _read(path: Path, expected_rate: Optional[int] = None) -> tuple[np.ndarray, int]:
    try:
        wav, rate = sf.read(str(path), dtype="float64", always_2d=False)
    except RuntimeError as err:  # soundfile's LibsndfileError: empty, truncated header, not audio
        raise ValueError(
            f"{path} cannot be read as audio ({str(err).strip()}); replace it."
        ) from None
    if wav.ndim != 1:
        raise ValueError(f"{path} has {wav.shape[1]} channels; expected a mono file.")
    if expected_rate is not None and rate != expected_rate:
        raise ValueError(
            f"{path} is sampled at {rate} Hz but its reference is at {expected_rate} Hz."
        )
    return wav, rate


def score_folders(
    ref_dir: Union[str, os.PathLike],
    est_dir: Union[str, os.PathLike],
    n_src: int = 2,
    output_csv: Optional[Union[str, os.PathLike]] = None,
    progress: bool = True,
) -> tuple[list[dict], dict[str, float]]:
    """Score every utterance of ``ref_dir`` (Echo2Mix layout) against ``est_dir``.

    ``est_dir/ID/`` must hold exactly ``n_src`` wav files (any names; sorted order). Lengths that
    differ are trimmed to the shorter with a warning.

    Returns:
        ``(rows, means)``: one dict per utterance (keys ``CSV_COLUMNS``) and
        the mean of each metric.

    Raises:
        FileNotFoundError: a reference utterance has no folder (or no wavs) in ``est_dir``.
        ValueError: wrong number of estimates, sample rates that differ.
    """
    from tqdm import tqdm

    from .data.echo2mix import MIX_FILE, _listing, find_utterances, source_files

    ref_dir, est_dir = Path(ref_dir), Path(est_dir)
    if not est_dir.is_dir():
        raise FileNotFoundError(f"Estimate folder {est_dir} does not exist.")
    ids = find_utterances(ref_dir, n_src)
    missing = [utt for utt in ids if not (est_dir / utt).is_dir()]
    if missing:
        raise FileNotFoundError(
            f"{len(missing)} utterance(s) of {ref_dir} have no estimate folder in "
            f"{est_dir}:\n{_listing(missing)}"
        )
    rows = []
    for utt in tqdm(ids, desc="scoring", unit="utt", disable=not progress):
        mix, rate = _read(ref_dir / utt / MIX_FILE)
        refs = np.stack([_read(ref_dir / utt / name, rate)[0] for name in source_files(n_src)])
        est_files = sorted(p for p in (est_dir / utt).iterdir() if p.suffix.lower() == ".wav")
        if len(est_files) != n_src:
            raise ValueError(
                f"{est_dir / utt} holds {len(est_files)} wav file(s) but {n_src} estimates are "
                f"expected (one per source): {[p.name for p in est_files]}."
            )
        ests = [_read(p, rate)[0] for p in est_files]
        lengths = {len(mix)} | {len(e) for e in ests}
        if len(lengths) > 1:
            n = min(lengths)
            warnings.warn(
                f"{utt}: estimates have {sorted(len(e) for e in ests)} samples and the reference "
                f"{len(mix)}; trimming all to {n}.",
                stacklevel=user_stacklevel(),
            )
            mix, refs, ests = mix[:n], refs[:, :n], [e[:n] for e in ests]
        scores = score_utterance(mix, refs, np.stack(ests), rate)
        rows.append({"utt_id": utt, **scores})
    means = {k: float(np.mean([r[k] for r in rows])) for k in METRICS}
    if output_csv is not None:
        write_scores_csv(rows, output_csv)
    return rows, means


def write_scores_csv(rows: Sequence[dict], path: Union[str, os.PathLike]) -> None:
    """Write per-utterance scores (columns ``utt_id, sdr, sdr_i, si_snr, si_snr_i``) atomically."""
    from .files import write_atomic

    def write(tmp: Path) -> None:
        with open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=CSV_COLUMNS, extrasaction="ignore")
            writer.writeheader()
            for row in rows:
                writer.writerow(
                    {k: (row[k] if k == "utt_id" else f"{row[k]:.4f}") for k in CSV_COLUMNS}
                )

    write_atomic(path, write)
