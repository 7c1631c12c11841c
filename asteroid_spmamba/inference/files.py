"""Separation of audio files: :func:`separate_file` returns the sources, :func:`separate_to_files`
(what ``asteroid-spmamba separate`` runs) streams them into ``NAME_spk1.wav``, ...

Multichannel files: one channel (``channel``, default 0, the first) is separated; channels are
not mixed down, since summing microphones with different delays can comb-filter the speech.
"""

import os
import re
import warnings
from pathlib import Path
from typing import Callable, Optional, Union

import numpy as np
import soundfile as sf
import torch

from .._stack import user_stacklevel
from ..files import remove_litter, work_path
from .paths import output_paths
from .running import ModelLike, _PreparedModel
from .separation import CHUNK_SECONDS, SpeakerActivity, _activity, _separate_source
from .streams import _ArraySink, _ArraySource, _SoundFileSource


class TruncatedAudioWarning(UserWarning):
    """An audio file holds fewer samples than its header announces (an interrupted copy or
    recording): what is there is separated."""


def _open_audio(path: Union[str, os.PathLike]) -> sf.SoundFile:
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(
            f"{path} is a folder; this function separates one file (the separate command "
            "takes folders: asteroid-spmamba separate MODEL FOLDER)."
        )
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file.")
    if path.stat().st_size == 0:
        raise ValueError(f"{path}: empty file.")
    try:
        handle = sf.SoundFile(str(path))
    except Exception as e:  # LibsndfileError and friends: unreadable or unsupported
        raise ValueError(
            f"{path}: cannot read audio ({str(e).strip() or type(e).__name__})."
        ) from e
    if handle.frames == 0:
        handle.close()
        raise ValueError(f"{path}: the file holds no samples.")
    _warn_if_truncated(handle, path)
    return handle


def _warn_if_truncated(handle: sf.SoundFile, path: Path) -> None:
    # libsndfile reads what a cut WAV/AIFF holds and notes the header's claim in its log:
    # "data : 64000 (should be 31960)", in bytes
    found = re.search(
        r"^\s*(?:data|SSND)\s*:\s*(\d+)\s*\(should be (\d+)\)", handle.extra_info, re.M
    )
    if found and int(found[2]) < int(found[1]):
        share = int(found[2]) / int(found[1])
        seconds = handle.frames / handle.samplerate
        warnings.warn(
            f"{path} looks truncated: it holds {seconds:.2f} s, {100 * share:.0f} % of the "
            f"{seconds / share:.2f} s its header announces (an interrupted copy or recording?); "
            "separating what is there.",
            TruncatedAudioWarning,
            stacklevel=user_stacklevel(),
        )


def _file_source(handle: sf.SoundFile, channel: int, path) -> object:
    if not -handle.channels <= channel < handle.channels:
        raise ValueError(
            f"{path} has {handle.channels} channel(s); --channel {channel} does not exist."
        )
    channel %= handle.channels
    if handle.seekable():
        return _SoundFileSource(handle, channel)
    data = handle.read(dtype="float32", always_2d=True)[:, channel]
    return _ArraySource(data)


class _WavFilesSink:
    """Writes source k to ``NAME_spk{k+1}.wav`` through temporary files renamed at the end."""

    def __init__(self, path: Path, outdir: Optional[Path], rate: int):
        self.path, self.outdir, self.rate = path, outdir, rate
        self.paths: list[Path] = []
        self.handles: list[sf.SoundFile] = []
        self.temps: list[Path] = []

    def write(self, block: np.ndarray) -> None:
        if not self.handles:  # the number of sources is known from the first block
            self.paths = output_paths(self.path, self.outdir, block.shape[0])
            for path in self.paths:
                path.parent.mkdir(parents=True, exist_ok=True)
                remove_litter(path)  # temporary files of a separation that was killed
                temp = work_path(path)
                self.temps.append(temp)
                self.handles.append(
                    sf.SoundFile(str(temp), "w", self.rate, 1, subtype="FLOAT", format="WAV")
                )
        for handle, row in zip(self.handles, block):
            handle.write(row)

    def commit(self) -> list[Path]:
        for handle in self.handles:
            handle.close()
        done = []
        for temp, path in zip(self.temps, self.paths):
            os.replace(temp, path)
            done.append(path)
        self.temps = []
        return done

    def abort(self) -> None:
        for handle in self.handles:
            try:
                handle.close()
            except Exception:
                pass
        for temp in self.temps:
            temp.unlink(missing_ok=True)


def _separate_path(
    path: Union[str, os.PathLike],
    model: ModelLike,
    make_sink: Callable[[int, int], object],
    chunk_seconds: Optional[float],
    overlap_seconds: float,
    batch_size: int,
    device: Optional[Union[str, torch.device]],
    channel: int,
    progress: bool,
    precision: str,
    resample: bool,
    shifts: int,
) -> tuple[object, int, float, SpeakerActivity]:
    """What :func:`separate_file` and :func:`separate_to_files` share: open ``path`` (warning when
    it looks truncated), take its ``channel``, prepare ``model`` (a file at another rate than the
    model's is resampled to it and back, or refused without ``resample``) and separate the channel
    into ``make_sink(rate, length)``, whose ``commit()`` ends it (``abort()`` on failure).

    Returns what ``commit()`` gives, the file's rate, its duration in seconds and the
    :class:`SpeakerActivity`.
    """
    with _open_audio(path) as handle:
        rate = handle.samplerate
        source = _file_source(handle, channel, path)
        prepared = _PreparedModel(model, device, precision, shifts)
        if not resample and rate != prepared.rate:
            raise ValueError(
                f"{path} is sampled at {rate} Hz, the model at {prepared.rate} Hz; pass "
                "resample=True to resample it to the model's rate and back."
            )
        sink = make_sink(rate, source.length)
        try:
            joiner = _separate_source(
                prepared,
                source,
                rate,
                sink,
                chunk_seconds,
                overlap_seconds,
                batch_size,
                progress,
                Path(path).name,
                str(path),
            )
            result = sink.commit()
        except BaseException:
            sink.abort()
            raise
        return result, rate, handle.frames / rate, _activity(joiner, prepared.rate)


