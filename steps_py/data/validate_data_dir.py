"""Usage: python -m steps_py.data.validate_data_dir [--no-feats] [--no-text] [--no-wav] <data-dir>

Checks a Kaldi data dir (sorted, unique, consistent tables); prints the first problem with its file and line.
"""
import argparse

from steps_py.common import get_logger, run_main
from steps_py.data.datadir import validate_data_dir


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--no-feats", action="store_true", help="do not require feats.scp")
    p.add_argument("--no-text", action="store_true", help="do not require text")
    p.add_argument("--no-wav", action="store_true", help="do not require wav.scp")
    p.add_argument("data_dir")
    a = p.parse_args()
    n = validate_data_dir(a.data_dir, no_feats=a.no_feats, no_text=a.no_text, no_wav=a.no_wav)
    get_logger("data.validate_data_dir").info(f"{a.data_dir}: {n} utterances, OK")


if __name__ == "__main__":
    run_main(main)
