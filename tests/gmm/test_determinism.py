"""GMM training is reproducible: mixing up against kaldi_hmm_gmm's split, and mono / tri1 trained twice, and killed
and resumed, on the tiny synthetic corpus giving byte-identical models (the session fixtures mono, mono_ali, tri1
of conftest.py, plus about 40 s of training here)."""
import glob
import os
import pickle
import sys

import numpy as np

from steps_py.gmm import model as gmm
from steps_py.kaldi.bindings import khg

from conftest import MONO_ARGS, TRI1_ARGS, kill_when, run_step, step_env


def _am(num_pdfs=5, num_gauss=2, dim=4, seed=0):
    """A small AmDiagGmm of random Gaussians."""
    rng = np.random.RandomState(seed)
    am = khg.AmDiagGmm()
    for _ in range(num_pdfs):
        g = khg.DiagGmm(num_gauss, dim)
        g.set_weights(np.full(num_gauss, 1.0 / num_gauss, np.float32))
        g.set_invvars_and_means((0.5 + rng.rand(num_gauss, dim)).astype(np.float32),
                                rng.randn(num_gauss, dim).astype(np.float32))
        g.compute_gconsts()
        am.add_pdf(g)
    am.compute_gconsts()
    return am


def _copy(am):
    return pickle.loads(pickle.dumps(am))


OCCS = np.array([100.0, 50.0, 50.0, 0.0, 400.0])


def test_mix_up_without_perturbation_is_kaldis_split():
    # With perturbation factor 0, kaldi_hmm_gmm's split_by_count uses no randomness: the numpy split must give
    # the same Gaussians bit for bit (targets per pdf, which Gaussian is halved, weights, variances, means).
    am = _am()
    ref = _copy(am)
    ref.split_by_count(OCCS.astype(np.float32)[:, None], 25, 0.0, 0.2, 5.0)
    ref.compute_gconsts()
    mine = _copy(am)
    gmm.mix_up(mine, OCCS, 25, 0.2, 0.0, 5.0, gmm.mixup_rng(0, 1))
    assert [mine.num_gauss_in_pdf(p) for p in range(5)] == [ref.num_gauss_in_pdf(p) for p in range(5)]
    assert ref.num_gauss > am.num_gauss
    for a, b in zip(ref.__getstate__(), mine.__getstate__()):
        assert np.array_equal(a, b)
    assert all(np.array_equal(ref.get_pdf(p).gconsts, mine.get_pdf(p).gconsts) for p in range(5))


def test_mix_up_is_a_function_of_the_seed_and_pass():
    am = _am()

    def mixed(seed, step):
        out = _copy(am)
        gmm.mix_up(out, OCCS, 25, 0.2, 0.01, 5.0, gmm.mixup_rng(seed, step))
        return out
    a, b = mixed(0, 3), mixed(0, 3)
    assert pickle.dumps(a) == pickle.dumps(b)
    for other in (mixed(0, 4), mixed(1, 3)):
        weights = [np.array_equal(x, y) for x, y in zip(a.__getstate__()[0::3], other.__getstate__()[0::3])]
        means = [np.array_equal(x, y) for x, y in zip(a.__getstate__()[2::3], other.__getstate__()[2::3])]
        assert all(weights) and not all(means)      # same split, other perturbations
    # A split pair keeps the mean of the Gaussian it came from (moved apart by -/+ the same vector).
    w, iv, mi = gmm.split_gaussians([1.0], [[2.0, 4.0]], [[1.0, -2.0]], 2, 0.1, gmm.mixup_rng(0, 0))
    assert np.allclose(mi.sum(0), [2.0, -4.0]) and not np.array_equal(mi[0], mi[1])
    assert np.array_equal(w, [0.5, 0.5]) and np.array_equal(iv, [[2.0, 4.0]] * 2)
    # ... by -/+ perturb_factor * r * sqrt(inv_var) in Kaldi's means_invvars, r the generator's standard-normal draw
    r = gmm.mixup_rng(0, 0).standard_normal(2).astype(np.float32)
    np.testing.assert_allclose(mi[1] - mi[0], 2 * 0.1 * r * np.sqrt([2.0, 4.0]), rtol=1e-5)   # float32
    np.testing.assert_allclose(mi[1], np.array([1.0, -2.0]) + 0.1 * r * np.sqrt([2.0, 4.0]), rtol=1e-5)   # float32


def _differing(dir_a, dir_b, names):
    """The files among ``names`` whose bytes differ between the two dirs."""
    return [f for f in names
            if open(os.path.join(dir_a, f), "rb").read() != open(os.path.join(dir_b, f), "rb").read()]


def kill_after_last_pass(exp_dir, step):
    """What a training killed after its last pass leaves: no final.mdl and no stamp of a finished run."""
    os.unlink(os.path.join(exp_dir, "final.mdl"))
    os.unlink(os.path.join(exp_dir, f".done.{step}"))


