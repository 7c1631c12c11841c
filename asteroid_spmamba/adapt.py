"""Adapt a separation model to unlabelled recordings of a new domain (RemixIT self-training).

A teacher (the model as given) separates chunks of the user's recordings; its estimates, fitted to
the mixture (:func:`asteroid_spmamba.levels.match_mixture`: at their level, absent speakers
silent), are remixed across the batch into new mixtures whose sources are then known
(:func:`remix`). A student learns to undo the remix with the zoo's training loss
(:class:`asteroid_spmamba.levels.MixtureFitLoss`, defined for silent targets too, so one-talker
behaviour and output levels keep their meaning), and the teacher follows the student as an
exponential moving average of its weights. No reference is used anywhere: a held-out share of the
chunks, remixed once from the first teacher's estimates, scores the teacher every ``eval_every``
steps (:func:`remix_snr`); the best teacher is returned, and adaptation stops after ``patience``
evaluations without a gain.

References:
    E. Tzinis, Y. Adi, V. K. Ithapu, B. Xu, P. Smaragdis, A. Kumar, "RemixIT: Continual
    self-training of speech enhancement models via bootstrapped remixing", IEEE Journal of
    Selected Topics in Signal Processing, 2022.
"""

import copy
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Union

import numpy as np
import torch
from tqdm.auto import tqdm

from .levels import MixtureFitLoss, match_mixture, remove_dc, removes_noise

PathLike = Union[str, os.PathLike]

# Defaults: the setting measured on real recordings (docs/adapt.md, with its timings). Short chunks
# in pairs keep updates cheap, so that a 5-minute recording adapts within half an hour on a CPU.
STEPS = 100
BATCH_SIZE = 2
CHUNK_SECONDS = 2.0
HELD_OUT = 0.15
LR = 3e-4
TEACHER_DECAY = 0.99
EVAL_EVERY = 20
SILENT_CHUNK_DB = -40.0  # chunks this far under the loudest one are silence, left out
GRADIENT_CLIP = 5.0


def recording_chunks(
    recordings: Sequence[Union[np.ndarray, torch.Tensor]], chunk: int, min_chunk: int
) -> torch.Tensor:
    """Cut recordings (each 1-D, at the model's rate) into DC-free chunks (n_chunks, chunk).

    Each recording gives its non-overlapping windows of ``chunk`` samples and, if what remains is
    at least ``min_chunk`` samples, its last ``chunk`` samples; a recording shorter than ``chunk``
    (but at least ``min_chunk``) is zero-padded. Windows more than ``-SILENT_CHUNK_DB`` dB under
    the loudest are left out.
    """
    windows = []
    for wav in recordings:
        wav = torch.as_tensor(np.asarray(wav, np.float32) if not torch.is_tensor(wav) else wav)
        if wav.ndim != 1:
            raise ValueError(f"recordings must be 1-D waveforms, got shape {tuple(wav.shape)}.")
        wav = wav.float()
        if len(wav) < min_chunk:
            continue
        if len(wav) < chunk:
            windows.append(torch.nn.functional.pad(wav, (0, chunk - len(wav))))
            continue
        starts = list(range(0, len(wav) - chunk + 1, chunk))
        if len(wav) - (starts[-1] + chunk) >= min_chunk:
            starts.append(len(wav) - chunk)
        windows.extend(wav[s : s + chunk] for s in starts)
    if not windows:
        raise ValueError(
            f"No recording holds {min_chunk} samples, the least this model separates; give "
            "longer recordings."
        )
    chunks = remove_dc(torch.stack(windows))
    energy = chunks.pow(2).mean(-1)
    return chunks[energy >= energy.max() * 10 ** (SILENT_CHUNK_DB / 10)]


