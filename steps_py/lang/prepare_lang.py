"""Usage: python -m steps_py.lang.prepare_lang [options] <dict-dir> <oov-word> <tmp-dir> <lang-dir>

The equivalent of Kaldi's utils/prepare_lang.sh. <dict-dir> holds lexicon.txt (or lexiconp.txt),
silence_phones.txt, nonsilence_phones.txt, optional_silence.txt and optionally extra_questions.txt.
Writes <lang-dir>: phones.txt, words.txt (with <eps>, #0, <s>, </s>), L.fst, L_disambig.fst (binary OpenFst),
topo, oov.txt, oov.int and phones/{silence,nonsilence,optional_silence,disambig,context_indep}.{txt,int,csl},
phones/{sets,roots,extra_questions,word_boundary,align_lexicon}.{txt,int}, phones/wdisambig.txt,
phones/wdisambig_{phones,words}.int. The dir is built beside <lang-dir> and renamed into place at the end; the
intermediate lexicons go to <tmp-dir>. The result is checked with steps_py.lang.validation. A re-run with the same
<dict-dir> and options is skipped (stamp <lang-dir>/.done.prepare_lang), so <lang-dir> keeps its time stamps.

e.g.: python -m steps_py.lang.prepare_lang data/local/dict "<UNK>" data/local/lang_tmp data/lang
"""
import argparse
import os
import shutil
import tempfile


from steps_py.common import InputError, get_logger, open_input, replace_dir, run_main, str2bool, write_lines
from steps_py.completion import Completion, done_stamp, settings_of, skip_if_done
from steps_py.data.datadir import c_sorted
from steps_py.lang.lang_fst import (add_lex_disambig, add_word_positions, apply_phone_map, gen_topo, lexicon_fst_text,
                               phone_map, word_boundary)
from steps_py.kaldi.bindings import kaldifst
from steps_py.lang.lexicon import read_lexicon
from steps_py.lang.validation import validate_lang

log = get_logger("lang.prepare_lang")


def _read_phone_lines(path, required=True):
    """A phone-list file: a list of lists of phones (one list per non-empty line)."""
    if not os.path.isfile(path):
        if required:
            raise InputError(f"no such file {path}")
        return []
    with open_input(path) as f:
        lines = [line.split() for line in f]
    for n, line in enumerate(lines, 1):
        if not line and not path.endswith("extra_questions.txt"):
            raise InputError(f"{path}:{n}: empty line")
    return [line for line in lines if line]


def read_dict_dir(dict_dir):
    """Reads and checks a dictionary dir (the checks of utils/validate_dict_dir.pl that matter).

    Returns ``(entries, silence_lines, nonsilence_lines, optional_silence, extra_question_lines)`` with
    ``entries = [(word, prob, phones)]``. Raises InputError naming the file and line.
    """
    sil = _read_phone_lines(os.path.join(dict_dir, "silence_phones.txt"))
    nonsil = _read_phone_lines(os.path.join(dict_dir, "nonsilence_phones.txt"))
    opt_path = os.path.join(dict_dir, "optional_silence.txt")
    opt = _read_phone_lines(opt_path)
    extra_q_path = os.path.join(dict_dir, "extra_questions.txt")
    extra_q = _read_phone_lines(extra_q_path, required=False)
    seen = {}
    for name, lines in (("silence_phones.txt", sil), ("nonsilence_phones.txt", nonsil)):
        for n, line in enumerate(lines, 1):
            for p in line:
                where = f"{dict_dir}/{name}:{n}"
                if p in seen:
                    raise InputError(f"{where}: phone {p} already listed at {seen[p]}")
                if p.startswith("#") or p == "<eps>":
                    raise InputError(f"{where}: phone {p!r} is reserved")
                seen[p] = where
    if len(opt) != 1 or len(opt[0]) != 1:
        raise InputError(f"{opt_path}: expected exactly one phone")
    if opt[0][0] not in {p for line in sil for p in line}:
        raise InputError(f"{opt_path}:1: optional silence {opt[0][0]} is not in silence_phones.txt")
    for n, line in enumerate(extra_q, 1):
        for p in line:
            if p not in seen:
                raise InputError(f"{extra_q_path}:{n}: phone {p} is not in silence_phones.txt or "
                                 "nonsilence_phones.txt")
    lexp = os.path.join(dict_dir, "lexiconp.txt")
    lex_path = lexp if os.path.isfile(lexp) else os.path.join(dict_dir, "lexicon.txt")
    if lex_path == lexp:
        entries = read_lexicon(lexp, with_probs=True)
    else:
        entries = [(w, 1.0, ps) for w, ps in read_lexicon(lex_path)]
    if not entries:
        raise InputError(f"{lex_path}: empty lexicon")
    for n, (word, _, phones) in enumerate(entries, 1):
        for p in phones:
            if p not in seen:
                raise InputError(f"{lex_path}:{n}: phone {p} of word {word} is not in silence_phones.txt or "
                                 "nonsilence_phones.txt")
    return entries, sil, nonsil, opt[0][0], extra_q


