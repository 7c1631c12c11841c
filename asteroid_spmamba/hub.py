"""Hugging Face Hub integration: download, save and publish separation models.

File formats are :mod:`asteroid_spmamba.checkpoints`', the model card
:mod:`asteroid_spmamba.card`'s.
Names (shipped models, releases, URLs, Asteroid's Zenodo names, Hub ids) are resolved by
:mod:`asteroid_spmamba.loading`, which registers itself here (:func:`set_resolver`) so that
``SPMamba.from_pretrained(NAME)`` reaches it although the models sit below it.

Asteroid's own loader (``asteroid.models.BaseModel.from_pretrained``, used by ``asteroid-infer``)
    It reads a file through ``asteroid.models.base_models.cached_download`` (a local file, a URL,
    or ``pytorch_model.bin`` of a Hub repository), then ``torch.load``, ``asteroid.models.get(
    model_name)`` and ``load_state_dict``. It has no plugin hook, and
    ``torch.load(weights_only=True)`` can import nothing, so a file alone cannot make it find this
    package's classes: they exist for it once ``asteroid_spmamba`` is imported
    (``asteroid_spmamba.models`` registers them). What it does not do at all is read a folder (it
    takes any non-file for a Hub id and fails validating it); importing ``asteroid_spmamba.models``
    therefore wraps that one ``cached_download`` name (:func:`teach_asteroid_folders`) so that a
    folder resolves to its ``pytorch_model.bin`` (or ``model.pth``/``best_model.pth``); everything
    else, and the rest of Asteroid's loader, is unchanged. Hub repositories written by
    :func:`push_to_hub` hold ``pytorch_model.bin``, which is what Asteroid downloads.

Hub access
    Files come from ``huggingface_hub.hf_hub_download``, so the Hub cache (``HF_HUB_CACHE`` /
    ``cache_dir``), ``HF_HUB_OFFLINE`` (read at call time too, not only at import) and tokens
    behave as in every other Hub library. Missing repositories or files raise
    ``FileNotFoundError`` naming the repository, the revision and the files looked for.

Asteroid's ``asteroid.utils.hub_utils`` and ``huggingface_hub`` 2.x
    Asteroid 0.7's ``hub_utils`` still imports and works with huggingface_hub 2.4 (the constants and
    ``hf_hub_download`` arguments it uses are still there), but it caches Hub files in
    ``~/.cache/torch/asteroid`` instead of the Hub cache, only knows ``pytorch_model.bin`` and
    passes no ``weights_only`` flag. This module therefore calls ``hf_hub_download`` itself for
    Hub ids; Asteroid's ``cached_download`` is kept (by :mod:`asteroid_spmamba.loading`) only for
    what only Asteroid knows, its Zenodo model names.

Why ``ModelHubMixin`` is used only in part
    :class:`AsteroidHubMixin` subclasses ``huggingface_hub.ModelHubMixin``: it declares the
    library metadata through the mixin's class keywords (``library_name``, ``tags``,
    ``pipeline_tag``, used by the model card), implements the ``_save_pretrained`` and
    ``_from_pretrained`` hooks (so ``ModelHubMixin.from_pretrained`` and tools built on the hooks
    work) and ``generate_model_card``. The public methods are overridden because the mixin's
    versions do not fit Asteroid's ``BaseModel``:

    * ``from_pretrained``: the mixin maps top-level keys of ``config.json`` onto ``__init__``
      arguments of the class it is called on and only knows Hub ids and folders. Asteroid models
      are rebuilt from ``get_model_args()`` under ``model_args``, the class comes from the file
      (``architecture``/``model_name``), and single legacy files, serialized dicts, Asteroid's
      Zenodo names and URLs must keep working (``BaseModel.from_pretrained`` accepted them).
    * ``save_pretrained``: the mixin writes straight into the target folder; here the files are
      written to a temporary folder and renamed into place, so a crash never leaves a
      half-written model behind. The configuration is always ``get_model_args()`` (the mixin's
      ``config`` argument is stored under ``"infos"``).
    * ``push_to_hub`` does what the mixin's does (save into a temporary folder, ``create_repo`` +
      ``upload_folder`` in one commit) but also puts the repository id in the card's usage snippet.
"""

