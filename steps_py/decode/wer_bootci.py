"""Usage: python -m steps_py.decode.wer_bootci [--num-samples 10000] [--seed 0] <decode-dir> [<decode-dir-2>]

The 95% confidence interval of a decode's WER, as Kaldi's compute-wer-bootci: the utterances are resampled with
replacement --num-samples times (bootstrap over utterances, Bisani and Ney 2004) and the WER of each resampling is
computed from the per-utterance errors of the decode dir's best LM weight and penalty (its best_wer line, the
filtered references and hypotheses in scoring_kaldi/). With a second decode dir of the same utterances, the
resamplings are paired and the interval is that of the difference WER(1) - WER(2); an interval that contains 0
does not settle which system is better. Prints, e.g.

  %WER 16.89 95% CI [15.70, 18.08] exp/nnet/lstm_2l/decode_tgpr_dev
  %WER 15.78 95% CI [14.64, 16.95] exp/nnet/gru_2l/decode_tgpr_dev
  difference 1.11 95% CI [0.21, 2.02] (utterances of both: 200)
"""
import argparse

from steps_py.common import InputError, run_main
from steps_py.decode.scoring import best_hypotheses, bootstrap_wer, bootstrap_wer_difference, utterance_errors


def main():
    p = argparse.ArgumentParser(usage=__doc__.split("\n")[0][len("Usage: "):], description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--num-samples", type=int, default=10000, help="bootstrap resamplings (default: 10000)")
    p.add_argument("--seed", type=int, default=0, help="seed of the resampling (default: 0)")
    p.add_argument("decode_dirs", nargs="+", metavar="decode-dir")
    a = p.parse_args()
    if len(a.decode_dirs) > 2:
        p.error("one decode dir, or two to compare")
    per_dir = []
    for d in a.decode_dirs:
        refs, hyps = best_hypotheses(d)
        per_dir.append(utterance_errors(refs, hyps))
        if not per_dir[-1]:
            raise InputError(f"{d}: no utterance of scoring_kaldi/test_filt.txt has a hypothesis")
        errors, words = zip(*per_dir[-1].values())
        wer, lo, hi = bootstrap_wer(errors, words, a.num_samples, a.seed)
        print(f"%WER {wer:.2f} 95% CI [{lo:.2f}, {hi:.2f}] {d}")
    if len(per_dir) == 2:
        both = sorted(set(per_dir[0]) & set(per_dir[1]))
        if not both:
            raise InputError("the two decode dirs have no utterance in common")
        errors_a, errors_b = ([per_dir[k][u][0] for u in both] for k in (0, 1))
        words = [per_dir[0][u][1] for u in both]
        diff, lo, hi = bootstrap_wer_difference(errors_a, errors_b, words, a.num_samples, a.seed)
        print(f"difference {diff:.2f} 95% CI [{lo:.2f}, {hi:.2f}] (utterances of both: {len(both)})")


if __name__ == "__main__":
    run_main(main)
