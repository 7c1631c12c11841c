"""Load a model by any name: a local folder or file, a model shipped with the package, a release of
the original authors or a URL, one of Asteroid's Zenodo names, or a Hugging Face Hub repository.

Names are tried in that order (:func:`resolve_package`). Local files are read by
:mod:`asteroid_spmamba.checkpoints`; shipped models are the folders of
:mod:`asteroid_spmamba.pretrained`; releases and URLs are downloaded, converted once and cached by
:mod:`asteroid_spmamba.releases`; Asteroid's Zenodo names still go through Asteroid's
``cached_download``; Hub repositories are downloaded by :mod:`asteroid_spmamba.hub`.

This module sits above the models (releases convert into an ``SPMamba``), so the models' own
``from_pretrained`` (:class:`asteroid_spmamba.hub.AsteroidHubMixin`) reaches it through
:func:`asteroid_spmamba.hub.set_resolver`, called when this module is imported (the package's
``__init__`` imports it).
"""

import difflib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Optional, Union

import torch
from asteroid.utils import hub_utils as asteroid_hub  # Asteroid's Zenodo names
from huggingface_hub import constants
from huggingface_hub.errors import HFValidationError
from huggingface_hub.utils import validate_repo_id

from . import releases
from .checkpoints import (
    Package,
    PathOrConf,
    local_package,
    model_from_package,
    package_from_file,
    package_from_folder,
)
from .hub import AsteroidHubMixin, offline, package_from_hub, set_resolver
from .pretrained import list_shipped, pretrained_folder

__all__ = [
    "PretrainedModel",
    "format_pretrained",
    "from_pretrained",
    "load_model",
    "list_pretrained",
    "resolve_package",
]


_WEIGHT_SUFFIXES = (".pth", ".pt", ".bin", ".ckpt", ".safetensors")


def resolve_package(
    repo_id_or_path: PathOrConf,
    revision: Optional[str] = None,
    cache_dir: Optional[Union[str, os.PathLike]] = None,
    force_download: bool = False,
    token: Optional[Union[str, bool]] = None,
    local_files_only: bool = False,
) -> Package:
    """What ``repo_id_or_path`` names (see :func:`from_pretrained`), read into a package."""
    local = local_package(repo_id_or_path)  # a dict, an existing folder or file
    if local is not None:
        return local
    name = os.fspath(repo_id_or_path)
    shipped = None if Path(name).expanduser().exists() else pretrained_folder(name)
    if shipped is not None:  # a model shipped with the package (asteroid_spmamba.list_pretrained())
        return package_from_folder(shipped, f"the shipped model {name!r}")
    for prefix in (constants.HUGGINGFACE_CO_URL_HOME, constants.ENDPOINT.rstrip("/") + "/"):
        if name.startswith(prefix):
            name = name[len(prefix) :].strip("/")
            break
    if name in releases.RELEASES or name.startswith(("http://", "https://")):
        folder = releases.fetch(name, cache_dir, force_download, local_files_only or offline())
        return package_from_folder(folder, f"{name} (cached in {folder})")
    if name in asteroid_hub.MODELS_URLS_HASHTABLE:
        downloaded = asteroid_hub.cached_download(name)
        return package_from_file(Path(downloaded), name, asteroid_hub.SR_HASHTABLE.get(name))
    repo_id = name.partition("@")[0]
    if "/" not in repo_id and not _looks_like_path(repo_id_or_path, name):
        # a Hub id is ORG/NAME: a bare word can only have meant one of the
        # names of list_pretrained()
        raise ValueError(_unknown_name(name))
    if _looks_like_path(repo_id_or_path, name) or not _valid_repo_id(repo_id):
        raise FileNotFoundError(_no_such_path(name))
    try:
        return package_from_hub(name, revision, cache_dir, force_download, token, local_files_only)
    except FileNotFoundError as e:  # not found, or the Hub out of reach: a local name may be meant
        close = _suggestions(repo_id.rpartition("/")[2])
        if not close:
            raise
        raise FileNotFoundError(
            f"{e} Shipped and release names have no ORG/ part: did you mean {_quoted(close)}?"
        ) from e