def separate_file(
    path: Union[str, os.PathLike],
    model: ModelLike,
    chunk_seconds: Optional[float] = CHUNK_SECONDS,
    overlap_seconds: float = 1.0,
    batch_size: int = 1,
    device: Optional[Union[str, torch.device]] = None,
    channel: int = 0,
    progress: bool = False,
    precision: str = "auto",
    return_activity: bool = False,
    resample: bool = True,
    shifts: int = 1,
) -> Union[tuple[np.ndarray, int], tuple[np.ndarray, int, SpeakerActivity]]:
    """Separate an audio file.

    The mixture's DC offset is removed, and each chunk's estimates are given the level and polarity
    they have in the mixture (:func:`asteroid_spmamba.levels.match_mixture`): an output more than
    20 dB below the mixture is an absent speaker and is silent, and the outputs add up to the
    mixture. ``model(x)`` itself returns the network's raw output, whose scale means nothing.

    Args:
        path: audio file (anything soundfile reads: wav, flac, ogg/opus, mp3, aiff, ...).
        model: a separation model (``forward`` maps ``(batch, time)`` to ``(batch, n_src, time)``
            and it has a ``sample_rate``), or a Hub id / folder / checkpoint file to load one from.
        chunk_seconds: chunk length (default :data:`CHUNK_SECONDS`: memory then depends on the
            chunk, not on the file; a shorter file goes in one pass); ``None`` (or 0) separates
            the whole file in one pass, whatever its length.
        overlap_seconds: overlap between consecutive chunks (at most half a chunk), used to match
            the speakers' order across chunks and to cross-fade.
        batch_size: chunks separated together.
        device: where to run (the model is moved there); default: where the model is.
        channel: channel of a multichannel file to separate (default 0, the first).
        progress: show a progress bar over chunks.
        precision: ``"auto"`` (bfloat16 autocast on GPUs that support it, for the models whose bf16
            output agrees with float32 (``bf16_inference``); float32 otherwise), ``"fp32"`` or
            ``"bf16"`` (:func:`asteroid_spmamba.models.base.inference_precision`).
        return_activity: also return the :class:`SpeakerActivity` (which outputs hold a speaker,
            per chunk).
        resample: a file at another rate than the model's is resampled to it and back (default,
            as ``model.separate(..., resample=True)``); ``False`` refuses such a file.
        shifts: passes averaged per chunk, each on the mixture delayed by another fraction of the
            model's analysis hop (:func:`asteroid_spmamba.inference.running.shift_averaged`):
            ``shifts`` times the compute, a little more quality; 1 (default): one pass.

    Returns:
        ``(estimates, sample_rate)``: float32 ``(n_src, time)`` at the file's rate and length
        (``(estimates, sample_rate, activity)`` with ``return_activity``).
    """
    estimates, rate, _, activity = _separate_path(
        path,
        model,
        lambda rate, length: _ArraySink(length),
        chunk_seconds,
        overlap_seconds,
        batch_size,
        device,
        channel,
        progress,
        precision,
        resample,
        shifts,
    )
    if return_activity:
        return estimates, rate, activity
    return estimates, rate


def separate_to_files(
    path: Union[str, os.PathLike],
    model: ModelLike,
    outdir: Optional[Union[str, os.PathLike]] = None,
    chunk_seconds: Optional[float] = CHUNK_SECONDS,
    overlap_seconds: float = 1.0,
    batch_size: int = 1,
    device: Optional[Union[str, torch.device]] = None,
    channel: int = 0,
    progress: bool = False,
    precision: str = "auto",
    return_activity: bool = False,
    shifts: int = 1,
) -> Union[tuple[list[Path], float], tuple[list[Path], float, SpeakerActivity]]:
    """Separate ``path`` into ``NAME_spk1.wav``, ... (32-bit float WAV at the file's rate, at the
    level of each source in the mixture; an absent speaker's file is silent).

    Streams from the input file to the outputs (bounded memory), writing temporary files that are
    renamed when complete. Arguments as :func:`separate_file`; ``outdir`` defaults to the input's
    folder. Returns the written paths and the input's duration in seconds (and the
    :class:`SpeakerActivity` with ``return_activity``).
    """
    folder = None if outdir is None else Path(outdir)
    written, _, seconds, activity = _separate_path(
        path,
        model,
        lambda rate, length: _WavFilesSink(Path(path), folder, rate),
        chunk_seconds,
        overlap_seconds,
        batch_size,
        device,
        channel,
        progress,
        precision,
        True,
        shifts,
    )
    if return_activity:
        return written, seconds, activity
    return written, seconds
