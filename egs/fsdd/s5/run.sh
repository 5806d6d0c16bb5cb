#!/usr/bin/env bash
# The recipe on real speech: the Free Spoken Digit Dataset (../shared/corpora/fsdd: 3,000 recordings of the digits
# by 6 speakers, 8 kHz), speaker-disjoint train (4 speakers) / dev (theo) / test (yweweler), at 8 kHz as recorded.
# Stage 0 makes tab-separated Kaldi data dirs of it in data/src (local/fsdd_prep.py); then every stage of
# egs/kaldi_dir/s5 runs on them with the 8 kHz feature configs (conf/mfcc_8k.conf, conf/fbank_8k.conf), the GMM
# sizes of conf/gmm_fsdd.conf, the training of conf/nnet/train_fsdd.conf and the analyses of conf/memvis_fsdd.conf.
#
# Usage: ./run.sh [--stage N] [--stop-stage M] [--nj N] [--fsdd DIR] [--per-speaker N] [--grid default]
#                 [--gmm-conf conf/gmm_fsdd.conf] [--nnet-seeds "1"]
#   --fsdd DIR          the recordings dir (default: $KALDI_PY_ROOT/../shared/corpora/fsdd/recordings)
#   --per-speaker N     recordings per digit and speaker (default 0: all 50; e.g. 6 for a run of a few minutes)
#   stages 0-9 as in egs/kaldi_dir/s5 (run.sh --help there)
set -euo pipefail

stage=0
stop_stage=100
nj=2
fsdd=
per_speaker=0
dev_speakers=theo
test_speakers=yweweler
grid=default
gmm_conf=conf/gmm_fsdd.conf
train_conf=conf/nnet/train_fsdd.conf
nnet_seeds="1"

help_message=$(sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//')
. ./path.sh
. ./utils/parse_options.sh
[ $# -eq 0 ] || { echo "$help_message" >&2; exit 1; }
. ./utils/check_run_options.sh 9   # 9: the last stage; stops on a bad --stage, --stop-stage or --nj
[ -x "$KALDI_PY_ROOT/tools/venv/bin/python" ] || { "$KALDI_PY_ROOT/tools/install.sh"; . ./path.sh; }
fsdd=${fsdd:-$KALDI_PY_ROOT/../shared/corpora/fsdd/recordings}

if [ $stage -le 0 ] && [ $stop_stage -ge 0 ]; then
  python local/fsdd_prep.py --per-speaker $per_speaker --dev-speakers $dev_speakers \
    --test-speakers $test_speakers "$fsdd" data/src
fi
exec "$KALDI_PY_ROOT/egs/kaldi_dir/s5/run.sh" --stage $stage --stop-stage $stop_stage --nj $nj \
  --train data/src/train --dev data/src/dev --test data/src/test \
  --mfcc-conf conf/mfcc_8k.conf --fbank-conf conf/fbank_8k.conf --gmm-conf "$gmm_conf" \
  --memvis-conf conf/memvis_fsdd.conf --grid $grid --train-conf $train_conf --nnet-seeds "$nnet_seeds"
