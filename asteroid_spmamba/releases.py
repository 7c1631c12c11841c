"""Checkpoints of the original SPMamba, by name or URL: downloaded once,
converted once, then offline.

``SPMamba.from_pretrained(NAME_OR_URL)``, ``asteroid_spmamba.load_model`` and ``asteroid-spmamba
separate NAME_OR_URL in.wav`` take the names of :data:`RELEASES` and ``http(s)://`` URLs of a
``.zip`` (the checkpoint inside is found: ``best_model.pth``, else the only ``.pth``/``.ckpt``/
``.pt``/``.bin``), ``.pth``, ``.ckpt`` or ``.bin`` file in any format
:func:`~asteroid_spmamba.convert_original` reads (the original's serialized ``best_model.pth`` or a
Lightning checkpoint), or an Asteroid model package.

The first load downloads the file (progress bar) into the cache, ``cache_dir`` or
``$ASTEROID_SPMAMBA_CACHE/releases`` (default ``~/.cache/asteroid_spmamba/releases``): into a
temporary file of the cache folder that is renamed only once its length (``Content-Length``) and,
where the table knows it, its sha256 match, so an interrupted or wrong download leaves nothing a
later load would use. The checkpoint is converted (with the release's configuration: what the
weights cannot tell, the STFT hop and the sample rate) and saved as a
:func:`~asteroid_spmamba.hub.save_pretrained` folder, renamed into place when complete; the
download is then deleted. Later loads read that folder and make no request.

The table is a plain dict: ``RELEASES["my-name"] = Release(url=..., sha256=...)`` adds a name.
"""

import hashlib
import http.client
import io
import json
import os
import re
import urllib.error
import urllib.request
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Optional, Union
from urllib.parse import urlparse

from tqdm import tqdm

from ._version import __version__
from .checkpoints import CONFIG_NAME, model_from_package, package_from_dict, torch_load
from .files import write_atomic
from .hub import save_pretrained
from .models.spmamba_original import convert_original

CACHE_ENV_VAR = "ASTEROID_SPMAMBA_CACHE"  # the package's cache root (also the CPU kernels')
CHECKPOINT_SUFFIXES = (".pth", ".ckpt", ".pt", ".bin")
AUTHORS = "the original SPMamba implementation (https://github.com/JusperLee/SPMamba)"


@dataclass(frozen=True)
class Release:
    """A downloadable checkpoint.

    Args:
        url: a ``.zip``, ``.pth``, ``.ckpt`` or ``.bin`` file.
        convert_args: :func:`~asteroid_spmamba.convert_original` arguments the weights do not
            determine (``hop_length``, ``sample_rate``).
        sha256: checksum of the file; ``None`` where unknown (then only the length is checked).
        training_data: what it was trained on, for the model card.
        notes: what is known and what is not (shown by ``list_pretrained`` and in the card).
        license: licence id for the model card.
        member: the checkpoint's path inside a ``.zip`` when it cannot be found by the rule above.
    """

    url: str
    convert_args: Mapping[str, Any] = field(default_factory=dict)
    sha256: Optional[str] = None
    training_data: Optional[str] = None
    notes: str = ""
    license: Optional[str] = None
    member: Optional[str] = None


# The authors' checkpoints. Configurations: configs/spmamba-librimix.yml and spmamba-echo2mix.yml of
# JusperLee/SPMamba (n_fft 256, stride 64, 8 kHz; n_fft 512, stride 128, 16 kHz).
RELEASES: dict[str, Release] = {
    "spmamba-libri2mix": Release(
        url="https://github.com/JusperLee/SPMamba/releases/download/LibriMix/SPMamba-LibriMix.zip",
        convert_args={"sample_rate": 8000, "hop_length": 64},
        training_data="Libri2Mix train-100, 8 kHz (the authors' configs/spmamba-librimix.yml)",
        notes="URL given by the authors in JusperLee/SPMamba issue #13. UNVERIFIED: the file could "
        "not be downloaded when this entry was written, so its contents (which checkpoint, which "
        "configuration) and its checksum are unknown; no sha256 is checked.",
        license="apache-2.0",
    ),
    "spmamba-echo2mix": Release(
        url="https://github.com/JusperLee/SPMamba/releases/download/v1.0/SPMamba-Echo2Mix.zip",
        convert_args={"sample_rate": 16000, "hop_length": 128},
        training_data="Echo2Mix, 16 kHz (the authors' configs/spmamba-echo2mix.yml)",
        notes="URL INFERRED, UNVERIFIED: the authors' README puts the Libri2Mix and Echo2Mix "
        "checkpoints under the release tag v1.0; the asset name follows SPMamba-LibriMix.zip. "
        "Neither the URL nor the file's contents nor its checksum could be "
        "checked; no sha256 is checked.",
        license="apache-2.0",
    ),
}


