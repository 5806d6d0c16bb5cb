"""Kaldi data directories: reading, writing, validation (validate_data_dir.sh), repair (fix_data_dir.sh) and
splitting into job parts (split_data.sh).

A data dir holds text tables keyed by utterance or speaker id, sorted in C (byte) order, one entry per line:
``wav.scp`` (utt -> path or ``cmd |``), ``text`` (utt -> words), ``utt2spk``, ``spk2utt``, optional ``spk2gender``,
``segments``, ``feats.scp``, ``cmvn.scp`` (spk -> ark offset), ``utt2dur``, ``utt2num_frames``.
"""
import os
import shutil

from steps_py.common import InputError, atomic_open, get_logger, open_input, split_key

log = get_logger("data.datadir")

UTT_FILES = ["wav.scp", "text", "utt2spk", "feats.scp", "utt2dur", "utt2num_frames", "segments"]
SPK_FILES = ["spk2utt", "spk2gender", "cmvn.scp"]


def c_sorted(keys):
    """Keys in Kaldi's order (LC_ALL=C sort): byte order of the UTF-8 encoding."""
    return sorted(keys, key=lambda k: k.encode("utf-8"))


def read_map(path, allow_empty_value=False):
    """Reads ``key rest-of-line`` lines into a dict (insertion order = file order), split as ``split_key`` does.

    Raises InputError (naming the file and line) on a blank line, a missing value or a repeated key.
    """
    out = {}
    with open_input(path) as f:
        for n, line in enumerate(f, 1):
            key, value = split_key(line)
            if not key:
                raise InputError(f"{path}:{n}: empty line")
            if not value and not allow_empty_value:
                raise InputError(f"{path}:{n}: no value for key {key!r}")
            if key in out:
                raise InputError(f"{path}:{n}: key {key!r} appears twice")
            out[key] = value
    return out


def read_map_lenient(path):
    """{key: rest of line} like read_map, but blank lines and repeated keys are skipped with a warning each."""
    table = {}
    with open_input(path) as f:
        for n, line in enumerate(f, 1):
            key, value = split_key(line)
            if not key:
                log.warning(f"{path}:{n}: skipping an empty line")
                continue
            if key in table:
                log.warning(f"{path}:{n}: skipping repeated key {key}")
                continue
            table[key] = value
    return table


def write_map(path, mapping):
    """Writes ``key value`` lines sorted by key (C order), atomically."""
    with atomic_open(path) as f:
        for k in c_sorted(mapping):
            v = mapping[k]
            f.write(f"{k} {' '.join(v) if isinstance(v, (list, tuple)) else v}".rstrip() + "\n")


def spk2utt_from_utt2spk(utt2spk):
    """{spk: [utt, ...]} with utterances in C order."""
    spk2utt = {}
    for utt in c_sorted(utt2spk):
        spk2utt.setdefault(utt2spk[utt], []).append(utt)
    return spk2utt


def write_data_dir(d, wav_scp, text, utt2spk, spk2gender=None, utt2dur=None):
    """Writes a new data dir from dicts keyed by utterance (spk2gender keyed by speaker); spk2utt is derived."""
    os.makedirs(d, exist_ok=True)
    write_map(os.path.join(d, "wav.scp"), wav_scp)
    if text is not None:
        write_map(os.path.join(d, "text"), text)
    write_map(os.path.join(d, "utt2spk"), utt2spk)
    write_map(os.path.join(d, "spk2utt"), spk2utt_from_utt2spk(utt2spk))
    if spk2gender:
        write_map(os.path.join(d, "spk2gender"), spk2gender)
    if utt2dur:
        write_map(os.path.join(d, "utt2dur"), {u: f"{v:.3f}" for u, v in utt2dur.items()})


def _check_sorted(path):
    """Raises InputError at the first line whose key is not strictly after the previous key in C order."""
    prev = None
    with open_input(path) as f:
        for n, line in enumerate(f, 1):
            key = line.split(maxsplit=1)[0].encode("utf-8") if line.strip() else b""
            if prev is not None and key <= prev:
                what = "repeated" if key == prev else "out of order"
                raise InputError(f"{path}:{n}: key {key.decode()!r} is {what} (files must be sorted with "
                                 f"LC_ALL=C sort -u; steps_py.data.fix_data_dir sorts them)")
            prev = key


