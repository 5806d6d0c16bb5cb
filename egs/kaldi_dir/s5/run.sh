#!/usr/bin/env bash
# The recipe on existing Kaldi data dirs (any corpus already prepared for Kaldi), laid out like Kaldi's egs/wsj/s5.
# Data dirs and settings: conf/kaldi_dir.conf (or --train DIR --dev DIR --test DIR on the command line).
#
# Usage: ./run.sh [--stage N] [--stop-stage M] [--nj N] --train DIR [--dev DIR] [--test DIR] [--lexicon FILE]
#                 [--lm-text FILE]
#   stage 0: copies and repairs the dirs into data/{train,dev,test}; dict (CMUdict + --lexicon); words without a
#            pronunciation -> <UNK> in the texts; data/lang; 3-gram LM (tg, tgpr) -> data/lang_test_{tg,tgpr}
#   stage 1: 13-dim MFCC (GMMs) in data/<set>, 40-dim Fbank (RNNs) in data/<set>_fbank, per-speaker CMVN
#   stage 2-4: mono, tri1, tri2b (LDA+MLLT) on data/train (conf/gmm.conf), decoded on dev/test (RESULTS);
#            tri2b alignments of every set for the RNN stages
#   stage 5-7: RNN acoustic models of conf/nnet/grid_<grid>.txt on the tri2b targets, hybrid decoding of dev/test
#            (RESULTS), comparison tables; stage 8-9: memory extraction and analyses on dev (else test), reports
set -euo pipefail

stage=0
stop_stage=100
nj=4
grid=default            # conf/nnet/grid_<grid>.txt: default (2-layer LSTM and GRU) or paper
train_conf=conf/nnet/train.conf
nnet_seeds="1"          # training runs per model (e.g. "1 2 3": intervals over seeds too)

help_message=$(sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//')

. ./utils/stage_log.sh      # log, begin_stage; the table of stage times when run.sh ends

. ./path.sh
. ./cmd.sh
. ./conf/kaldi_dir.conf
. ./utils/parse_options.sh   # the command line overrides the conf files
[ $# -eq 0 ] || { echo "$help_message" >&2; exit 1; }
. ./utils/check_run_options.sh 9   # 9: the last stage; stops on a bad --stage, --stop-stage or --nj
[ -x "$KALDI_PY_ROOT/tools/venv/bin/python" ] || { "$KALDI_PY_ROOT/tools/install.sh"; . ./path.sh; }

sets=train
[ -n "$dev" ] && sets="$sets dev"
[ -n "$test" ] && sets="$sets test"

if [ $stage -le 0 ] && [ $stop_stage -ge 0 ]; then
  begin_stage 0 "data dirs, dictionary, lang, language model"
  if [ -z "$train" ]; then
    echo "$0: no training data dir: give --train DIR (or set train= in conf/kaldi_dir.conf)" >&2; exit 1
  fi
  opts=(--train "$train")
  [ -n "$dev" ] && opts+=(--dev "$dev")
  [ -n "$test" ] && opts+=(--test "$test")
  [ -n "$lexicon" ] && opts+=(--lexicon "$lexicon")
  [ -n "$lm_text" ] && opts+=(--lm-text "$lm_text")
  python local/kaldi_dir_prep.py "${opts[@]}" --unk-word "$unk_word" --upper-case $upper_case \
    --keep-stress $keep_stress data
  python -m steps_py.lang.prepare_lang --position-dependent-phones $position_dependent_phones --sil-prob $sil_prob \
    data/local/dict "$unk_word" data/local/lang_tmp data/lang
  lm_opts=()
  [ -n "$dev" ] && lm_opts+=(--dev-text data/dev/text)
  python -m steps_py.lang.train_lm --order $lm_order --prune-threshold $lm_prune_threshold --unk-word "$unk_word" \
    "${lm_opts[@]+"${lm_opts[@]}"}" data/local/lm_text.txt data/local/dict/lexicon.txt data/local/lm
  for lm in tg tgpr; do
    python -m steps_py.lang.format_lm data/lang data/local/lm/lm_$lm.arpa.gz data/lang_test_$lm
    python -m steps_py.lang.validate_lang data/lang_test_$lm
  done
fi

if [ $stage -le 1 ] && [ $stop_stage -ge 1 ]; then
  begin_stage 1 "MFCC and Fbank features, CMVN"
  utils/feature_stage.sh --nj $nj --mfcc-conf $mfcc_conf --fbank-conf $fbank_conf $sets
fi

if [ $stage -le 2 ] && [ $stop_stage -ge 2 ]; then
  begin_stage 2 "monophone system"
  utils/gmm_stage.sh --nj $nj --gmm-conf "$gmm_conf" mono train "${sets#train}"
fi

if [ $stage -le 3 ] && [ $stop_stage -ge 3 ]; then
  begin_stage 3 "tri1 (MFCC + deltas)"
  utils/gmm_stage.sh --nj $nj --gmm-conf "$gmm_conf" tri1 train "${sets#train}"
fi

if [ $stage -le 4 ] && [ $stop_stage -ge 4 ]; then
  begin_stage 4 "tri2b (LDA + MLLT); alignments of train and test sets"
  utils/gmm_stage.sh --nj $nj --gmm-conf "$gmm_conf" tri2b train "${sets#train}"
  cat RESULTS
fi

test_sets="${sets#train}"
memvis_set=$(echo $test_sets | awk '{print $1}')
nnet_opts="--nj $nj --grid $grid"
if [ -n "$memvis_set" ]; then nnet_opts="$nnet_opts --memvis-set $memvis_set"; fi
if [ $stage -le 5 ] && [ $stop_stage -ge 5 ]; then
  begin_stage 5 "RNN acoustic models (grid $grid)"
  utils/nnet_stage.sh $nnet_opts --train-conf $train_conf --seeds "$nnet_seeds" train train "$test_sets"
fi

if [ $stage -le 6 ] && [ $stop_stage -ge 6 ] && [ -n "$test_sets" ]; then
  begin_stage 6 "hybrid decoding of$test_sets"
  utils/nnet_stage.sh $nnet_opts --seeds "$nnet_seeds" decode train "$test_sets"
fi

if [ $stage -le 7 ] && [ $stop_stage -ge 7 ]; then
  begin_stage 7 "comparison tables"
  utils/nnet_stage.sh $nnet_opts --seeds "$nnet_seeds" compare train "$test_sets"
fi

if [ $stage -le 8 ] && [ $stop_stage -ge 8 ] && [ -n "$memvis_set" ]; then
  begin_stage 8 "memory extraction and analyses ($memvis_set)"
  utils/memvis_stage.sh --nj $nj --grid $grid --memvis-conf $memvis_conf --memvis-set $memvis_set analyse
fi

if [ $stage -le 9 ] && [ $stop_stage -ge 9 ] && [ -n "$memvis_set" ]; then
  begin_stage 9 "HTML reports"
  utils/memvis_stage.sh --nj $nj --grid $grid --memvis-conf $memvis_conf --memvis-set $memvis_set report
fi

log "Done (stages $stage to $stop_stage)."