def _looks_like_path(source: PathOrConf, name: str) -> bool:
    """A name that can only be a path: a ``Path``, ``./``, ``~``, ``/``, ``\\``, two or more ``/``,
    or a checkpoint file's suffix."""
    repo_id = name.partition("@")[0]
    return (
        isinstance(source, os.PathLike)
        or name.startswith((".", "/", "~", "\\"))
        or repo_id.lower().endswith(_WEIGHT_SUFFIXES)
        or repo_id.count("/") > 1
        or "\\" in repo_id
    )


def _valid_repo_id(repo_id: str) -> bool:
    try:
        validate_repo_id(repo_id)
    except HFValidationError:
        return False
    return True


def _known_names() -> list[str]:
    """The shipped models' names, then the releases'."""
    return [m["name"] for m in list_shipped()] + list(releases.RELEASES)


def _suggestions(name: str, n: int = 3) -> list[str]:
    """Known names close to ``name``, best first: the same but for case, names it begins (or that
    begin it), then :func:`difflib.get_close_matches` (all case-insensitive)."""
    query = name.partition("@")[0].strip().lower()
    if not query:
        return []
    by_lower = {known.lower(): known for known in _known_names()}
    found = [low for low in by_lower if low == query]
    if len(query) >= 3:
        found += [low for low in by_lower if low.startswith(query) or query.startswith(low)]
    if not found:  # only when nothing matches this closely, names that merely look alike
        found = difflib.get_close_matches(query, list(by_lower), n=n, cutoff=0.6)
    return [by_lower[low] for low in dict.fromkeys(found)][:n]


def _quoted(names: list[str]) -> str:
    quoted = [repr(n) for n in names]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " or " + quoted[-1]


def _unknown_name(name: str) -> str:
    close = _suggestions(name)
    shipped = [m["name"] for m in list_shipped()]
    return (
        f"no model is named {name!r} (nor is it a local file or folder; a Hugging Face Hub id has "
        "the form ORG/NAME)."
        + (f" Did you mean {_quoted(close)}?" if close else "")
        + f" Shipped models: {', '.join(shipped) or 'none'}; releases (downloaded once): "
        f"{', '.join(releases.RELEASES) or 'none'}. See them all: `asteroid-spmamba models` or "
        "asteroid_spmamba.list_pretrained()."
    )


def _no_such_path(name: str) -> str:
    path = Path(name).expanduser()
    where = "" if path.is_absolute() else f" (in {Path.cwd()})"
    shown = repr(name) + (f" ({path})" if name.startswith("~") else "")
    stem = Path(name).name
    if stem.lower().endswith(_WEIGHT_SUFFIXES):
        stem = stem.rpartition(".")[0]
    close = _suggestions(stem)
    return (
        f"no such file or folder: {shown}{where}; it is neither an existing local file or folder "
        "nor a Hugging Face Hub id (ORG/NAME). Check the path."
        + (f" Or did you mean the model name {_quoted(close)}?" if close else "")
    )