def validate_data_dir(d, no_feats=False, no_text=False, no_wav=False):
    """Checks a data dir like Kaldi's validate_data_dir.sh; raises InputError naming the file and line.

    Checks: required files exist, every table is sorted and unique, utt2spk and spk2utt agree, every utterance has
    an entry in text, wav.scp (or segments) and feats.scp, speakers of spk2gender/cmvn.scp match spk2utt, words of
    text are non-empty, utterance ids start with their speaker id (so that sorting by utt groups speakers).
    Returns the number of utterances.
    """
    if not os.path.isdir(d):
        raise InputError(f"no such data directory {d}")
    required = ["utt2spk", "spk2utt"] + ([] if no_text else ["text"]) + ([] if no_feats else ["feats.scp"])
    if not no_wav and not os.path.exists(os.path.join(d, "feats.scp")):
        required.append("wav.scp")
    for name in required:
        if not os.path.isfile(os.path.join(d, name)):
            raise InputError(f"{d}: no such file {name}")
    present = [n for n in UTT_FILES + SPK_FILES if os.path.isfile(os.path.join(d, n))]
    for name in present:
        _check_sorted(os.path.join(d, name))
    utt2spk = read_map(os.path.join(d, "utt2spk"))
    spk2utt = read_map(os.path.join(d, "spk2utt"))
    expect = spk2utt_from_utt2spk(utt2spk)
    for n, (spk, utts) in enumerate(spk2utt.items(), 1):
        if spk not in expect:
            raise InputError(f"{d}/spk2utt:{n}: speaker {spk} has no utterance in utt2spk")
        if utts.split() != expect[spk]:
            raise InputError(f"{d}/spk2utt:{n}: speaker {spk} does not match utt2spk "
                             f"(regenerate it with steps_py.data.fix_data_dir)")
    for spk in expect:
        if spk not in spk2utt:
            raise InputError(f"{d}/spk2utt: speaker {spk} of utt2spk is missing")
    for utt, spk in utt2spk.items():
        if not utt.startswith(spk):
            log.warning(f"{d}/utt2spk: utterance {utt} does not start with its speaker id {spk}; "
                        "speakers may not be contiguous when sorted")
            break
    utts = set(utt2spk)
    keyed_by_utt = [n for n in ["text", "feats.scp", "utt2dur", "utt2num_frames", "segments"] if n in present]
    if "wav.scp" in present and "segments" not in present:
        keyed_by_utt.append("wav.scp")
    for name in keyed_by_utt:
        path = os.path.join(d, name)
        table = read_map(path, allow_empty_value=(name == "text"))
        missing = [u for u in c_sorted(utts) if u not in table]
        extra = [u for u in table if u not in utts]
        if missing or extra:
            msg = f"{path}: "
            if missing:
                msg += f"{len(missing)} utterance(s) of utt2spk missing (first: {missing[0]})"
            if extra:
                line = list(table).index(extra[0]) + 1
                msg += ("; " if missing else "") + f"{len(extra)} not in utt2spk (first: {extra[0]} at line {line})"
            raise InputError(msg + "; steps_py.data.fix_data_dir keeps the utterances present everywhere")
        if name == "text":
            for n, (u, words) in enumerate(table.items(), 1):
                if not words:
                    log.warning(f"{path}:{n}: utterance {u} has an empty transcript")
    for name in ["spk2gender", "cmvn.scp"]:
        if name in present:
            table = read_map(os.path.join(d, name))
            missing = [s for s in spk2utt if s not in table]
            if missing:
                raise InputError(f"{d}/{name}: {len(missing)} speaker(s) missing (first: {missing[0]})")
            if name == "spk2gender":
                for n, (s, g) in enumerate(table.items(), 1):
                    if g not in ("m", "f"):
                        raise InputError(f"{d}/spk2gender:{n}: gender must be m or f, got {g!r}")
    return len(utts)


def per_utterance_tables(names):
    """The tables among ``names`` that fix_data_dir keeps in step: those keyed by utterance (wav.scp only when there
    is no segments file: then it is keyed by recording)."""
    return [n for n in UTT_FILES if n in names and not (n == "wav.scp" and "segments" in names)]


def utterances_to_drop(tables):
    """What fix_data_dir drops, and why: {utt: reason} (C order) for every utterance id of a per-utterance table
    (``tables``: {file name: {key: value}}) that another one lacks ("no entry in text or wav.scp"), or whose
    segment's recording is not in wav.scp."""
    names = per_utterance_tables(tables)
    recordings = tables["wav.scp"] if "segments" in tables and "wav.scp" in tables else None
    drops = {}
    for utt in c_sorted(set().union(*(tables[n] for n in names))):
        reasons = []
        lacking = [n for n in names if utt not in tables[n]]
        if lacking:
            reasons.append(f"no entry in {' or '.join(lacking)}")
        if recordings is not None and utt in tables["segments"] and \
                (tables["segments"][utt].split() or [""])[0] not in recordings:
            reasons.append("its recording is not in wav.scp")
        if reasons:
            drops[utt] = "; ".join(reasons)
    return drops


