# Sourced by run.sh: puts the recipe's Python environment and tools on the path.
export KALDI_PY_ROOT=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/../../.." && pwd)
[ -f "$KALDI_PY_ROOT/tools/venv/bin/activate" ] && . "$KALDI_PY_ROOT/tools/venv/bin/activate"
export PATH=$KALDI_PY_ROOT/utils:$PATH
export PYTHONPATH=$KALDI_PY_ROOT${PYTHONPATH:+:$PYTHONPATH}
export PYTHONUNBUFFERED=1 LC_ALL=C
