"""Usage: python -m steps_py.split_data [--per-utt] <data-dir> <num-jobs>

Splits a Kaldi data dir into <data-dir>/split<N>/{1..N}/ like utils/split_data.sh: every per-utterance table
(utt2spk, wav.scp, text, feats.scp, segments, utt2dur, utt2num_frames, ...) is cut so that all utterances of a
speaker land in the same part, and spk2utt, spk2gender, cmvn.scp follow their speakers. With --per-utt the cut is
by utterance (into split<N>utt/, as Kaldi names it) and a speaker may span parts. With segments, wav.scp of a part
holds the recordings its segments use. Parts get contiguous runs of speakers in sorted order, balanced by number
of utterances.

An existing split is reused when it was made from the same files (names, sizes and modification times recorded in
split<N>/.source); otherwise it is made again, in a temporary directory renamed into place when complete.
"""
import argparse
import os
import shutil

from steps_py.common import InputError, get_logger, run_main
from steps_py.datadir import SPK_FILES, c_sorted, read_map, spk2utt_from_utt2spk, write_map

log = get_logger("split_data")

# Tables keyed by utterance id; any of them present in the data dir is split.
UTT_TABLES = ["utt2spk", "text", "feats.scp", "segments", "utt2dur", "utt2num_frames", "utt2uniq", "utt2lang",
              "vad.scp", "utt2warp"]
# Tables keyed by speaker id.
SPK_TABLES = SPK_FILES + ["spk2warp"]
# Tables keyed by recording id when a segments file exists (else wav.scp is keyed by utterance).
REC_TABLES = ["wav.scp", "reco2file_and_channel", "reco2dur"]


def _source_signature(data_dir, names):
    lines = []
    for name in sorted(names):
        st = os.stat(os.path.join(data_dir, name))
        lines.append(f"{name} {st.st_size} {st.st_mtime_ns}")
    return "\n".join(lines) + "\n"


def _partition(counts, num_parts):
    """Cuts a sequence of item weights into ``num_parts`` contiguous non-empty runs of about equal total weight.

    Returns the list of end indices (exclusive) of each run. Needs len(counts) >= num_parts.
    """
    total = sum(counts)
    ends, acc, i = [], 0, 0
    for part in range(num_parts):
        remaining_parts = num_parts - part
        target = total * (part + 1) / num_parts
        start = i
        # take at least one item, and leave at least one item for every later part
        while i < len(counts) - (remaining_parts - 1) and (i == start or acc + counts[i] / 2 <= target):
            acc += counts[i]
            i += 1
        ends.append(i)
    ends[-1] = len(counts)
    return ends


