#!/usr/bin/env bash
# Fresh-machine set-up (CPU): a virtualenv in .venv with the package, its test extras and upstream
# mamba_ssm's pure-PyTorch reference code (installed without compiling CUDA) for the equality tests.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
. .venv/bin/activate
export PIP_DISABLE_PIP_VERSION_CHECK=1
pip install -q -U pip wheel setuptools packaging
# torchaudio must match torch exactly (asteroid -> torch_stoi -> torchaudio)
pip install -q -c .ci/constraints.txt torch==2.11.0 torchaudio==2.11.0
pip install -q -c .ci/constraints.txt -e ".[test,tts]"
# mamba-ssm is a source distribution: on a CPU machine build it without its CUDA extension.
MAMBA_FORCE_BUILD=TRUE MAMBA_SKIP_CUDA_BUILD=TRUE \
  pip install -q -c .ci/constraints.txt --no-build-isolation --no-deps mamba-ssm==2.3.2.post1
python -c "import asteroid_spmamba, asteroid; print('asteroid_spmamba', asteroid_spmamba.__version__, asteroid.models.get('SPMamba'))"
