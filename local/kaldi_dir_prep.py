"""Usage: python local/kaldi_dir_prep.py [options] --train DIR [--dev DIR] [--test DIR] <data-dir>

Prepares existing Kaldi data dirs for the recipe (egs/kaldi_dir/s5):
  1. copies each given dir into <data-dir>/{train,dev,test}: wav.scp (paths or "cmd |" pipes), text, utt2spk,
     spk2utt, and segments, spk2gender, utt2dur, reco2file_and_channel when present (feats.scp and cmvn.scp are
     not copied: stage 1 computes the features again). Without utt2spk (and spk2utt), each utterance is its own
     speaker. Words are upper-cased unless --upper-case false (CMUdict and prepare_dict use upper case).
  2. repairs them as fix_data_dir does: utterances missing from text, wav.scp (or segments) or utt2spk, or whose
     segment's recording is not in wav.scp, are dropped, each named once in the log with its reasons and counted;
     the result is validated.
  3. writes <data-dir>/local/lm_text.txt (the sentences of --lm-text, or else the training transcripts) and
     <data-dir>/local/dict_words.txt (the words of the training transcripts and of the LM text), and makes
     <data-dir>/local/dict with steps_py.lang.prepare_dict (CMUdict, with --lexicon merged over it).
  4. maps the words of each text file that have no pronunciation in the dict to --unk-word (the original goes to
     text.orig), logging the count per set, the total, and the most frequent such words; writes them all to
     <data-dir>/local/text_oov_counts.txt ("WORD COUNT", most frequent first).
Audio is not read here; a sample rate other than the one in conf/mfcc.conf is handled at stage 1 (resampled when
the feature config allows it). A re-run with the same source tables, lexicon, LM text and options is skipped (stamp
<data-dir>/.done.kaldi_dir_prep), so the data dirs keep their time stamps and what is made from them stays valid.

e.g.: python local/kaldi_dir_prep.py --train /data/swbd/train --dev /data/swbd/dev --lexicon my.lex data
"""
import argparse
import collections
import os
import shutil
import subprocess
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, ROOT)

from steps_py.common import InputError, get_logger, open_input, run_main, str2bool, write_lines
from steps_py.completion import Completion, done_stamp, settings_of, skip_if_done
from steps_py.data.datadir import (UTT_FILES, c_sorted, data_dir_inputs, fix_data_dir, read_map,  # noqa: E402
                                   read_map_lenient, utterances_to_drop, validate_data_dir, write_map)
from steps_py.lang.lexicon import map_oovs_to_unk  # noqa: E402

log = get_logger("kaldi_dir_prep")

COPIED = ["wav.scp", "text", "utt2spk", "spk2utt", "segments", "spk2gender", "utt2dur", "reco2file_and_channel"]
NOT_COPIED = ["feats.scp", "cmvn.scp", "utt2num_frames"]
MAX_NAMED = 20  # skips named one by one in the log, per set and reason; the rest are counted


def map_oov_words(text, vocab, unk_word="<UNK>"):
    """Replaces words not in vocab by unk_word (lexicon.map_oovs_to_unk on a {utt: transcript} dict).

    text: {utt: "w1 w2 ..."}; vocab: set of words. Returns ({utt: mapped transcript}, Counter of replaced words).
    """
    rows, replaced = map_oovs_to_unk([(utt, words.split()) for utt, words in text.items()], vocab, unk_word)
    return {utt: " ".join(words) for utt, words in rows}, collections.Counter(replaced)


def log_missing(name, what, utts):
    """Logs utterances dropped for one reason: each by name (up to MAX_NAMED), then the count."""
    if not utts:
        return
    for u in utts[:MAX_NAMED]:
        log.warning(f"{name}: dropping {u}: {what}")
    more = f" ({len(utts) - MAX_NAMED} more not named)" if len(utts) > MAX_NAMED else ""
    log.warning(f"{name}: {len(utts)} utterance(s) dropped: {what}{more}")


