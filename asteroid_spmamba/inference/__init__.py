"""Separation of audio files and waveforms of any length (what ``asteroid-spmamba separate``
and ``model.separate`` run).

Long recordings are cut into overlapping chunks, separated ``batch_size`` chunks at a time, and
joined again with the speakers' order matched across chunks and the overlaps cross-faded
(:mod:`.chunking`). Everything streams: a chunk is read (and resampled, :mod:`.streams`) only
when it is separated, and samples are written out as soon as no later chunk overlaps them, so the
memory used by the model and the buffers is bounded by the chunk and batch size, not by the
recording's length. Only :func:`separate_file` / :func:`separate_array`, which return the whole
result, hold it in memory; :func:`separate_to_files` (used by the command line) writes it block
by block.

The modules, each building on the ones above it only:

- :mod:`.streams`: sources and sinks of samples, and streaming resampling;
- :mod:`.chunking`: chunk sizes and starts, permutation alignment and overlap-add;
- :mod:`.running`: inference precision, model preparation, and :func:`written_sources`, the one
  place where a mixture becomes the sources users get (also behind ``model.forward_wav``), with
  the shift trick (``shifts``: :func:`~.running.shift_averaged`);
- :mod:`.separation`: one recording through the model, chunk by chunk (:data:`CHUNK_SECONDS`,
  :func:`check_chunking`, :class:`SpeakerActivity`);
- :mod:`.arrays`: :func:`separate_array`;
- :mod:`.paths`: the command's inputs and output names (:func:`collect_inputs`,
  :func:`output_paths`);
- :mod:`.files`: :func:`separate_file` and :func:`separate_to_files`.
"""

# The public API (__all__), and, as ``name as name``, what the command line, models.base, tests
# and the README import from here as they did before the split.
from .arrays import separate_array
from .chunking import _best_permutation as _best_permutation
from .chunking import _chunk_plan as _chunk_plan
from .chunking import _fade_in as _fade_in
from .files import TruncatedAudioWarning as TruncatedAudioWarning
from .files import separate_file, separate_to_files
from .paths import AUDIO_EXTENSIONS
from .paths import collect_inputs as collect_inputs
from .paths import output_paths as output_paths
from .running import INFERENCE_PRECISIONS as INFERENCE_PRECISIONS
from .running import ModelLike as ModelLike
from .running import inference_precision as inference_precision
from .running import written_sources as written_sources
from .separation import CHUNK_SECONDS as CHUNK_SECONDS
from .separation import SpeakerActivity, check_chunking

__all__ = [
    "separate_file",
    "separate_array",
    "separate_to_files",
    "SpeakerActivity",
    "check_chunking",
    "AUDIO_EXTENSIONS",
]