def release_cache_dir(cache_dir: Optional[Union[str, os.PathLike]] = None) -> Path:
    """``cache_dir``, else ``$ASTEROID_SPMAMBA_CACHE/releases``, else
    ``~/.cache/asteroid_spmamba/releases``."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    root = os.environ.get(CACHE_ENV_VAR) or os.path.join("~", ".cache", "asteroid_spmamba")
    return Path(root).expanduser() / "releases"


def list_releases() -> list[dict[str, Any]]:
    """The named releases: name, URL, checksum (None: unknown), training data, notes."""
    return [
        {
            "name": name,
            "architecture": "SPMamba",
            "sample_rate": r.convert_args.get("sample_rate"),
            "n_parameters": None,
            "training_data": r.training_data,
            "scores": {},
            "downloads": True,
            "url": r.url,
            "sha256": r.sha256,
            "notes": r.notes,
        }
        for name, r in RELEASES.items()
    ]


def _is_archive(url: str) -> bool:
    return urlparse(url).path.lower().endswith(".zip")


def _cache_key(label: str, release: Release) -> str:
    """Folder name: readable label + hash of everything that decides the converted model."""
    what = json.dumps(
        [release.url, release.sha256, dict(release.convert_args), release.member], sort_keys=True
    )
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", label).strip("._") or "model"
    return f"{safe[:60]}-{hashlib.sha256(what.encode()).hexdigest()[:12]}"


def _download(url: str, path: Path, sha256: Optional[str]) -> str:
    """Download ``url`` to ``path`` through a temporary file renamed when
    complete; returns the sha256."""
    digest = hashlib.sha256()

    def write(tmp: Path) -> None:
        request = urllib.request.Request(
            url, headers={"User-Agent": f"asteroid-spmamba/{__version__}"}
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as response, open(tmp, "wb") as out:
                length = response.headers.get("Content-Length")
                total = int(length) if length is not None else None
                received = 0
                with tqdm(
                    total=total,
                    unit="B",
                    unit_scale=True,
                    unit_divisor=1024,
                    desc=f"downloading {PurePosixPath(urlparse(url).path).name}",
                ) as bar:
                    while chunk := response.read(1 << 20):
                        out.write(chunk)
                        digest.update(chunk)
                        received += len(chunk)
                        bar.update(len(chunk))
        except (urllib.error.URLError, http.client.HTTPException, OSError) as e:
            raise ConnectionError(
                f"Could not download {url}: {e}. Nothing was cached; check the URL and the "
                "network and try again."
            ) from e
        if total is not None and received != total:
            raise ConnectionError(
                f"The download of {url} stopped after {received:,} of {total:,} bytes. Nothing "
                "was cached; try again."
            )
        if sha256 is not None and digest.hexdigest() != sha256.lower():
            raise ValueError(
                f"{url} has sha256 {digest.hexdigest()}, not the expected {sha256.lower()}: it is "
                "not the file this release names (corrupted, or replaced upstream). Nothing was "
                "cached. If you trust the new file, load it by its URL (no checksum is checked "
                "then) or update the release's sha256."
            )

    write_atomic(path, write)
    return digest.hexdigest()


def _pick_member(names: list[str], release: Release, source: str) -> str:
    if release.member is not None:
        if release.member not in names:
            raise ValueError(f"{source} has no member {release.member!r}; it holds {names[:20]}.")
        return release.member
    candidates = [
        n
        for n in names
        if n.lower().endswith(CHECKPOINT_SUFFIXES) and not n.startswith("__MACOSX/")
    ]
    best = [n for n in candidates if PurePosixPath(n).name == "best_model.pth"]
    if len(best) == 1:
        return best[0]
    if len(candidates) == 1:
        return candidates[0]
    raise ValueError(
        f"{source}: cannot tell which checkpoint to use among {candidates or names[:20]}: expected "
        "one best_model.pth or a single .pth/.ckpt/.pt/.bin. Name it with Release(member=...)."
    )


def _is_original(checkpoint: Any) -> bool:
    """The original SPMamba's layout (serialized or Lightning): its first layer is ``conv.0``."""
    state = checkpoint.get("state_dict") if isinstance(checkpoint, Mapping) else None
    return isinstance(state, Mapping) and (
        "conv.0.weight" in state or "audio_model.conv.0.weight" in state
    )