import importlib
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Callable, Optional, Union

import torch
from asteroid.models import base_models
from huggingface_hub import HfApi, ModelCard, ModelHubMixin, constants, hf_hub_download
from huggingface_hub.errors import (
    EntryNotFoundError,
    GatedRepoError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from ._version import __version__
from .card import CARD_NAME, CARD_TAGS, make_model_card
from .checkpoints import (
    CONFIG_NAME,
    LEGACY_FOLDER_FILES,
    LEGACY_WEIGHTS_NAME,
    WEIGHTS_NAME,
    Package,
    PathOrConf,
    first_line,
    is_our_config,
    package_from_config,
    package_from_file,
    read_json,
    read_safetensors,
    write_model_files,
)
from .files import work_path

__all__ = [
    "AsteroidHubMixin",
    "save_pretrained",
    "push_to_hub",
    "upload_folder",
    "package_from_hub",
    "set_resolver",
    "teach_asteroid_folders",
]


# --------------------------------------------------------------------------------------------
# Downloading
# --------------------------------------------------------------------------------------------
def offline() -> bool:
    """``HF_HUB_OFFLINE`` as huggingface_hub read it at import, or as set since."""
    env = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or ""
    return bool(constants.HF_HUB_OFFLINE) or env.strip().upper() in constants.ENV_VARS_TRUE_VALUES


def _grouped(reasons: Sequence[tuple]) -> str:
    """``[(file, why), ...]`` -> ``"a, b: why"`` with files that failed for the
    same reason together."""
    by_reason: dict[str, list[str]] = {}
    for name, why in reasons:
        by_reason.setdefault(why, []).append(name)
    return "; ".join(f"{', '.join(names)}: {why}" for why, names in by_reason.items())


def _split_revision(repo_id: str, revision: Optional[str]):
    """Asteroid accepts ``org/name@revision``; keep doing so."""
    if "@" in repo_id:
        repo_id, _, at_revision = repo_id.partition("@")
        if revision is not None and revision != at_revision:
            raise ValueError(
                f"Two revisions given for {repo_id!r}: {at_revision!r} and revision={revision!r}."
            )
        revision = at_revision
    return repo_id, revision


def package_from_hub(
    repo_id: str, revision, cache_dir, force_download, token, local_files_only
) -> Package:
    repo_id, revision = _split_revision(repo_id, revision)
    offline_only = local_files_only or offline()
    where = f"Hugging Face Hub repository {repo_id!r} (revision {revision or 'main'})"
    download_kwargs = dict(
        repo_id=repo_id,
        revision=revision,
        cache_dir=cache_dir,
        force_download=force_download,
        token=token,
        local_files_only=offline_only,
        library_name="asteroid-spmamba",
        library_version=__version__,
    )
    looked: list[str] = []
    reasons: list[tuple] = []
    cache_hint = (
        f" Offline mode (HF_HUB_OFFLINE or local_files_only) is on, so only the local cache "
        f"({cache_dir or constants.HF_HUB_CACHE}) was searched: download the model once with "
        "network access, or pass the path of a local copy."
        if offline_only
        else ""
    )

    def fetch(name: str) -> Optional[str]:
        looked.append(name)
        try:
            return hf_hub_download(filename=name, **download_kwargs)
        except GatedRepoError as e:
            raise FileNotFoundError(
                f"{where} is gated or private (looked for {', '.join(looked)}): accept its "
                "conditions on the Hub and pass token=... or log in with `hf auth login`."
            ) from e
        except (RepositoryNotFoundError, RevisionNotFoundError) as e:
            raise FileNotFoundError(
                f"{where} was not found (looked for {', '.join(looked)}): check the name and "
                f"revision, and pass token=... for a private repository ({first_line(e)})."
            ) from e
        except (
            EntryNotFoundError,
            OSError,
        ) as e:  # missing file, not cached offline, network errors
            reasons.append((name, first_line(e)))
            return None

    config_path = fetch(CONFIG_NAME)
    if config_path is not None:
        config = read_json(config_path, where)
        if is_our_config(config):
            weights_path = fetch(WEIGHTS_NAME)
            if weights_path is None:
                raise FileNotFoundError(
                    f"{where} has {CONFIG_NAME} but {WEIGHTS_NAME} could not be "
                    f"fetched ({_grouped(reasons)})." + cache_hint
                )
            tensors, _ = read_safetensors(weights_path, where)
            return package_from_config(config, tensors, where)
    legacy_path = fetch(LEGACY_WEIGHTS_NAME)
    if legacy_path is not None:
        return package_from_file(Path(legacy_path), f"{where}, file {LEGACY_WEIGHTS_NAME}")
    raise FileNotFoundError(
        f"Could not load a model from {where}: looked for {CONFIG_NAME} + {WEIGHTS_NAME} "
        f"(asteroid_spmamba format) and {LEGACY_WEIGHTS_NAME} (Asteroid format); "
        f"{_grouped(reasons)}.{cache_hint}"
    )


# --------------------------------------------------------------------------------------------
# Saving and publishing
# --------------------------------------------------------------------------------------------
def save_pretrained(
    model: torch.nn.Module,
    folder: Union[str, os.PathLike],
    *,
    infos: Optional[Mapping[str, Any]] = None,
    overwrite_card: bool = False,
    asteroid_file: bool = True,
    **card_kwargs,
) -> Path:
    """Write ``model.safetensors``, ``config.json``, ``README.md`` and Asteroid's
    ``pytorch_model.bin`` into ``folder``, atomically.

    Everything is written to a temporary folder beside ``folder`` first. A new (or empty) ``folder``
    is then renamed into place in one step; into an existing folder each file is moved with
    ``os.replace`` (weights first, ``config.json`` last), other files there are left alone. On
    any error the temporary folder is removed and ``folder`` is untouched.

    Args:
        model: an Asteroid model (``get_model_args`` + ``state_dict``).
        folder: destination folder.
        infos: extra JSON metadata stored under ``"infos"`` in ``config.json``.
        overwrite_card: replace an existing ``README.md`` (by default a hand-edited card is kept).
        asteroid_file: also write ``pytorch_model.bin`` for Asteroid's own loader (twice the bytes;
            the models shipped inside the package leave it out).
        **card_kwargs: :func:`make_model_card` arguments (``repo_id``, ``datasets``, ``metrics``,
            ``license``, ``description``, ``language``, ``tags``, ``training``).

    Returns:
        The folder's path.
    """
    folder = Path(folder).expanduser()
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = work_path(folder, "partial")
    tmp.mkdir()  # mkdir (not mkdtemp) so permissions follow the umask
    try:
        write_model_files(model, tmp, infos, asteroid_file)
        make_model_card(model, **card_kwargs).save(str(tmp / CARD_NAME))
        try:
            os.rmdir(folder)  # an empty destination may be replaced by the rename below
        except OSError:
            pass
        if not folder.exists():
            os.replace(tmp, folder)
            return folder
        keep_card = (folder / CARD_NAME).exists() and not overwrite_card
        if not asteroid_file and (folder / LEGACY_WEIGHTS_NAME).exists():
            os.remove(folder / LEGACY_WEIGHTS_NAME)  # an older model's: Asteroid would load it
        for name in (WEIGHTS_NAME, LEGACY_WEIGHTS_NAME, CARD_NAME, CONFIG_NAME):
            if (name == CARD_NAME and keep_card) or not (tmp / name).exists():
                continue
            os.replace(tmp / name, folder / name)
        return folder
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def push_to_hub(
    model: torch.nn.Module,
    repo_id: str,
    *,
    commit_message: str = "Upload asteroid model",
    private: Optional[bool] = None,
    token: Optional[str] = None,
    branch: Optional[str] = None,
    create_pr: Optional[bool] = None,
    infos: Optional[Mapping[str, Any]] = None,
    **card_kwargs,
) -> str:
    """Save ``model`` (see :func:`save_pretrained`) and upload it to the Hub in one commit.

    Creates the repository if needed. ``card_kwargs`` go to :func:`make_model_card` (``repo_id``
    defaults to this one). Returns the commit URL.
    """
    card_kwargs.setdefault("repo_id", repo_id)
    with tempfile.TemporaryDirectory() as tmp:
        saved = save_pretrained(model, Path(tmp) / "model", infos=infos, **card_kwargs)
        return upload_folder(
            saved,
            repo_id,
            commit_message=commit_message,
            private=private,
            token=token,
            branch=branch,
            create_pr=create_pr,
        )


def upload_folder(
    folder: Union[str, os.PathLike],
    repo_id: str,
    *,
    commit_message: str = "Upload asteroid model",
    private: Optional[bool] = None,
    token: Optional[str] = None,
    branch: Optional[str] = None,
    create_pr: Optional[bool] = None,
) -> str:
    """Upload a :func:`save_pretrained` folder to the Hub in one commit (creating the repository if
    needed); returns the commit URL."""
    api = HfApi(token=token)
    repo_id = api.create_repo(repo_id=repo_id, private=private, exist_ok=True).repo_id
    commit = api.upload_folder(
        repo_id=repo_id,
        repo_type="model",
        folder_path=str(folder),
        commit_message=commit_message,
        revision=branch,
        create_pr=create_pr,
    )
    return str(getattr(commit, "commit_url", commit))


# --------------------------------------------------------------------------------------------
# Asteroid's own loader
# --------------------------------------------------------------------------------------------
def teach_asteroid_folders() -> None:
    """Let ``asteroid.models.BaseModel.from_pretrained`` take a folder (see the module docstring).

    Wraps the ``cached_download`` that ``asteroid.models.base_models`` imported: a local folder
    resolves to its Asteroid-format file; anything else goes to Asteroid's function unchanged.
    Idempotent.
    """
    original = base_models.cached_download
    if getattr(original, "_reads_folders", False):
        return

    def cached_download(filename_or_url):
        path = (
            Path(os.fspath(filename_or_url)).expanduser()
            if isinstance(filename_or_url, (str, os.PathLike))
            else None
        )
        if path is not None and path.is_dir():
            for name in LEGACY_FOLDER_FILES:
                if (path / name).is_file():
                    return str(path / name)
            raise FileNotFoundError(
                f"Asteroid's loader found none of {', '.join(LEGACY_FOLDER_FILES)} in {path}. A "
                f"folder holding only {WEIGHTS_NAME} (saved by an earlier asteroid_spmamba, or a "
                "shipped model) loads with asteroid_spmamba.load_model(folder); save it again with "
                f"save_pretrained to add {LEGACY_WEIGHTS_NAME} for Asteroid."
            )
        if path is not None and path.suffix == ".safetensors" and path.is_file():
            raise ValueError(
                f"Asteroid's loader reads PyTorch files only, not {path.name}: pass the folder "
                f"(Asteroid then reads its {LEGACY_WEIGHTS_NAME}) or load it with "
                "asteroid_spmamba.load_model."
            )
        return original(filename_or_url)

    cached_download._reads_folders = True
    cached_download.__wrapped__ = original
    base_models.cached_download = cached_download


# --------------------------------------------------------------------------------------------
# Names: asteroid_spmamba.loading, above the models, registers its resolver here (on import)
# --------------------------------------------------------------------------------------------
def _load_resolver(cls, name, **kwargs):
    """The resolver until :mod:`asteroid_spmamba.loading` is imported: imports it (by name: it
    sits above this module), which calls :func:`set_resolver`, and hands over. ``import
    asteroid_spmamba`` does not import it, so a model class's ``from_pretrained`` may be first."""
    importlib.import_module("asteroid_spmamba.loading")
    if _resolver is _load_resolver:
        raise RuntimeError("asteroid_spmamba.loading did not register its resolver")
    return _resolver(cls, name, **kwargs)


_resolver: Callable[..., torch.nn.Module] = _load_resolver


def set_resolver(resolver: Callable[..., torch.nn.Module]) -> None:
    """Make ``AsteroidHubMixin.from_pretrained`` load through ``resolver(cls, name, revision=,
    cache_dir=, force_download=, token=, local_files_only=, **overrides)``; ``cls`` is ``None`` when
    it is called on the mixin itself (any registered architecture)."""
    global _resolver
    _resolver = resolver


# --------------------------------------------------------------------------------------------
# Mixin for the package's models
# --------------------------------------------------------------------------------------------
class AsteroidHubMixin(
    ModelHubMixin,
    library_name="asteroid",
    tags=list(CARD_TAGS),
    pipeline_tag="audio-to-audio",
    repo_url="https://github.com/asteroid-team/asteroid",
):
    """Hub methods for Asteroid models: ``from_pretrained``, ``save_pretrained``, ``push_to_hub``.

    List it first among the bases of a model class (before Asteroid's ``BaseModel``), so its
    ``from_pretrained`` replaces Asteroid's. See the module docstring for formats and for which
    ``ModelHubMixin`` methods are reused or overridden.
    """

    @classmethod
    def from_pretrained(
        cls,
        pretrained_model_conf_or_path: PathOrConf,
        *,
        revision: Optional[str] = None,
        cache_dir: Optional[Union[str, os.PathLike]] = None,
        force_download: bool = False,
        token: Optional[Union[str, bool]] = None,
        local_files_only: bool = False,
        **overrides,
    ):
        """Load a pretrained model; see :func:`asteroid_spmamba.loading.from_pretrained`."""
        return _resolver(
            None if cls is AsteroidHubMixin else cls,
            pretrained_model_conf_or_path,
            revision=revision,
            cache_dir=cache_dir,
            force_download=force_download,
            token=token,
            local_files_only=local_files_only,
            **overrides,
        )

    @classmethod
    def _from_pretrained(
        cls,
        *,
        model_id,
        revision,
        cache_dir,
        force_download,
        local_files_only,
        token,
        **model_kwargs,
    ):
        return _resolver(
            None if cls is AsteroidHubMixin else cls,
            model_id,
            revision=revision,
            cache_dir=cache_dir,
            force_download=force_download,
            token=token,
            local_files_only=local_files_only,
            **model_kwargs,
        )

    def _save_pretrained(self, save_directory: Path) -> None:
        write_model_files(self, Path(save_directory))

    def save_pretrained(
        self,
        save_directory: Union[str, os.PathLike],
        *,
        config: Optional[Mapping[str, Any]] = None,
        repo_id: Optional[str] = None,
        push_to_hub: bool = False,
        model_card_kwargs: Optional[dict[str, Any]] = None,
        **push_to_hub_kwargs,
    ) -> Optional[str]:
        """Save atomically (see :func:`asteroid_spmamba.hub.save_pretrained`); optionally push.

        ``config`` is stored under ``"infos"`` in ``config.json``; ``model_card_kwargs`` go to
        :func:`make_model_card`.
        """
        card_kwargs = dict(model_card_kwargs or {})
        if repo_id is not None:
            card_kwargs.setdefault("repo_id", repo_id)
        save_pretrained(self, save_directory, infos=config, **card_kwargs)
        if push_to_hub:
            return self.push_to_hub(
                repo_id or Path(save_directory).name,
                config=config,
                model_card_kwargs=card_kwargs,
                **push_to_hub_kwargs,
            )
        return None

    def push_to_hub(
        self,
        repo_id: str,
        *,
        config: Optional[Mapping[str, Any]] = None,
        commit_message: str = "Upload asteroid model",
        private: Optional[bool] = None,
        token: Optional[str] = None,
        branch: Optional[str] = None,
        create_pr: Optional[bool] = None,
        model_card_kwargs: Optional[dict[str, Any]] = None,
    ) -> str:
        """Upload to the Hub (see :func:`asteroid_spmamba.hub.push_to_hub`);
        returns the commit URL."""
        return push_to_hub(
            self,
            repo_id,
            commit_message=commit_message,
            private=private,
            token=token,
            branch=branch,
            create_pr=create_pr,
            infos=config,
            **dict(model_card_kwargs or {}),
        )

    def generate_model_card(self, *args, **kwargs) -> ModelCard:
        return make_model_card(self, *args, **kwargs)
