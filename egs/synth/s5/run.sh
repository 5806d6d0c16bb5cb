#!/usr/bin/env bash
# The recipe on the embedded synthetic read-speech corpus, laid out like Kaldi's egs/wsj/s5.
# The corpus is generated at stage 0 with TTS voices (espeak-ng, flite, festival), deterministic from --seed.
#
# Usage: ./run.sh [--stage N] [--stop-stage M] [--nj N] [--corpus-size tiny|small|full] [--seed S]
#                 [--gmm-conf conf/gmm.conf] [--grid default|paper|paper_small] [--train-conf conf/nnet/train.conf]
#                 [--nnet-seeds "1 2 3"]
#   stage 0: install what is missing; corpus -> data/{train,dev,eval}; dict, lang, 3-gram LMs (tg, tgpr)
#   stage 1: 13-dim MFCC (GMMs) in data/<set>, 40-dim Fbank (RNNs) in data/<set>_fbank, per-speaker CMVN
#   stage 2: mono (train, graph, decode dev/eval, align train)         -> exp/mono, exp/mono_ali
#   stage 3: tri1, MFCC + deltas                                        -> exp/tri1, exp/tri1_ali
#   stage 4: tri2b, LDA + MLLT; alignments of train, dev and eval       -> exp/tri2b, exp/tri2b_ali_{train,dev,eval}
#   stage 5: RNN acoustic models of conf/nnet/grid_<grid>.txt (NSGD, CE on tri2b targets), one per seed of
#            --nnet-seeds                              -> exp/nnet/<model>, exp/nnet/<model>_seed<k>
#   stage 6: hybrid decoding of dev and eval with the tri2b graph       -> exp/nnet/<model>/decode_tgpr_<set>
#   stage 7: comparison tables (WER with 95% intervals, CE, parameters; the paper's Tables 1-3)
#            -> exp/nnet/compare_wer.txt (other grids: compare_wer_<grid>.txt)
#   stage 8: memory of each model on dev (extracted while decoding): the analyses (conf/memvis.conf),
#            models side by side, the paper's claims  -> exp/nnet/<model>/memvis_dev, exp/nnet/memvis_dev
#   stage 9: HTML pages to open in a browser: each model's and the run's -> exp/nnet/{<model>/,}memvis_dev/report.html
#   WER lines of every decode go to RESULTS.
set -euo pipefail

stage=0
stop_stage=100
nj=2
corpus_size=small       # tiny (tests, < 2 min), small (~2 h of training audio), full (10+ h)
seed=1
lm_vocab_size=5000      # closed LM vocabulary: top words of the LM text + all prompt words (0: no limit)
corpus_dir=corpus       # where the generated audio goes (large: point it at a big disk if needed)
grid=default            # acoustic models of stages 5-8: conf/nnet/grid_default.txt (2-layer LSTM and GRU),
                        # grid_paper.txt (Tables 1-3 of Tang et al. 2017 and the RNN/DNN baselines) or
                        # grid_paper_small.txt (the same at 128 units per layer: an hour on 2 cores)
gmm_conf=conf/gmm.conf  # passes, sizes and alignment settings of mono, tri1 and tri2b (stages 2-4)
train_conf=conf/nnet/train.conf   # training schedule and optimizer of the acoustic models
nnet_seeds="1 2 3"      # three training runs of each model: the intervals of the findings cover the seeds

