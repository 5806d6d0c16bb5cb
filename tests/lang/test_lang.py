"""Dictionary, lang dir and validation: prepare_dict, prepare_lang, validate_lang on a few sentences."""
import os
import shutil
import subprocess
import sys

import kaldifst
import pytest

from steps_py.common import InputError
from steps_py.kaldi.symbols import read_symbol_table
from steps_py.lang.lang_fst import add_lex_disambig, gen_topo
from steps_py.lang.lexicon import map_oovs_to_unk, read_lexicon
from steps_py.lang.prepare_dict import prepare_dict
from steps_py.lang.prepare_lang import prepare_lang
from steps_py.lang.validation import validate_lang

from conftest import ROOT


SENTENCES = """\
the cat sat on the mat
two cats read a book too
i read it to you yesterday
the zorglub flew away from the zorglub nest
a cat and a dog went to the park
she sells sea shells by the sea shore
four score and seven years ago
the quick brown fox jumps over the lazy dog
we have nothing to fear but fear itself
to be or not to be that is the question
"""


@pytest.fixture(scope="session")
def work(tmp_path_factory):
    d = tmp_path_factory.mktemp("lang")
    (d / "sents.txt").write_text(SENTENCES)
    (d / "text").write_text("utt1 the cat sat on the mat\nutt2 the zorglub read\n")
    prepare_dict(str(d / "dict"), [str(d / "sents.txt")])
    prepare_lang(str(d / "dict"), "<UNK>", str(d / "lang_tmp"), str(d / "lang"))
    return d


def lexicon_of(dict_dir):
    entries = {}
    for word, phones in read_lexicon(os.path.join(dict_dir, "lexicon.txt")):
        entries.setdefault(word, []).append(" ".join(phones))
    return entries


def test_dict_entries_and_oovs(work):
    lex = lexicon_of(work / "dict")
    assert sorted(lex["READ"]) == ["R EH D", "R IY D"]          # all CMUdict variants, stress removed
    assert lex["CAT"] == ["K AE T"]
    assert lex["!SIL"] == ["SIL"] and lex["<UNK>"] == ["SPN"] and lex["<NOISE>"] == ["NSN"]
    assert lex["<SPOKEN_NOISE>"] == ["SPN"]
    assert "ZORGLUB" not in lex
    assert (work / "dict" / "oov_counts.txt").read_text() == "ZORGLUB 2\n"
    lines = (work / "dict" / "lexicon.txt").read_text().splitlines()
    assert lines == sorted(lines, key=str.encode)                 # C-sorted like LC_ALL=C sort
    assert (work / "dict" / "silence_phones.txt").read_text().split() == ["SIL", "SPN", "NSN"]
    assert (work / "dict" / "optional_silence.txt").read_text() == "SIL\n"
    nonsil = (work / "dict" / "nonsilence_phones.txt").read_text().split()
    assert "AE" in nonsil and not any(ch.isdigit() for p in nonsil for ch in p)
    assert (work / "dict" / "extra_questions.txt").read_text().splitlines()[0] == "SIL SPN NSN"


def test_dict_keep_stress_and_text_input(tmp_path, work):
    prepare_dict(str(tmp_path / "d"), [str(work / "text")], has_ids=True, keep_stress=True)
    lex = lexicon_of(tmp_path / "d")
    assert "UTT1" not in lex                                       # first field is an utterance id
    assert lex["CAT"] == ["K AE1 T"]
    nonsil = [line.split() for line in (tmp_path / "d" / "nonsilence_phones.txt").read_text().splitlines()]
    ae = [line for line in nonsil if "AE1" in line][0]
    assert all(p.startswith("AE") for p in ae)                    # stress variants of a phone share a line
    assert (tmp_path / "d" / "oov_counts.txt").read_text() == "ZORGLUB 1\n"


def test_extra_lexicon_overrides(tmp_path, work):
    extra = tmp_path / "extra.txt"
    extra.write_text("zorglub Z AO1 R G L AH0 B\nREAD R EH D\n")
    prepare_dict(str(tmp_path / "d"), [str(work / "sents.txt")], extra_lexicon=str(extra))
    lex = lexicon_of(tmp_path / "d")
    assert lex["ZORGLUB"] == ["Z AO R G L AH B"]                  # upper-cased word, stress removed
    assert lex["READ"] == ["R EH D"]                               # replaces both CMUdict variants
    assert (tmp_path / "d" / "oov_counts.txt").read_text() == ""


