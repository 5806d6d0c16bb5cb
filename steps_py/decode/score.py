"""Usage: python -m steps_py.decode.score [options] <data-dir> <graph-dir-or-lang> <decode-dir>

The equivalent of Kaldi's steps/scoring/score_kaldi_wer.sh (the work: steps_py.decode.scoring). Reads the
decoder's integer hypotheses <decode-dir>/scoring/<LMWT>_<WIP>.tra (``utt word-id ...``, one file per LM weight and
word insertion penalty) and the reference <data-dir>/text, maps ids to words with <graph-dir-or-lang>/words.txt,
removes the filtered words (default: Kaldi's WSJ filter, <NOISE> and <SPOKEN_NOISE>) from references and
hypotheses, and writes:

  <decode-dir>/scoring_kaldi/test_filt.txt              filtered references
  <decode-dir>/scoring_kaldi/penalty_<WIP>/<LMWT>.txt   filtered hypotheses (text)
  <decode-dir>/wer_<LMWT>_<WIP>                        compute-wer --mode=present output:
      %WER 16.42 [ 1352 / 8234, 145 ins, 187 del, 1020 sub ]
      %SER 56.02 [ 279 / 498 ]
      Scored 498 sentences, 0 not present in hyp.
  <decode-dir>/scoring_kaldi/best_wer                   the best of them, as utils/best_wer.sh prints it

e.g.: python -m steps_py.decode.score data/dev exp/mono/graph_tgpr exp/mono/decode_tgpr_dev
"""
import argparse

from steps_py.common import run_main
from steps_py.decode.scoring import DEFAULT_FILTER_WORDS, parse_word_list, score


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--filter-words", default=DEFAULT_FILTER_WORDS,
                   help=f"comma- or space-separated words removed from references and hypotheses before scoring "
                        f"(default: {DEFAULT_FILTER_WORDS!r}; '' keeps every word)")
    p.add_argument("data_dir")
    p.add_argument("graph_dir")
    p.add_argument("decode_dir")
    a = p.parse_args()
    score(a.data_dir, a.graph_dir, a.decode_dir, parse_word_list(a.filter_words))


if __name__ == "__main__":
    run_main(main)
