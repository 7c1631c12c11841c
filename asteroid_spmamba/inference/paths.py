"""The files of the ``separate`` command: which inputs to separate, and what the outputs are
called (``NAME_spk1.wav``, ...; earlier outputs are not taken for inputs)."""

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Optional, Union

# Extensions picked up when scanning folders (explicitly named files are tried whatever their name).
AUDIO_EXTENSIONS = frozenset(
    {
        ".wav",
        ".wave",
        ".flac",
        ".ogg",
        ".oga",
        ".opus",
        ".mp3",
        ".aif",
        ".aiff",
        ".aifc",
        ".au",
        ".snd",
        ".caf",
        ".w64",
        ".rf64",
        ".sph",
        ".nist",
        ".voc",
        ".htk",
        ".sd2",
        ".mat",
    }
)


def output_paths(
    path: Union[str, os.PathLike], outdir: Optional[Union[str, os.PathLike]], n_src: int
) -> list[Path]:
    """``NAME_spk1.wav`` ... ``NAME_spk{n_src}.wav`` in ``outdir`` (default: beside ``path``)."""
    path = Path(path)
    folder = Path(outdir) if outdir is not None else path.parent
    return [folder / f"{path.stem}_spk{k + 1}.wav" for k in range(n_src)]


def _is_earlier_output(path: Path) -> bool:
    """``NAME_spkN.*`` (this command's outputs) or ``NAME_estN.*`` (``model.separate``'s)."""
    for marker in ("_spk", "_est"):
        head, sep, tail = path.stem.rpartition(marker)
        if sep and head and tail.isdigit():
            return True
    return False


def collect_inputs(
    inputs: Iterable[Union[str, os.PathLike]],
) -> tuple[list[tuple[Path, Path]], list[str]]:
    """Files to separate as ``(file, root)`` pairs (``root``: the folder it was found under, or
    its own folder), and errors for inputs that do not exist. Folders are scanned recursively for
    :data:`AUDIO_EXTENSIONS`, skipping earlier outputs (``*_spkN.*``, ``*_estN.*``)."""
    found: list[tuple[Path, Path]] = []
    errors: list[str] = []
    seen = set()
    for item in inputs:
        item = Path(item)
        if item.is_dir():
            audio = [
                p
                for p in item.rglob("*")
                if p.is_file()
                and p.suffix.lower() in AUDIO_EXTENSIONS
                and not p.name.startswith(".")
            ]
            pairs = [(p, item) for p in sorted(p for p in audio if not _is_earlier_output(p))]
            earlier = len(audio) - len(pairs)
            if not pairs and earlier:
                errors.append(
                    f"{item}: nothing to separate; skipped {earlier} earlier "
                    "output(s) (*_spkN, *_estN)."
                )
            elif not pairs:
                errors.append(
                    f"{item}: no audio files found (extensions "
                    f"{', '.join(sorted(AUDIO_EXTENSIONS))})."
                )
        elif item.exists():
            pairs = [(item, item.parent)]
        else:
            errors.append(f"{item}: no such file or folder.")
            pairs = []
        for file, root in pairs:
            key = file.resolve()
            if key not in seen:
                seen.add(key)
                found.append((file, root))
    return found, errors