def test_lexicon_line_without_phones(tmp_path, work):
    extra = tmp_path / "extra.txt"
    extra.write_text("ZORGLUB Z AO R G L AH B\nBLAH\n")
    with pytest.raises(InputError, match=r"extra\.txt:2: word 'BLAH' has no phones"):
        prepare_dict(str(tmp_path / "d"), [str(work / "sents.txt")], extra_lexicon=str(extra))
    # The same error through the command line: one line naming the file and line, exit status 1.
    r = subprocess.run([sys.executable, "-m", "steps_py.lang.prepare_dict", "--extra-lexicon", str(extra),
                        str(tmp_path / "d2"), str(work / "sents.txt")], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 1 and "extra.txt:2" in r.stderr and "Traceback" not in r.stderr


def test_map_oovs_to_unk():
    rows = [("u1", ["THE", "ZORGLUB", "CAT"]), ("u2", ["ZORGLUB", "X"])]
    out, counts = map_oovs_to_unk(rows, {"THE", "CAT"}, "<UNK>")
    assert out == [("u1", ["THE", "<UNK>", "CAT"]), ("u2", ["<UNK>", "<UNK>"])]
    assert counts == {"ZORGLUB": 2, "X": 1}


def test_add_lex_disambig():
    entries = [("A", 1.0, ("AH",)), ("AN", 1.0, ("AH", "N")), ("TO", 1.0, ("T", "UW")), ("TOO", 1.0, ("T", "UW")),
               ("TWO", 1.0, ("T", "UW")), ("CAT", 1.0, ("K", "AE", "T"))]
    out, max_disambig = add_lex_disambig(entries)
    assert [ps for _, _, ps in out] == [("AH", "#1"), ("AH", "N"), ("T", "UW", "#1"), ("T", "UW", "#2"),
                                        ("T", "UW", "#3"), ("K", "AE", "T")]
    assert max_disambig == 3


def test_gen_topo_format():
    topo = gen_topo([4, 5], [1, 2], 3, 5).splitlines()
    assert topo[:5] == ["<Topology>", "<TopologyEntry>", "<ForPhones>", "4 5", "</ForPhones>"]
    assert topo[5] == "<State> 0 <PdfClass> 0 <Transition> 0 0.75 <Transition> 1 0.25 </State>"
    assert topo[14] == ("<State> 0 <PdfClass> 0 <Transition> 0 0.25 <Transition> 1 0.25 <Transition> 2 0.25 "
                        "<Transition> 3 0.25 </State>")
    assert topo[-3:] == ["<State> 5 </State>", "</TopologyEntry>", "</Topology>"]


def test_lang_dir_contents(work):
    lang = work / "lang"
    phones = read_symbol_table(str(lang / "phones.txt"))
    words = read_symbol_table(str(lang / "words.txt"))
    for p in ("SIL", "SIL_B", "AE_B", "AE_E", "AE_I", "AE_S", "#0", "#1"):
        assert p in phones
    assert "AE" not in phones                                      # nonsilence phones only in positions
    assert list(words)[0] == "<eps>" and list(words)[-3:] == ["#0", "<s>", "</s>"]
    assert (lang / "oov.txt").read_text() == "<UNK>\n"
    assert (lang / "oov.int").read_text() == f"{words['<UNK>']}\n"
    roots = (lang / "phones" / "roots.txt").read_text().splitlines()
    assert "shared split SIL SIL_B SIL_E SIL_I SIL_S" in roots
    assert "shared split AE_B AE_E AE_I AE_S" in roots
    assert (lang / "phones" / "wdisambig_words.int").read_text() == f"{words['#0']}\n"
    bound = dict(line.split() for line in (lang / "phones" / "word_boundary.txt").read_text().splitlines())
    assert bound["AE_B"] == "begin" and bound["SIL"] == "nonword" and bound["AE_S"] == "singleton"
    lexd = (work / "lang_tmp" / "lexiconp_disambig.txt").read_text()
    assert "TO\t1\tT_B UW_E #" in lexd and "TWO\t1\tT_B UW_E #" in lexd   # homophones are disambiguated
    assert not any(name.startswith(".lang") for name in os.listdir(work))  # no temp dir left behind
    import kaldi_hmm_gmm as khg
    topo = khg.HmmTopology()
    topo.read((lang / "topo").read_text())
    assert sorted(topo.phones) == sorted(i for p, i in phones.items() if p != "<eps>" and not p.startswith("#"))


def word_path(lfst, phone_ids):
    """Output word ids of the best path of L for a phone sequence (compose a linear acceptor with L)."""
    acc = kaldifst.make_linear_acceptor(phone_ids)
    kaldifst.arcsort(acc, sort_type="olabel")
    lfst_sorted = lfst.copy()
    kaldifst.arcsort(lfst_sorted, sort_type="ilabel")
    composed = kaldifst.compose(acc, lfst_sorted)
    if composed.num_states == 0:
        return None
    ok, _, olabels, _ = kaldifst.get_linear_symbol_sequence(kaldifst.shortest_path(composed))
    assert ok
    return olabels


def test_l_disambig_paths(work):
    lang = work / "lang"
    phones = read_symbol_table(str(lang / "phones.txt"))
    words = read_symbol_table(str(lang / "words.txt"))
    ld = kaldifst.StdVectorFst.read(str(lang / "L_disambig.fst"))
    l_fst = kaldifst.StdVectorFst.read(str(lang / "L.fst"))
    cat = [phones[p] for p in ("K_B", "AE_I", "T_E")]
    assert word_path(ld, cat) == [words["CAT"]]
    assert word_path(l_fst, cat + [phones["SIL"]] + cat) == [words["CAT"], words["CAT"]]   # optional silence
    assert word_path(ld, [phones[p] for p in ("K_B", "AE_I", "T_I")]) is None              # not a word
    lexd = dict((line.split("\t")[2], line.split("\t")[0])
                for line in (work / "lang_tmp" / "lexiconp_disambig.txt").read_text().splitlines())
    for seq, word in lexd.items():
        if seq.startswith("T_B UW_E #"):
            assert word_path(ld, [phones[p] for p in seq.split()]) == [words[word]]
    loops = [line.split() for line in ld.to_str().splitlines() if len(line.split()) >= 4]
    assert any(f[0] == f[1] and int(f[2]) == phones["#0"] and int(f[3]) == words["#0"] for f in loops)


def test_validate_lang_ok_and_corrupted(work, tmp_path):
    counts = validate_lang(str(work / "lang"))
    assert counts["disambig"] >= 2 and counts["words"] > 40
    bad = tmp_path / "lang"
    shutil.copytree(work / "lang", bad)
    lines = (bad / "phones" / "silence.int").read_text().splitlines()
    lines[1] = "999"
    (bad / "phones" / "silence.int").write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError, match=r"phones/silence\.int:2"):
        validate_lang(str(bad))
    shutil.copy(work / "lang" / "phones" / "silence.int", bad / "phones" / "silence.int")
    os.unlink(bad / "topo")
    with pytest.raises(InputError, match=r"no such file topo"):
        validate_lang(str(bad))
    shutil.copy(work / "lang" / "topo", bad / "topo")
    (bad / "topo").write_text((bad / "topo").read_text().replace("<ForPhones>\n1 ", "<ForPhones>\n"))
    with pytest.raises(InputError, match=r"topo: phone SIL \(1\) is not covered"):
        validate_lang(str(bad))
    shutil.copy(work / "lang" / "topo", bad / "topo")
    shutil.copy(work / "lang" / "L.fst", bad / "L_disambig.fst")
    with pytest.raises(InputError, match=r"L_disambig\.fst: has no #0:#0 self-loops"):
        validate_lang(str(bad))
    r = subprocess.run([sys.executable, "-m", "steps_py.lang.validate_lang", str(bad)], cwd=ROOT,
                       capture_output=True, text=True)
    assert r.returncode == 1 and "L_disambig.fst" in r.stderr