def build_lang(entries, sil_lines, nonsil_lines, opt_sil, extra_q_lines, oov_word, position_dependent=True,
               sil_prob=0.5, num_sil_states=5, num_nonsil_states=3):
    """Everything of a lang dir as data: returns a dict of relative path -> list of lines (text files), plus
    the keys ``"L_text"``, ``"L_disambig_text"`` (OpenFst text), ``"wdisambig"`` ((phone id, word id) of #0),
    ``"tmp"`` (dict of intermediate files for <tmp-dir>)."""
    if position_dependent:
        for line in sil_lines + nonsil_lines:
            for p in line:
                if p[-2:] in ("_B", "_E", "_I", "_S"):
                    raise InputError(f"phone {p} already ends in a word-position marker; "
                                     "use --position-dependent-phones false")
        lex = add_word_positions(entries)
    else:
        lex = list(entries)
    pmap = phone_map(sil_lines, nonsil_lines, position_dependent)
    sets = apply_phone_map(sil_lines + nonsil_lines, pmap)
    silence = [q for line in apply_phone_map(sil_lines, pmap) for q in line]
    nonsilence = [q for line in apply_phone_map(nonsil_lines, pmap) for q in line]
    extra_q = apply_phone_map(extra_q_lines, pmap)
    if position_dependent:
        for suffix in ("_B", "_E", "_I", "_S"):
            extra_q.append([p + suffix for line in nonsil_lines for p in line])
        for suffix in ("", "_B", "_E", "_I", "_S"):
            extra_q.append([p + suffix for line in sil_lines for p in line])

    lex_disambig, max_disambig = add_lex_disambig(lex)
    ndisambig = max_disambig + 1  # one more for the optional silence of L_disambig
    disambig = [f"#{i}" for i in range(ndisambig + 1)]

    phones_list = ["<eps>"] + silence + nonsilence + disambig
    phone_ids = {p: i for i, p in enumerate(phones_list)}
    words = c_sorted({w for w, _, _ in lex})
    for w in ("<s>", "</s>", "#0", "<eps>"):
        if w in words:
            raise InputError(f"{w} is in the vocabulary; it is reserved")
    words_list = ["<eps>"] + words + ["#0", "<s>", "</s>"]
    word_ids = {w: i for i, w in enumerate(words_list)}
    if oov_word not in word_ids:
        raise InputError(f"the OOV word {oov_word!r} is not in the lexicon")

    align_lex = {" ".join((w, w) + ps) for w, _, ps in lex} | {f"<eps> <eps> {opt_sil}"}
    align_lex = c_sorted(align_lex)

    def ints(syms, table=phone_ids):
        return " ".join(str(table[s]) for s in syms)

    out = {
        "phones.txt": [f"{p} {i}" for i, p in enumerate(phones_list)],
        "words.txt": [f"{w} {i}" for i, w in enumerate(words_list)],
        "oov.txt": [oov_word],
        "oov.int": [str(word_ids[oov_word])],
        "phones/sets.txt": [" ".join(s) for s in sets],
        "phones/sets.int": [ints(s) for s in sets],
        "phones/roots.txt": ["shared split " + " ".join(s) for s in sets],
        "phones/roots.int": ["shared split " + ints(s) for s in sets],
        "phones/extra_questions.txt": [" ".join(q) for q in extra_q],
        "phones/extra_questions.int": [ints(q) for q in extra_q],
        "phones/align_lexicon.txt": align_lex,
        "phones/align_lexicon.int": [ints(line.split()[:2], word_ids) + " " + ints(line.split()[2:])
                                     for line in align_lex],
        "phones/wdisambig.txt": ["#0"],
        "phones/wdisambig_phones.int": [str(phone_ids["#0"])],
        "phones/wdisambig_words.int": [str(word_ids["#0"])],
    }
    for name, syms in (("silence", silence), ("nonsilence", nonsilence), ("optional_silence", [opt_sil]),
                       ("disambig", disambig), ("context_indep", silence)):
        out[f"phones/{name}.txt"] = list(syms)
        out[f"phones/{name}.int"] = [str(phone_ids[s]) for s in syms]
        out[f"phones/{name}.csl"] = [":".join(str(phone_ids[s]) for s in syms)]
    if position_dependent:
        out["phones/word_boundary.txt"] = [f"{p} {word_boundary(p)}" for p in silence + nonsilence]
        out["phones/word_boundary.int"] = [f"{phone_ids[p]} {word_boundary(p)}" for p in silence + nonsilence]
    out["topo"] = gen_topo([phone_ids[p] for p in nonsilence], [phone_ids[p] for p in silence],
                           num_nonsil_states, num_sil_states).splitlines()
    out["L_text"] = lexicon_fst_text(lex, phone_ids, word_ids, sil_prob, opt_sil)
    out["L_disambig_text"] = lexicon_fst_text(lex_disambig, phone_ids, word_ids, sil_prob, opt_sil,
                                              f"#{ndisambig}")
    out["wdisambig"] = (phone_ids["#0"], word_ids["#0"])
    out["tmp"] = {
        "lexiconp.txt": [f"{w}\t{p:g}\t" + " ".join(ps) for w, p, ps in lex],
        "lexiconp_disambig.txt": [f"{w}\t{p:g}\t" + " ".join(ps) for w, p, ps in lex_disambig],
        "phone_map.txt": [" ".join([k] + v) for k, v in pmap.items()],
        "lex_ndisambig": [str(ndisambig)],
    }
    return out


