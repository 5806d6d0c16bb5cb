"""Usage: python local/wsj_data_prep.py [options] <wsj0-dir> <wsj1-dir> <data-dir>

Kaldi data dirs for the Wall Street Journal corpus (LDC93S6B = WSJ0, LDC94S13B = WSJ1), like Kaldi's
local/wsj_data_prep.sh + local/wsj_format_data.sh. <wsj0-dir> and <wsj1-dir> hold the LDC disc directories
(11-1.1 ... 11-13.1 ..., 13-1.1 ... 13-34.1; Kaldi's $wsj0/??-{?,??}.?), in any letter case.

Sets (from the LDC .ndx index files, as Kaldi reads them; "disc:path"):
  train_si84   11-13.1:wsj0/doc/indices/train/tr_s_wv1.ndx, without speaker 401 (11-2.1/wsj0/si_tr_s/401)
  train_si284  13-34.1:wsj1/doc/indices/si_tr_s.ndx + the si84 index
  test_eval92  11-13.1:wsj0/doc/indices/test/nvp/si_et_20.ndx (Nov'92, 20k)
  test_dev93   13-34.1:wsj1/doc/indices/h1_p0.ndx (Nov'93 dev, hub 1)
  test_eval93  13-32.1:wsj1/doc/indices/wsj1/eval/h1_p0.ndx (Nov'93, disc id 13_32_1 read as 13_33_1), if present
Utterance id = audio file name without extension (lower case); speaker = its first 3 characters. Transcripts come
from the .dot files on the discs (<first 6 chars of the id>00.dot, lines "words (uttid)"), normalised as Kaldi's
normalize_transcript.pl does: upper case, backslashes removed, [noise] -> <NOISE>, <word> -> word, and [<noise],
[noise>], [noise/], [/noise], ~ and . deleted. Index entries whose audio or transcript is missing are skipped,
each named in the log and counted.

Writes <data-dir>/<set>/{wav.scp,text,utt2spk,spk2utt[,spk2gender]} and <data-dir>/local/dict_words.txt (the words
of the training transcripts and of the LM, the word source for steps_py.lang.prepare_dict). wav.scp entries are
"<utt> <sph2pipe> -f wav <file.wv1> |" when sph2pipe is found (--sph2pipe, PATH, $KALDI_ROOT/tools/sph2pipe_v2.5),
else the .wv1 path itself. spk2gender comes from the spkrinfo.txt files on the discs (and --spkrinfo FILE, e.g.
LDC's wsj0-train-spkrinfo.txt, which is not on the discs); it is written only for sets where every speaker has one.
With --lm-dir-out DIR, the WSJ1 LMs are copied and pruned into DIR (see local/wsj_format_lms.py). A re-run with the
same discs (the signatures of every file on them), spkrinfo files and options is skipped (stamp
<data-dir>/.done.wsj_data_prep), so the data dirs keep their time stamps and what is made from them stays valid.

e.g.: python local/wsj_data_prep.py --lm-dir-out data/local/lm /corpora/LDC93S6B /corpora/LDC94S13B data
"""
import argparse
import collections
import os
import re
import shutil
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from steps_py.common import InputError, get_logger, progress, run_main, write_lines
from steps_py.completion import Completion, done_stamp, settings_of, skip_if_done
from steps_py.data.datadir import c_sorted, validate_data_dir, write_data_dir  # noqa: E402
from wsj_format_lms import find_discs, format_lms  # noqa: E402

log = get_logger("wsj_data_prep")

