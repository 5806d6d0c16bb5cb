"""GMM systems: E-step against kaldi_hmm_gmm, model/alignment file formats, and mono/tri1 training + alignment on a
tiny synthetic corpus (built once per session, about 40 s in all)."""
import gzip
import os
import subprocess
import sys

import numpy as np
import pytest

from steps_py.kaldi import (khg, parse_topo_text, read_int_vectors, read_model, write_int_vectors,  # noqa: I001
                            write_model)
from steps_py import gmm

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

TOPO = """<Topology>
<TopologyEntry>
<ForPhones>
2 3 4
</ForPhones>
<State> 0 <PdfClass> 0 <Transition> 0 0.75 <Transition> 1 0.25 </State>
<State> 1 <PdfClass> 1 <Transition> 1 0.75 <Transition> 2 0.25 </State>
<State> 2 <PdfClass> 2 <Transition> 2 0.75 <Transition> 3 0.25 </State>
<State> 3 </State>
</TopologyEntry>
<TopologyEntry>
<ForPhones>
1
</ForPhones>
<State> 0 <PdfClass> 0 <Transition> 0 0.25 <Transition> 1 0.25 <Transition> 2 0.25 <Transition> 3 0.25 </State>
<State> 1 <PdfClass> 1 <Transition> 1 0.25 <Transition> 2 0.25 <Transition> 3 0.25 <Transition> 4 0.25 </State>
<State> 2 <PdfClass> 2 <Transition> 1 0.25 <Transition> 2 0.25 <Transition> 3 0.25 <Transition> 4 0.25 </State>
<State> 3 <PdfClass> 3 <Transition> 1 0.25 <Transition> 2 0.25 <Transition> 3 0.25 <Transition> 4 0.25 </State>
<State> 4 <PdfClass> 4 <Transition> 4 0.75 <Transition> 5 0.25 </State>
<State> 5 </State>
</TopologyEntry>
</Topology>
"""


class _Lang:
    def __init__(self):
        self.topo = khg.HmmTopology()
        self.topo.read(TOPO)
        self.topo_entries = parse_topo_text(TOPO)
        self.sets = [[1], [2], [3], [4]]


@pytest.fixture(scope="module")
def small_model():
    rng = np.random.RandomState(0)
    lang = _Lang()
    tm, tree, am = gmm.init_mono(lang, [rng.randn(200, 5)])
    am.split_by_count(np.full((am.num_pdfs, 1), 100, np.float32), 40, 0.5, 0.2, 1.0)
    am.compute_gconsts()
    return lang, tm, tree, am


def test_estep_matches_kaldi_accumulation(small_model):
    lang, tm, tree, am = small_model
    rng = np.random.RandomState(1)
    info = gmm.TransitionInfo(tm, lang.topo_entries)
    T = 3000
    tids = rng.randint(1, tm.num_transition_ids + 1, T)
    feats = rng.randn(T, 5).astype(np.float32)
    arrays = gmm.GmmArrays(am)
    stats = gmm.GmmStats(arrays.offsets, am.dim, tm.num_transition_ids)
    gmm.accumulate(arrays, stats, feats, tids, info.pdf)
    ref = khg.AccumAmDiagGmm()
    ref.init(am, gmm.GMM_ALL)
    tot = sum(ref.accumulate_for_gmm(am, feats[t], int(info.pdf[tids[t]]), 1.0) for t in range(T))
    accs = [ref.get_acc(p) for p in range(am.num_pdfs)]
    assert np.allclose(np.concatenate([a.occupancy for a in accs]), stats.occupancy, atol=1e-5)
    assert np.allclose(np.concatenate([a.mean_accumulator for a in accs]), stats.sum_x, atol=1e-5)
    assert np.allclose(np.concatenate([a.variance_accumulator for a in accs]), stats.sum_x2, atol=1e-4)
    assert stats.tot_loglike == pytest.approx(tot, rel=1e-6)
    # The TransitionInfo tables agree with the bindings.
    n = tm.num_transition_ids
    assert [tm.is_final(t) for t in range(1, n + 1)] == info.is_final[1:].tolist()
    assert [tm.is_self_loop(t) for t in range(1, n + 1)] == info.is_self_loop[1:].tolist()
    assert [tm.transition_id_to_phone(t) for t in range(1, n + 1)] == info.phone[1:].tolist()
    # One M-step raises the likelihood of the same data.
    gmm.update(tm, am, stats, min_gaussian_occupancy=3)
    again = gmm.GmmStats(gmm.GmmArrays(am).offsets, am.dim, n)
    gmm.accumulate(gmm.GmmArrays(am), again, feats, tids, info.pdf)
    assert again.tot_loglike > stats.tot_loglike


