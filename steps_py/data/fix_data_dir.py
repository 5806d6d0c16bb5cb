"""Usage: python -m steps_py.data.fix_data_dir <data-dir>

Sorts the tables of a Kaldi data dir, keeps the utterances present in all of them (and, with segments, those
whose recording is in wav.scp; the drops are counted in the log by reason, originals kept in <data-dir>/.backup) and
regenerates spk2utt.
"""
import sys

from steps_py.common import run_main
from steps_py.data.datadir import fix_data_dir


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    fix_data_dir(sys.argv[1])


if __name__ == "__main__":
    run_main(main)