def _convert(download: Path, release: Release, source: str):
    """(model, archive member used, whether it was an original checkpoint): an original checkpoint
    converted, or an Asteroid model package loaded."""
    member = None
    try:
        if _is_archive(release.url):
            try:
                with zipfile.ZipFile(download) as archive:
                    member = _pick_member(archive.namelist(), release, source)
                    data = io.BytesIO(archive.read(member))
            except zipfile.BadZipFile as e:
                raise ValueError(f"{source} is not a valid zip archive ({e}).") from e
            checkpoint = torch_load(data, f"{source}, member {member}")
        else:
            checkpoint = torch_load(download, source)
    except ValueError as e:
        if "pickled Python objects" not in str(e):
            raise
        raise ValueError(
            f"{e} For an original SPMamba checkpoint you trust: download it yourself and run "
            "convert_original(torch.load(path, weights_only=False), "
            f"**{dict(release.convert_args)})."
        ) from e
    if _is_original(checkpoint):
        return convert_original(checkpoint, **release.convert_args), member, True
    return model_from_package(None, package_from_dict(checkpoint, source)), member, False


def fetch(
    name_or_url: str,
    cache_dir: Optional[Union[str, os.PathLike]] = None,
    force_download: bool = False,
    local_files_only: bool = False,
) -> Path:
    """The converted :func:`~asteroid_spmamba.hub.save_pretrained` folder of a release or URL.

    Downloads and converts on the first call (or with ``force_download``); afterwards returns the
    cached folder without any request.

    Raises:
        FileNotFoundError: not cached and ``local_files_only`` (offline).
        ConnectionError: the download failed or stopped early (nothing is cached).
        ValueError: checksum mismatch (nothing is cached), or the file holds no usable checkpoint.
    """
    named = name_or_url in RELEASES
    release = RELEASES[name_or_url] if named else Release(url=name_or_url)
    root = release_cache_dir(cache_dir)
    label = name_or_url if named else PurePosixPath(urlparse(name_or_url).path).stem
    key = _cache_key(label, release)
    folder = root / key
    if (folder / CONFIG_NAME).is_file() and not force_download:
        return folder
    what = f"the release {name_or_url!r} ({release.url})" if named else name_or_url
    if local_files_only:
        raise FileNotFoundError(
            f"{what} is not in the cache {root} and offline mode (HF_HUB_OFFLINE or "
            "local_files_only) is on: load it once with network access, or pass "
            "cache_dir= where it was cached."
        )
    root.mkdir(parents=True, exist_ok=True)
    download = root / (key + PurePosixPath(urlparse(release.url).path).suffix)
    try:
        digest = _download(release.url, download, release.sha256)
        model, member, original = _convert(download, release, what)
        infos = {
            "source_url": release.url,
            "sha256": digest,
            "checksum_verified": release.sha256 is not None,
            "member": member,
            "convert_args": dict(release.convert_args) if original else None,
            "release": name_or_url if named else None,
        }
        source = release.url + (f" (file {member} of the archive)" if member else "")
        description = (
            (
                f"{type(model).__name__} converted with `asteroid_spmamba.convert_original` from "
                f"{source}, a checkpoint of {AUTHORS}; the conversion is tested to reproduce "
                "the original code's outputs."
                if original
                else f"{type(model).__name__} loaded from the Asteroid model package {source}."
            )
            + (f" {release.notes}" if release.notes else "")
            + " Its scores were not measured by asteroid-spmamba."
        )
        # no pytorch_model.bin: the cache need not hold the weights twice
        save_pretrained(
            model,
            folder,
            infos=infos,
            overwrite_card=True,
            asteroid_file=False,
            datasets=release.training_data,
            license=release.license or "unknown",
            description=description,
        )
    finally:
        if download.exists():
            download.unlink()  # the converted folder is what is kept
    return folder
