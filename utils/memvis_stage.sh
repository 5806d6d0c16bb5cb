#!/usr/bin/env bash
# Usage: utils/memvis_stage.sh [--nj N] [--grid default|paper|paper_small|FILE] [--gmm tri2b]
#                              [--lang-test data/lang_test_tgpr] [--memvis-conf conf/memvis.conf] [--memvis-set SET]
#                              <analyse|findings|report>
# The memory-visualisation stages of a recipe (run from egs/<corpus>/s5; settings in conf/memvis.conf):
#   analyse: for every trained model of conf/nnet/grid_<grid>.txt, the internals of the first $extract_utts
#            utterances of data/<memvis_set>_fbank, extracted while decoding them (a decode already done with
#            extraction is reused)                            -> exp/nnet/<model>/extract_<set>/
#            and the analyses (distributions, responsibility, tsne, saturation, units, noise, noise_late,
#            cocluster, trajectories, horizon), --nj of them at a time, each logging to
#            exp/nnet/<model>/memvis_<set>/log/<analysis>.log -> exp/nnet/<model>/memvis_<set>/<analysis>/
#            (the other seeds' runs exp/nnet/<model>_seed<k>: their extraction and noise, for the intervals)
#            then the models side by side and the paper's claims with 95% intervals over utterances and seeds
#                                                             -> exp/nnet/memvis_<set>/{compare,findings}/
#   findings: the paper's claims alone, from what the models' decodes, extractions and noise runs hold (no
#            analysis is run; what is missing is "not measured"), e.g. for the 17 models of --grid paper_small
#                                                             -> exp/nnet/memvis_<set>/findings/
#   report:  one self-contained HTML page per model, and the run's (claims first, LSTM beside GRU, the paper's
#            figures in its order)                          -> exp/nnet/{<model>/,}memvis_<set>/report.html
# A grid other than default writes its side-by-side views and findings to exp/nnet/memvis_<set>_<grid>/.
# Every step skips itself when it finished with the same inputs and settings (its stamp .done.<step>): a change of
# the extraction, the model or a setting of --memvis-conf redoes what depends on it.
set -euo pipefail
nj=4
grid=default
gmm=tri2b
lang_test=data/lang_test_tgpr
memvis_conf=conf/memvis.conf
memvis_set=
. ./utils/parse_options.sh
memvis_set_opt=$memvis_set
if [ $# -ne 1 ]; then sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 1; fi
what=$1
. $memvis_conf
[ -n "$memvis_set_opt" ] && memvis_set=$memvis_set_opt
set_=$memvis_set
lm=$(basename $lang_test | sed 's/^lang_test_//')
graph=exp/$gmm/graph_$lm
. ./utils/grid.sh          # --grid NAME or FILE -> grid_file, grid (its name), grid_lines
models=$(for m in $(echo "$grid_lines" | awk '{print $1}'); do
           if [ -f exp/nnet/$m/final.pt ]; then echo $m; fi; done)
seed_runs() {  # <model>: the dirs of its other seeds (utils/nnet_stage.sh --seeds) that finished training
  for d in exp/nnet/$1_seed*; do if [ -f $d/final.pt ]; then echo $d; fi; done
}
[ -n "$models" ] || { echo "$0: no trained model of $grid_file in exp/nnet (run stage 5)" >&2; exit 1; }
all=exp/nnet/memvis_$set_
[ $grid = default ] || all=${all}_$grid
run_findings() {  # the paper's claims over every run of every model -> $all/findings
  python -m steps_py.memvis.findings --set $set_ \
    $(for m in $models; do echo -n "exp/nnet/$m $(seed_runs $m | tr '\n' ' ')"; done) $all/findings
  cat $all/findings/findings.md
}

case $what in
  analyse)
    for m in $models; do   # the extractions first (each decode runs --nj jobs), then the analyses in parallel
      for r in exp/nnet/$m $(seed_runs $m); do   # the seeds' extractions, for the intervals (made while decoding)
        python -m steps_py.memvis.extract --nj $nj --cmd "$decode_cmd" --config conf/decode_nnet.conf \
          --extract-dir $r/extract_$set_ --extract-utts $extract_utts --extract-dtype $extract_dtype \
          --extract-ali-dir exp/${gmm}_ali_$set_ $graph data/${set_}_fbank $r $r/decode_${lm}_$set_
      done
    done
    pids=() logs=() names=()
    threads=$(( $(nproc) / nj )); [ $threads -ge 1 ] || threads=1   # each analysis's share of the cores
    start() {  # <name> <log> <command...>: in the background, at most --nj at a time, on $threads threads
      while [ $(jobs -rp | wc -l) -ge $nj ]; do wait -n || true; done
      mkdir -p $(dirname $2)
      echo "$0: $1 (log in $2)"
      OMP_NUM_THREADS=$threads OPENBLAS_NUM_THREADS=$threads MKL_NUM_THREADS=$threads NUMBA_NUM_THREADS=$threads \
        "${@:3}" > $2 2>&1 < /dev/null &
      pids+=($!) logs+=($2) names+=("$1")
    }
    warn_on_failure() {  # <message> <command...>: a failed noise run is a warning (its claim is not measured)
      "${@:2}" || echo "$0: WARNING: $1" >&2
    }
    for m in $models; do
      ext=exp/nnet/$m/extract_$set_
      out=exp/nnet/$m/memvis_$set_
      for a in distributions responsibility tsne saturation units cocluster trajectories horizon; do
        opts_var=${a}_opts
        start "$m: $a" $out/log/$a.log python -m steps_py.memvis.$a --seed $seed ${!opts_var} $ext $out/$a
      done
      for r in exp/nnet/$m $(seed_runs $m); do   # the findings' noise claim uses every seed
        log=$r/memvis_$set_/log/noise.log
        why="e.g. no utterance of $set_ is long enough for noise_opts in $memvis_conf"
        start "$r: noise" $log warn_on_failure "$r: noise failed ($why; see $log): its claim is not measured" \
          python -m steps_py.memvis.noise --seed $seed $noise_opts $r data/${set_}_fbank $r/memvis_$set_/noise
      done
      if [ -n "${noise_late_opts:-}" ]; then
        log=$out/log/noise_late.log
        start "$m: noise_late" $log warn_on_failure "$m: noise_late failed (e.g. no utterance of $set_ is long \
enough; see $log): the findings and the report go on without it" \
          python -m steps_py.memvis.noise --seed $seed $noise_late_opts exp/nnet/$m data/${set_}_fbank $out/noise_late
      fi
    done
    failed=
    for k in ${!pids[@]}; do
      status=0; wait ${pids[$k]} || status=$?
      cat ${logs[$k]}        # each analysis's log whole, in order, once it is done
      [ $status -eq 0 ] || { echo "$0: ${names[$k]} failed (exit status $status; log in ${logs[$k]})" >&2; failed=1; }
    done
    [ -z "$failed" ] || exit 1
    exts=$(for m in $models; do echo -n "exp/nnet/$m/extract_$set_ "; done)
    names=$(echo $models | tr ' ' ',')
    noise=$(for m in $models; do echo -n "exp/nnet/$m/memvis_$set_/noise/numbers.json,"; done | sed 's/,$//')
    python -m steps_py.memvis.compare --seed $seed --names $names --noise $noise $compare_opts $exts $all/compare
    run_findings ;;
  findings)
    run_findings ;;
  report)
    for m in $models; do
      python -m steps_py.memvis.report $report_opts --findings $all/findings/findings.json \
        --title "Memory of exp/nnet/$m on $set_" exp/nnet/$m/extract_$set_ exp/nnet/$m/memvis_$set_ \
        exp/nnet/$m/memvis_$set_/report.html
      echo "$0: report page $(readlink -f exp/nnet/$m/memvis_$set_/report.html)"
    done
    wer_json=exp/nnet/compare_wer.json
    [ $grid = default ] || wer_json=exp/nnet/compare_wer_$grid.json
    python -m steps_py.memvis.run_report ${run_report_opts:-} --set $set_ --findings $all/findings/findings.json \
      --compare-dir $all/compare --compare-wer $wer_json $(for m in $models; do echo -n "exp/nnet/$m "; done) \
      $all/report.html
    echo "$0: report page $(readlink -f $all/report.html)" ;;
  *) echo "$0: unknown action $what (analyse, findings or report)" >&2; exit 1 ;;
esac
