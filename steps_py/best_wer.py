"""Usage: python -m steps_py.best_wer [--append RESULTS] <decode-dir>...

Kaldi's ``for x in exp/*/decode*; do grep WER $x/wer_* | utils/best_wer.sh; done``: prints, for each decode dir,
the lowest %WER line among its wer_<LMWT>_<WIP> files followed by the file, e.g.

  %WER 16.42 [ 1352 / 8234, 145 ins, 187 del, 1020 sub ] exp/tri1/decode_tgpr_dev/wer_17_0.5

With --append FILE the lines are also added to FILE (e.g. RESULTS); a line already there for the same decode dir
is replaced, so re-running a stage does not duplicate it.
"""
import argparse
import glob
import os

from steps_py.common import InputError, atomic_open, get_logger, run_main
from steps_py.score import best_wer_line

log = get_logger("best_wer")


def best_for_dir(decode_dir):
    paths = [p for p in glob.glob(os.path.join(decode_dir, "wer_*")) if os.path.isfile(p)]
    line = best_wer_line(paths) if paths else None
    if line is None:
        raise InputError(f"no wer_* files with a %WER line in {decode_dir}")
    return line


def _line_dir(line):
    return os.path.normpath(os.path.dirname(line.split()[-1]))


def append_results(results_path, lines):
    """Adds ``lines`` to ``results_path``, replacing lines whose wer file lies in the same decode dir."""
    new_dirs = {_line_dir(line) for line in lines}
    kept = []
    if os.path.exists(results_path):
        with open(results_path, encoding="utf-8") as f:
            for old in f.read().splitlines():
                if old.startswith("%WER") and _line_dir(old) in new_dirs:
                    continue
                kept.append(old)
    with atomic_open(results_path) as f:
        for line in kept + list(lines):
            f.write(line + "\n")


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