def copy_data_dir(src, dst, name, upper_case=True):
    """Copies and repairs one Kaldi data dir (steps 1-2 of the module docstring); returns the number kept."""
    if not os.path.isdir(src):
        raise InputError(f"--{name} {src}: no such directory")
    for f in ["wav.scp", "text"]:
        if not os.path.isfile(os.path.join(src, f)):
            raise InputError(f"--{name} {src}: no such file {f} (a Kaldi data dir needs wav.scp and text)")
    tmp = dst + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    for f in COPIED:
        if os.path.isfile(os.path.join(src, f)):
            shutil.copy(os.path.join(src, f), os.path.join(tmp, f))
    skipped = [f for f in NOT_COPIED if os.path.isfile(os.path.join(src, f))]
    if skipped:
        log.info(f"{name}: not copied from {src}: {' '.join(skipped)} (features are computed again at stage 1)")

    text = read_map_lenient(os.path.join(tmp, "text"))
    if upper_case:
        text = {u: t.upper() for u, t in text.items()}
    write_map(os.path.join(tmp, "text"), text)
    if not os.path.isfile(os.path.join(tmp, "utt2spk")):
        if os.path.isfile(os.path.join(tmp, "spk2utt")):
            utt2spk = {u: s for s, us in read_map_lenient(os.path.join(tmp, "spk2utt")).items() for u in us.split()}
            log.info(f"{name}: utt2spk made from spk2utt")
        else:
            utt2spk = {u: u for u in text}
            log.warning(f"{name}: {src} has no utt2spk or spk2utt: each utterance is its own speaker "
                        f"(per-speaker CMVN becomes per-utterance)")
        write_map(os.path.join(tmp, "utt2spk"), utt2spk)

    # name what fix_data_dir is going to drop, each utterance once with its reasons
    tables = {f: read_map_lenient(os.path.join(tmp, f)) for f in UTT_FILES if os.path.isfile(os.path.join(tmp, f))}
    drops = utterances_to_drop(tables)
    for reason in sorted(set(drops.values())):
        log_missing(name, reason, [u for u, r in drops.items() if r == reason])
    kept = fix_data_dir(tmp)
    shutil.rmtree(os.path.join(tmp, ".backup"), ignore_errors=True)
    if kept == 0:
        raise InputError(f"--{name} {src}: no utterance is in all of text, utt2spk and wav.scp (or segments)")
    validate_data_dir(tmp, no_feats=True)
    shutil.rmtree(dst, ignore_errors=True)
    os.replace(tmp, dst)
    log.info(f"{name}: {src} -> {dst}: {kept} utterances kept, {len(drops)} dropped")
    return kept


def lexicon_words(path):
    """The words (first fields) of a lexicon.txt."""
    words = set()
    with open_input(path) as f:
        for line in f:
            if line.strip():
                words.add(line.split(maxsplit=1)[0])
    return words


