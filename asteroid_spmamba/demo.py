"""The demo: separate and score a real recording bundled with the package
(``asteroid_spmamba/data/real_mixture``, one mixture of ``egs/realdev``) with a shipped model."""

from pathlib import Path
from typing import Optional

import numpy as np
import soundfile as sf

from .files import write_wav_atomic
from .inference import separate_array
from .scoring import best_permutation, score_utterance
from .training.evaluate import load_trained_model

# The bundled real recording (egs/realdev's reverb/011, CMU ARCTIC; see its README.md)
REAL_MIXTURE = Path(__file__).resolve().parent / "data" / "real_mixture"
DEMO_MODEL = "spmamba-small-kokoro2mix"


def demo(
    model: str = DEMO_MODEL, out_dir: Optional[Path] = None, device: str = "cpu"
) -> dict[str, float]:
    """Separate the bundled real two-speaker recording with ``model`` (a shipped name, a model file
    or folder) and score it against its references: ``{"sdr", "sdr_i", "si_snr",
    "si_snr_i", "level_db"}``.
    With ``out_dir``, the estimates go to ``out_dir/spk1.wav`` and ``spk2.wav`` in the order of the
    references, beside a copy of the mixture."""
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