def from_pretrained(
    cls: Optional[type],
    repo_id_or_path: PathOrConf,
    revision: Optional[str] = None,
    cache_dir: Optional[Union[str, os.PathLike]] = None,
    force_download: bool = False,
    token: Optional[Union[str, bool]] = None,
    local_files_only: bool = False,
    **overrides,
) -> torch.nn.Module:
    """Load a pretrained model (in eval mode, on the CPU).

    Args:
        cls: the class it is called on. The file's architecture must be ``cls`` or a subclass;
            ``None`` (or :class:`AsteroidHubMixin`) accepts any registered architecture.
        repo_id_or_path: a Hub repository id (``ORG/NAME``, optionally ``ORG/NAME@REVISION`` or a
            ``https://huggingface.co/ORG/NAME`` URL), a local folder (``config.json`` +
            ``model.safetensors``, or a legacy
            ``pytorch_model.bin``/``model.pth``/``best_model.pth``), a single file (``.safetensors``
            of this package, or Asteroid's serialized ``.pth``/``.bin``), a dict as returned by
            ``model.serialize()``, a shipped model's name
            (:func:`asteroid_spmamba.list_pretrained`), a release name or a URL of a
            ``.zip``/``.pth``/ ``.ckpt`` (downloaded, converted and cached, see
            :mod:`asteroid_spmamba.releases`), or one of Asteroid's Zenodo model names.
        revision: Hub branch, tag or commit.
        cache_dir: Hub cache folder (default: huggingface_hub's, ``HF_HUB_CACHE``); for releases and
            URLs, the releases cache (default ``$ASTEROID_SPMAMBA_CACHE/releases``).
        force_download: fetch the files again even if cached.
        token: Hub token for private or gated repositories.
        local_files_only: never touch the network (also implied by ``HF_HUB_OFFLINE=1``).
        **overrides: constructor arguments that replace the saved ones (e.g.
            ``scan_backend="torch"``).

    Returns:
        The model, weights loaded, in eval mode.

    Raises:
        FileNotFoundError: no such file/folder/repository, or none of the expected files in it.
        ValueError: a name without ``/`` that is none of :func:`list_pretrained`'s (the message
            suggests the close ones); a corrupted or unsafe file, an unknown or mismatched
            architecture, or weights that do not fit the configuration (the message lists
            missing/unexpected keys and shapes).
    """
    package = resolve_package(
        repo_id_or_path, revision, cache_dir, force_download, token, local_files_only
    )
    return model_from_package(None if cls is AsteroidHubMixin else cls, package, **overrides)


def load_model(repo_id_or_path: PathOrConf, **kwargs) -> torch.nn.Module:
    """Load a model of any registered architecture (see :func:`from_pretrained`)."""
    return from_pretrained(None, repo_id_or_path, **kwargs)


# The shipped model used when none is named, by device type (a model shipped for GPUs takes the
# "cuda" row).
DEFAULT_MODELS = {"cpu": "spmamba-small-kokoro2mix", "cuda": "spmamba-small-kokoro2mix"}


def default_model(device: Union[str, torch.device] = "cpu") -> str:
    """The name of the best shipped model for ``device`` (what ``asteroid-spmamba separate``
    uses when it is given no model)."""
    return DEFAULT_MODELS.get(torch.device(device).type, DEFAULT_MODELS["cpu"])


