"""mkgraph, the decoding core and the decode driver on a tiny hand-made problem with a known answer.

The problem: a lang of six words over four phones (prepare_lang), a unigram G, a monophone model whose Gaussians
sit far apart, and utterances synthesised from a known alignment (features = pdf mean + small noise).
"""
import math
import os
import subprocess
import sys

import numpy as np
import pytest

from steps_py.common import InputError
from steps_py.data.datadir import write_map
from steps_py.decode import fst_utils
from steps_py.decode import search
from steps_py.kaldi.bindings import kaldifst, khg
from steps_py.kaldi.model_io import write_model
from steps_py.kaldi.tree_io import write_tree
from steps_py.lang.lang_dir import read_lang

from conftest import ROOT

WORDS = {"AB": "A B", "BA": "B A", "BAD": "B A D", "CD": "C D", "DC": "D C", "CAB": "C A B"}
FEAT_DIM = 6


def make_lang(root, words=WORDS, phones=("A", "B", "C", "D")):
    """data/local/dict -> lang (prepare_lang) -> lang_test with a unigram G.fst. Returns the lang_test path."""
    from steps_py.lang.prepare_lang import prepare_lang
    d = os.path.join(root, "dict")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "lexicon.txt"), "w") as f:
        f.write("!SIL SIL\n<UNK> SPN\n" + "".join(f"{w} {p}\n" for w, p in words.items()))
    with open(os.path.join(d, "silence_phones.txt"), "w") as f:
        f.write("SIL\nSPN\n")
    with open(os.path.join(d, "optional_silence.txt"), "w") as f:
        f.write("SIL\n")
    with open(os.path.join(d, "nonsilence_phones.txt"), "w") as f:
        f.write("".join(p + "\n" for p in phones))
    open(os.path.join(d, "extra_questions.txt"), "w").close()
    lang = os.path.join(root, "lang")
    prepare_lang(d, "<UNK>", os.path.join(root, "lang_tmp"), lang, position_dependent=False,
                 num_sil_states=3)
    lang_test = os.path.join(root, "lang_test")
    subprocess.run(["cp", "-r", lang, lang_test], check=True)
    word_ids = dict(line.split() for line in open(os.path.join(lang, "words.txt")))
    vocab = [w for w in word_ids if w not in ("<eps>", "#0", "<s>", "</s>", "!SIL")]
    cost = math.log(len(vocab) + 1)
    text = "".join(f"0 0 {word_ids[w]} {word_ids[w]} {cost:.4f}\n" for w in vocab) + f"0 {cost:.4f}\n"
    G = kaldifst.compile(s=text, acceptor=False)
    kaldifst.arcsort(G, sort_type="ilabel")
    G.write(os.path.join(lang_test, "G.fst"))
    return lang_test


def make_model(lang_dir, model_dir, seed=0, spread=8.0):
    """A monophone model with one far-apart Gaussian per pdf: writes final.mdl and tree (Kaldi binary).

    Returns (trans_model, am, tree, pdf_means [num_pdfs, FEAT_DIM])."""
    topo = khg.HmmTopology()
    topo.read(open(os.path.join(lang_dir, "topo")).read())
    phones = sorted(int(p) for p in topo.phones)
    num_classes = [0] * (max(phones) + 1)
    for p in phones:
        num_classes[p] = topo.num_pdf_classes(p)
    tree = khg.monophone_context_dependency(phones, num_classes)
    tm = khg.TransitionModel(ctx_dep=tree, hmm_topo=topo)
    rng = np.random.default_rng(seed)
    means = rng.normal(scale=spread, size=(tm.num_pdfs, FEAT_DIM))
    am = khg.AmDiagGmm()
    for pdf in range(tm.num_pdfs):
        g = khg.DiagGmm()
        g.resize(1, FEAT_DIM)
        g.set_weights(np.ones(1))
        g.set_means(means[pdf:pdf + 1])
        g.set_invvars(np.ones((1, FEAT_DIM)))
        g.compute_gconsts()
        am.add_pdf(g)
    os.makedirs(model_dir, exist_ok=True)
    write_model(os.path.join(model_dir, "final.mdl"), tm, am, read_lang(lang_dir).topo_entries)
    write_tree(os.path.join(model_dir, "tree"), tree)
    return tm, am, tree, means


