"""Usage: python -m steps_py.data.split_data [--per-utt] <data-dir> <num-jobs>

Splits a Kaldi data dir into <data-dir>/split<N>/{1..N}/ like utils/split_data.sh: every per-utterance table
(utt2spk, wav.scp, text, feats.scp, segments, utt2dur, utt2num_frames, ...) is cut so that all utterances of a
speaker land in the same part, and spk2utt, spk2gender, cmvn.scp follow their speakers. With --per-utt the cut is
by utterance (into split<N>utt/, as Kaldi names it) and a speaker may span parts. With segments, wav.scp of a part
holds the recordings its segments use. Parts get contiguous runs of speakers in sorted order, balanced by number
of utterances.

The work is steps_py.data.datadir.split_data's. An existing split is reused when it was made from the same files
(names, sizes and modification times recorded in
split<N>/.source); otherwise it is made again, in a temporary directory renamed into place when complete.
"""
import argparse

from steps_py.common import run_main
from steps_py.data.datadir import split_data

def main():
    parser = argparse.ArgumentParser(usage=__doc__.split("\n")[0][len("Usage: "):], description=__doc__)
    parser.add_argument("--per-utt", action="store_true", help="split by utterance instead of by speaker")
    parser.add_argument("data_dir")
    parser.add_argument("num_jobs", type=int)
    args = parser.parse_args()
    print(split_data(args.data_dir, args.num_jobs, per_utt=args.per_utt))


if __name__ == "__main__":
    run_main(main)