def test_prepare_lang_variants_and_bad_dict(work, tmp_path):
    prepare_lang(str(work / "dict"), "<UNK>", str(tmp_path / "t"), str(tmp_path / "lang"),
                 position_dependent=False, sil_prob=0.0, num_sil_states=3, num_nonsil_states=1)
    phones = read_symbol_table(str(tmp_path / "lang" / "phones.txt"))
    assert "AE" in phones and "AE_B" not in phones
    assert not (tmp_path / "lang" / "phones" / "word_boundary.txt").exists()
    # re-running over an existing lang dir replaces it
    prepare_lang(str(work / "dict"), "<UNK>", str(tmp_path / "t"), str(tmp_path / "lang"))
    assert "AE_B" in read_symbol_table(str(tmp_path / "lang" / "phones.txt"))
    d = tmp_path / "dict"
    shutil.copytree(work / "dict", d)
    with open(d / "lexicon.txt", "a") as f:
        f.write("QWERTY K W ER T IY XX\n")
    n = len((d / "lexicon.txt").read_text().splitlines())
    with pytest.raises(InputError, match=rf"lexicon\.txt:{n}: phone XX of word QWERTY"):
        prepare_lang(str(d), "<UNK>", str(tmp_path / "t2"), str(tmp_path / "lang2"))
    with pytest.raises(InputError, match=r"OOV word '<OOV>' is not in the lexicon"):
        prepare_lang(str(work / "dict"), "<OOV>", str(tmp_path / "t2"), str(tmp_path / "lang2"))
    assert not (tmp_path / "lang2").exists()