@dataclass(frozen=True)
class PretrainedModel:
    """A model loadable by name (:func:`list_pretrained`): ``load_model(record.name)``.

    ``str()`` is one line; :func:`dataclasses.asdict` gives every field as a dict.

    Attributes:
        name: what :func:`load_model`, ``from_pretrained`` and ``asteroid-spmamba separate`` take.
        architecture: the model class (``"SPMamba"``, ...).
        sample_rate: its rate in Hz (None: not stated).
        n_parameters: its number of parameters (None: not known before the download).
        training_data: what it was trained on, in full.
        scores: its scores by name (``"real_reverb_si_snr_i"``: dB SI-SNR improvement on real
            reverberant recordings never trained on); empty where not measured here.
        downloads: False for a model shipped in the package (offline), True for a release
            (downloaded, converted and cached once).
        url: a release's URL (None for a shipped model).
        sha256: a release's checksum (None: not checked).
        notes: what is known and what is not about a release.
        data: a short label of the training data (the model card's
            ``datasets``), where there is one.
        use_when: a shipped model's advice on when to use it, where it has one.
    """

    name: str
    architecture: str
    sample_rate: Optional[int]
    n_parameters: Optional[int]
    training_data: Optional[str]
    scores: Mapping[str, float] = field(default_factory=dict)
    downloads: bool = False
    url: Optional[str] = None
    sha256: Optional[str] = None
    notes: str = ""
    data: Optional[str] = None
    use_when: Optional[str] = None

    @property
    def kind(self) -> str:
        """``"shipped"`` (in the package, offline) or ``"download"`` (a release)."""
        return "download" if self.downloads else "shipped"

    @property
    def real_speech_score(self) -> Optional[float]:
        """SI-SNRi (dB) on real reverberant recordings never trained on, where measured."""
        return self.scores.get("real_reverb_si_snr_i")

    def __str__(self) -> str:
        parts = [self.architecture]
        if self.sample_rate:
            parts.append(f"{self.sample_rate / 1000:g} kHz")
        if self.n_parameters:
            parts.append(f"{self.n_parameters / 1e6:.1f} M params")
        if self.real_speech_score is not None:
            parts.append(f"real-speech SI-SNRi {self.real_speech_score:.2f} dB")
        parts.append("downloads once" if self.downloads else "shipped")
        return f"{self.name}: {', '.join(parts)}"

    def __repr__(self) -> str:
        return f"<PretrainedModel {self}>"


def list_pretrained() -> list[PretrainedModel]:
    """Every model loadable by name (:class:`PretrainedModel`: name, architecture, sample rate,
    parameters, training data, scores, ...); :func:`format_pretrained` makes a table of them, which
    ``asteroid-spmamba models`` prints.

    First the shipped models (``downloads`` False), then the named releases of
    :mod:`asteroid_spmamba.releases` (``downloads`` True, with their ``url``, ``sha256`` (None:
    not checked) and ``notes`` saying what is unverified).
    """
    known = {f.name for f in fields(PretrainedModel)}
    return [
        PretrainedModel(**{k: v for k, v in entry.items() if k in known})
        for entry in list_shipped() + releases.list_releases()
    ]


def _short(text: Optional[str], width: int) -> str:
    """``text`` on one line, cut to ``width`` characters (``...`` where cut)."""
    text = " ".join((text or "").split())
    if len(text) <= width:
        return text
    return text[: width - 2].rsplit(" ", 1)[0].rstrip(" ,;:(") + "..."


def _note(model: PretrainedModel) -> str:
    if model.use_when:
        return model.use_when
    if not model.downloads:
        return ""
    unverified = "UNVERIFIED" in model.notes.upper()
    checked = "checksum checked" if model.sha256 else "no checksum"
    return f"{'URL unverified, ' if unverified else ''}{checked}"


def format_pretrained(models: Optional[Sequence[PretrainedModel]] = None) -> str:
    """A text table of ``models`` (default: :func:`list_pretrained`): name, kind (shipped: in the
    package; download: a release, fetched once), rate, parameters, training data, SI-SNRi on real
    speech (where measured) and a note."""
    models = list_pretrained() if models is None else list(models)
    header = ("NAME", "KIND", "RATE", "PARAMS", "TRAINED ON", "REAL SPEECH", "NOTE")
    rows = [
        (
            m.name,
            m.kind,
            f"{m.sample_rate / 1000:g} kHz" if m.sample_rate else "?",
            f"{m.n_parameters / 1e6:.1f} M" if m.n_parameters else "?",
            _short(m.data or (m.training_data or "").split(" (")[0], 40) or "?",
            f"{m.real_speech_score:.2f} dB" if m.real_speech_score is not None else "-",
            _short(_note(m), 40),
        )
        for m in models
    ]
    keep = [i for i in range(len(header)) if i < 6 or any(row[i] for row in rows)]
    table = [[line[i] for i in keep] for line in [header, *rows]]
    widths = [max(len(line[i]) for line in table) for i in range(len(keep))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip() for line in table
    )


set_resolver(from_pretrained)