def split_data(data_dir, num_jobs, per_utt=False):
    """Splits ``data_dir`` into ``num_jobs`` parts (see module doc) and returns the split directory's path.

    Raises InputError if there are fewer speakers (or utterances, with per_utt) than jobs, or on malformed tables.
    """
    if num_jobs < 1:
        raise InputError(f"number of jobs must be at least 1, got {num_jobs}")
    if not os.path.isdir(data_dir):
        raise InputError(f"no such data directory {data_dir}")
    if not os.path.isfile(os.path.join(data_dir, "utt2spk")):
        raise InputError(f"{data_dir}: no such file utt2spk")
    has_segments = os.path.isfile(os.path.join(data_dir, "segments"))
    utt_tables = [n for n in UTT_TABLES if os.path.isfile(os.path.join(data_dir, n))]
    if not has_segments and os.path.isfile(os.path.join(data_dir, "wav.scp")):
        utt_tables.append("wav.scp")
    spk_tables = [n for n in SPK_TABLES if os.path.isfile(os.path.join(data_dir, n))]
    rec_tables = [n for n in REC_TABLES if has_segments and os.path.isfile(os.path.join(data_dir, n))]
    names = utt_tables + spk_tables + rec_tables
    split_dir = os.path.join(data_dir, f"split{num_jobs}{'utt' if per_utt else ''}")
    signature = _source_signature(data_dir, names)
    marker = os.path.join(split_dir, ".source")
    if os.path.isfile(marker) and open(marker).read() == signature and \
            all(os.path.isdir(os.path.join(split_dir, str(j))) for j in range(1, num_jobs + 1)):
        log.info(f"reusing {split_dir} (made from the current files of {data_dir})")
        return split_dir

    utt2spk = read_map(os.path.join(data_dir, "utt2spk"))
    spk2utt = spk2utt_from_utt2spk(utt2spk)
    speakers = c_sorted(spk2utt)
    if per_utt:
        utts = c_sorted(utt2spk)
        if len(utts) < num_jobs:
            raise InputError(f"{data_dir}: cannot split {len(utts)} utterances into {num_jobs} parts")
        ends = _partition([1] * len(utts), num_jobs)
        parts = [utts[a:b] for a, b in zip([0] + ends[:-1], ends)]
    else:
        if len(speakers) < num_jobs:
            raise InputError(f"{data_dir}: cannot split {len(speakers)} speaker(s) into {num_jobs} parts "
                             f"(all utterances of a speaker go to one part); use fewer jobs")
        ends = _partition([len(spk2utt[s]) for s in speakers], num_jobs)
        parts = [[u for s in speakers[a:b] for u in spk2utt[s]] for a, b in zip([0] + ends[:-1], ends)]

    tables = {}
    for name in names:
        allow_empty = name == "text"
        tables[name] = read_map(os.path.join(data_dir, name), allow_empty_value=allow_empty)
    segments_recs = {}
    if has_segments:
        for utt, value in tables["segments"].items():
            segments_recs[utt] = value.split()[0]

    tmp_dir = os.path.join(data_dir, f".split{num_jobs}{'utt' if per_utt else ''}.tmp.{os.getpid()}")
    shutil.rmtree(tmp_dir, ignore_errors=True)
    try:
        for job, part_utts in enumerate(parts, 1):
            part_dir = os.path.join(tmp_dir, str(job))
            os.makedirs(part_dir)
            keep_utts = set(part_utts)
            part_utt2spk = {u: utt2spk[u] for u in part_utts}
            keep_spks = set(part_utt2spk.values())
            keep_recs = {segments_recs[u] for u in part_utts if u in segments_recs}
            for name in utt_tables:
                write_map(os.path.join(part_dir, name), {u: v for u, v in tables[name].items() if u in keep_utts})
            for name in spk_tables:
                if name == "spk2utt":
                    continue
                write_map(os.path.join(part_dir, name), {s: v for s, v in tables[name].items() if s in keep_spks})
            write_map(os.path.join(part_dir, "spk2utt"), spk2utt_from_utt2spk(part_utt2spk))
            for name in rec_tables:
                write_map(os.path.join(part_dir, name), {r: v for r, v in tables[name].items() if r in keep_recs})
        with open(os.path.join(tmp_dir, ".source"), "w") as f:
            f.write(signature)
        old = split_dir + f".old.{os.getpid()}"
        if os.path.exists(split_dir):
            os.rename(split_dir, old)
        os.rename(tmp_dir, split_dir)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp_dir, ignore_errors=True)
        raise
    sizes = [len(p) for p in parts]
    log.info(f"split {data_dir} into {num_jobs} parts by {'utterance' if per_utt else 'speaker'} "
             f"({len(utt2spk)} utterances, {len(speakers)} speakers; {min(sizes)}-{max(sizes)} utterances per part)")
    return split_dir


def main():
    parser = argparse.ArgumentParser(usage=__doc__.split("\n")[0][len("Usage: "):], description=__doc__)
    parser.add_argument("--per-utt", action="store_true", help="split by utterance instead of by speaker")
    parser.add_argument("data_dir")
    parser.add_argument("num_jobs", type=int)
    args = parser.parse_args()
    print(split_data(args.data_dir, args.num_jobs, per_utt=args.per_utt))


if __name__ == "__main__":
    run_main(main)
