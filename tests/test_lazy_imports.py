"""``import asteroid_spmamba`` and the command line's ``--help`` import neither torch nor Asteroid
(nor Lightning, numpy): the package's names and the commands' libraries are imported when used.
What is still needed when they are: every public name, Asteroid's loader finding this package's
models, ``from_pretrained`` by name, and ``--help`` texts that agree with the library."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from conftest import tiny_spmamba_args

import asteroid_spmamba

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "asteroid", "lightning", "pytorch_lightning", "numpy")


def _python(code: str, *args: str, cwd=None) -> subprocess.CompletedProcess:
    """``code`` in a fresh interpreter that imports this checkout."""
    env = dict(
        os.environ,
        PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
        HF_HUB_OFFLINE="1",
    )
    return subprocess.run(
        [sys.executable, *args, "-c", textwrap.dedent(code)] if code else [sys.executable, *args],
        cwd=cwd or ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def _heavy_modules_after(code: str) -> list[str]:
    report = f"import json, sys; print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    done = _python(textwrap.dedent(code) + "\n" + report)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_importing_the_package_imports_no_heavy_library():
    assert _heavy_modules_after("import asteroid_spmamba") == []
    assert _heavy_modules_after("from asteroid_spmamba import __version__") == []


def test_help_of_every_command_imports_no_heavy_library():
    code = """
    import contextlib, io
    from asteroid_spmamba.commands import build_parser, main

    parser = build_parser()
    (commands,) = [a.choices for a in parser._subparsers._group_actions]
    assert len(commands) >= 12, sorted(commands)
    for argv in [["--help"], ["--version"]] + [[name, "--help"] for name in commands]:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            try:
                main(argv)
            except SystemExit as done:
                assert done.code == 0, (argv, done.code)
        assert out.getvalue().strip(), argv
    """
    assert _heavy_modules_after(code) == []


def test_python_m_help_runs_without_torch():
    done = _python("", "-X", "importtime", "-m", "asteroid_spmamba", "--help")
    assert done.returncode == 0 and "separate" in done.stdout, done.stderr
    imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines()}
    assert not imported & set(HEAVY), sorted(imported & set(HEAVY))


def test_every_public_name_is_importable_and_listed():
    names = set(asteroid_spmamba.__all__)
    assert names <= set(dir(asteroid_spmamba))
    for name in names:
        assert getattr(asteroid_spmamba, name) is not None, name
    from asteroid_spmamba import (  # noqa: F401
        SPMamba,
        StreamingSeparator,
        convert_original,
        list_pretrained,
        load_model,
        separate_array,
        separate_file,
        set_scan_backend,
    )
    from asteroid_spmamba.models import SPMamba as defined

    assert SPMamba is defined
    assert asteroid_spmamba.loading.load_model is load_model  # submodules as attributes too
    with pytest.raises(AttributeError):
        asteroid_spmamba.no_such_name  # noqa: B018


@pytest.fixture(scope="module")
def saved_folder(tmp_path_factory):
    from asteroid_spmamba.hub import save_pretrained
    from asteroid_spmamba.models import SPMamba

    torch.manual_seed(0)
    return save_pretrained(
        SPMamba(**tiny_spmamba_args()), tmp_path_factory.mktemp("lazy") / "saved"
    )


def test_asteroid_finds_the_models_after_a_bare_import(saved_folder):
    """What worked when ``import asteroid_spmamba`` imported every model: Asteroid's ``get``,
    ``from asteroid.models import ...`` and ``BaseModel.from_pretrained`` of a folder."""
    code = f"""
    import sys
    import asteroid_spmamba
    from asteroid.models import BaseModel
    assert "asteroid_spmamba.models" not in sys.modules
    model = BaseModel.from_pretrained({str(saved_folder)!r})  # a folder: our wrapper's
    assert type(model).__module__ == "asteroid_spmamba.models.spmamba", type(model)
    import asteroid.models
    from asteroid.models import TFGridNet
    assert asteroid.models.get("bsrnn").__name__ == "BSRNN" and TFGridNet.__name__ == "TFGridNet"
    # the package's models registered, Asteroid runs its own functions again
    assert asteroid.models.get.__module__ == "asteroid.models"
    assert "__getattr__" not in vars(asteroid.models)
    print("ok")
    """
    done = _python(code)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


def test_asteroid_imported_first_and_names_resolved_by_from_pretrained():
    code = """
    import sys
    import asteroid.models
    import asteroid_spmamba
    assert asteroid.models.get("ConvTasNet").__name__ == "ConvTasNet"  # Asteroid's: no import
    assert "asteroid_spmamba.models" not in sys.modules
    assert asteroid.models.get("SPMamba").__module__ == "asteroid_spmamba.models.spmamba"
    from asteroid_spmamba.models import SPMamba
    assert "asteroid_spmamba.loading" not in sys.modules
    model = SPMamba.from_pretrained("spmamba-small-kokoro2mix")  # a shipped name: loading's
    assert type(model) is SPMamba
    print("ok")
    """
    done = _python(code)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


def test_the_help_texts_agree_with_the_library():
    """commands/help_text.py copies what --help shows; here is where each value is declared."""
    from asteroid_spmamba import benchmark, demo, inference, loading, zoo
    from asteroid_spmamba.commands import help_text
    from asteroid_spmamba.data import speech_bank
    from asteroid_spmamba.models import registry
    from asteroid_spmamba.models.spmamba_original import convert_original

    def first_paragraph(doc: str) -> str:
        return " ".join(doc.split("\n\n")[0].split())

    assert list(help_text.ZOO_NAMES) == zoo.names()
    assert list(help_text.BF16_LABELS) == registry.bf16_labels()
    assert help_text.CHUNK_SECONDS == inference.CHUNK_SECONDS
    assert help_text.INFERENCE_PRECISIONS == inference.INFERENCE_PRECISIONS
    assert help_text.DEMO_MODEL == demo.DEMO_MODEL
    assert help_text.DEFAULT_MODELS == loading.DEFAULT_MODELS
    assert help_text.VOICE_SOURCES == speech_bank.VOICE_SOURCES
    assert help_text.BENCHMARK_DTYPES == benchmark.DTYPES
    assert help_text.BENCHMARK_VARIANTS == benchmark.VARIANTS
    assert help_text.BENCHMARK_DESCRIPTION == first_paragraph(benchmark.__doc__)
    assert help_text.CONVERT_DESCRIPTION == first_paragraph(convert_original.__doc__)