# (disc that holds the index, index path on it, extension to add to entries without one, disc-id fix)
IndexSpec = collections.namedtuple("IndexSpec", "disc path add_ext disc_fix")
SI84 = IndexSpec("11-13.1", "wsj0/doc/indices/train/tr_s_wv1.ndx", None, None)
SETS = {
    "train_si84": [SI84],
    "train_si284": [IndexSpec("13-34.1", "wsj1/doc/indices/si_tr_s.ndx", None, None), SI84],
    "test_eval92": [IndexSpec("11-13.1", "wsj0/doc/indices/test/nvp/si_et_20.ndx", ".wv1", None)],
    "test_dev93": [IndexSpec("13-34.1", "wsj1/doc/indices/h1_p0.ndx", None, None)],
    "test_eval93": [IndexSpec("13-32.1", "wsj1/doc/indices/wsj1/eval/h1_p0.ndx", None, ("13_32_1", "13_33_1"))],
}
REQUIRED_SETS = ["train_si284", "train_si84", "test_dev93", "test_eval92"]
TRAIN_SET = "train_si284"
SPKRINFO = ["wsj0/doc/spkrinfo.txt", "wsj1/doc/evl_spok/spkrinfo.txt", "wsj1/doc/dev_spok/spkrinfo.txt",
            "wsj1/doc/train/spkrinfo.txt"]
NDX_LINE = re.compile(r"^([0-9_]+):\s*(\S+)$")
DOT_LINE = re.compile(r"^(.*)\((\w{8})\)\s*$")


def normalize_transcript(words, noise_word="<NOISE>"):
    """WSJ .dot transcript words -> Kaldi's normalised words (rules of Kaldi's normalize_transcript.pl).

    >>> normalize_transcript("[loud_breath] And I\\\\. B\\\\. M\\\\. [<door_slam] <and> ~ . --DASH".split())
    ['<NOISE>', 'AND', 'I.', 'B.', 'M.', 'AND', '-DASH']
    """
    out = []
    for w in words:
        w = w.upper().replace("\\", "")
        if w == "%PERCENT":
            w = "PERCENT"
        elif w == ".POINT":
            w = "POINT"
        if (re.match(r"^\[<\w+\]$", w) or re.match(r"^\[\w+>\]$", w) or re.search(r"\[\w+/\]$", w)
                or re.search(r"\[/\w+\]$", w) or w in ("~", ".")):
            continue
        if re.search(r"\[\w+\]", w):
            out.append(noise_word)
            continue
        m = re.match(r"^<([\w']+)>$", w)
        if m:
            out.append(m.group(1))
        elif w == "--DASH":
            out.append("-DASH")
        else:
            out.append(w)
    return out


def parse_ndx(lines, source, add_ext=None, disc_fix=None):
    """Index entries [(disc name '11-1.1', path on the disc, line number)] of an .ndx file's lines.

    Comment lines (';') and blank lines are skipped; any other unparsable line raises InputError naming source:line.
    """
    entries = []
    for n, line in enumerate(lines, 1):
        s = line.strip()
        if not s or s.startswith(";"):
            continue
        m = NDX_LINE.match(s)
        if not m:
            raise InputError(f"{source}:{n}: cannot parse index line {s!r} (expected e.g. "
                             f"11_1_1:wsj0/si_tr_s/011/011c0201.wv1)")
        disc_id, path = m.group(1), m.group(2).lstrip("/")
        if disc_fix and disc_id == disc_fix[0]:
            disc_id = disc_fix[1]
        parts = disc_id.split("_")
        if len(parts) != 3:
            raise InputError(f"{source}:{n}: bad disc id {disc_id!r}")
        if add_ext and not os.path.splitext(path)[1]:
            path += add_ext
        entries.append((f"{parts[0]}-{parts[1]}.{parts[2]}", path, n))
    return entries


def parse_dot(lines, source):
    """{utt id (lower case): transcript string} of a .dot file; raises InputError on a line without '(uttid)'."""
    out = {}
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        m = DOT_LINE.match(line.rstrip("\r\n"))
        if not m:
            raise InputError(f"{source}:{n}: expected 'words (uttid)', got {line.rstrip()!r}")
        out[m.group(2).lower()] = m.group(1).strip()
    return out


def parse_spkrinfo(lines):
    """{speaker (lower case): 'm'|'f'} from an LDC spkrinfo.txt (';' comments, first fields: speaker gender)."""
    out = {}
    for line in lines:
        s = line.strip().lower()
        if not s or s.startswith(";") or "--" in s:
            continue
        f = s.split()
        if len(f) >= 2 and f[1] in ("m", "f"):
            out[f[0]] = f[1]
    return out


