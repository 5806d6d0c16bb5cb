"""Language models: train_lm (Kneser-Ney, pruning, perplexity), format_lm (G.fst) and an L o G graph check.

format_lm runs kaldilm, which must not share a process with kaldi_hmm_gmm imported after it, so it is only ever
run as a subprocess here (never imported).
"""
import gzip
import math
import os
import re
import subprocess
import sys

import kaldifst
import pytest
from kaldingram.ppl import compute_ppl

from steps_py.common import InputError
from steps_py.kaldi.symbols import read_symbol_table
from steps_py.lang.prepare_dict import prepare_dict
from steps_py.lang.prepare_lang import prepare_lang
from steps_py.lang.train_lm import parse_arpa, perplexity, train_kn, train_lm
from steps_py.lang.validation import validate_lang

from conftest import ROOT

FORTUNES = "/usr/share/games/fortunes"


def fortune_sentences(n, min_words=4, max_words=14):
    """Up to ``n`` distinct upper-case sentences of letters and apostrophes from the fortunes files."""
    out, seen = [], set()
    for name in ("fortunes", "wisdom", "literature", "people", "science"):
        path = os.path.join(FORTUNES, name)
        if not os.path.isfile(path):
            continue
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
        for chunk in re.split(r"[.!?%\n]\s*", text):
            words = [w.strip("'").upper() for w in re.findall(r"[A-Za-z']+", chunk)]
            words = [w for w in words if w]
            if min_words <= len(words) <= max_words and " ".join(words) not in seen:
                seen.add(" ".join(words))
                out.append(" ".join(words))
                if len(out) == n:
                    return out
    return out