def count_by_reason(drops):
    """'no entry in text: 2, no entry in wav.scp: 1' of utterances_to_drop's {utt: reason}."""
    counts = {}
    for reason in drops.values():
        counts[reason] = counts.get(reason, 0) + 1
    return ", ".join(f"{reason}: {n}" for reason, n in sorted(counts.items()))


def fix_data_dir(d):
    """Sorts every table, keeps the utterances present in all per-utterance tables (and, with segments, those whose
    recording is in wav.scp), regenerates spk2utt and drops the speakers and recordings left without utterances.

    Like fix_data_dir.sh: the originals go to ``d/.backup/``; the dropped utterances are counted in the log, by
    reason (utterances_to_drop). Returns the number of utterances kept.
    """
    present = [n for n in UTT_FILES + SPK_FILES if os.path.isfile(os.path.join(d, n))]
    if "utt2spk" not in present:
        raise InputError(f"{d}: no such file utt2spk")
    backup = os.path.join(d, ".backup")
    os.makedirs(backup, exist_ok=True)
    tables = {}
    for name in present:
        path = os.path.join(d, name)
        shutil.copy(path, os.path.join(backup, name))
        tables[name] = read_map_lenient(path)
    drops = utterances_to_drop(tables)
    keep = set(tables["utt2spk"]) - set(drops)
    if drops:
        log.warning(f"{d}: dropped {len(drops)} utterance(s) ({count_by_reason(drops)}); originals in {backup}")
    for name in per_utterance_tables(tables):
        write_map(os.path.join(d, name), {u: v for u, v in tables[name].items() if u in keep})
    utt2spk = {u: tables["utt2spk"][u] for u in keep}
    spk2utt = spk2utt_from_utt2spk(utt2spk)
    write_map(os.path.join(d, "spk2utt"), spk2utt)
    for name in ["spk2gender", "cmvn.scp"]:
        if name in tables:
            write_map(os.path.join(d, name), {s: v for s, v in tables[name].items() if s in spk2utt})
    if "segments" in tables and "wav.scp" in tables:
        recs = {tables["segments"][u].split()[0] for u in keep}
        write_map(os.path.join(d, "wav.scp"), {r: v for r, v in tables["wav.scp"].items() if r in recs})
    log.info(f"{d}: {len(keep)} utterances, {len(spk2utt)} speakers")
    return len(keep)


# Tables keyed by utterance id; any of them present in the data dir is split.
UTT_TABLES = ["utt2spk", "text", "feats.scp", "segments", "utt2dur", "utt2num_frames", "utt2uniq", "utt2lang",
              "vad.scp", "utt2warp"]


# Tables keyed by speaker id.
SPK_TABLES = SPK_FILES + ["spk2warp"]


# Tables keyed by recording id when a segments file exists (else wav.scp is keyed by utterance).
REC_TABLES = ["wav.scp", "reco2file_and_channel", "reco2dur"]


# The tables of a data dir that a step reading its features and transcripts depends on (training, alignment,
# decoding): what changes them changes the step's outputs.
FEATURE_STEP_TABLES = ("feats.scp", "cmvn.scp", "text", "utt2spk", "spk2utt")


def data_dir_inputs(data_dir, names=FEATURE_STEP_TABLES):
    """The paths of the tables ``names`` that ``data_dir`` has: the inputs of a step that reads it, for its
    steps_py.completion.Completion (split dirs and other steps' outputs in the data dir are left out)."""
    return [os.path.join(data_dir, n) for n in names if os.path.isfile(os.path.join(data_dir, n))]


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


def split_data(data_dir, num_jobs, per_utt=None):
    """Splits ``data_dir`` into ``num_jobs`` parts (see module doc) and returns the split directory's path.

    per_utt: True splits by utterance, False by speaker, None (default) by speaker when there are at least
    ``num_jobs`` speakers, else by utterance (logged; a dev set of one speaker still decodes with 2 jobs).
    Raises InputError if there are fewer speakers (per_utt=False) or utterances than jobs, or on malformed tables.
    """
    if num_jobs < 1:
        raise InputError(f"number of jobs must be at least 1, got {num_jobs}")
    if not os.path.isdir(data_dir):
        raise InputError(f"no such data directory {data_dir}")
    if not os.path.isfile(os.path.join(data_dir, "utt2spk")):
        raise InputError(f"{data_dir}: no such file utt2spk")
    if per_utt is None:
        num_spks = len(set(read_map(os.path.join(data_dir, "utt2spk")).values()))
        per_utt = num_spks < num_jobs
        if per_utt:
            log.info(f"{data_dir}: {num_spks} speaker(s) for {num_jobs} jobs: split by utterance")
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
