"""Usage: python -m steps_py.data.copy_data_dir <src-data-dir> <dst-data-dir>

Copies the audio-level tables of a Kaldi data dir (wav.scp, text, utt2spk, spk2utt, spk2gender, utt2dur, and
segments, reco2file_and_channel, reco2dur when present) to another dir, e.g. data/train -> data/train_fbank for a
second feature type. Features (feats.scp, utt2num_frames) and cmvn.scp are not copied. A destination file whose
content is already the same is left untouched (its time stamp too), so a re-run keeps existing work valid; a
destination table the source no longer has is removed, with a log line.
"""
import filecmp
import os
import shutil
import sys

from steps_py.common import InputError, atomic_path, get_logger, run_main

log = get_logger("data.copy_data_dir")

COPIED = ["wav.scp", "text", "utt2spk", "spk2utt", "spk2gender", "utt2dur", "segments", "reco2file_and_channel",
          "reco2dur"]


def copy_data_dir(src, dst):
    """Copies the tables listed in COPIED from ``src`` to ``dst``. Returns the names of the files that changed."""
    if not os.path.isdir(src):
        raise InputError(f"no such data directory {src}")
    for name in ("utt2spk", "spk2utt"):
        if not os.path.isfile(os.path.join(src, name)):
            raise InputError(f"{src}: no such file {name}")
    if os.path.abspath(src) == os.path.abspath(dst):
        raise InputError(f"source and destination are the same directory: {src}")
    os.makedirs(dst, exist_ok=True)
    changed = []
    for name in COPIED:
        s, d = os.path.join(src, name), os.path.join(dst, name)
        if os.path.isfile(s):
            if os.path.isfile(d) and filecmp.cmp(s, d, shallow=False):
                continue
            with atomic_path(d) as tmp:
                shutil.copyfile(s, tmp)
            changed.append(name)
        elif os.path.isfile(d):
            os.unlink(d)
            log.info(f"removed {d}: {src} has no {name}")
            changed.append(name)
    log.info(f"copied {src} to {dst}" + (f" ({', '.join(changed)} changed)" if changed else " (already the same)"))
    return changed


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__.split("\n")[0])
    copy_data_dir(sys.argv[1], sys.argv[2])


if __name__ == "__main__":
    run_main(main)