@pytest.fixture(scope="session")
def lm_setup(tmp_path_factory):
    sents = fortune_sentences(460)
    assert len(sents) == 460, f"only {len(sents)} sentences in {FORTUNES} (Debian packages fortunes, fortunes-min)"
    d = tmp_path_factory.mktemp("lm")
    train, dev = sents[:400], sents[400:]
    (d / "lm_text.txt").write_text("\n".join(train) + "\n")
    (d / "dev_text").write_text("".join(f"dev{i:03d} {s}\n" for i, s in enumerate(dev)))
    prepare_dict(str(d / "dict"), [str(d / "lm_text.txt")])
    prepare_lang(str(d / "dict"), "<UNK>", str(d / "lang_tmp"), str(d / "lang"))
    results = train_lm(str(d / "lm_text.txt"), str(d / "dict" / "lexicon.txt"), str(d / "lm"), order=3,
                       prune_threshold=1e-5, dev_text=str(d / "dev_text"))
    for lm in ("tg", "tgpr"):
        r = subprocess.run([sys.executable, "-m", "steps_py.lang.format_lm", str(d / "lang"),
                            str(d / "lm" / f"lm_{lm}.arpa.gz"), str(d / f"lang_test_{lm}")],
                           cwd=ROOT, capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
    return d, results


def read_arpa(path):
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return parse_arpa(f.read())


def ngram_total(lm):
    return sum(len(ws) for o in range(lm.order()) for ws in lm._ngrams[o].values())


def test_lm_files_and_perplexity(lm_setup):
    d, results = lm_setup
    tg, tgpr = read_arpa(d / "lm" / "lm_tg.arpa.gz"), read_arpa(d / "lm" / "lm_tgpr.arpa.gz")
    assert tg.order() == 3 and tgpr.order() == 3
    assert ngram_total(tgpr) < ngram_total(tg)
    assert len(tgpr._ngrams[0][()]) == len(tg._ngrams[0][()])     # unigrams are never pruned
    assert "<UNK>" in tg._vocabulary                              # text words without pronunciation
    for name in ("tg", "tgpr"):
        st = results[name]
        assert 1.0 < st["ppl"] < 1e5 and math.isfinite(st["ppl1"])
        assert st["sentences"] == 60 and st["oovs"] >= st["lexicon_oovs"]
    assert results["tgpr"]["ppl"] >= results["tg"]["ppl"] * 0.98
    report = (d / "lm" / "perplexity.txt").read_text()
    assert re.search(r"^lm_tgpr: 60 sentences, \d+ words, \d+ OOVs, logprob= -[\d.]+ ppl= [\d.]+", report, re.M)


def test_lm_normalised(lm_setup):
    """P(w | h) sums to 1 over the vocabulary (without <s>) for seen and unseen histories, before and after
    pruning (pruning recomputes the back-off weights)."""
    d, _ = lm_setup
    for name in ("tg", "tgpr"):
        lm = read_arpa(d / "lm" / f"lm_{name}.arpa.gz")
        vocab = [w for w in lm._vocabulary if w != "<s>"]
        seen_bigram = next(h for h in lm._ngrams[2] if h[0] != "<s>")   # a context of some trigrams
        unseen_bigram = next(("THE", w) for w in sorted(vocab) if ("THE", w) not in lm._ngrams[2])
        for hist in [("<s>",), ("THE",), seen_bigram, unseen_bigram]:
            total = sum(10 ** lm.log_p_raw(hist + (w,)) for w in vocab)
            assert abs(total - 1.0) < 1e-3, (name, hist, total)


def test_perplexity_matches_kaldingram(lm_setup):
    d, _ = lm_setup
    lm = read_arpa(d / "lm" / "lm_tg.arpa.gz")
    sents = [line.split()[1:] for line in (d / "dev_text").read_text().splitlines()]
    clean = [s for s in sents if all(w in lm._vocabulary for w in s)]
    assert len(clean) >= 5
    ours = perplexity(lm, clean)
    theirs = compute_ppl(lm, [" ".join(s) for s in clean])
    assert ours["oovs"] == 0 and abs(ours["ppl"] - theirs["ppl"]) < 1e-6 * theirs["ppl"]


def test_unigram_lm():
    """kaldingram's order-1 path counts only the first word of a file's lines; train_kn does not, and P(<s>)=0."""
    text, lm = train_kn([["A", "B", "B"], ["B", "C"]], 1)
    uni = lm._ngrams[0][()]
    assert uni["<s>"] == -99.0
    counts = {"A": 1, "B": 3, "C": 1, "</s>": 2}
    for w, c in counts.items():
        assert abs(10 ** uni[w] - c / 7) < 1e-6
    assert "ngram 1=5" in text


def test_train_lm_bad_input(tmp_path, lm_setup):
    d, _ = lm_setup
    (tmp_path / "t.txt").write_text("THE CAT\nA </s> B\n")
    with pytest.raises(InputError, match=r"t\.txt:2: </s>"):
        train_lm(str(tmp_path / "t.txt"), str(d / "dict" / "lexicon.txt"), str(tmp_path / "lm"))


def test_g_fst(lm_setup):
    d, _ = lm_setup
    words = read_symbol_table(str(d / "lang" / "words.txt"))
    for name in ("tg", "tgpr"):
        lang = d / f"lang_test_{name}"
        assert read_symbol_table(str(lang / "words.txt")) == words
        validate_lang(str(lang))                                    # G uses words.txt ids, ilabel-sorted
        g = kaldifst.StdVectorFst.read(str(lang / "G.fst"))
        assert g.num_states > 10
        labels = {int(f[2]) for f in (line.split() for line in g.to_str().splitlines()) if len(f) >= 4}
        lm = read_arpa(d / "lm" / f"lm_{name}.arpa.gz")
        expect = {words[w] for w in lm._vocabulary if w not in ("<s>", "</s>")} | {words["#0"]}
        assert labels == expect


def test_format_lm_removes_oov_ngrams(lm_setup, tmp_path):
    d, _ = lm_setup
    with gzip.open(d / "lm" / "lm_tgpr.arpa.gz", "rt") as f:
        arpa = f.read()
    n1 = int(re.search(r"ngram 1=(\d+)", arpa).group(1))
    n2 = int(re.search(r"ngram 2=(\d+)", arpa).group(1))
    arpa = arpa.replace(f"ngram 1={n1}", f"ngram 1={n1 + 1}").replace(f"ngram 2={n2}", f"ngram 2={n2 + 1}")
    arpa = arpa.replace("\\1-grams:\n", "\\1-grams:\n-3.0\tXYZZY\t-0.5\n")
    arpa = arpa.replace("\\2-grams:\n", "\\2-grams:\n-1.0\tXYZZY THE\n")
    (tmp_path / "oov.arpa").write_text(arpa)
    r = subprocess.run([sys.executable, "-m", "steps_py.lang.format_lm", str(d / "lang"), str(tmp_path / "oov.arpa"),
                        str(tmp_path / "lang_oov")], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "removed 1 1-grams, 1 2-grams, 0 3-grams containing 1 word(s)" in r.stderr
    g_ref = kaldifst.StdVectorFst.read(str(d / "lang_test_tgpr" / "G.fst"))
    g = kaldifst.StdVectorFst.read(str(tmp_path / "lang_oov" / "G.fst"))
    assert (g.num_states, g.to_str()) == (g_ref.num_states, g_ref.to_str())
    # a malformed n-gram line is reported with its file and line
    lines = arpa.splitlines()
    k = lines.index("\\2-grams:") + 1
    lines[k] = "-1.0\tXYZZY"
    (tmp_path / "bad.arpa").write_text("\n".join(lines) + "\n")
    r = subprocess.run([sys.executable, "-m", "steps_py.lang.format_lm", str(d / "lang"), str(tmp_path / "bad.arpa"),
                        str(tmp_path / "lang_bad")], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 1 and f"bad.arpa:{k + 1}:" in r.stderr and not (tmp_path / "lang_bad").exists()


def test_l_compose_g_determinizes(lm_setup):
    """L_disambig o G determinizes (the disambiguation symbols make it determinizable), and the result is
    deterministic: no state has two arcs with the same input label, and no epsilon inputs remain."""
    d, _ = lm_setup
    lang = d / "lang_test_tgpr"
    ld = kaldifst.StdVectorFst.read(str(lang / "L_disambig.fst"))
    g = kaldifst.StdVectorFst.read(str(lang / "G.fst"))
    lg = kaldifst.compose(ld, g)
    assert lg.num_states > 0
    stopped_early = kaldifst.determinize_star(lg, use_log=True)
    assert stopped_early is False
    kaldifst.minimize_encoded(lg)
    seen = set()
    for f in (line.split() for line in lg.to_str().splitlines()):
        if len(f) >= 4:
            assert f[2] != "0"
            key = (f[0], f[2])
            assert key not in seen
            seen.add(key)
    ok, phones, words, _ = kaldifst.get_linear_symbol_sequence(kaldifst.shortest_path(lg))
    assert ok and len(phones) > 0
