"""tools/lease: a folder split into parts, carried call by call into fresh copies of a checkout,
checked and unpacked byte for byte; background jobs outlive the call that started them."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

TOOLS = Path(__file__).resolve().parents[1] / "tools" / "lease"

pytestmark = pytest.mark.skipif(
    shutil.which("bash") is None or shutil.which("setsid") is None,
    reason="the lease tools need bash and setsid",
)


def _sh(*args, cwd, env, timeout=120):
    result = subprocess.run(
        ["bash", *map(str, args)], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def _checkout(root: Path, parts: Path, n: int) -> Path:
    """A fresh copy of the working tree as each device call gets it, carrying part n in .lease."""
    tree = root / f"call{n}"
    shutil.copytree(TOOLS, tree / "tools" / "lease")
    (tree / ".gpu").mkdir()
    (tree / ".gpu" / "setup.sh").write_text("echo setup\n")
    (tree / ".lease").mkdir()
    for name in (f"part_{n:02d}", "parts.sha256"):
        shutil.copy(parts / name, tree / ".lease" / name)
    return tree


def test_parts_travel_and_unpack_byte_for_byte(tmp_path):
    src = tmp_path / "bank"
    (src / "train").mkdir(parents=True)
    payload = os.urandom(3 << 20) + b"tail"  # 3 MiB and a bit: parts of 1 MiB, the last small
    (src / "train" / "a.bin").write_bytes(payload)
    (src / "meta.json").write_text('{"speakers": 2}')
    parts = tmp_path / "parts"
    env = {**os.environ, "LEASE_DIR": str(tmp_path / "lease")}
    _sh(TOOLS / "pack.sh", src, parts, 1, 1, cwd=tmp_path, env=env)
    names = sorted(p.name for p in parts.glob("part_*"))
    assert names == ["part_00", "part_01", "part_02", "part_03"]
    assert all((parts / n).stat().st_size == 1 << 20 for n in names[:3])

    _sh("tools/lease/device.sh", "start", cwd=_checkout(tmp_path, parts, 0), env=env)
    for n in (1, 2):
        _sh("tools/lease/device.sh", "part", cwd=_checkout(tmp_path, parts, n), env=env)
    last = _checkout(tmp_path, parts, 3)
    _sh("tools/lease/device.sh", "unpack", tmp_path / "out", cwd=last, env=env)
    assert (tmp_path / "out" / "bank" / "train" / "a.bin").read_bytes() == payload
    assert (tmp_path / "out" / "bank" / "meta.json").read_text() == '{"speakers": 2}'


def test_unpack_refuses_a_missing_part(tmp_path):
    src = tmp_path / "bank"
    src.mkdir()
    (src / "a.bin").write_bytes(os.urandom(2 << 20))
    parts = tmp_path / "parts"
    env = {**os.environ, "LEASE_DIR": str(tmp_path / "lease")}
    _sh(TOOLS / "pack.sh", src, parts, 1, 1, cwd=tmp_path, env=env)
    _sh("tools/lease/device.sh", "start", cwd=_checkout(tmp_path, parts, 0), env=env)
    # part 1 never carried: the sums differ and nothing is unpacked
    result = subprocess.run(
        ["bash", "tools/lease/device.sh", "unpack", str(tmp_path / "out")],
        cwd=_checkout(tmp_path, parts, 2),
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    assert "parts differ from parts.sha256" in result.stdout
    assert not (tmp_path / "out").exists()


def test_background_job_outlives_its_call_and_reports(tmp_path):
    parts = tmp_path / "parts"
    (tmp_path / "src").mkdir()
    env = {**os.environ, "LEASE_DIR": str(tmp_path / "lease")}
    _sh(TOOLS / "pack.sh", tmp_path / "src", parts, 1, 1, cwd=tmp_path, env=env)
    tree = _checkout(tmp_path, parts, 0)
    _sh("tools/lease/device.sh", "start", cwd=tree, env=env)
    _sh(
        "tools/lease/device.sh",
        "bg",
        "job",
        "sleep 1; echo budget $((100 - 40)); exit 3",
        cwd=tree,
        env=env,
    )
    out = _sh("tools/lease/device.sh", "wait", 60, "job", cwd=tree, env=env)
    assert "== job: rc=3" in out and "budget 60" in out
    remaining = int(_sh("tools/lease/device.sh", "remaining", 1000, cwd=tree, env=env))
    assert 900 < remaining <= 1000


def _budget_gpus(tmp_path, *args, visible=None):
    """tools/lease/budget_gpus.sh with a Python whose make-corpus fails (nothing trains)."""
    python = tmp_path / "python"
    python.write_text(f"""#!/usr/bin/env bash
