"""Usage: python -m steps_py.lang.validate_lang <lang-dir>

Checks a Kaldi lang dir like utils/validate_lang.pl (the checks: steps_py.lang.validation); prints the first problem
found with its file and line, or a summary line.
"""
import argparse
import os

from steps_py.common import get_logger, run_main
from steps_py.lang.validation import validate_lang

log = get_logger("lang.validate_lang")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("lang_dir")
    a = p.parse_args()
    c = validate_lang(a.lang_dir)
    g = " and G.fst" if os.path.exists(os.path.join(a.lang_dir, "G.fst")) else ""
    log.info(f"{a.lang_dir}: OK ({c['phones']} phones, {c['words']} words, {c['disambig']} disambiguation "
             f"symbols{g})")


if __name__ == "__main__":
    run_main(main)