class DiscFiles:
    """Case-insensitive view of the files on a set of discs: (disc, lower-case relative path) -> real path.

    Also indexes every .dot file by its 6-character key (directory and name lower-cased).
    """

    def __init__(self, discs):
        self.discs = discs
        self.files = {}
        self.dots = {}
        for disc, root in sorted(discs.items()):
            for dirpath, dirnames, filenames in progress(os.walk(root, followlinks=True), desc=f"scanning {disc}",
                                                         unit="dir"):
                dirnames.sort()
                rel = os.path.relpath(dirpath, root).replace(os.sep, "/").lower()
                for fn in filenames:
                    key = fn.lower() if rel == "." else f"{rel}/{fn.lower()}"
                    self.files.setdefault((disc, key), os.path.join(dirpath, fn))
                    if fn.lower().endswith(".dot") and len(fn) >= 12:
                        self.dots.setdefault(fn[:6].lower(), []).append(os.path.join(dirpath, fn))

    def get(self, disc, relpath):
        return self.files.get((disc, relpath.lower()))

    def find(self, relpath, prefer=None):
        """The real path of relpath on disc `prefer`, else on any disc (sorted), or None."""
        order = ([prefer] if prefer in self.discs else []) + sorted(d for d in self.discs if d != prefer)
        for d in order:
            p = self.get(d, relpath)
            if p:
                return p
        return None


class Transcripts:
    """Transcripts from .dot files, loaded one speaker session (.dot file) at a time and cached."""

    def __init__(self, disc_files):
        self.disc_files = disc_files
        self.cache = {}

    def get(self, utt, audio_path):
        key = utt[:6]
        if key not in self.cache:
            # the .dot file beside the audio first, then any .dot file of that name on the discs
            beside = [os.path.join(os.path.dirname(audio_path), f) for f in os.listdir(os.path.dirname(audio_path))
                      if f.lower() == f"{key}00.dot"]
            table = {}
            for path in beside + self.disc_files.dots.get(key, []):
                if os.path.basename(path).lower() != f"{key}00.dot":
                    continue
                with open(path, encoding="latin-1") as f:
                    for u, t in parse_dot(f, path).items():
                        table.setdefault(u, t)
            self.cache[key] = table
        return self.cache[key].get(utt)


def find_sph2pipe(explicit=None):
    """Path of sph2pipe: the given one, on PATH, or in $KALDI_ROOT/tools/sph2pipe_v2.5; None if not found."""
    if explicit:
        if not (os.path.isfile(explicit) and os.access(explicit, os.X_OK)):
            raise InputError(f"--sph2pipe {explicit}: no such executable")
        return os.path.abspath(explicit)
    p = shutil.which("sph2pipe")
    if p:
        return p
    kaldi = os.environ.get("KALDI_ROOT")
    if kaldi:
        p = os.path.join(kaldi, "tools", "sph2pipe_v2.5", "sph2pipe")
        if os.path.isfile(p) and os.access(p, os.X_OK):
            return p
    return None


def sphere_decodable(path):
    """(True, '') if this SPHERE file's first samples decode here (shorten streams of versions 0-2 in-process,
    other codings by desphere), else (False, reason)."""
    from steps_py.data.audio import read_audio_file
    try:
        read_audio_file(path)
        return True, ""
    except InputError as e:
        return False, str(e)