def run_prepare_dict(dict_dir, words_file, lexicon=None, keep_stress=False, unk_word="<UNK>", upper_case=True):
    cmd = [sys.executable, "-m", "steps_py.lang.prepare_dict", "--keep-stress", str(keep_stress).lower(),
           "--unk-word", unk_word, "--upper-case", str(upper_case).lower()]
    if lexicon:
        cmd += ["--extra-lexicon", lexicon]
    cmd += [dict_dir, words_file]
    env = dict(os.environ, PYTHONPATH=os.path.abspath(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    log.info(" ".join(cmd[1:]))
    r = subprocess.run(cmd, env=env)
    if r.returncode != 0:
        raise InputError(f"steps_py.lang.prepare_dict failed (exit {r.returncode}); see its messages above")


def prepare(data_dir, sets, lexicon=None, lm_text=None, unk_word="<UNK>", keep_stress=False, upper_case=True,
            top_oovs=10):
    """Runs steps 1-4 of the module docstring. sets: {name: source dir}. Returns {name: (utts, oov tokens)}."""
    if "train" not in sets:
        raise InputError("--train DIR is required")
    if lexicon and not os.path.isfile(lexicon):
        raise InputError(f"--lexicon {lexicon}: no such file")
    if lm_text and not os.path.isfile(lm_text):
        raise InputError(f"--lm-text {lm_text}: no such file")
    counts = {}
    for name, src in sets.items():
        counts[name] = copy_data_dir(src, os.path.join(data_dir, name), name, upper_case)

    local = os.path.join(data_dir, "local")
    train_text = read_map(os.path.join(data_dir, "train", "text"), allow_empty_value=True)
    if lm_text:
        with open_input(lm_text) as f:
            sentences = [" ".join(line.split()) for line in f if line.strip()]
        if upper_case:
            sentences = [s.upper() for s in sentences]
        source = lm_text
    else:
        sentences = [t for t in (train_text[u] for u in c_sorted(train_text)) if t]
        source = f"{data_dir}/train/text"
    write_lines(os.path.join(local, "lm_text.txt"), sentences)
    log.info(f"{local}/lm_text.txt: {len(sentences)} sentences from {source}")
    words = {w for t in train_text.values() for w in t.split()} | {w for s in sentences for w in s.split()}
    write_lines(os.path.join(local, "dict_words.txt"), c_sorted(words))

    dict_dir = os.path.join(local, "dict")
    run_prepare_dict(dict_dir, os.path.join(local, "dict_words.txt"), lexicon, keep_stress, unk_word, upper_case)
    vocab = lexicon_words(os.path.join(dict_dir, "lexicon.txt"))

    total, result = collections.Counter(), {}
    for name in sets:
        d = os.path.join(data_dir, name)
        orig = os.path.join(d, "text.orig")
        if not os.path.isfile(orig):
            shutil.copy(os.path.join(d, "text"), orig)
        text = read_map(orig, allow_empty_value=True)
        mapped, oovs = map_oov_words(text, vocab, unk_word)
        write_map(os.path.join(d, "text"), mapped)
        n_tokens = sum(len(t.split()) for t in text.values())
        n_oov = sum(oovs.values())
        top = ", ".join(f"{w} {c}" for w, c in oovs.most_common(top_oovs))
        log.info(f"{name}: {n_oov} of {n_tokens} words ({100.0 * n_oov / max(n_tokens, 1):.2f}%) have no "
                 f"pronunciation and became {unk_word} ({len(oovs)} distinct)" + (f"; most frequent: {top}" if top
                                                                                    else ""))
        total.update(oovs)
        result[name] = (counts[name], n_oov)
    with open(os.path.join(local, "text_oov_counts.txt"), "w", encoding="utf-8") as f:
        f.writelines(f"{w} {c}\n" for w, c in sorted(total.items(), key=lambda x: (-x[1], x[0])))
    top = ", ".join(f"{w} {c}" for w, c in total.most_common(top_oovs))
    log.info(f"all sets: {sum(total.values())} words mapped to {unk_word} ({len(total)} distinct)" +
             (f"; most frequent: {top}" if top else "") + f"; list in {local}/text_oov_counts.txt")
    return result


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--train", required=True, metavar="DIR", help="Kaldi data dir for training")
    p.add_argument("--dev", metavar="DIR", help="Kaldi data dir for development (tuning)")
    p.add_argument("--test", metavar="DIR", help="Kaldi data dir for testing")
    p.add_argument("--lexicon", metavar="FILE", help="WORD PH1 PH2 ... lines merged over CMUdict")
    p.add_argument("--lm-text", metavar="FILE", help="LM training sentences (default: the training transcripts)")
    p.add_argument("--unk-word", default="<UNK>", help="word for words without a pronunciation (default <UNK>)")
    p.add_argument("--keep-stress", type=str2bool, default=False, metavar="true|false")
    p.add_argument("--upper-case", type=str2bool, default=True, metavar="true|false",
                   help="upper-case the transcripts (default true, as CMUdict)")
    p.add_argument("data_dir")
    a = p.parse_args()
    sets = {k: v for k, v in [("train", a.train), ("dev", a.dev), ("test", a.test)] if v}
    inputs = [f for src in sets.values() for f in data_dir_inputs(src, COPIED)] + \
        [f for f in (a.lexicon, a.lm_text) if f]
    outputs = [os.path.join(a.data_dir, name, "text") for name in sets] + \
        [os.path.join(a.data_dir, "local", f) for f in ("lm_text.txt", "dict/lexicon.txt")]
    done = Completion(done_stamp(a.data_dir, "kaldi_dir_prep"), inputs, settings_of(a), outputs)
    if skip_if_done(done, f"{a.data_dir} (data dirs and dictionary)", log):
        return
    prepare(a.data_dir, sets, a.lexicon, a.lm_text, a.unk_word, a.keep_stress, a.upper_case)
    done.finish()


if __name__ == "__main__":
    run_main(main)
