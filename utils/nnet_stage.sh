#!/usr/bin/env bash
# Usage: utils/nnet_stage.sh [--nj N] [--grid default|paper|paper_small|FILE] [--gmm tri2b]
#                            [--lang-test data/lang_test_tgpr] [--train-conf conf/nnet/train.conf]
#                            [--memvis-set SET] [--ali-dir DIR]
#                            [--seeds "1 2 3"] <train|decode|compare> <train-set> "<test-sets>"
# The acoustic-model stages of a recipe (run from egs/<corpus>/s5 with path.sh and cmd.sh sourced):
#   train:   every model of conf/nnet/grid_<grid>.txt on data/<train-set>_fbank with the
#            targets of --ali-dir (default exp/<gmm>_ali_<train-set>, aligned first with exp/<gmm> when missing),
#            once per seed of --seeds (default: the train conf's seed) -> exp/nnet/<name> (the first seed) and
#            exp/nnet/<name>_seed<k> (the others); log/train.log, final.pt
#   decode:  each model on data/<test-set>_fbank with the graph of exp/<gmm> -> exp/nnet/<name>/decode_<lm>_<set>;
#            best %WER lines appended to RESULTS; the memory-analysis set (--memvis-set, default memvis_set of
#            conf/memvis.conf) is extracted while it is decoded (exp/nnet/<name>/extract_<set>)
#   compare: WER/CE/parameter table of the grid's models, and the paper's tables of them, with 95% intervals
#            -> exp/nnet/compare_wer.txt (--grid default), exp/nnet/compare_wer_<grid>.txt (other grids)
# A grid line is "<name> [<conf>] [<setting>=<value> ...]": the model conf/nnet/<conf>.conf (default <name>) with
# the settings given overriding its own, trained into exp/nnet/<name> (e.g. "lstm_4l_c128 lstm_4l cell_dim=128").
# The alignment dir may come from a real Kaldi: --gmm tri4b --ali-dir exp/tri4b_ali_si284 (graph exp/tri4b/graph_tgpr).
# Finished models and decodes are skipped; a killed training resumes from its last iteration.
set -euo pipefail
nj=4
grid=default
gmm=tri2b
lang_test=data/lang_test_tgpr
train_conf=conf/nnet/train.conf
memvis_set=
ali_dir=
seeds=
. ./utils/parse_options.sh
memvis_set_opt=$memvis_set
if [ $# -ne 3 ]; then sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 1; fi
what=$1; train=$2; test_sets=$3

. ./utils/grid.sh          # --grid NAME or FILE -> grid_file, grid (its name), grid_lines
models=$(echo "$grid_lines" | awk '{print $1}')
lm=$(basename $lang_test | sed 's/^lang_test_//')
graph=exp/$gmm/graph_$lm
seeds=($seeds)
run_dirs() {  # <model>: its run dirs, one per seed (the first seed's is exp/nnet/<model>)
  echo exp/nnet/$1
  for k in "${seeds[@]:1}"; do echo exp/nnet/$1_seed$k; done
}
seed_of() {  # <run dir>: --seed <k> when --seeds was given
  [ ${#seeds[@]} -eq 0 ] && return
  case $1 in *_seed*) echo "--seed ${1##*_seed}" ;; *) echo "--seed ${seeds[0]}" ;; esac
}

case $what in
  train)
    ali=${ali_dir:-exp/${gmm}_ali_$train}
    if [ ! -f $ali/ali.1.gz ] && [ -f exp/$gmm/final.mdl ]; then
      echo "$0: aligning data/$train with exp/$gmm -> $ali"
      python -m steps_py.gmm.align_si --nj $nj --cmd "$train_cmd" data/$train data/lang exp/$gmm $ali
    fi
    for f in data/${train}_fbank/feats.scp $ali/final.mdl $ali/tree; do
      [ -f $f ] || { echo "$0: no such file $f (run the earlier stages first)" >&2; exit 1; }
    done
    echo "$grid_lines" | while read -r m rest; do
      base=$m overrides=()
      for f in $rest; do case $f in *=*) overrides+=("$f") ;; *) base=$f ;; esac; done
      conf=conf/nnet/$base.conf
      [ -f $conf ] || { echo "$0: no such file $conf (listed in $grid_file)" >&2; exit 1; }
      for d in $(run_dirs $m); do
        mkdir -p $d/log
        model_conf=$conf
        if [ ${#overrides[@]} -gt 0 ]; then   # the model conf with the grid's settings last (they win)
          { cat $conf; echo "# settings of the grid line: $rest"; printf '%s\n' "${overrides[@]}"; } > $d/grid_nnet.conf.tmp
          mv $d/grid_nnet.conf.tmp $d/grid_nnet.conf
          model_conf=$d/grid_nnet.conf
        fi
        echo "$0: training $d ($model_conf $(seed_of $d); log in $d/log/train.log)"
        python -m steps_py.nnet.train --nnet-conf $model_conf --train-conf $train_conf $(seed_of $d) \
          data/${train}_fbank $ali $d 2>&1 < /dev/null | tee -a $d/log/train.log
      done
    done ;;
  decode)
    [ -f $graph/HCLG.fst ] || python -m steps_py.decode.mkgraph $lang_test exp/$gmm $graph
    memvis_set=none
    [ -f conf/memvis.conf ] && . conf/memvis.conf   # the memory-analysis set is extracted while it is decoded
    [ -n "$memvis_set_opt" ] && memvis_set=$memvis_set_opt
    for m in $models; do
      for r in $(run_dirs $m); do
        for s in $test_sets; do
          d=$r/decode_${lm}_$s
          step=steps_py.nnet.decode extract_opts=
          if [ $s = $memvis_set ] && [ -f exp/${gmm}_ali_$s/phone_ali.1.gz ]; then
            step=steps_py.memvis.extract
            extract_opts="--extract-dir $r/extract_$s --extract-utts $extract_utts"
            extract_opts="$extract_opts --extract-dtype $extract_dtype --extract-ali-dir exp/${gmm}_ali_$s"
          fi
          python -m $step --nj $nj --cmd "$decode_cmd" --config conf/decode_nnet.conf $extract_opts \
            $graph data/${s}_fbank $r $d
          python -m steps_py.decode.best_wer --append RESULTS $d
        done
      done
    done ;;
  compare)
    dirs=$(for m in $models; do for r in $(run_dirs $m); do if [ -f $r/final.pt ]; then echo $r; fi; done; done)
    [ -n "$dirs" ] || { echo "$0: no trained model of $grid_file in exp/nnet (run the train action)" >&2; exit 1; }
    out=exp/nnet/compare_wer.txt
    [ $grid = default ] || out=exp/nnet/compare_wer_$grid.txt
    python -m steps_py.nnet.compare_wer --tables paper --sets "$test_sets" --json ${out%.txt}.json $dirs > $out.tmp
    if cmp -s $out.tmp $out; then rm $out.tmp; else mv $out.tmp $out; fi   # unchanged: its time stamp kept
    cat $out ;;
  *) echo "$0: unknown action $what (train, decode or compare)" >&2; exit 1 ;;
esac
