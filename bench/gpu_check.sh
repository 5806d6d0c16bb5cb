#!/usr/bin/env bash
# Usage: bench/gpu_check.sh [--repeats N]
# The GPU checks, in one run (under 8 minutes on one GPU; most of it builds the tiny test corpus and its GMMs):
#   1. the tests marked gpu (tests/nnet/test_device.py, test_train_nnet.py): an NSGD training step of an LSTM and
#      a GRU on cuda equal to the CPU step (float64, relative 1e-6), the forward with every internal on cuda equal
#      to the CPU's, a whole training on cuda (valid CE within 3% of the CPU's) and a decode with --device cuda
#      (the CPU decode's log-likelihoods within 1e-3, the same best WER);
#   2. bench/bench_lstm.py --device cuda at cells 256, 512 and 1024: training and inference frames/s of our LSTM
#      and GRU layers against torch.nn.LSTM and torch.nn.GRU (cuDNN).
# Without a CUDA device it says so, runs the device-setting tests that need none and the CPU benchmark at cell 256,
# and exits 0: nothing it could check failed.
set -euo pipefail
cd "$(dirname "$0")/.."
repeats=10     # rounds of bench_lstm
[ "${1:-}" = "--repeats" ] && repeats=$2
py=${PYTHON:-python3}
[ -x tools/venv/bin/python ] && py=tools/venv/bin/python
$py - <<'EOF'
import torch
cuda = torch.cuda.is_available()
print(f"# torch {torch.__version__} (CUDA build: {torch.version.cuda or 'none'}); "
      + (f"{torch.cuda.device_count()} GPU(s): {torch.cuda.get_device_name(0)}" if cuda else "no CUDA device"))
EOF
if $py -c "import torch, sys; sys.exit(not torch.cuda.is_available())"; then
  $py -m pytest -p no:cacheprovider -m gpu -q -ra tests/nnet/test_device.py tests/nnet/test_train_nnet.py
  for cell in lstm gru; do
    $py bench/bench_lstm.py --cell $cell --device cuda --cell-dims 256,512,1024 --repeats $repeats
  done
else
  echo "# no CUDA device: the gpu checks are skipped; what runs without one:"
  $py -m pytest -p no:cacheprovider -q -ra -k "not gpu_check" tests/nnet/test_device.py
  $py bench/bench_lstm.py --device cpu --cell-dims 256 --repeats $repeats
fi
