"""Models shipped inside the package: loadable by name, offline (``list_pretrained`` also lists the
named releases, which download).

Each shipped model is a folder beside this file holding what :func:`asteroid_spmamba.hub.save_pretrained`
writes (``config.json``, ``model.safetensors`` in float16, and a model card ``README.md`` that states
its training data, steps and scores). ``SPMamba.from_pretrained(NAME)``,
``asteroid_spmamba.load_model(NAME)`` and ``asteroid-spmamba separate NAME in.wav`` take these names.

:func:`demo` (``asteroid-spmamba demo``) separates and scores a real recording bundled with the
package (``asteroid_spmamba/data/real_mixture``, one mixture of ``egs/realdev``).
"""

import json
from pathlib import Path
from typing import Optional

import torch

HERE = Path(__file__).resolve().parent


def pretrained_folder(name: str) -> Optional[Path]:
    """The folder of the shipped model ``name``, or None when no shipped model has that name."""
    if not isinstance(name, str) or "/" in name or name.startswith("."):
        return None
    folder = HERE / name
    return folder if (folder / "config.json").is_file() else None


def list_pretrained() -> list[dict[str, object]]:
    """Every model loadable by name: name, architecture, sample rate, parameters, training data, scores.

    First the shipped models (``"downloads": False``), then the named releases of
    :mod:`asteroid_spmamba.releases` (``"downloads": True``, with their ``url``, ``sha256`` (None:
    not checked) and ``notes`` saying what is unverified).
    """
    from ..releases import list_releases

    out = []
    for folder in sorted(filter(None, (pretrained_folder(p.name) for p in HERE.iterdir()))):
        config = json.loads((folder / "config.json").read_text())
        infos = config.get("infos") or {}
        out.append(
            {
                "name": folder.name,
                "architecture": config["architecture"],
                "sample_rate": config.get("sample_rate"),
                "n_parameters": infos.get("n_parameters"),
                "training_data": infos.get("training_data"),
                "scores": infos.get("scores", {}),
                "downloads": False,
            }
        )
    return out + list_releases()


def save_shipped(
    model: torch.nn.Module, name: str, infos: dict[str, object], **card_kwargs
) -> Path:
    """Write ``model`` as the shipped model ``name``: float16 weights (half the bytes; the forward
    runs in float32 after loading) and a card from ``infos`` (training data, steps, scores)."""
    import copy

    from ..hub import save_pretrained

    half = copy.deepcopy(model).half()
    # no pytorch_model.bin: it would double the package's size (Asteroid's loader is for saved folders)
    return save_pretrained(
        half, HERE / name, infos=infos, overwrite_card=True, asteroid_file=False, **card_kwargs
    )


# The bundled real recording (egs/realdev's reverb/011, CMU ARCTIC; see its README.md)
REAL_MIXTURE = HERE.parent / "data" / "real_mixture"
DEMO_MODEL = "spmamba-small-kokoro2mix"


def demo(
    model: str = DEMO_MODEL, out_dir: Optional[Path] = None, device: str = "cpu"
) -> dict[str, float]:
    """Separate the bundled real two-speaker recording with ``model`` (a shipped name, a model file
    or folder) and score it against its references: ``{"sdr", "sdr_i", "si_snr", "si_snr_i", "level_db"}``.
    With ``out_dir``, the estimates go to ``out_dir/spk1.wav`` and ``spk2.wav`` in the order of the
    references, beside a copy of the mixture."""
    import numpy as np
    import soundfile as sf

    from ..files import write_wav_atomic
    from ..inference import separate_array
    from ..scoring import best_permutation, score_utterance
    from ..training.evaluate import load_trained_model

    mix, rate = sf.read(REAL_MIXTURE / "mix.flac", dtype="float32")
    refs = np.stack(
        [sf.read(REAL_MIXTURE / f"spk{k}_reverb.flac", dtype="float32")[0] for k in (1, 2)]
    )
    separator = load_trained_model(model)
    if int(separator.sample_rate) != rate:
        raise ValueError(
            f"{model} separates {int(separator.sample_rate)} Hz audio; the bundled recording is "
            f"{rate} Hz. Use a 16 kHz model such as {DEMO_MODEL}."
        )
    estimates = separate_array(mix, rate, separator, device=device)
    scores = score_utterance(mix, refs, estimates, rate)
    if out_dir is not None:
        ordered = estimates[list(best_permutation(refs, estimates))]
        write_wav_atomic(Path(out_dir) / "mixture.wav", mix, rate)
        for k, wav in enumerate(ordered, 1):
            write_wav_atomic(Path(out_dir) / f"spk{k}.wav", wav, rate)
    return {k: float(v) for k, v in scores.items()}
