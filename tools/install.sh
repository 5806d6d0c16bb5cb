#!/usr/bin/env bash
# Usage: tools/install.sh [--no-apt]
# Installs what the recipes need, skipping what is already there:
#  - Debian packages: espeak-ng, flite, festival (+ kal diphone and slt HTS voices), sox, fortunes (text source),
#    chromium + a font (headless browser for tests/memvis/test_memvis_report.py), ffmpeg (the independent shorten
#    decoder tests/data/test_shorten.py checks ours against);
#  - a virtualenv in tools/venv with torch (CPU build, installed first and pinned) and tools/requirements.txt.
#    On a GPU machine, take torch's CUDA build from its index: TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128
#    tools/install.sh (an installed torch of the pinned version, CPU or CUDA, is kept).
# Idempotent: a second run with everything present takes a second or two.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
torch_version=2.13.0
apt=true
[ "${1:-}" = "--no-apt" ] && apt=false

log() { echo "$(date '+%F %T') install.sh: $*" >&2; }

if $apt; then
  debs="espeak-ng flite festival festvox-kallpc16k festvox-us-slt-hts sox fortunes fortunes-min"
  debs="$debs chromium fonts-dejavu-core ffmpeg"
  missing=""
  for p in $debs; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
  done
  if [ -n "$missing" ]; then
    log "installing Debian packages:$missing"
    sudo=""; [ "$(id -u)" -ne 0 ] && sudo=sudo
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $missing >/dev/null
  fi
fi

venv=$root/tools/venv
stamp=$venv/.installed
want="torch==$torch_version $(sha1sum "$root/tools/requirements.txt" | cut -d' ' -f1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
[ -x "$venv/bin/python" ] || { log "creating $venv"; python3 -m venv "$venv"; }
pip="$venv/bin/pip --disable-pip-version-check -q"
if ! "$venv/bin/python" -c "import torch, sys; sys.exit(torch.__version__.split('+')[0] != '$torch_version')" 2>/dev/null; then
  log "installing torch==$torch_version (${TORCH_INDEX_URL:-CPU})"
  $pip install ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"} "torch==$torch_version"
fi
log "installing tools/requirements.txt"
constraints=$(mktemp); echo "torch==$torch_version" > "$constraints"
PIP_CONSTRAINT="$constraints" $pip install -r "$root/tools/requirements.txt"
rm -f "$constraints"
"$venv/bin/python" -c "import kaldi_hmm_gmm, kaldifst, kaldi_decoder, kaldi_native_fbank, kaldiio, torch, lhotse, numba" \
  || { log "the installed environment does not import"; exit 1; }
log "compiling the lattice decoder (numba; cached in steps_py/decode/__pycache__)"
PYTHONPATH="$root" "$venv/bin/python" -c "from steps_py.decode import lattice; lattice.warm_up()" \
  || { log "the lattice decoder does not compile"; exit 1; }
echo "$want" > "$stamp.tmp" && mv "$stamp.tmp" "$stamp"
log "done: $venv"
