"""Checks of a Kaldi lang dir as utils/validate_lang.pl makes them (validate_lang), and of G.fst (check_g_fst).

validate_lang: the files prepare_lang writes are present; phones.txt and words.txt are well-formed symbol tables
(<eps> 0; #0, <s>, </s> in words.txt); every phones/*.int and *.csl file matches its .txt file through phones.txt
(words.txt for word fields); silence and nonsilence phones partition the non-disambiguation phones; sets/roots cover
every phone once; disambiguation symbols are #0, #1, ... ; oov.int and wdisambig_*.int match; topo loads
(kaldi_hmm_gmm.HmmTopology) and covers exactly the phones; L.fst and L_disambig.fst load, use only known labels, and
L_disambig has the #0:#0 self-loops; G.fst, if present, uses words.txt ids, is ilabel-sorted and has no <s>/</s>. The
first problem found is reported with its file and line.
"""
import os

from steps_py.common import InputError, open_input
from steps_py.kaldi.bindings import kaldifst, khg
from steps_py.kaldi.symbols import read_symbol_table

PHONE_LISTS = ["silence", "nonsilence", "optional_silence", "disambig", "context_indep"]
REQUIRED = (["phones.txt", "words.txt", "oov.txt", "oov.int", "topo", "L.fst", "L_disambig.fst",
             "phones/sets.txt", "phones/sets.int", "phones/roots.txt", "phones/roots.int",
             "phones/extra_questions.txt", "phones/extra_questions.int", "phones/wdisambig.txt",
             "phones/wdisambig_phones.int", "phones/wdisambig_words.int"]
            + [f"phones/{n}.{e}" for n in PHONE_LISTS for e in ("txt", "int", "csl")])


def _lines(path):
    with open_input(path) as f:
        return [line.split() for line in f]


def _check_int_file(lang, name, phone_ids, word_ids=None, word_fields=0, skip_fields=0, tail_fields=0):
    """Checks that <name>.int is <name>.txt mapped through the symbol tables, line by line.

    ``word_fields`` leading fields map through words.txt, ``skip_fields`` leading fields are copied as is,
    ``tail_fields`` trailing fields are copied as is (word_boundary.txt); the rest map through phones.txt.
    """
    txt_path, int_path = os.path.join(lang, name + ".txt"), os.path.join(lang, name + ".int")
    txt, ints = _lines(txt_path), _lines(int_path)
    if len(txt) != len(ints):
        raise InputError(f"{int_path}: {len(ints)} lines but {name}.txt has {len(txt)}")
    for n, (t, i) in enumerate(zip(txt, ints), 1):
        expect = []
        for k, sym in enumerate(t):
            if k < skip_fields or k >= len(t) - tail_fields:
                expect.append(sym)
                continue
            table = word_ids if k < skip_fields + word_fields else phone_ids
            if sym not in table:
                what = "words.txt" if table is word_ids else "phones.txt"
                raise InputError(f"{txt_path}:{n}: symbol {sym!r} is not in {what}")
            expect.append(str(table[sym]))
        if i != expect:
            raise InputError(f"{int_path}:{n}: expected {' '.join(expect)!r} (from {name}.txt), got {' '.join(i)!r}")
    return txt


def _fst_arcs(fst):
    """(ilabels, olabels, loops) of an FST: label sets and the set of (ilabel, olabel) self-loops."""
    ilabels, olabels, loops = set(), set(), set()
    for line in fst.to_str().splitlines():
        f = line.split()
        if len(f) >= 4:
            i, o = int(f[2]), int(f[3])
            ilabels.add(i)
            olabels.add(o)
            if f[0] == f[1]:
                loops.add((i, o))
    return ilabels, olabels, loops


def _read_fst(path):
    if not os.path.isfile(path):
        raise InputError(f"no such file {path}")
    fst = kaldifst.StdVectorFst.read(path)
    if fst is None or fst.num_states == 0:
        raise InputError(f"{path}: cannot read an FST with states (not a binary OpenFst file?)")
    return fst


