"""Five real Echo2Mix test mixtures and the SPMamba authors' separations of them, for scoring.

The SPMamba repository (https://github.com/JusperLee/SPMamba, Apache-2.0) keeps, for its demo page,
five mixtures of the Echo2Mix test set (LibriSpeech speakers in SonicSim rooms: real speech,
simulated rooms) with their reverberant references, and what each model of the paper's table made of
them (SPMamba, TF-GridNet, BSRNN, TDANet, A-FRCNN, SudoRM-RF, Conv-TasNet, trained by the authors on
Echo2Mix). This script copies them, byte for byte and checked against ``echo2mix_demo.sha256``, into

    OUT/mixtures/<ID>/mix.wav, spk1_reverb.wav, spk2_reverb.wav
        (Echo2Mix layout: evaluate --test-dir)
    OUT/authors/<model>/<ID>/s1.wav, s2.wav
        (asteroid-spmamba score OUT/mixtures ...)

16 kHz, 6 s. Nothing of it is committed here and no training corpus of this repository uses it.

    # git clone or bare git dir of JusperLee/SPMamba
    python make_echo2mix_demo.py OUT --spmamba-dir PATH
"""

import argparse
import hashlib
import os
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_dev_set import _git_blob, _git_cmd  # noqa: E402  (reading files out of a git clone)

COMMIT = "f939f60a10db8a66aa69ec09685684307af47412"  # master, 2024-12-05
AUDIO_DIR = "asserts/audios"
MANIFEST = Path(__file__).with_name("echo2mix_demo.sha256")
REFERENCE_FILES = {
    "mix.wav": "mix.wav",
    "spk1_reverb.wav": "spk1_reverb.wav",
    "spk2_reverb.wav": "spk2_reverb.wav",
}


def manifest() -> dict[str, str]:
    """``{path under asserts/audios: sha256}``."""
    rows = (line.split() for line in MANIFEST.read_text().splitlines() if line.strip())
    return {path: digest for digest, path in rows}


def _read(spmamba_dir: Path, path: str) -> bytes:
    git = _git_cmd(spmamba_dir)
    if git is not None:
        blob, error = _git_blob(git, f"{COMMIT}:{AUDIO_DIR}/{path}")
        if blob is None:
            raise ValueError(
                f"{spmamba_dir} lacks {AUDIO_DIR}/{path} at {COMMIT}: {error}. "
                "Fetch the repository's history (git fetch origin) and run again."
            )
        return blob
    file = spmamba_dir / AUDIO_DIR / path
    if not file.is_file():
        raise ValueError(
            f"{file} is missing; point --spmamba-dir at a clone of https://github.com/JusperLee/SPMamba."
        )
    return file.read_bytes()


def make_echo2mix_demo(out_dir: os.PathLike, spmamba_dir: os.PathLike) -> Path:
    """Write the five mixtures and the authors' estimates under ``out_dir``
    (built in ``.partial``)."""
    out, source = Path(out_dir).absolute(), Path(spmamba_dir)
    files = manifest()
    data = {}
    for path, digest in files.items():  # read and check everything before writing anything
        blob = _read(source, path)
        if hashlib.sha256(blob).hexdigest() != digest:
            raise ValueError(
                f"{AUDIO_DIR}/{path} has SHA-256 {hashlib.sha256(blob).hexdigest()}, expected "
                f"{digest}."
            )
        data[path] = blob
    tmp = out.parent / f"{out.name}.partial"
    shutil.rmtree(tmp, ignore_errors=True)
    for path, blob in data.items():
        model, utt, name = path.split("/")
        target = (
            tmp / "mixtures" / utt / name if model == "gt" else tmp / "authors" / model / utt / name
        )
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(blob)
    if out.exists():
        shutil.rmtree(out)
    os.replace(tmp, out)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out", help="output folder")
    p.add_argument(
        "--spmamba-dir", required=True, help="git clone (or bare git dir) of JusperLee/SPMamba"
    )
    args = p.parse_args(argv)
    try:
        out = make_echo2mix_demo(args.out, args.spmamba_dir)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(
        f"Echo2Mix demo mixtures in {out}/mixtures; the authors' estimates in {out}/authors/<model>"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