def collect_set(name, specs, all_files, transcripts, exclude, required):
    """Resolves a set's index entries to {utt: (audio path, normalised words)} with skips counted and logged.

    Returns None when an optional set's index is missing; raises InputError when a required one is.
    """
    utts = {}
    skips = collections.Counter()
    for spec in specs:
        ndx = all_files.find(spec.path, prefer=spec.disc)
        if ndx is None:
            msg = f"{name}: index {spec.path} (on disc {spec.disc}) not found on the discs given " \
                  f"({', '.join(sorted(all_files.discs))})"
            if required:
                raise InputError(msg)
            log.info(msg + f"; {name} not made")
            return None
        with open(ndx, encoding="latin-1") as f:
            entries = parse_ndx(f, ndx, spec.add_ext, spec.disc_fix)
        log.info(f"{name}: {len(entries)} entries in {ndx}")
        for disc, path, n in entries:
            where = f"{disc}/{path}"
            if any(where.lower().startswith(x.lower()) for x in exclude):
                skips["excluded"] += 1
                continue
            if disc not in all_files.discs:
                skips["disc not given"] += 1
                log.warning(f"{name}: skipping {where} ({ndx}:{n}): disc {disc} not found")
                continue
            audio = all_files.get(disc, path)
            if audio is None:
                skips["no audio"] += 1
                log.warning(f"{name}: skipping {where} ({ndx}:{n}): no such audio file")
                continue
            utt = os.path.splitext(os.path.basename(path))[0].lower()
            if utt in utts:
                skips["repeated"] += 1
                continue
            trans = transcripts.get(utt, audio)
            if trans is None:
                skips["no transcript"] += 1
                log.warning(f"{name}: skipping {utt} ({where}): no transcript in {utt[:6]}00.dot")
                continue
            utts[utt] = (os.path.abspath(audio), normalize_transcript(trans.split()))
    total = sum(v for k, v in skips.items() if k != "excluded")
    log.info(f"{name}: {len(utts)} utterances; skipped {total}" +
             (" (" + ", ".join(f"{k}: {v}" for k, v in sorted(skips.items())) + ")" if skips else ""))
    if not utts:
        raise InputError(f"{name}: no utterance left (see the skips above)")
    return utts, skips


def write_set(out_dir, utts, sph2pipe, genders):
    """Writes one data dir; returns the number of speakers without gender."""
    wav = {u: (f"{sph2pipe} -f wav {p} |" if sph2pipe else p) for u, (p, _) in utts.items()}
    text = {u: " ".join(w) for u, (_, w) in utts.items()}
    utt2spk = {u: u[:3] for u in utts}
    spks = set(utt2spk.values())
    no_gender = sorted(s for s in spks if s not in genders)
    spk2gender = {s: genders[s] for s in spks} if not no_gender else None
    for stale in ["spk2gender", "feats.scp", "cmvn.scp", "utt2dur", "utt2num_frames", "segments"]:
        if os.path.exists(os.path.join(out_dir, stale)):
            os.unlink(os.path.join(out_dir, stale))
    write_data_dir(out_dir, wav, text, utt2spk, spk2gender)
    validate_data_dir(out_dir, no_feats=True)
    return no_gender


