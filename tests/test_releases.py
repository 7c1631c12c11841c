"""Releases by name and URL (asteroid_spmamba.releases), end to end through an
HTTP server on 127.0.0.1.

The served files are what the original code's own serialization writes (``torch.save`` of its
``serialize()`` dict, fixtures/original_spmamba_small.pt, and its Lightning checkpoint layout); the
loaded model must equal ``convert_original`` of the same file, and so the original code's output.
"""

import hashlib
import io
import os
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
import soundfile as sf
import torch
import yaml
from huggingface_hub import constants
from test_convert import FIXTURE, lightning_checkpoint

from asteroid_spmamba import (
    SPMamba,
    commands,
    convert_original,
    list_pretrained,
    load_model,
    releases,
    separate_file,
)
from asteroid_spmamba.releases import Release

ORIGINAL_CONFIG = {"hop_length": 16, "sample_rate": 8000}  # what the fixture's weights cannot tell


class LoopbackServer:
    """Serves ``files`` (path -> bytes); paths in ``truncated`` announce their
    length but send half."""

    def __init__(self):
        self.files, self.truncated, self.requests = {}, set(), []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                server.requests.append(self.path)
                body = server.files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body[: len(body) // 2] if self.path in server.truncated else body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_port}{path}"


def _saved(obj) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def reference():
    return torch.load(FIXTURE, weights_only=True)


@pytest.fixture(scope="module")
def original_files(reference):
    """best_model.pth and a Lightning .ckpt as the original code writes them, and the release zip
    (best_model.pth beside a Lightning checkpoint and the configuration, as in its exp folder)."""
    pth, ckpt = (
        _saved(reference["serialized"]),
        _saved(lightning_checkpoint(reference["serialized"])),
    )
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("SPMamba-Test/conf.yml", "audionet:\n  audionet_name: SPMamba\n")
        z.writestr("SPMamba-Test/epoch=3.ckpt", ckpt)
        z.writestr("SPMamba-Test/best_model.pth", pth)
    return {"/best_model.pth": pth, "/epoch=3.ckpt": ckpt, "/SPMamba-Test.zip": archive.getvalue()}


@pytest.fixture(scope="module")
def expected(reference):
    """convert_original of the same checkpoint: what every load must reproduce."""
    converted = convert_original(reference["serialized"], **ORIGINAL_CONFIG)
    with torch.no_grad():
        return converted, converted(reference["mixture"])


@pytest.fixture
def server(original_files, tmp_path, monkeypatch):
    """The loopback server, an empty releases cache ($ASTEROID_SPMAMBA_CACHE), online, no proxy."""
    monkeypatch.setenv("ASTEROID_SPMAMBA_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    for var in ("NO_PROXY", "no_proxy"):
        monkeypatch.setenv(var, "127.0.0.1,localhost")
    srv = LoopbackServer()
    srv.files.update(original_files)
    yield srv
    srv.httpd.shutdown()
    srv.httpd.server_close()


def register(monkeypatch, server, **kwargs) -> str:
    data = server.files["/SPMamba-Test.zip"]
    release = Release(
        url=server.url("/SPMamba-Test.zip"),
        convert_args=ORIGINAL_CONFIG,
        sha256=kwargs.pop("sha256", hashlib.sha256(data).hexdigest()),
        training_data="a test corpus",
        **kwargs,
    )
    monkeypatch.setitem(releases.RELEASES, "spmamba-test", release)
    return "spmamba-test"


def cache_root(tmp_path):
    return tmp_path / "cache" / "releases"


def outputs(model, wav):
    with torch.no_grad():
        return model(wav)


# ------------------------------------------------------------------------------------------------
def test_named_release_downloads_once_then_loads_offline(
    server, reference, expected, tmp_path, monkeypatch
):
    name = register(monkeypatch, server)
    model = SPMamba.from_pretrained(name)
    assert torch.equal(outputs(model, reference["mixture"]), expected[1])
    torch.testing.assert_close(
        expected[1], reference["output"], rtol=1e-5, atol=1e-5
    )  # = the original code's
    assert server.requests == ["/SPMamba-Test.zip"]
    (folder,) = cache_root(
        tmp_path
    ).iterdir()  # the converted folder only: no download, no temp file
    assert sorted(os.listdir(folder)) == ["README.md", "config.json", "model.safetensors"]
    umask = os.umask(0)
    os.umask(umask)
    assert {(folder / n).stat().st_mode & 0o777 for n in os.listdir(folder)} == {0o666 & ~umask}
    card = (folder / "README.md").read_text()
    meta = yaml.safe_load(card.split("---")[1])
    assert meta["datasets"] == ["a test corpus"] and meta["license"] == "unknown"
    assert server.url("/SPMamba-Test.zip") in card and "SPMamba-Test/best_model.pth" in card

    # Second load: no request, also offline, also through load_model.
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert torch.equal(outputs(load_model(name), reference["mixture"]), expected[1])
    assert server.requests == ["/SPMamba-Test.zip"]
    listed = {e.name: e for e in list_pretrained()}
    assert listed[name].downloads and listed[name].url == server.url("/SPMamba-Test.zip")


@pytest.mark.parametrize("path", ["/best_model.pth", "/epoch=3.ckpt"])
def test_checkpoint_urls(server, reference, expected, tmp_path, path):
    url = server.url(path)
    cache = tmp_path / "elsewhere"
    model = load_model(url, cache_dir=cache, hop_length=16)  # hop 16 is also the n_fft/4 default
    assert torch.equal(outputs(model, reference["mixture"]), expected[1])
    assert torch.equal(
        outputs(SPMamba.from_pretrained(url, cache_dir=cache), reference["mixture"]), expected[1]
    )
    assert server.requests == [path] and len(list(cache.iterdir())) == 1


def test_broken_download_leaves_nothing(server, reference, expected, tmp_path, monkeypatch):
    name = register(monkeypatch, server)
    server.truncated.add("/SPMamba-Test.zip")
    with pytest.raises(ConnectionError, match="stopped after .* of .* bytes. Nothing was cached"):
        SPMamba.from_pretrained(name)
    assert list(cache_root(tmp_path).iterdir()) == []
    with pytest.raises(ConnectionError, match="404"):
        load_model(server.url("/missing.pth"))
    assert list(cache_root(tmp_path).iterdir()) == []
    server.truncated.clear()  # a later load downloads again
    assert torch.equal(outputs(SPMamba.from_pretrained(name), reference["mixture"]), expected[1])
    assert server.requests.count("/SPMamba-Test.zip") == 2


def test_wrong_checksum_is_refused(server, tmp_path, monkeypatch):
    name = register(monkeypatch, server, sha256="0" * 64)
    with pytest.raises(
        ValueError, match="has sha256 [0-9a-f]{64}, not the expected 0{64}.*Nothing was cached"
    ):
        SPMamba.from_pretrained(name)
    assert list(cache_root(tmp_path).iterdir()) == []


def test_offline_without_cache_says_so(server, monkeypatch):
    name = register(monkeypatch, server)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(FileNotFoundError, match="not in the cache .* offline mode"):
        load_model(name)
    assert server.requests == []


def test_archive_with_several_checkpoints_asks_which(server, tmp_path, monkeypatch):
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("a/epoch=1.ckpt", server.files["/epoch=3.ckpt"])
        z.writestr("a/last.ckpt", server.files["/epoch=3.ckpt"])
    server.files["/two.zip"] = archive.getvalue()
    with pytest.raises(
        ValueError, match=r"which checkpoint .*a/epoch=1.ckpt.*a/last.ckpt.*member="
    ):
        load_model(server.url("/two.zip"))
    monkeypatch.setitem(
        releases.RELEASES, "two", Release(url=server.url("/two.zip"), member="a/last.ckpt")
    )
    assert isinstance(load_model("two"), SPMamba)


def test_separate_command_takes_a_url(server, expected, tmp_path):
    wav = tmp_path / "mix.wav"
    sf.write(wav, np.random.default_rng(0).standard_normal(4000).astype(np.float32) * 0.1, 8000)
    url = server.url("/best_model.pth")
    assert commands.main(["separate", url, str(wav), "-o", str(tmp_path / "out"), "-q"]) == 0
    estimates, _ = separate_file(wav, model=expected[0], chunk_seconds=8.0, overlap_seconds=1.0)
    for k in range(2):
        written, rate = sf.read(tmp_path / "out" / f"mix_spk{k + 1}.wav", dtype="float32")
        assert rate == 8000 and np.array_equal(written, estimates[k])
    assert server.requests == ["/best_model.pth"]


class _TrainerState:  # stands for the Python objects a Lightning checkpoint may pickle
    pass


def test_pickled_objects_are_not_loaded_and_the_error_says_what_to_do(server, reference, tmp_path):
    server.files["/pickled.ckpt"] = _saved(
        {**lightning_checkpoint(reference["serialized"]), "loops": _TrainerState()}
    )
    with pytest.raises(
        ValueError,
        match=r"pickled Python objects.*convert_original\(torch.load\(path, weights_only=False\)",
    ):
        load_model(server.url("/pickled.ckpt"))
    assert list(cache_root(tmp_path).iterdir()) == []