MODEL_FILES = ["final.mdl", "tree", "ali.1.gz", "ali.2.gz", "phone_ali.1.gz", "phone_ali.2.gz"]


def test_mono_trains_the_same_twice_and_after_a_kill(tiny_recipe, mono):
    train = ["-m", "steps_py.gmm.train_mono", *MONO_ARGS]
    again = os.path.join(tiny_recipe, "exp", "short", "mono_again")
    run_step(train + ["data/train", "data/lang", again], tiny_recipe)
    assert _differing(mono, again, MODEL_FILES) == []
    # Killed after pass 5: what a run of 6 passes leaves (6.mdl and the pass-5 alignments); the re-run resumes
    # at pass 6 and must end with the same model and the same log-likelihood of every pass.
    resumed = os.path.join(tiny_recipe, "exp", "short", "mono_resumed")
    run_step(train + ["--num-iters", "6", "data/train", "data/lang", resumed], tiny_recipe)
    assert _differing(mono, resumed, ["final.mdl"]) != []
    kill_after_last_pass(resumed, "train_mono")
    run_step(train + ["data/train", "data/lang", resumed], tiny_recipe)
    assert _differing(mono, resumed, MODEL_FILES + [os.path.join("log", "likelihoods.txt")]) == []


def test_mono_killed_mid_pass_resumes_to_the_same_model(tiny_recipe, mono):
    """kill -9 of the whole job tree while pass 4 accumulates: the re-run finishes with the model, alignments and
    per-pass log-likelihoods of the uninterrupted run, and leaves no accumulator behind."""
    train = ["-m", "steps_py.gmm.train_mono", *MONO_ARGS]
    killed = os.path.join(tiny_recipe, "exp", "short", "mono_killed")
    kill_when([sys.executable] + train + ["data/train", "data/lang", killed], tiny_recipe,
              "exp/short/mono_killed/4.*.acc*", env=step_env())
    assert not os.path.exists(os.path.join(killed, "final.mdl")) and os.path.exists(os.path.join(killed, "4.mdl"))
    log = run_step(train + ["data/train", "data/lang", killed], tiny_recipe)
    assert "pass 4" in log and "pass 3" not in log, log[-2000:]     # resumed at the killed pass, not started over
    assert _differing(mono, killed, MODEL_FILES + [os.path.join("log", "likelihoods.txt")]) == []
    assert glob.glob(os.path.join(killed, "*.acc*")) == []


def test_tri1_trains_the_same_twice_and_after_a_kill(tiny_recipe, mono_ali, tri1):
    ali_dir, (tri1_dir, _) = mono_ali[0], tri1
    train = ["-m", "steps_py.gmm.train_deltas", *TRI1_ARGS]
    again = os.path.join(tiny_recipe, "exp", "short", "tri1_again")
    run_step(train + ["data/train", "data/lang", ali_dir, again], tiny_recipe)
    assert _differing(tri1_dir, again, MODEL_FILES + ["questions.int"]) == []
    resumed = os.path.join(tiny_recipe, "exp", "short", "tri1_resumed")
    run_step(train + ["--num-iters", "4", "data/train", "data/lang", ali_dir, resumed], tiny_recipe)
    kill_after_last_pass(resumed, "train_deltas")
    run_step(train + ["data/train", "data/lang", ali_dir, resumed], tiny_recipe)
    assert _differing(tri1_dir, resumed, MODEL_FILES + [os.path.join("log", "likelihoods.txt")]) == []


def test_equal_alignment_does_not_depend_on_the_job_split(tiny_recipe):
    """Pass 0 aligns each utterance along a random path seeded by its id (utterance_seed), so one job and two
    jobs give every utterance the same equal alignment."""
    from steps_py.gmm.job import utterance_seed
    from steps_py.kaldi.io import read_int_vectors
    assert utterance_seed(0, "spk1_u1") == utterance_seed(0, "spk1_u1") != utterance_seed(1, "spk1_u1")
    alis = []
    for nj in ("1", "2"):
        out = os.path.join(tiny_recipe, "exp", "short", f"mono_equal_nj{nj}")
        run_step(["-m", "steps_py.gmm.train_mono", "--nj", nj, "--cmd", "run.py", "--num-iters", "1",
                  "--realign-iters", "", "data/train", "data/lang", out], tiny_recipe)
        ali = {}
        for j in range(1, int(nj) + 1):
            ali.update(read_int_vectors(os.path.join(out, f"ali.{j}.gz")))
        alis.append(ali)
    assert len(alis[0]) >= 20 and alis[0].keys() == alis[1].keys()
    assert all(np.array_equal(alis[0][u], alis[1][u]) for u in alis[0])