def prepare(wsj0, wsj1, data_dir, lm_dir=None, sph2pipe=None, spkrinfo=(), exclude=("11-2.1/wsj0/si_tr_s/401",),
            noise_word="<NOISE>", prune_threshold=1e-7):
    """Runs the whole preparation; returns {set: number of utterances}."""
    discs0, discs1 = find_discs(wsj0, "wsj0"), find_discs(wsj1, "wsj1")
    log.info(f"wsj0 discs: {' '.join(sorted(discs0))}; wsj1 discs: {' '.join(sorted(discs1))}")
    clash = set(discs0) & set(discs1)
    if clash:
        raise InputError(f"discs {sorted(clash)} appear under both {wsj0} and {wsj1}")
    all_files = DiscFiles({**discs0, **discs1})
    if not any(k[1].endswith(".ndx") for k in all_files.files):
        raise InputError(f"no .ndx index files on the discs under {wsj0} and {wsj1}: expected the LDC index files "
                         f"such as 11-13.1/wsj0/doc/indices/train/tr_s_wv1.ndx")
    transcripts = Transcripts(all_files)
    sph2pipe = find_sph2pipe(sph2pipe)
    genders = {}
    for rel in SPKRINFO:
        for d in sorted(all_files.discs):
            p = all_files.get(d, rel)
            if p:
                with open(p, encoding="latin-1") as f:
                    genders.update(parse_spkrinfo(f))
    for p in spkrinfo:
        with open(p, encoding="latin-1") as f:
            genders.update(parse_spkrinfo(f))
    log.info(f"gender known for {len(genders)} speakers")

    counts = {}
    train_words = collections.Counter()
    for name, specs in SETS.items():
        got = collect_set(name, specs, all_files, transcripts, exclude, name in REQUIRED_SETS)
        if got is None:
            continue
        utts, _ = got
        out = os.path.join(data_dir, name)
        no_gender = write_set(out, utts, sph2pipe, genders)
        if no_gender:
            log.warning(f"{out}: no gender for {len(no_gender)} of {len({u[:3] for u in utts})} speakers "
                        f"(first: {no_gender[0]}); spk2gender not written (give --spkrinfo "
                        f"wsj0-train-spkrinfo.txt from LDC for the wsj0 training speakers)")
        counts[name] = len(utts)
        if name == TRAIN_SET:
            for _, words in utts.values():
                train_words.update(words)
        if not sph2pipe:
            first = next(iter(utts.values()))[0]
            ok, why = sphere_decodable(first)
            if not ok:
                log.warning(f"{out}/wav.scp: sph2pipe was not found and {first} cannot be decoded "
                            f"({why}); feature extraction will fail. Put sph2pipe on PATH (or pass --sph2pipe; "
                            f"Kaldi builds it in tools/sph2pipe_v2.5) and rerun this stage.")
    lm_vocab = []
    if lm_dir:
        lm_vocab = format_lms(discs1, lm_dir, prune_threshold)
    words = set(train_words) | set(lm_vocab)
    words -= {"<s>", "</s>"}
    write_lines(os.path.join(data_dir, "local", "dict_words.txt"), c_sorted(words))
    log.info(f"{data_dir}/local/dict_words.txt: {len(words)} words ({len(train_words)} from {TRAIN_SET}, "
             f"{len(lm_vocab)} from the LM)")
    log.info("wav.scp uses " + (f"{sph2pipe}" if sph2pipe else
                                "the .wv1 paths (their shorten streams decoded in-process)"))
    return counts


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--lm-dir-out", metavar="DIR", help="copy the WSJ1 LMs into DIR (lm_bg, lm_tg, lm_tgpr)")
    p.add_argument("--prune-threshold", type=float, default=1e-7, help="entropy-pruning threshold of lm_tgpr")
    p.add_argument("--sph2pipe", metavar="PATH", help="sph2pipe binary for wav.scp (default: search for it)")
    p.add_argument("--spkrinfo", metavar="FILE", action="append", default=[],
                   help="extra spkrinfo.txt for spk2gender (repeatable), e.g. wsj0-train-spkrinfo.txt")
    p.add_argument("--exclude", metavar="DISC/PATH", action="append",
                   help="skip index entries under this path (default: 11-2.1/wsj0/si_tr_s/401, as Kaldi)")
    p.add_argument("--noise-word", default="<NOISE>", help="word for [noise] markers (default <NOISE>)")
    p.add_argument("wsj0_dir")
    p.add_argument("wsj1_dir")
    p.add_argument("data_dir")
    a = p.parse_args()
    exclude = a.exclude if a.exclude is not None else ["11-2.1/wsj0/si_tr_s/401"]
    outputs = [os.path.join(a.data_dir, "local", "dict_words.txt")] + \
        ([os.path.join(a.lm_dir_out, "lm_tgpr.arpa.gz")] if a.lm_dir_out else [])
    done = Completion(done_stamp(a.data_dir, "wsj_data_prep"), [a.wsj0_dir, a.wsj1_dir] + a.spkrinfo,
                      settings_of(a), outputs)
    if skip_if_done(done, f"{a.data_dir} (WSJ data dirs)", log):
        return
    counts = prepare(a.wsj0_dir, a.wsj1_dir, a.data_dir, a.lm_dir_out, a.sph2pipe, a.spkrinfo, exclude,
                     a.noise_word, a.prune_threshold)
    done.finish()
    log.info("Data preparation succeeded: " + ", ".join(f"{k} {v}" for k, v in counts.items()))


if __name__ == "__main__":
    run_main(main)
