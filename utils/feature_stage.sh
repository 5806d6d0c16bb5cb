#!/usr/bin/env bash
# Usage: utils/feature_stage.sh [--nj N] [--mfcc-conf conf/mfcc.conf] [--fbank-conf conf/fbank.conf] <set>...
# The feature stage of a recipe (run from egs/<corpus>/s5 with path.sh and cmd.sh sourced): for each data/<set>,
# 13-dim MFCC (--mfcc-conf; arks in mfcc/) and per-speaker CMVN for the GMMs, and a copy data/<set>_fbank with
# Fbank (--fbank-conf; arks in fbank/) and CMVN for the networks; both dirs validated. Finished sets are
# skipped by the steps themselves.
set -euo pipefail
nj=4
mfcc_conf=conf/mfcc.conf
fbank_conf=conf/fbank.conf
. ./utils/parse_options.sh
if [ $# -lt 1 ]; then sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 1; fi

for s in "$@"; do
  python -m steps_py.feats.make_feats --type mfcc --nj $nj --cmd "$train_cmd" --config $mfcc_conf \
    data/$s exp/make_mfcc/$s mfcc
  python -m steps_py.feats.compute_cmvn_stats data/$s exp/make_mfcc/$s mfcc
  python -m steps_py.data.validate_data_dir data/$s
  python -m steps_py.data.copy_data_dir data/$s data/${s}_fbank
  python -m steps_py.feats.make_feats --type fbank --nj $nj --cmd "$train_cmd" --config $fbank_conf \
    data/${s}_fbank exp/make_fbank/$s fbank
  python -m steps_py.feats.compute_cmvn_stats data/${s}_fbank exp/make_fbank/$s fbank
  python -m steps_py.data.validate_data_dir data/${s}_fbank
done
