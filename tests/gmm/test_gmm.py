"""GMM systems: E-step against kaldi_hmm_gmm, model/alignment file formats, and mono/tri1 training + alignment on
the tiny synthetic corpus (the session fixtures of conftest.py: about 30 s for mono, alignments and tri1).

Run with ``-s`` to see the numbers the training tests check (they are printed as well as asserted)."""
import gzip
import os
import re

import numpy as np
import pytest

from steps_py.kaldi.bindings import khg
from steps_py.kaldi.io import read_int_vectors, write_int_vectors
from steps_py.kaldi.model_io import read_model, write_model
from steps_py.kaldi.topology import parse_topo_text
from steps_py.kaldi.tree_io import read_tree
from steps_py.gmm import align
from steps_py.gmm import model as gmm

from conftest import num_frames, read_job_vectors, run_step

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
    gmm.mix_up(am, np.full(am.num_pdfs, 100.0), 40, 0.2, 0.5, 1.0, gmm.mixup_rng(0, 0))
    return lang, tm, tree, am


def test_estep_matches_kaldi_accumulation(small_model):
    lang, tm, tree, am = small_model
    rng = np.random.RandomState(1)
    info = align.TransitionInfo(tm, lang.topo_entries)
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


def test_gaussian_schedule_is_kaldis():
    # train_mono.sh: numgauss=#pdfs, incgauss=$[($totgauss-$numgauss)/$max_iter_inc] = 880 / 30 -> 29, added
    # after each of passes 1..30
    assert [gmm.num_gauss_at(x, 120, 1000, 30) for x in (1, 2, 3, 30, 31, 32, 39)] == \
        [120, 149, 178, 961, 990, 990, 990]
    assert gmm.num_gauss_at(25, 2000, 1500, 20) == 2000      # more leaves than Gaussians: no growth


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
# Training on the tiny synthetic corpus (conftest: tiny_recipe, mono, mono_ali, tri1; built once per session)

def _report(name, **values):
    print(f"\n[{name}] " + " ".join(f"{k}={v}" for k, v in values.items()))


def test_mono_training_improves_and_aligns(tiny_recipe, mono):
    for f in ("final.mdl", "tree", "num_jobs", "ali.1.gz", "ali.2.gz", "phone_ali.1.gz", "phones.txt"):
        assert os.path.exists(os.path.join(mono, f)), f
    likes = [float(line.split()[3]) for line in open(os.path.join(mono, "log", "likelihoods.txt"))]
    frames = num_frames(os.path.join(tiny_recipe, "data", "train"))
    alis = read_job_vectors(mono)
    tree = read_tree(os.path.join(mono, "tree"))
    tm, am, entries = read_model(os.path.join(mono, "final.mdl"), tree)
    _report("mono", loglike_by_pass=likes, aligned=f"{len(alis)}/{len(frames)}", num_gauss=am.num_gauss)
    assert len(likes) == 10
    assert likes[-1] > likes[1] + 5 and likes[-1] > likes[0]    # log-likelihood per frame rises over the passes
    assert len(alis) >= 0.95 * len(frames)     # the tiny corpus has 2 of 40 clean utterances of a noisy speaker
    assert all(len(a) == frames[u] for u, a in alis.items())
    # Phone alignments agree with the transition ids.
    info = align.TransitionInfo(tm, entries)
    phones = read_int_vectors(os.path.join(mono, "phone_ali.1.gz"))
    utt = next(iter(phones))
    ali1 = read_int_vectors(os.path.join(mono, "ali.1.gz"))
    assert np.array_equal(phones[utt], info.phone[ali1[utt]])
    # Mixing up splits each pdf's Gaussians in proportion to occupancy ** power, rounding per pdf, so the total
    # lands near (not on) --totgauss 300; the exact count depends on the seed (--seed) through the perturbed means.
    assert tree.num_pdfs == am.num_pdfs and 200 <= am.num_gauss <= 310


def test_align_dev_with_mono(tiny_recipe, mono):
    log = run_step(["-m", "steps_py.gmm.align_si", "--nj", "2", "data/dev", "data/lang", "exp/short/mono",
                    "exp/short/mono_ali_dev"], tiny_recipe)
    done = int(re.search(r"aligned (\d+) of 8 utterances", log).group(1))
    _report("mono_align_dev", aligned=f"{done}/8")
    # Dev voices are unseen, and the short model aligns some of their utterances only with some models. In 6 runs
    # of the short mono and tri2b made before mixing up was seeded (12 dev alignments, every model different),
    # 6 to 8 of the 8 aligned, the failures always among the same 3 utterances; hence the bound of 5 (for any
    # --seed), while a broken aligner gives 0.
    assert done >= 5
    frames = num_frames(os.path.join(tiny_recipe, "data", "dev"))
    alis = read_job_vectors(os.path.join(tiny_recipe, "exp", "short", "mono_ali_dev"), "phone_ali")
    assert len(alis) == done and all(len(a) == frames[u] for u, a in alis.items())


def test_align_train_with_mono(tiny_recipe, mono, mono_ali):
    d, log = mono_ali
    frames = num_frames(os.path.join(tiny_recipe, "data", "train"))
    alis = read_job_vectors(d)
    done = int(re.search(r"aligned (\d+) of 40 utterances", log).group(1))
    _report("mono_align_train", aligned=f"{done}/40")
    assert done == len(alis) >= 0.95 * len(frames)
    assert all(len(a) == frames[u] for u, a in alis.items())
    for f in ("final.mdl", "tree", "phones.txt"):           # the model travels with the alignments
        assert open(os.path.join(d, f), "rb").read() == open(os.path.join(mono, f), "rb").read(), f


def test_train_tri1(tiny_recipe, tri1):
    d, _ = tri1
    tree = read_tree(os.path.join(d, "tree"))
    tm, am, _ = read_model(os.path.join(d, "final.mdl"), tree)
    likes = [float(line.split()[3]) for line in open(os.path.join(d, "log", "likelihoods.txt"))]
    train_frames = num_frames(os.path.join(tiny_recipe, "data", "train"))
    ali = read_job_vectors(d)
    _report("tri1", num_pdfs=tree.num_pdfs, num_gauss=am.num_gauss, loglike_by_pass=likes,
            aligned=f"{len(ali)}/{len(train_frames)}")
    assert tree.context_width == 3 and tree.central_position == 1 and 50 <= tree.num_pdfs <= 150
    assert am.num_pdfs == tree.num_pdfs
    assert len(likes) == 5 and likes[-1] > likes[0] + 1      # passes 1..5 raise the likelihood
    assert len(ali) >= 0.95 * len(train_frames)
    assert all(len(a) == train_frames[u] for u, a in ali.items())
    assert max(max(a) for a in ali.values()) <= tm.num_transition_ids