def compile_fst(text, olabel_sort=True, self_loops=None):
    """Compiles OpenFst text to a StdVectorFst; optionally adds (ilabel, olabel) self-loops (fstaddselfloops) and
    olabel-sorts it (fstarcsort --sort_type=olabel)."""
    fst = kaldifst.compile(s=text, acceptor=False)
    if self_loops:
        kaldifst.add_self_loops(fst, isyms=[self_loops[0]], osyms=[self_loops[1]])
    if olabel_sort:
        kaldifst.arcsort(fst, sort_type="olabel")
    return fst


def prepare_lang(dict_dir, oov_word, tmp_dir, lang_dir, position_dependent=True, sil_prob=0.5, num_sil_states=5,
                 num_nonsil_states=3):
    """Builds <lang-dir> from <dict-dir>; see the module docstring."""
    entries, sil, nonsil, opt_sil, extra_q = read_dict_dir(dict_dir)
    lang = build_lang(entries, sil, nonsil, opt_sil, extra_q, oov_word, position_dependent, sil_prob,
                      num_sil_states, num_nonsil_states)
    os.makedirs(tmp_dir, exist_ok=True)
    for name, lines in lang.pop("tmp").items():
        write_lines(os.path.join(tmp_dir, name), lines)
    parent = os.path.dirname(os.path.abspath(lang_dir))
    os.makedirs(parent, exist_ok=True)
    build = tempfile.mkdtemp(prefix="." + os.path.basename(os.path.abspath(lang_dir)) + ".tmp.", dir=parent)
    try:
        os.makedirs(os.path.join(build, "phones"))
        l_text, ld_text, wdisambig = lang.pop("L_text"), lang.pop("L_disambig_text"), lang.pop("wdisambig")
        for name, lines in lang.items():
            with open(os.path.join(build, name), "w", encoding="utf-8") as f:
                f.write("".join(line + "\n" for line in lines))
        if not compile_fst(l_text).write(os.path.join(build, "L.fst")):
            raise InputError(f"cannot write {build}/L.fst")
        if not compile_fst(ld_text, self_loops=wdisambig).write(os.path.join(build, "L_disambig.fst")):
            raise InputError(f"cannot write {build}/L_disambig.fst")
        validate_lang(build)
        os.chmod(build, 0o755)
        replace_dir(build, lang_dir)
    except BaseException:
        shutil.rmtree(build, ignore_errors=True)
        raise
    n_words = sum(1 for line in lang["words.txt"]) - 4
    n_phones = len(lang["phones/silence.txt"]) + len(lang["phones/nonsilence.txt"])
    log.info(f"{lang_dir}: {n_words} words, {len(entries)} pronunciations, {n_phones} phones "
             f"({len(lang['phones/sets.txt'])} base phones), {len(lang['phones/disambig.txt'])} disambiguation "
             f"symbols, sil-prob {sil_prob}")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--position-dependent-phones", type=str2bool, default=True, metavar="true|false",
                   help="word-position-dependent phones _B _E _I _S (default: true)")
    p.add_argument("--sil-prob", type=float, default=0.5, help="optional silence probability after a word "
                   "(0 disables it; default: 0.5)")
    p.add_argument("--num-sil-states", type=int, default=5, help="HMM states of silence phones (default: 5)")
    p.add_argument("--num-nonsil-states", type=int, default=3, help="HMM states of other phones (default: 3)")
    p.add_argument("dict_dir")
    p.add_argument("oov_word")
    p.add_argument("tmp_dir")
    p.add_argument("lang_dir")
    a = p.parse_args()
    done = Completion(done_stamp(a.lang_dir, "prepare_lang"), [a.dict_dir], settings_of(a),
                      outputs=[os.path.join(a.lang_dir, f) for f in ("L.fst", "L_disambig.fst", "words.txt",
                                                                     "phones.txt", "topo")])
    if skip_if_done(done, a.lang_dir, log):
        return
    prepare_lang(a.dict_dir, a.oov_word, a.tmp_dir, a.lang_dir, a.position_dependent_phones, a.sil_prob,
                 a.num_sil_states, a.num_nonsil_states)
    done.finish()


if __name__ == "__main__":
    run_main(main)