def test_model_file_round_trip(small_model, tmp_path):
    lang, tm, tree, am = small_model
    path = str(tmp_path / "x.mdl")
    write_model(path, tm, am, lang.topo_entries)
    data = open(path, "rb").read()
    assert data.startswith(b"\0B<TransitionModel> <Topology> ") and b"<DIMENSION> " in data
    tm2, am2, entries = read_model(path, tree)
    assert str(tm2) == str(tm)                       # Kaldi's text form of the transition model, incl. log-probs
    assert np.allclose(tm2.non_self_loop_log_probs, tm.non_self_loop_log_probs)
    for a, b in zip(am.__getstate__(), am2.__getstate__()):
        assert np.array_equal(np.asarray(a), np.asarray(b))
    assert entries == lang.topo_entries


def test_alignment_ark_format(tmp_path):
    import kaldiio
    table = {"utt1": np.array([1, 2, 3], np.int32), "utt2": np.arange(500, dtype=np.int32)}
    path = str(tmp_path / "ali.1.gz")
    write_int_vectors(path, table)
    # Byte-identical to kaldiio's writer (Kaldi's BasicVectorHolder binary format, what copy-int-vector reads).
    kaldiio.save_ark(str(tmp_path / "ref.ark"), table)
    assert gzip.open(path).read() == open(tmp_path / "ref.ark", "rb").read()
    back = read_int_vectors(path)
    assert list(back) == ["utt1", "utt2"] and all(np.array_equal(back[k], table[k]) for k in table)


# ---------------------------------------------------------------------------------------------------------------
# Training on a tiny real corpus

def _run(argv, cwd):
    env = dict(os.environ, PYTHONPATH=REPO, KALDI_PY_PROGRESS="0")
    env["PATH"] = os.path.join(REPO, "tools") + os.pathsep + env.get("PATH", "")
    res = subprocess.run([sys.executable] + argv, cwd=cwd, env=env, capture_output=True, text=True)
    assert res.returncode == 0, f"{' '.join(argv)} failed:\n{res.stderr[-3000:]}"
    return res.stderr


@pytest.fixture(scope="session")
def corpus(tmp_path_factory):
    """Tiny synthetic corpus with lang dir, 13-dim MFCC and per-speaker CMVN stats, in a temporary dir."""
    import kaldi_native_fbank as knf
    import kaldiio
    from steps_py.datadir import read_map
    d = str(tmp_path_factory.mktemp("gmm_corpus"))
    _run([os.path.join(REPO, "local", "synth", "make_corpus.py"), "--config", os.path.join(REPO, "conf", "synth.conf"),
          "--size", "tiny", "--seed", "1", "--nj", "2", "corpus", "data"], d)
    _run(["-m", "steps_py.prepare_dict", "data/local/dict", "data/local/lm_text.txt"], d)
    _run(["-m", "steps_py.prepare_lang", "data/local/dict", "<UNK>", "data/local/lang_tmp", "data/lang"], d)
    with open(os.path.join(d, "mfcc.conf"), "w") as f:
        f.write("--use-energy=false\n")
    for s in ("train", "dev"):
        _run(["-m", "steps_py.compute_feats", "--type", "mfcc", "--config", "mfcc.conf", f"data/{s}",
              f"mfcc/raw_{s}"], d)
        os.replace(os.path.join(d, f"mfcc/raw_{s}.scp"), os.path.join(d, f"data/{s}/feats.scp"))
        feats = read_map(os.path.join(d, f"data/{s}/feats.scp"))
        stats = {spk: knf.compute_cmvn_stats(np.concatenate([kaldiio.load_mat(feats[u]) for u in utts.split()]))
                 for spk, utts in read_map(os.path.join(d, f"data/{s}/spk2utt")).items()}
        kaldiio.save_ark(os.path.join(d, f"mfcc/cmvn_{s}.ark"), stats, scp=os.path.join(d, f"data/{s}/cmvn.scp"))
    return d