def make_utterances(lang_dir, tm, tree, means, sentences, seed=1, frames_per_phone=9, noise=0.3, words=WORDS):
    """Features [T, FEAT_DIM] and pdf alignments [T] for word sentences, from random paths of training graphs."""
    word_ids = dict(line.split() for line in open(os.path.join(lang_dir, "words.txt")))
    disambig = [int(x) for x in open(os.path.join(lang_dir, "phones", "disambig.int")).read().split()]
    L = kaldifst.StdVectorFst.read(os.path.join(lang_dir, "L.fst"))
    gc = khg.TrainingGraphCompiler(trans_model=tm, ctx_dep=tree, lex_fst=L, disambig_syms=disambig,
                                   opts=khg.TrainingGraphCompilerOptions(transition_scale=0.0, self_loop_scale=0.0))
    t2p = np.asarray(tm.transition_id_to_pdf_array())
    rng = np.random.default_rng(seed)
    out = []
    lexicon = words
    for i, sentence in enumerate(sentences):
        graph = gc.compile_graph_from_text([int(word_ids[w]) for w in sentence.split()])
        num_phones = sum(len(lexicon[w].split()) for w in sentence.split()) + 2
        ok, path = kaldifst.equal_align(ifst=graph, length=num_phones * frames_per_phone, rand_seed=seed + i)
        assert ok
        ok, tids, _, _ = kaldifst.get_linear_symbol_sequence(path)
        pdfs = t2p[np.asarray(tids)]
        feats = means[pdfs] + noise * rng.normal(size=(pdfs.size, FEAT_DIM))
        out.append((feats.astype(np.float32), pdfs))
    return out


SENTENCES = ["AB CD", "BAD DC AB", "CAB BA", "DC DC CD", "BA BAD", "CD AB BA DC"]


@pytest.fixture(scope="session", name="tiny")
def tiny_fixture(tmp_path_factory):
    from steps_py.decode.mkgraph import mkgraph
    root = str(tmp_path_factory.mktemp("tiny_asr"))
    lang_test = make_lang(root)
    model_dir = os.path.join(root, "exp", "mono")
    tm, am, tree, means = make_model(lang_test, model_dir)
    graph_dir = os.path.join(model_dir, "graph")
    mkgraph(lang_test, model_dir, graph_dir)
    hclg = kaldifst.StdVectorFst.read(os.path.join(graph_dir, "HCLG.fst"))
    words = {int(i): w for w, i in (line.split() for line in open(os.path.join(graph_dir, "words.txt")))}
    utts = make_utterances(lang_test, tm, tree, means, SENTENCES)
    return {"root": root, "lang": lang_test, "model_dir": model_dir, "graph_dir": graph_dir, "tm": tm, "am": am,
            "tree": tree, "means": means, "graph": search.DecodingGraph.from_trans_model(hclg, tm),
            "words": words, "utts": utts}


def oracle_loglikes(pdfs, num_pdfs, wrong=-30.0):
    """Log-likelihoods [T, num_pdfs]: 0 for the aligned pdf, ``wrong`` for all others."""
    ll = np.full((pdfs.size, num_pdfs), wrong, dtype=np.float32)
    ll[np.arange(pdfs.size), pdfs] = 0.0
    return ll


def to_words(tiny, ids):
    return " ".join(tiny["words"][i] for i in ids)


# ------------------------------------------------------------------------------------------------ mkgraph
def test_mkgraph_graph_is_clean(tiny):
    g = tiny["graph"]
    assert g.hclg.num_states > 10
    assert 0 < fst_utils.max_ilabel(g.hclg) <= tiny["tm"].num_transition_ids
    disambig_tids = [int(x) for x in open(os.path.join(tiny["graph_dir"], "disambig_tid.int")).read().split()]
    assert disambig_tids and not fst_utils.ilabels_present(g.hclg, disambig_tids)
    assert open(os.path.join(tiny["graph_dir"], "num_pdfs")).read().strip() == str(tiny["tm"].num_pdfs)
    for f in ("words.txt", "phones.txt", "phones/disambig.int"):
        assert os.path.exists(os.path.join(tiny["graph_dir"], f))


