#!/usr/bin/env bash
# Usage: utils/gmm_stage.sh [--nj N] [--lang-test data/lang_test_tgpr] [--gmm-conf conf/gmm.conf] <mono|tri1|tri2b> <train-set> "<test-sets>"
# One GMM stage of a recipe (run from egs/<corpus>/s5 with path.sh and cmd.sh sourced; settings from
# --gmm-conf and conf/decode.conf), as Kaldi's egs/wsj/s5 run.sh does it:
#   mono:  train_mono on data/<train-set>       -> exp/mono; graph, decodes; exp/mono_ali
#   tri1:  train_deltas from exp/mono_ali      -> exp/tri1; graph, decodes; exp/tri1_ali
#   tri2b: train_lda_mllt from exp/tri1_ali    -> exp/tri2b; graph, decodes; exp/tri2b_ali_<set> for train and tests
# Each decode of data/<test-set> appends its best %WER line to RESULTS. Every step skips finished work.
set -euo pipefail
nj=4
lang_test=data/lang_test_tgpr
gmm_conf=conf/gmm.conf
. ./utils/parse_options.sh
if [ $# -ne 3 ]; then sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 1; fi
system=$1; train=$2; test_sets=$3
. "$gmm_conf"
graph=exp/$system/graph_$(basename $lang_test | sed 's/^lang_test_//')
align_opts="--beam $align_beam --retry-beam $align_retry_beam"
seed_opts="--seed $gmm_seed"
tree_opts="--tree-thresh $tree_thresh --cluster-thresh $tree_cluster_thresh --tree-min-count $tree_min_count"

for f in data/$train/feats.scp data/lang/L.fst $lang_test/G.fst; do
  [ -f $f ] || { echo "$0: no such file $f (run the earlier stages first)" >&2; exit 1; }
done

case $system in
  mono)
    python -m steps_py.gmm.train_mono --nj $nj --cmd "$train_cmd" $seed_opts --num-iters $mono_num_iters \
      --max-iter-inc $mono_max_iter_inc --totgauss $mono_totgauss --boost-silence $mono_boost_silence \
      --realign-iters "$mono_realign_iters" --initial-beam $mono_initial_beam --power $power $align_opts \
      data/$train data/lang exp/mono ;;
  tri1)
    python -m steps_py.gmm.train_deltas --nj $nj --cmd "$train_cmd" $seed_opts --num-iters $tri1_num_iters \
      --max-iter-inc $tri1_max_iter_inc --realign-iters "$tri1_realign_iters" --power $power $tree_opts $align_opts \
      $tri1_num_leaves $tri1_tot_gauss data/$train data/lang exp/mono_ali exp/tri1 ;;
  tri2b)
    python -m steps_py.gmm.train_lda_mllt --nj $nj --cmd "$train_cmd" $seed_opts --num-iters $tri2b_num_iters \
      --max-iter-inc $tri2b_max_iter_inc --realign-iters "$tri2b_realign_iters" \
      --mllt-iters "$tri2b_mllt_iters" --splice-opts="$tri2b_splice_opts" --dim $tri2b_lda_dim \
      --mllt-update-iters $tri2b_mllt_update_iters --silence-weight $tri2b_silence_weight --power $power \
      $tree_opts $align_opts $tri2b_num_leaves $tri2b_tot_gauss data/$train data/lang exp/tri1_ali exp/tri2b ;;
  *) echo "$0: unknown system $system (mono, tri1 or tri2b)" >&2; exit 1 ;;
esac

python -m steps_py.decode.mkgraph $lang_test exp/$system $graph
for s in $test_sets; do
  decode_dir=exp/$system/decode_$(basename $graph | sed 's/^graph_//')_$s
  python -m steps_py.decode.decode --nj $nj --cmd "$decode_cmd" --config conf/decode.conf $graph data/$s $decode_dir
  python -m steps_py.decode.best_wer --append RESULTS $decode_dir
done

case $system in
  mono) python -m steps_py.gmm.align_si --nj $nj --cmd "$train_cmd" --boost-silence $mono_boost_silence $align_opts \
          data/$train data/lang exp/mono exp/mono_ali ;;
  tri1) python -m steps_py.gmm.align_si --nj $nj --cmd "$train_cmd" $align_opts data/$train data/lang exp/tri1 exp/tri1_ali ;;
  tri2b)
    # Frame targets of the RNNs (train) and phone labels of the memory analyses (tests: forced alignment).
    for s in $train $test_sets; do
      python -m steps_py.gmm.align_si --nj $nj --cmd "$train_cmd" $align_opts data/$s data/lang exp/tri2b exp/tri2b_ali_$s
    done ;;
esac