@pytest.fixture(scope="session")
def mono(corpus):
    _run(["-m", "steps_py.train_mono", "--nj", "2", "--cmd", "run.py", "--num-iters", "10", "--max-iter-inc", "6",
          "--totgauss", "300", "--realign-iters", "1 2 3 5 7 9", "--boost-silence", "1.25",
          "data/train", "data/lang", "exp/mono"], corpus)
    return os.path.join(corpus, "exp", "mono")


def _frames(corpus, data):
    import kaldiio
    return {u: m.shape[0] for u, m in kaldiio.load_scp(os.path.join(corpus, data, "feats.scp")).items()}


def test_mono_training_improves_and_aligns(corpus, mono):
    for f in ("final.mdl", "tree", "num_jobs", "ali.1.gz", "ali.2.gz", "phone_ali.1.gz", "phones.txt"):
        assert os.path.exists(os.path.join(mono, f)), f
    likes = [float(line.split()[3]) for line in open(os.path.join(mono, "log", "likelihoods.txt"))]
    assert len(likes) == 10
    assert likes[-1] > likes[1] + 5 and likes[-1] > likes[0]    # log-likelihood per frame rises over the passes
    frames = _frames(corpus, "data/train")
    alis = {}
    for j in (1, 2):
        alis.update(read_int_vectors(os.path.join(mono, f"ali.{j}.gz")))
    assert len(alis) >= 0.95 * len(frames)     # the tiny corpus has 2 of 40 clean utterances of a noisy speaker
    assert all(len(a) == frames[u] for u, a in alis.items())
    # Phone alignments agree with the transition ids.
    from steps_py.kaldi import read_tree
    tree = read_tree(os.path.join(mono, "tree"))
    tm, am, entries = read_model(os.path.join(mono, "final.mdl"), tree)
    info = gmm.TransitionInfo(tm, entries)
    phones = read_int_vectors(os.path.join(mono, "phone_ali.1.gz"))
    utt = next(iter(phones))
    ali1 = read_int_vectors(os.path.join(mono, "ali.1.gz"))
    assert np.array_equal(phones[utt], info.phone[ali1[utt]])
    assert tree.num_pdfs == am.num_pdfs and 200 <= am.num_gauss <= 310   # SplitByCount rounds per pdf


def test_align_dev_and_train_tri1(corpus, mono):
    log = _run(["-m", "steps_py.align_si", "--nj", "2", "data/dev", "data/lang", "exp/mono", "exp/mono_ali_dev"],
               corpus)
    import re
    done = int(re.search(r"aligned (\d+) of 8 utterances", log).group(1))
    assert done >= 7      # dev speakers are unseen; a 10-pass monophone model of 40 utterances may lose one
    frames = _frames(corpus, "data/dev")
    alis = {}
    for j in (1, 2):
        alis.update(read_int_vectors(os.path.join(corpus, "exp/mono_ali_dev", f"phone_ali.{j}.gz")))
    assert len(alis) == done and all(len(a) == frames[u] for u, a in alis.items())
    _run(["-m", "steps_py.align_si", "--nj", "2", "data/train", "data/lang", "exp/mono", "exp/mono_ali"], corpus)
    log = _run(["-m", "steps_py.train_deltas", "--num-iters", "6", "--realign-iters", "3 5", "--max-iter-inc", "4",
                "150", "600", "data/train", "data/lang", "exp/mono_ali", "exp/tri1"], corpus)
    tri1 = os.path.join(corpus, "exp", "tri1")
    from steps_py.kaldi import read_tree
    tree = read_tree(os.path.join(tri1, "tree"))
    assert tree.context_width == 3 and tree.central_position == 1 and 50 <= tree.num_pdfs <= 150
    tm, am, _ = read_model(os.path.join(tri1, "final.mdl"), tree)
    assert am.num_pdfs == tree.num_pdfs
    likes = [float(line.split()[3]) for line in open(os.path.join(tri1, "log", "likelihoods.txt"))]
    assert len(likes) == 5 and likes[-1] > likes[0] + 1      # passes 1..5 raise the likelihood
    train_frames = _frames(corpus, "data/train")
    ali = read_int_vectors(os.path.join(tri1, "ali.1.gz"))
    assert all(len(a) == train_frames[u] for u, a in ali.items()) and max(max(a) for a in ali.values()) <= \
        tm.num_transition_ids