def test_mkgraph_skips_when_up_to_date(tiny):
    from steps_py.decode.mkgraph import mkgraph
    path = os.path.join(tiny["graph_dir"], "HCLG.fst")
    before = os.path.getmtime(path)
    mkgraph(tiny["lang"], tiny["model_dir"], tiny["graph_dir"])
    assert os.path.getmtime(path) == before


def test_mkgraph_refuses_model_of_another_lang(tiny, tmp_path):
    from steps_py.decode.mkgraph import mkgraph
    other_lang = make_lang(str(tmp_path / "other"), words={"AE": "A E", "EA": "E A"},
                           phones=("A", "B", "C", "D", "E"))
    with pytest.raises(InputError, match="another lang"):
        mkgraph(other_lang, tiny["model_dir"], str(tmp_path / "graph"))


# ------------------------------------------------------------------------------------------------ decoding
def test_oracle_loglikes_decode_to_the_known_words(tiny):
    g = tiny["graph"]
    opts = search.DecodeOptions(min_lmwt=8, max_lmwt=12)
    for sentence, (_, pdfs) in zip(SENTENCES, tiny["utts"]):
        ll = oracle_loglikes(pdfs, g.num_pdfs)
        bp = search.best_path(g, ll, 0.1, opts)
        assert bp.reached_final
        assert to_words(tiny, bp.words) == sentence
        assert len(bp.tids) == pdfs.size and np.array_equal(g.tid2pdf[bp.tids], pdfs)
        hyps, info = search.decode_sweep(g, ll, opts)
        assert info["reached_final"] and all(to_words(tiny, h) == sentence for h in hyps)


@pytest.mark.parametrize("method", ["lattice", "lattice-faster"])
def test_lattice_sweep_matches_one_bestpath_decode_per_pair(tiny, method):
    """Noisy log-likelihoods: every (LMWT, WIP) best path of the lattice (kaldi_decoder's LatticeSimpleDecoder, or
    ours) equals FasterDecoder's at scale 1/LMWT."""
    g = tiny["graph"]
    rng = np.random.default_rng(5)
    opts_lat = search.DecodeOptions(method=method, min_lmwt=2, max_lmwt=20, beam=30, lattice_beam=30,
                                      word_ins_penalties=(0.0, 2.0, 8.0))
    opts_bp = search.DecodeOptions(method="bestpath", min_lmwt=2, max_lmwt=20, beam=30, max_active=100000,
                                     word_ins_penalties=(0.0, 2.0, 8.0))
    n_distinct = 0
    for _, pdfs in tiny["utts"][:3]:
        ll = oracle_loglikes(pdfs, g.num_pdfs, wrong=-2.0) + rng.normal(scale=2.0, size=(pdfs.size, g.num_pdfs))
        hyps_lat, _ = search.decode_sweep(g, ll, opts_lat)
        hyps_bp, _ = search.decode_sweep(g, ll, opts_bp)
        assert hyps_lat == hyps_bp
        n_distinct += len({tuple(h) for h in hyps_lat})
    assert n_distinct > 3  # the sweep really changes the answer on these utterances


def test_word_insertion_penalty_graph(tiny):
    g = tiny["graph"]
    pen = g.with_penalty(1.5)
    assert pen is not g.hclg and pen.num_states == g.hclg.num_states
    assert g.with_penalty(1.5) is pen


