#!/usr/bin/env bash
# The recipe on the real Wall Street Journal corpus (LDC93S6B = WSJ0, LDC94S13B = WSJ1), after Kaldi's egs/wsj/s5.
# Corpus locations and settings: conf/wsj.conf (or --wsj0 DIR --wsj1 DIR on the command line).
#
# Usage: ./run.sh [--stage N] [--stop-stage M] [--nj N] [--wsj0 DIR] [--wsj1 DIR]
#   stage 0: data/{train_si284,train_si84,test_dev93,test_eval92[,test_eval93]} from the LDC discs; dict (CMUdict);
#            data/lang; the WSJ1 LMs into data/local/lm and data/lang_test_{bg,tg,tgpr}
#   stage 1: 13-dim MFCC (GMMs) in data/<set>, 40-dim Fbank (RNNs) in data/<set>_fbank, per-speaker CMVN;
#            train_si84 takes its rows from train_si284
#   stage 2-4: mono, tri1, tri2b (LDA+MLLT) on $gmm_train_set with conf/gmm_wsj.conf, decoded on $gmm_test_sets
#            with the tgpr graph (RESULTS); tri2b alignments of train and test sets for the RNN stages
#   stage 5: RNN acoustic models of conf/nnet/grid_<grid>.txt on $nnet_train_set with the targets of
#            exp/${nnet_gmm}_ali_$nnet_train_set (ours, or a real Kaldi's: e.g. nnet_gmm=tri4b) -> exp/nnet/<model>
#   stage 6: hybrid decoding of $gmm_test_sets with exp/$nnet_gmm/graph_tgpr (RESULTS)
#   stage 7: comparison tables -> exp/nnet/compare_wer.txt
#   stage 8: memory extraction (while decoding $memvis_set) and analyses; stage 9: HTML reports
set -euo pipefail

stage=0
stop_stage=100
nj=4
wsj0=/path/to/LDC93S6B
wsj1=/path/to/LDC94S13B
grid=default            # conf/nnet/grid_<grid>.txt: default (2-layer LSTM and GRU) or paper
train_conf=conf/nnet/train.conf
nnet_seeds="1"          # training runs per model (e.g. "1 2 3": intervals over seeds too)