[[ "$*" == *make-corpus* ]] && {{ echo "corpus broke" >&2; exit 3; }}
exec {sys.executable} "$@"
""")
    python.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k != "CUDA_VISIBLE_DEVICES"}
    if visible is not None:
        env["CUDA_VISIBLE_DEVICES"] = visible
    return subprocess.run(
        ["bash", str(TOOLS / "budget_gpus.sh"), *map(str, args), "--python", str(python)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )


@pytest.mark.parametrize("visible, first_gpu", [(None, "0"), ("5,6,7,4", "5")])
def test_budget_gpus_deals_models_in_turn_and_stops_when_the_corpus_fails(
    tmp_path, visible, first_gpu
):
    models = "spmamba,tfgridnet,bsrnn,tdanet,afrcnn,sudormrf,dprnn,convtasnet"
    # paths relative to the caller's folder (budget_run.sh works in the recipe's)
    result = _budget_gpus(tmp_path, 4, models, "bank", "realdev", "work", "out", visible=visible)
    assert result.returncode == 1, result.stdout + result.stderr
    assert (
        f"GPU {first_gpu}: spmamba,afrcnn (log {tmp_path / 'work' / 'gpu0.log'})" in result.stdout
    )  # 1st, 5th
    assert (
        "queue 0 failed before the corpus was ready" in result.stderr
        and "corpus broke" in result.stderr
    )
    assert (
        f"synthetic corpus in {tmp_path / 'work' / 'corpus'}"
        in (tmp_path / "work" / "gpu0.log").read_text()
    )
    assert not (tmp_path / "work" / "gpu1.log").exists()  # the other queues never started


def test_budget_gpus_refuses_bad_gpu_counts(tmp_path):
    for n, visible, message in (
        ("0", None, "positive number"),
        ("two", None, "positive number"),
        ("3", "4,5", "names fewer than 3 GPUs"),
    ):
        result = _budget_gpus(
            tmp_path, n, "spmamba,tfgridnet,bsrnn", "b", "r", tmp_path / "w", "o", visible=visible
        )
        assert result.returncode == 2 and message in result.stderr, result.stderr


def test_stage_leaves_the_parts_folder_alone(tmp_path):
    """pack.sh stage links the part and copies the sums: a later write into .lease (another set's
    sums staged by hand) must not change PARTS_DIR/parts.sha256."""
    src = tmp_path / "bank"
    src.mkdir()
    (src / "a.bin").write_bytes(os.urandom(1 << 20))
    parts = tmp_path / "parts"
    env = dict(os.environ)
    _sh(TOOLS / "pack.sh", src, parts, 1, 1, cwd=tmp_path, env=env)
    repo = tmp_path / "repo"
    repo.mkdir()
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    sums = (parts / "parts.sha256").read_text()
    _sh(TOOLS / "pack.sh", "stage", parts, 0, cwd=repo, env=env)
    assert (repo / ".lease" / "part_00").read_bytes() == (parts / "part_00").read_bytes()
    with open(repo / ".lease" / "parts.sha256", "w") as f:  # in place, as cp onto it writes
        f.write("0" * 64 + "  -\n")
    assert (parts / "parts.sha256").read_text() == sums


@pytest.mark.slow
def test_kokoro2mix_lease_trains_exports_and_the_next_lease_starts_from_it(tmp_path):
    """kokoro2mix_lease.sh on the CPU with tiny corpora and model: two leases, the second starting
    from the first one's float16 folder, each leaving that folder, its scores and its settings."""
    from safetensors.torch import load_file

    from asteroid_spmamba.data.speech_bank import make_speech_bank
    from asteroid_spmamba.loading import load_model

    work = tmp_path / "work"
    bank = make_speech_bank(
        tmp_path / "bank",
        {"train": 3, "valid": 2, "test": 2},
        2,
        voices=("espeak",),
        sample_rate=16000,
        words=(5, 6),
        num_workers=0,
        progress=False,
    )
    work.mkdir()
    for name in ("bank16k", "bank_m50"):
        (work / name).symlink_to(bank)
    for condition in ("reverb", "anechoic"):  # the "real" sets: the corpus' own test split
        (work / "realdev" / condition).parent.mkdir(exist_ok=True)
        (work / "realdev" / condition).symlink_to(work / "corpus_m" / "test")
    tiny = (
        "model.args.n_layers=1 model.args.emb_dim=8 model.args.n_head=2 "
        "model.args.approx_qk_dim=64 model.args.d_state=4 model.args.expand=1 "
        "model.args.emb_ks=2 data.segment=1.0 "
        "data.valid_segment=1.0 training.batch_size=2 training.valid_batch_size=2 "
        "training.num_workers=0"
    )
    env = dict(
        os.environ, GPUS="0", SIZES="4 2 2 4", RESERVE_S="0", PYTHON=sys.executable,
        OVERRIDES=tiny, RUN_OPTIONS="--max_steps 2",
    )  # fmt: skip
    conf = TOOLS.parents[1] / "egs" / "kokoro2mix" / "local" / "flagship.yml"
    script = TOOLS / "kokoro2mix_lease.sh"
    _sh(script, work, conf, "lease1", 3600, cwd=tmp_path, env=env, timeout=900)
    lease1 = work / "out" / "lease1"
    out = _sh(script, work, conf, "lease2", 3600, lease1, cwd=tmp_path, env=env, timeout=900)
    assert "training for" in out
    for tag in ("lease1", "lease2"):
        folder = work / "out" / tag
        weights = load_file(folder / "model.safetensors")
        assert {t.dtype for t in weights.values() if t.is_floating_point()} == {torch.float16}
        assert load_model(folder).get_model_args()["hop_length"] == 128  # flagship.yml's
        summary = json.loads((folder / "train_summary.json").read_text())
        assert summary["global_step"] == 2
        for name in ("synthetic", "real_reverb", "real_anechoic"):
            assert json.loads((folder / f"summary_{name}.json").read_text())["n_utterances"] == 2
    conf2 = (work / "out" / "lease2" / "train_conf.yml").read_text()
    assert str(work / "out" / "lease1") in conf2 and "init_from" in conf2
    assert len(list((work / "corpus_m" / "train").glob("*/mix.wav"))) == 4