# ------------------------------------------------------------------------------------------------ GMM + driver
def test_numpy_gmm_loglikes_match_kaldi(tiny):
    from steps_py.gmm.model import GmmArrays
    am, tm = tiny["am"], tiny["tm"]
    # a 2-Gaussian pdf too, to exercise the log-sum-exp
    g = khg.DiagGmm()
    g.resize(2, FEAT_DIM)
    g.set_weights(np.array([0.3, 0.7]))
    g.set_means(np.stack([tiny["means"][0], tiny["means"][1]]))
    g.set_invvars(np.full((2, FEAT_DIM), 0.5))
    g.compute_gconsts()
    am.get_pdf(0).copy_from_diag_gmm(g)
    feats, _ = tiny["utts"][0]
    ll = GmmArrays(am).pdf_loglikes(feats)
    dec = khg.DecodableAmDiagGmmScaled(am=am, tm=tm, feats=feats, scale=1.0)
    t2p = tiny["graph"].tid2pdf
    for t in (0, 5, feats.shape[0] - 1):
        for tid in (1, 2, 7, tm.num_transition_ids):
            assert dec.log_likelihood(t, tid) == pytest.approx(ll[t, t2p[tid]], rel=1e-4, abs=1e-3)


def write_data_dir(path, tiny, utts, sentences):
    import kaldiio
    os.makedirs(path, exist_ok=True)
    ids = [f"spk{i % 2}-utt{i:02d}" for i in range(len(utts))]
    with kaldiio.WriteHelper(f"ark,scp:{path}/feats.ark,{path}/feats.scp") as w:
        for u, (feats, _) in zip(ids, utts):
            w(u, feats)
    write_map(os.path.join(path, "text"), dict(zip(ids, sentences)))
    write_map(os.path.join(path, "utt2spk"), {u: u.split("-")[0] for u in ids})
    write_map(os.path.join(path, "spk2utt"), {s: " ".join(u for u in ids if u.startswith(s)) for s in ("spk0", "spk1")})
    return ids


def test_decode_driver_end_to_end(tiny, tmp_path, monkeypatch):
    """Two parallel jobs through run.py; the far-apart GMM gives 0% WER; a bad LM weight range is refused."""
    from steps_py.decode import scoring
    monkeypatch.setenv("PYTHONPATH", ROOT)
    with open(os.path.join(tiny["model_dir"], "cmvn_opts"), "w") as f:
        f.write("--norm-means=false\n")
    with open(os.path.join(tiny["model_dir"], "delta_opts"), "w") as f:
        f.write("--delta-order=0\n")
    data = str(tmp_path / "data" / "dev")
    sentences = SENTENCES[:4] + ["AB <NOISE> CD", "BA BA"]
    utts = tiny["utts"][:4] + make_utterances(tiny["lang"], tiny["tm"], tiny["tree"], tiny["means"],
                                              ["AB CD", "BA BA BA"], seed=9)
    write_data_dir(data, tiny, utts, sentences)
    decode_dir = str(tmp_path / "decode_dev")
    cmd = f"{sys.executable} {ROOT}/utils/run.py"
    res = subprocess.run([sys.executable, "-m", "steps_py.decode.decode", "--config", f"{ROOT}/conf/decode.conf",
                          "--nj", "2",
                          "--cmd", cmd, "--min-lmwt", "9", "--max-lmwt", "11", "--lmwt-step", "1",
                          "--word-ins-penalty", "0.0,0.5,1.0", tiny["graph_dir"], data, decode_dir],
                         capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 0, res.stderr
    assert os.path.exists(os.path.join(decode_dir, "log", "decode.2.log"))
    assert "real-time factor" in open(os.path.join(decode_dir, "log", "decode.1.log")).read()
    # the last utterance says "BA BA BA" against a reference "BA BA": one insertion; <NOISE> is filtered.
    wer = open(os.path.join(decode_dir, "wer_10_0.0")).read().splitlines()
    assert wer == ["%WER 7.14 [ 1 / 14, 1 ins, 0 del, 0 sub ]", "%SER 16.67 [ 1 / 6 ]",
                   "Scored 6 sentences, 0 not present in hyp."]
    assert sorted(os.listdir(os.path.join(decode_dir, "scoring_kaldi"))) == \
        ["best_wer", "penalty_0.0", "penalty_0.5", "penalty_1.0", "test_filt.txt"]
    line = scoring.best_for_dir(decode_dir)
    assert line.startswith("%WER 7.14 [ 1 / 14") and line.endswith(os.path.join(decode_dir, "wer_10_0.0"))
    hyp = open(os.path.join(decode_dir, "scoring_kaldi", "penalty_0.0", "10.txt")).read()
    assert "spk0-utt04 AB CD\n" in hyp