def remix(sources: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """RemixIT's bootstrapped remix of estimated sources (batch, n_src, time).

    Source ``k`` of new mixture ``b`` is source ``k`` of item ``perm_k[b]``: ``perm_0`` is the
    identity, the others are random permutations of the batch. Returns ``(mixtures (batch, time),
    targets (batch, n_src, time))``; the targets add up to the mixtures.
    """
    batch, n_src = sources.shape[:2]
    perms = [torch.arange(batch)] + [
        torch.randperm(batch, generator=generator) for _ in range(n_src - 1)
    ]
    targets = torch.stack([sources[perm, k] for k, perm in enumerate(perms)], 1)
    return targets.sum(1), targets


@torch.no_grad()
def teacher_sources(teacher: torch.nn.Module, mixtures: torch.Tensor) -> torch.Tensor:
    """The teacher's estimates of DC-free ``mixtures`` (batch, time), fitted to them: at the level
    and polarity of the sources in the mixture, an absent speaker silent (batch, n_src, time)."""
    sources, _ = match_mixture(
        teacher(mixtures).float(), mixtures.float(), keep_residual=not removes_noise(teacher)
    )
    return sources.float()


@torch.no_grad()
def follow(teacher: torch.nn.Module, student: torch.nn.Module, decay: float) -> None:
    """Teacher weights <- ``decay`` x teacher + (1 - ``decay``) x student; buffers copied."""
    for t, s in zip(teacher.parameters(), student.parameters()):
        t.lerp_(s.detach(), 1.0 - decay)
    for t, s in zip(teacher.buffers(), student.buffers()):
        t.copy_(s)


@torch.no_grad()
def remix_snr(
    model: torch.nn.Module,
    mixtures: torch.Tensor,
    targets: torch.Tensor,
    batch_size: int,
    loss: Optional[MixtureFitLoss] = None,
) -> float:
    """Mean thresholded SNR (dB, higher is better) of ``model`` on remixed ``mixtures`` (n, time)
    against their ``targets`` (n, n_src, time): the reference-free score of adaptation."""
    loss = loss or MixtureFitLoss()
    device = next(model.parameters()).device
    total = 0.0
    for start in range(0, len(mixtures), batch_size):
        mix = mixtures[start : start + batch_size].to(device)
        tgt = targets[start : start + batch_size].to(device)
        total += -float(loss(model(mix), tgt, mix)) * len(mix)
    return total / len(mixtures)


@dataclass
class Adaptation:
    """What :func:`adapt` did. ``model`` is the best teacher (by the held-out remix score)."""

    model: torch.nn.Module
    steps: int  # student updates made
    seconds: float
    best_step: int  # 0: no teacher beat the model as given
    stopped: str  # "steps", "time" or "patience"
    train_chunks: int
    held_out_chunks: int
    chunk_seconds: float
    device: str
    scores: list[tuple[int, float]] = field(default_factory=list)  # (step, held-out remix dB)

    @property
    def gain_db(self) -> float:
        """Held-out remix score of the returned model minus that of the model as given."""
        best = dict(self.scores)
        return best[self.best_step] - best[0]

    def summary(self) -> dict:
        return {
            "method": "RemixIT (teacher-student self-training on remixed estimates)",
            "steps": self.steps,
            "best_step": self.best_step,
            "stopped_by": self.stopped,
            "minutes": round(self.seconds / 60, 2),
            "device": self.device,
            "train_chunks": self.train_chunks,
            "held_out_chunks": self.held_out_chunks,
            "chunk_seconds": self.chunk_seconds,
            "held_out_remix_snr_db": {
                "before": round(self.scores[0][1], 2),
                "after": round(dict(self.scores)[self.best_step], 2),
            },
        }


def _split(n: int, held_out: float, generator: torch.Generator) -> tuple[list[int], list[int]]:
    """Chunk indices (train, held out); one chunk alone serves as both."""
    if not 0 < held_out < 1:
        raise ValueError(f"held_out must be a share in (0, 1), got {held_out}.")
    if n == 1:
        return [0], [0]
    order = torch.randperm(n, generator=generator).tolist()
    n_held = min(n - 1, max(1, round(held_out * n)))
    return sorted(order[n_held:]), sorted(order[:n_held])


def adapt(
    model: torch.nn.Module,
    recordings: Sequence[Union[np.ndarray, torch.Tensor]],
    *,
    steps: int = STEPS,
    max_seconds: Optional[float] = None,
    batch_size: int = BATCH_SIZE,
    chunk_seconds: float = CHUNK_SECONDS,
    held_out: float = HELD_OUT,
    lr: float = LR,
    teacher_decay: float = TEACHER_DECAY,
    eval_every: int = EVAL_EVERY,
    patience: int = 4,
    device: Union[str, torch.device] = "cpu",
    seed: int = 0,
    progress: bool = True,
) -> Adaptation:
    """Adapt ``model`` to unlabelled ``recordings`` without references (RemixIT).

    Args:
        model: a separation model (left unchanged; the adapted one is a copy).
        recordings: 1-D waveforms at ``model.sample_rate``, any length.
        steps: most student updates.
        max_seconds: wall-time budget (the run stops at the first evaluation past it).
        batch_size: chunks per update; the remix mixes sources across them (at least 2).
        chunk_seconds: length of the chunks the recordings are cut into.
        held_out: share of the chunks kept out of training to score each teacher.
        lr: Adam learning rate of the student.
        teacher_decay: weight of the teacher in its moving average, per update.
        eval_every: updates between scores of the teacher on the held-out chunks.
        patience: evaluations without a gain before stopping.
        device: where to train.
        seed: chunk split, batches and remixes.
        progress: show a progress bar.

    Returns:
        An :class:`Adaptation`, its ``model`` in eval mode on ``device``.
    """
    if batch_size < 2:
        raise ValueError(
            f"batch_size must be at least 2 (the remix mixes chunks), got {batch_size}."
        )
    if steps < 1 or eval_every < 1:
        raise ValueError(f"steps and eval_every must be positive, got {steps} and {eval_every}.")
    device = torch.device(device)
    generator = torch.Generator().manual_seed(seed)
    rate = float(model.sample_rate)
    chunk = int(round(chunk_seconds * rate))
    min_chunk = max(1, int(0.5 * rate))
    chunks = recording_chunks(recordings, chunk, min_chunk)
    train_idx, held_idx = _split(len(chunks), held_out, generator)
    train = chunks[train_idx]

    teacher = copy.deepcopy(model).to(device).eval()
    student = copy.deepcopy(model).to(device).train()
    for p in teacher.parameters():
        p.requires_grad_(False)
    loss_fn = MixtureFitLoss()
    held_sources = torch.cat(
        [
            teacher_sources(teacher, chunks[held_idx][i : i + batch_size].to(device)).cpu()
            for i in range(0, len(held_idx), batch_size)
        ]
    )
    held_mix, held_targets = remix(held_sources, generator)

    def score() -> float:
        return remix_snr(teacher, held_mix, held_targets, batch_size, loss_fn)

    scores = [(0, score())]
    best_step, best_state = 0, copy.deepcopy(teacher.state_dict())

    def record(step: int) -> bool:
        """Score the teacher after ``step`` updates; keep it if it is the best. True if it was."""
        nonlocal best_step, best_state
        scores.append((step, score()))
        bar.set_postfix(remix_db=f"{loss_db:.2f}", held_out_db=f"{scores[-1][1]:.2f}")
        if scores[-1][1] <= dict(scores)[best_step]:
            return False
        best_step, best_state = step, copy.deepcopy(teacher.state_dict())
        return True

    optimizer = torch.optim.Adam(student.parameters(), lr=lr)
    start, stopped, step = time.monotonic(), "steps", 0
    bar = tqdm(total=steps, desc="adapting", unit="step", disable=not progress)
    for step in range(1, steps + 1):
        if len(train) >= batch_size:
            pick = torch.randperm(len(train), generator=generator)[:batch_size]
        else:  # fewer chunks than a batch: some twice (their remixes still differ)
            pick = torch.randint(len(train), (batch_size,), generator=generator)
        mix = train[pick].to(device)
        mix, targets = remix(teacher_sources(teacher, mix), generator)
        loss = loss_fn(student(mix), targets, mix)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(student.parameters(), GRADIENT_CLIP)
        optimizer.step()
        follow(teacher, student, teacher_decay)
        bar.update()
        loss_db = -loss.item()
        bar.set_postfix(remix_db=f"{loss_db:.2f}")
        evaluated = step % eval_every == 0 or step == steps
        if evaluated and not record(step) and (step - best_step) // eval_every >= patience:
            stopped = "patience"
            break
        if max_seconds is not None and time.monotonic() - start >= max_seconds:
            if not evaluated:
                record(step)
            stopped = "time"
            break
    bar.close()
    teacher.load_state_dict(best_state)
    return Adaptation(
        model=teacher,
        steps=step,
        seconds=time.monotonic() - start,
        best_step=best_step,
        stopped=stopped,
        train_chunks=len(train_idx),
        held_out_chunks=len(held_idx),
        chunk_seconds=chunk / rate,
        device=str(device),
        scores=scores,
    )


def read_recordings(
    paths: Sequence[PathLike], sample_rate: int, channel: int = 0
) -> list[np.ndarray]:
    """Each file's ``channel`` (modulo its channels) at ``sample_rate`` (float32), as
    :func:`adapt` takes them."""
    import soundfile as sf
    import torchaudio.functional as AF

    out = []
    for path in paths:
        wav, rate = sf.read(str(path), dtype="float32", always_2d=True)
        wav = torch.from_numpy(np.ascontiguousarray(wav[:, channel % wav.shape[1]]))
        if rate != sample_rate:
            wav = AF.resample(wav, int(rate), int(sample_rate))
        out.append(wav.numpy())
    return out


def check_si_snri(
    model: torch.nn.Module, folder: PathLike, device: Union[str, torch.device, None] = None
) -> float:
    """Mean SI-SNRi (dB) of ``model`` on a folder of mixtures with references (``ID/mix.wav``,
    ``ID/spk{k}_reverb.wav``, the Echo2Mix layout), separated as the ``separate`` command does:
    what adaptation costs or gains on data with references."""
    import soundfile as sf

    from .inference import separate_array
    from .scoring import best_permutation, si_snr

    folders = sorted(p.parent for p in Path(folder).glob("*/mix.wav"))
    if not folders:
        raise FileNotFoundError(f"{folder}: no ID/mix.wav folders (the Echo2Mix layout) in it.")
    gains = []
    for item in folders:
        mix, rate = sf.read(item / "mix.wav", dtype="float32")
        refs = np.stack(
            [sf.read(p, dtype="float32")[0] for p in sorted(item.glob("spk*_reverb.wav"))]
        )
        est = separate_array(mix, rate, model, device=device)
        est = est[list(best_permutation(refs, est))]
        gains.append(float(si_snr(refs, est).mean() - si_snr(refs, mix[None]).mean()))
    return float(np.mean(gains))


def synthetic_check_set(folder: PathLike, sample_rate: int, n_mixtures: int = 8) -> Path:
    """A small eSpeak NG two-speaker test set (4 s, dry, fixed seed) in ``folder``: the check of
    what adaptation does to a model on synthetic speech, when no other set is given."""
    from .data.synthetic import make_corpus

    corpus = make_corpus(
        folder,
        0,
        0,
        n_mixtures,
        sample_rate=sample_rate,
        duration=4.0,
        seed=1234,
        num_workers=0,
        progress=False,
    )
    return Path(corpus) / "test"
