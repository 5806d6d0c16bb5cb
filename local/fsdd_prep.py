"""Usage: python local/fsdd_prep.py [options] <fsdd-recordings-dir> <out-dir>

Kaldi data dirs of the Free Spoken Digit Dataset (FSDD: {digit}_{speaker}_{index}.wav, 8 kHz, 6 speakers, 50
recordings of each digit per speaker) for egs/kaldi_dir/s5: <out-dir>/{train,dev,test}/{wav.scp,text,utt2spk},
speaker-disjoint (--dev-speakers and --test-speakers; every other speaker trains). Utterance ids are
<speaker>_<digit>_<index> (speaker first, so Kaldi's sort keeps speakers contiguous); transcripts are the digit
words (ZERO ... NINE). The tables are tab-separated, as many corpora ship them. --per-speaker N keeps the first N
indices of each digit and speaker (0: all 50), for small runs. A file whose name does not follow the pattern is
named and skipped; the counts are logged. A re-run with the same recordings (every file's size and time stamp) and
options is skipped (stamp <out-dir>/.done.fsdd_prep), so the tables keep their time stamps and the recipe after
them stays up to date.

e.g.: python local/fsdd_prep.py ../shared/corpora/fsdd/recordings data/src
"""
import argparse
import os
import re
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, ROOT)

from steps_py.common import InputError, get_logger, run_main
from steps_py.completion import Completion, done_stamp, settings_of, skip_if_done
from steps_py.data.datadir import c_sorted  # noqa: E402

log = get_logger("fsdd_prep")

WORDS = ["ZERO", "ONE", "TWO", "THREE", "FOUR", "FIVE", "SIX", "SEVEN", "EIGHT", "NINE"]
NAME = re.compile(r"^(\d)_([a-z]+)_(\d+)\.wav$")


def scan(rec_dir, per_speaker=0):
    """{utt: (speaker, path, words)} of the recordings; files not named {digit}_{speaker}_{index}.wav skipped."""
    if not os.path.isdir(rec_dir):
        raise InputError(f"no such directory {rec_dir}")
    utts, skipped = {}, 0
    for name in sorted(os.listdir(rec_dir)):
        m = NAME.match(name)
        if not m:
            log.warning(f"{os.path.join(rec_dir, name)}: not a {{digit}}_{{speaker}}_{{index}}.wav name; skipped")
            skipped += 1
            continue
        digit, spk, idx = int(m.group(1)), m.group(2), int(m.group(3))
        if per_speaker and idx >= per_speaker:
            continue
        utts[f"{spk}_{digit}_{idx:02d}"] = (spk, os.path.abspath(os.path.join(rec_dir, name)), WORDS[digit])
    if not utts:
        raise InputError(f"{rec_dir}: no FSDD recordings ({{digit}}_{{speaker}}_{{index}}.wav)")
    log.info(f"{rec_dir}: {len(utts)} recordings of {len({s for s, _, _ in utts.values()})} speakers "
             f"({skipped} files skipped)")
    return utts


def write_set(d, utts):
    os.makedirs(d, exist_ok=True)
    keys = c_sorted(utts)
    for name, col in [("wav.scp", 1), ("text", 2), ("utt2spk", 0)]:
        with open(os.path.join(d, name), "w") as f:
            f.writelines(f"{u}\t{utts[u][col]}\n" for u in keys)


def prepare(rec_dir, out_dir, dev_speakers, test_speakers, per_speaker=0):
    utts = scan(rec_dir, per_speaker)
    speakers = {s for s, _, _ in utts.values()}
    for s in dev_speakers + test_speakers:
        if s not in speakers:
            raise InputError(f"speaker {s} has no recordings in {rec_dir} (speakers: {', '.join(sorted(speakers))})")
    if set(dev_speakers) & set(test_speakers):
        raise InputError(f"dev and test share speakers: {sorted(set(dev_speakers) & set(test_speakers))}")
    sets = {"dev": set(dev_speakers), "test": set(test_speakers)}
    sets["train"] = speakers - sets["dev"] - sets["test"]
    if not sets["train"]:
        raise InputError("no speaker is left for training")
    for name, spks in sets.items():
        part = {u: v for u, v in utts.items() if v[0] in spks}
        write_set(os.path.join(out_dir, name), part)
        log.info(f"{out_dir}/{name}: {len(part)} utterances of {', '.join(sorted(spks))}")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dev-speakers", default="theo", help="comma list (default theo)")
    p.add_argument("--test-speakers", default="yweweler", help="comma list (default yweweler)")
    p.add_argument("--per-speaker", type=int, default=0, help="recordings per digit and speaker (0: all)")
    p.add_argument("rec_dir")
    p.add_argument("out_dir")
    a = p.parse_args()
    split = lambda s: [x for x in s.split(",") if x]  # noqa: E731
    outputs = [os.path.join(a.out_dir, s, n) for s in ("train", "dev", "test") for n in ("wav.scp", "text", "utt2spk")]
    done = Completion(done_stamp(a.out_dir, "fsdd_prep"), [a.rec_dir], settings_of(a), outputs)
    if skip_if_done(done, a.out_dir, log):
        return
    prepare(a.rec_dir, a.out_dir, split(a.dev_speakers), split(a.test_speakers), a.per_speaker)
    done.finish()


if __name__ == "__main__":
    run_main(main)