help_message=$(sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//')

. ./utils/stage_log.sh      # log, begin_stage; the table of stage times when run.sh ends

. ./path.sh
. ./cmd.sh
. ./conf/lang.conf
. ./conf/lm.conf
. ./utils/parse_options.sh   # the command line overrides the conf files
[ $# -eq 0 ] || { echo "$help_message" >&2; exit 1; }
. ./utils/check_run_options.sh 9   # 9: the last stage; stops on a bad --stage, --stop-stage or --nj
begin_stage install "tools/install.sh"
"$KALDI_PY_ROOT/tools/install.sh"   # installs what is missing; a second or two when everything is there
. ./path.sh

sets="train dev eval"

if [ $stage -le 0 ] && [ $stop_stage -ge 0 ]; then
  begin_stage 0 "corpus ($corpus_size), dictionary, lang, language models"
  python local/synth/make_corpus.py --config conf/synth.conf --size $corpus_size --seed $seed --nj $nj \
    $corpus_dir data
  for s in $sets; do python -m steps_py.data.validate_data_dir --no-feats data/$s; done
  python local/synth/select_lm_text.py --vocab-size $lm_vocab_size --output data/local/lm_text_vocab.txt \
    data/local/lm_text.txt data/train/text data/dev/text data/eval/text
  python -m steps_py.lang.prepare_dict --keep-stress $keep_stress data/local/dict data/local/lm_text_vocab.txt
  python -m steps_py.lang.prepare_lang --position-dependent-phones $position_dependent_phones --sil-prob $sil_prob \
    --num-sil-states $num_sil_states --num-nonsil-states $num_nonsil_states \
    data/local/dict "$oov_word" data/local/lang_tmp data/lang
  python -m steps_py.lang.train_lm --order $lm_order --prune-threshold $lm_prune_threshold --dev-text data/dev/text \
    --unk-word "$oov_word" data/local/lm_text_vocab.txt data/local/dict/lexicon.txt data/local/lm
  for lm in tg tgpr; do
    python -m steps_py.lang.format_lm data/lang data/local/lm/lm_$lm.arpa.gz data/lang_test_$lm
  done
  python -m steps_py.lang.validate_lang data/lang_test_tgpr
fi

if [ $stage -le 1 ] && [ $stop_stage -ge 1 ]; then
  begin_stage 1 "MFCC and Fbank features, CMVN"
  utils/feature_stage.sh --nj $nj $sets
fi

test_sets="dev eval"

if [ $stage -le 2 ] && [ $stop_stage -ge 2 ]; then
  begin_stage 2 "monophone system"
  utils/gmm_stage.sh --nj $nj --gmm-conf "$gmm_conf" mono train "$test_sets"
fi

if [ $stage -le 3 ] && [ $stop_stage -ge 3 ]; then
  begin_stage 3 "tri1 (MFCC + deltas)"
  utils/gmm_stage.sh --nj $nj --gmm-conf "$gmm_conf" tri1 train "$test_sets"
fi

if [ $stage -le 4 ] && [ $stop_stage -ge 4 ]; then
  begin_stage 4 "tri2b (LDA + MLLT); alignments of train, dev and eval"
  utils/gmm_stage.sh --nj $nj --gmm-conf "$gmm_conf" tri2b train "$test_sets"
  cat RESULTS
fi

if [ $stage -le 5 ] && [ $stop_stage -ge 5 ]; then
  begin_stage 5 "RNN acoustic models (grid $grid)"
  utils/nnet_stage.sh --nj $nj --grid $grid --train-conf $train_conf --seeds "$nnet_seeds" train train "$test_sets"
fi

if [ $stage -le 6 ] && [ $stop_stage -ge 6 ]; then
  begin_stage 6 "hybrid decoding of $test_sets"
  utils/nnet_stage.sh --nj $nj --grid $grid --seeds "$nnet_seeds" decode train "$test_sets"
fi

if [ $stage -le 7 ] && [ $stop_stage -ge 7 ]; then
  begin_stage 7 "comparison tables"
  utils/nnet_stage.sh --nj $nj --grid $grid --seeds "$nnet_seeds" compare train "$test_sets"
fi

if [ $stage -le 8 ] && [ $stop_stage -ge 8 ]; then
  begin_stage 8 "memory extraction and analyses"
  utils/memvis_stage.sh --nj $nj --grid $grid analyse
fi

if [ $stage -le 9 ] && [ $stop_stage -ge 9 ]; then
  begin_stage 9 "HTML reports"
  utils/memvis_stage.sh --nj $nj --grid $grid report
fi

log "Done (stages $stage to $stop_stage)."
