"""Usage: python -m steps_py.decode.best_wer [--append RESULTS] <decode-dir>...

Kaldi's ``for x in exp/*/decode*; do grep WER $x/wer_* | utils/best_wer.sh; done``: prints, for each decode dir,
the lowest %WER line among its wer_<LMWT>_<WIP> files followed by the file, e.g.

  %WER 16.42 [ 1352 / 8234, 145 ins, 187 del, 1020 sub ] exp/tri1/decode_tgpr_dev/wer_17_0.5

With --append FILE the lines are also added to FILE (e.g. RESULTS); a line already there for the same decode dir
is replaced, so re-running a stage does not duplicate it.
"""
import argparse

from steps_py.common import get_logger, run_main
from steps_py.decode.scoring import append_results, best_for_dir

log = get_logger("decode.best_wer")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--append", metavar="FILE", help="also append the lines to FILE (replacing old ones)")
    p.add_argument("decode_dirs", nargs="+")
    a = p.parse_args()
    lines = [best_for_dir(d) for d in a.decode_dirs]
    for line in lines:
        print(line)
    if a.append:
        append_results(a.append, lines)


if __name__ == "__main__":
    run_main(main)
