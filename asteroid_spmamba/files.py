"""Atomic file writing, the one way this package writes a file that someone may read.

A file is written to a temporary file beside it and moved into place with :func:`os.replace`, so
an interrupted run leaves either the previous file or the new one, never half of one.
"""

import csv
import json
import os
import re
import shutil
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Callable, Union

PathLike = Union[str, os.PathLike]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def set_new_file_mode(path: PathLike) -> None:
    """Give ``path`` the permissions of a newly created file under the umask (safetensors creates
    its files with mode 0600)."""
    os.chmod(path, 0o666 & ~_umask())


def _temp_beside(path: Path) -> str:
    """A new, empty work file beside ``path`` (:func:`work_path`, so :func:`remove_litter` knows
    it), created exclusively with the permissions the umask gives a new file."""
    tmp = work_path(path)
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    return str(tmp)


def write_atomic(path: PathLike, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp_path)`` then move ``tmp_path`` onto ``path`` (same folder,
    so the move is atomic)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_beside(path)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def write_text_atomic(path: PathLike, text: str) -> Path:
    return write_atomic(path, lambda p: p.write_text(text))


def write_json_atomic(path: PathLike, obj, indent: int = 4) -> Path:
    return write_atomic(path, json_writer(obj, indent))


def write_csv_atomic(path: PathLike, columns: Sequence[str], rows: Sequence[dict]) -> Path:
    return write_atomic(path, csv_writer(columns, rows))


def write_wav_atomic(path: PathLike, wav, rate: int) -> Path:
    """A float WAV file: separated estimates may exceed [-1, 1]."""
    import soundfile as sf

    return write_atomic(path, lambda p: sf.write(str(p), wav, rate, subtype="FLOAT", format="WAV"))


# Work in progress is named ".<final name>.<kind>-<pid>-<random>": a later run can tell the litter
# of a killed process (its pid is gone) from the work of one still running.
_WORK_NAME = re.compile(r"^\.(?P<final>.+)\.(?P<kind>tmp|partial)-(?P<pid>\d+)-[0-9a-f]+$")


def work_path(path: PathLike, kind: str = "tmp") -> Path:
    """A fresh name beside ``path`` for work in progress (``kind``: ``"tmp"`` file or
    ``"partial"`` folder)."""
    path = Path(path)
    return path.with_name(f".{path.name}.{kind}-{os.getpid()}-{uuid.uuid4().hex[:8]}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def work_in_progress(path: PathLike) -> list[tuple[Path, int, bool]]:
    """``(work path, pid, pid alive)`` of every work in progress towards ``path``."""
    path = Path(path)
    if not path.parent.is_dir():
        return []
    found = []
    for entry in path.parent.iterdir():
        m = _WORK_NAME.match(entry.name)
        if m and m.group("final") == path.name:
            pid = int(m.group("pid"))
            found.append((entry, pid, pid != os.getpid() and _alive(pid)))
    return found


def remove_litter(path: PathLike) -> list[Path]:
    """Delete what killed processes left on their way to ``path``; returns what was removed."""
    removed = []
    for entry, _, alive in work_in_progress(path):
        if not alive:
            shutil.rmtree(entry, ignore_errors=True) if entry.is_dir() else entry.unlink(
                missing_ok=True
            )
            removed.append(entry)
    return removed


def symlink_atomic(target: PathLike, link: PathLike) -> Path:
    """Make ``link`` point to ``target`` (absolute), replacing an existing link atomically.

    Raises:
        FileExistsError: ``link`` exists and is a real file or folder (never overwritten).
    """
    link = Path(link)
    if link.exists() and not link.is_symlink():
        raise FileExistsError(f"{link} exists and is not a symbolic link; move it away first.")
    link.parent.mkdir(parents=True, exist_ok=True)
    tmp = work_path(link)
    os.symlink(os.path.abspath(target), tmp, target_is_directory=True)
    os.replace(tmp, link)
    return link


def commit_all(writes: Sequence[tuple[Path, Callable[[Path], None]]]) -> list[Path]:
    """Write several files, each atomically, only once every one of them has
    been written to a temp file.

    Each ``write(tmp)`` runs first (any error aborts before a single target changes); then all the
    temp files are moved into place.
    """
    staged: list[tuple[str, Path]] = []
    try:
        for path, write in writes:
            path = Path(path)
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = _temp_beside(path)
            staged.append((tmp, path))
            write(Path(tmp))
        for tmp, path in staged:
            os.replace(tmp, path)
    finally:
        for tmp, _ in staged:
            if os.path.exists(tmp):
                os.unlink(tmp)
    return [path for _, path in staged]


def json_writer(obj, indent: int = 4) -> Callable[[Path], None]:
    return lambda p: p.write_text(json.dumps(obj, indent=indent) + "\n")


def csv_writer(columns: Sequence[str], rows: Sequence[dict]) -> Callable[[Path], None]:
    def write(p: Path) -> None:
        with open(p, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(columns))
            writer.writeheader()
            for row in rows:
                writer.writerow({k: row[k] for k in columns})

    return write