def check_g_fst(g_path, word_ids):
    """Checks a grammar FST: loads, is ilabel-sorted, uses only ids of words.txt and never <s> or </s>.
    Returns ``(num_states, num_arcs)``."""
    g = _read_fst(g_path)
    if not g.is_ilabel_sorted:
        raise InputError(f"{g_path}: not ilabel-sorted (fstarcsort --sort_type=ilabel)")
    ilabels, olabels, _ = _fst_arcs(g)
    bad = (ilabels | olabels) - set(word_ids.values())
    if bad:
        raise InputError(f"{g_path}: label {sorted(bad)[0]} is not in words.txt")
    for w in ("<s>", "</s>"):
        if word_ids[w] in ilabels | olabels:
            raise InputError(f"{g_path}: has arcs with {w} (arpa2fst --disambig-symbol=#0 removes them)")
    return g.num_states, sum(g.num_arcs(s) for s in range(g.num_states))


def validate_lang(lang, check_g=True):
    """Raises InputError for the first problem found; returns a dict of counts (phones, words, disambig)."""
    if not os.path.isdir(lang):
        raise InputError(f"no such lang directory {lang}")
    for name in REQUIRED:
        if not os.path.isfile(os.path.join(lang, name)):
            raise InputError(f"{lang}: no such file {name}")
    phones_path, words_path = os.path.join(lang, "phones.txt"), os.path.join(lang, "words.txt")
    phone_ids, word_ids = read_symbol_table(phones_path), read_symbol_table(words_path)
    for path, table in ((phones_path, phone_ids), (words_path, word_ids)):
        if table.get("<eps>") != 0:
            raise InputError(f"{path}: <eps> must have id 0")
        if sorted(table.values()) != list(range(len(table))):
            raise InputError(f"{path}: ids are not contiguous from 0")
    for w in ("#0", "<s>", "</s>"):
        if w not in word_ids:
            raise InputError(f"{words_path}: {w} is missing")

    lists = {}
    for name in PHONE_LISTS:
        txt = _check_int_file(lang, f"phones/{name}", phone_ids)
        csl_path = os.path.join(lang, f"phones/{name}.csl")
        csl = open(csl_path, encoding="utf-8").read().strip()
        expect = ":".join(str(phone_ids[line[0]]) for line in txt)
        if csl != expect:
            raise InputError(f"{csl_path}:1: expected {expect!r}, got {csl!r}")
        for n, line in enumerate(txt, 1):
            if len(line) != 1:
                raise InputError(f"{lang}/phones/{name}.txt:{n}: expected one phone per line")
        lists[name] = [line[0] for line in txt]
    sil, nonsil, disambig = set(lists["silence"]), set(lists["nonsilence"]), lists["disambig"]
    both = sil & nonsil
    if both:
        raise InputError(f"{lang}/phones/nonsilence.txt: phone {sorted(both)[0]} is also in silence.txt")
    if disambig != [f"#{i}" for i in range(len(disambig))] or not disambig:
        raise InputError(f"{lang}/phones/disambig.txt: expected #0, #1, ... #N in order")
    real = {p for p in phone_ids if p != "<eps>" and not p.startswith("#")}
    if sil | nonsil != real:
        missing = sorted(real - (sil | nonsil))
        raise InputError(f"{phones_path}: phone {missing[0]} is in neither phones/silence.txt nor nonsilence.txt")
    if {p for p in phone_ids if p.startswith("#")} != set(disambig):
        raise InputError(f"{phones_path}: its #N symbols differ from phones/disambig.txt")
    if len(lists["optional_silence"]) != 1 or lists["optional_silence"][0] not in sil:
        raise InputError(f"{lang}/phones/optional_silence.txt:1: expected one phone of silence.txt")
    if not set(lists["context_indep"]) <= real:
        raise InputError(f"{lang}/phones/context_indep.txt: contains a disambiguation symbol")

    for name, skip in (("phones/sets", 0), ("phones/roots", 2)):
        txt = _check_int_file(lang, name, phone_ids, skip_fields=skip)
        seen = {}
        for n, line in enumerate(txt, 1):
            if skip and (line[0] not in ("shared", "not-shared") or line[1] not in ("split", "not-split")):
                raise InputError(f"{lang}/{name}.txt:{n}: expected '[not-]shared [not-]split phones...'")
            for p in line[skip:]:
                if p in seen:
                    raise InputError(f"{lang}/{name}.txt:{n}: phone {p} already on line {seen[p]}")
                if p not in real:
                    raise InputError(f"{lang}/{name}.txt:{n}: {p} is not a phone")
                seen[p] = n
        if set(seen) != real:
            raise InputError(f"{lang}/{name}.txt: phone {sorted(real - set(seen))[0]} is not covered")
    for n, line in enumerate(_check_int_file(lang, "phones/extra_questions", phone_ids), 1):
        for p in line:
            if p not in real:
                raise InputError(f"{lang}/phones/extra_questions.txt:{n}: {p} is not a phone")
    if os.path.isfile(os.path.join(lang, "phones/word_boundary.txt")):
        txt = _check_int_file(lang, "phones/word_boundary", phone_ids, tail_fields=1)
        kinds = {"begin", "end", "internal", "singleton", "nonword"}
        for n, line in enumerate(txt, 1):
            if len(line) != 2 or line[1] not in kinds:
                raise InputError(f"{lang}/phones/word_boundary.txt:{n}: expected 'phone {'|'.join(sorted(kinds))}'")
        if {line[0] for line in txt} != real:
            raise InputError(f"{lang}/phones/word_boundary.txt: does not list every phone once")
    if os.path.isfile(os.path.join(lang, "phones/align_lexicon.txt")):
        _check_int_file(lang, "phones/align_lexicon", phone_ids, word_ids, word_fields=2)

    oov = _lines(os.path.join(lang, "oov.txt"))
    oov_int = _lines(os.path.join(lang, "oov.int"))
    if len(oov) != 1 or len(oov[0]) != 1 or oov[0][0] not in word_ids:
        raise InputError(f"{lang}/oov.txt:1: expected one word of words.txt")
    if oov_int != [[str(word_ids[oov[0][0]])]]:
        raise InputError(f"{lang}/oov.int:1: expected {word_ids[oov[0][0]]}")
    wd = _lines(os.path.join(lang, "phones/wdisambig.txt"))
    if not wd or wd[0] != ["#0"]:
        raise InputError(f"{lang}/phones/wdisambig.txt:1: expected #0")
    for name, table in (("wdisambig_phones.int", phone_ids), ("wdisambig_words.int", word_ids)):
        got = _lines(os.path.join(lang, "phones", name))
        expect = [[str(table[line[0]])] if line[0] in table else ["?"] for line in wd]
        if got != expect:
            raise InputError(f"{lang}/phones/{name}: expected {' '.join(e[0] for e in expect)}")

    topo_path = os.path.join(lang, "topo")
    topo = khg.HmmTopology()
    try:
        topo.read(open(topo_path, encoding="utf-8").read())
    except Exception as e:  # the binding raises RuntimeError with Kaldi's message
        raise InputError(f"{topo_path}: cannot be read as an HMM topology: {str(e).strip()}") from None
    topo_phones = set(topo.phones)
    real_ids = {phone_ids[p] for p in real}
    if topo_phones != real_ids:
        extra = sorted(topo_phones - real_ids)
        missing = sorted(real_ids - topo_phones)
        inv = {i: p for p, i in phone_ids.items()}
        what = (f"phone {inv.get(missing[0])} ({missing[0]}) is not covered" if missing
                else f"id {extra[0]} is not a phone of phones.txt")
        raise InputError(f"{topo_path}: {what}")

    phone_label_ok = real_ids | {phone_ids[d] for d in disambig} | {0}
    word_label_ok = set(word_ids.values())
    for name in ("L.fst", "L_disambig.fst"):
        path = os.path.join(lang, name)
        ilabels, olabels, loops = _fst_arcs(_read_fst(path))
        bad_i, bad_o = ilabels - phone_label_ok, olabels - word_label_ok
        if bad_i or bad_o:
            raise InputError(f"{path}: label {sorted(bad_i or bad_o)[0]} is not in "
                             f"{'phones.txt' if bad_i else 'words.txt'}")
        has_disambig = bool(ilabels & {phone_ids[d] for d in disambig})
        if name == "L.fst" and has_disambig:
            raise InputError(f"{path}: contains disambiguation symbols (they belong to L_disambig.fst only)")
        if name == "L_disambig.fst" and (phone_ids["#0"], word_ids["#0"]) not in loops:
            raise InputError(f"{path}: has no #0:#0 self-loops (fstaddselfloops with phones/wdisambig_*.int)")

    g_path = os.path.join(lang, "G.fst")
    if check_g and os.path.exists(g_path):
        check_g_fst(g_path, word_ids)
    counts = {"phones": len(real), "words": len(word_ids) - 4, "disambig": len(disambig)}
    return counts