help_message=$(sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//')

. ./utils/stage_log.sh      # log, begin_stage; the table of stage times when run.sh ends

. ./path.sh
. ./cmd.sh
. ./conf/wsj.conf
. ./utils/parse_options.sh   # the command line overrides the conf files
[ $# -eq 0 ] || { echo "$help_message" >&2; exit 1; }
. ./utils/check_run_options.sh 9   # 9: the last stage; stops on a bad --stage, --stop-stage or --nj
[ -x "$KALDI_PY_ROOT/tools/venv/bin/python" ] || { "$KALDI_PY_ROOT/tools/install.sh"; . ./path.sh; }

# The rows of a subset's utterances (speakers) in a larger data dir's per-utterance (per-speaker) tables.
subset_tables() {  # <src-dir> <dst-dir>
  local f
  for f in feats.scp utt2num_frames utt2dur; do
    [ -f $1/$f ] && awk 'NR==FNR{k[$1]; next} ($1 in k)' $2/utt2spk $1/$f > $2/$f
  done
  [ -f $1/cmvn.scp ] && awk 'NR==FNR{k[$1]; next} ($1 in k)' $2/spk2utt $1/cmvn.scp > $2/cmvn.scp
  return 0
}

if [ $stage -le 0 ] && [ $stop_stage -ge 0 ]; then
  begin_stage 0 "data preparation, dictionary, lang, language models"
  opts=()
  [ -n "$sph2pipe" ] && opts+=(--sph2pipe "$sph2pipe")
  [ -n "$spkrinfo" ] && opts+=(--spkrinfo "$spkrinfo")
  python local/wsj_data_prep.py "${opts[@]+"${opts[@]}"}" --prune-threshold $lm_prune_threshold \
    --lm-dir-out data/local/lm "$wsj0" "$wsj1" data
  # CMUdict pronunciations for the words of the training transcripts and of the LM (data/local/dict_words.txt)
  python -m steps_py.lang.prepare_dict --keep-stress $keep_stress data/local/dict data/local/dict_words.txt
  python -m steps_py.lang.prepare_lang --position-dependent-phones $position_dependent_phones --sil-prob $sil_prob \
    data/local/dict "$oov_word" data/local/lang_tmp data/lang
  for lm in $lm_suffixes; do
    python -m steps_py.lang.format_lm data/lang data/local/lm/lm_$lm.arpa.gz data/lang_test_$lm
    python -m steps_py.lang.validate_lang data/lang_test_$lm
  done
fi

if [ $stage -le 1 ] && [ $stop_stage -ge 1 ]; then
  begin_stage 1 "MFCC and Fbank features, CMVN"
  sets=$feat_sets
  [ -d data/test_eval93 ] && [[ " $sets " != *" test_eval93 "* ]] && sets="$sets test_eval93"
  utils/feature_stage.sh --nj $nj $sets
  # train_si84 is the WSJ0 part of train_si284 (Kaldi: its first 7138 utterances): no second extraction.
  if [[ " $sets " == *" train_si284 "* ]] && [ -d data/train_si84 ]; then
    [ -d data/train_si84_fbank ] || python -m steps_py.data.copy_data_dir data/train_si84 data/train_si84_fbank
    subset_tables data/train_si284 data/train_si84
    subset_tables data/train_si284_fbank data/train_si84_fbank
    python -m steps_py.data.fix_data_dir data/train_si84
    python -m steps_py.data.fix_data_dir data/train_si84_fbank
    python -m steps_py.data.validate_data_dir data/train_si84
    python -m steps_py.data.validate_data_dir data/train_si84_fbank
  fi
fi

if [ $stage -le 2 ] && [ $stop_stage -ge 2 ]; then
  begin_stage 2 "monophone system"
  utils/gmm_stage.sh --nj $nj --gmm-conf conf/gmm_wsj.conf mono $gmm_train_set "$gmm_test_sets"
fi

if [ $stage -le 3 ] && [ $stop_stage -ge 3 ]; then
  begin_stage 3 "tri1 (MFCC + deltas)"
  utils/gmm_stage.sh --nj $nj --gmm-conf conf/gmm_wsj.conf tri1 $gmm_train_set "$gmm_test_sets"
fi

if [ $stage -le 4 ] && [ $stop_stage -ge 4 ]; then
  begin_stage 4 "tri2b (LDA + MLLT); alignments of train and test sets"
  utils/gmm_stage.sh --nj $nj --gmm-conf conf/gmm_wsj.conf tri2b $gmm_train_set "$gmm_test_sets"
  cat RESULTS
fi

nnet_opts="--nj $nj --grid $grid --gmm $nnet_gmm --memvis-set $memvis_set"
if [ $stage -le 5 ] && [ $stop_stage -ge 5 ]; then
  begin_stage 5 "RNN acoustic models on $nnet_train_set (grid $grid)"
  utils/nnet_stage.sh $nnet_opts --train-conf $train_conf --seeds "$nnet_seeds" train $nnet_train_set \
    "$gmm_test_sets"
fi

if [ $stage -le 6 ] && [ $stop_stage -ge 6 ]; then
  begin_stage 6 "hybrid decoding of $gmm_test_sets"
  utils/nnet_stage.sh $nnet_opts --seeds "$nnet_seeds" decode $nnet_train_set "$gmm_test_sets"
fi

if [ $stage -le 7 ] && [ $stop_stage -ge 7 ]; then
  begin_stage 7 "comparison tables"
  utils/nnet_stage.sh $nnet_opts --seeds "$nnet_seeds" compare $nnet_train_set "$gmm_test_sets"
fi

if [ $stage -le 8 ] && [ $stop_stage -ge 8 ]; then
  begin_stage 8 "memory extraction and analyses ($memvis_set)"
  utils/memvis_stage.sh --nj $nj --grid $grid --gmm $nnet_gmm --memvis-set $memvis_set analyse
fi

if [ $stage -le 9 ] && [ $stop_stage -ge 9 ]; then
  begin_stage 9 "HTML reports"
  utils/memvis_stage.sh --nj $nj --grid $grid --gmm $nnet_gmm --memvis-set $memvis_set report
fi

log "Done (stages $stage to $stop_stage)."
