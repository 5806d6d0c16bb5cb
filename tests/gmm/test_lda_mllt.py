"""LDA and MLLT maths (steps_py/gmm/lda_mllt.py; applying transforms: steps_py/feats/pipeline.py) on synthetic data
with known structure.

Run with ``-s`` to see the numbers each test checks (they are printed as well as asserted).
"""
import os

import numpy as np
import pytest

from steps_py.common import InputError
from steps_py.feats.pipeline import FeaturePipeline, apply_transform, iter_features, parse_splice_opts
from steps_py.gmm import lda_mllt


def _report(name, **values):
    print(f"\n[{name}] " + " ".join(f"{k}={v}" for k, v in values.items()))


# ---------------------------------------------------------------------------------------------------------------
# splicing and transforms

def test_splice_frames_as_splice_feats():
    """kaldi-native-fbank's splicing (the one of the feature pipeline) repeats the edge frames, as splice-feats."""
    import kaldi_native_fbank as knf
    feats = np.random.default_rng(0).standard_normal((17, 13)).astype(np.float32)
    spliced = knf.splice_frames(feats, knf.SpliceOptions(left_context=3, right_context=3))
    assert spliced.shape == (17, 91)
    # frame 0 repeats itself three times on the left; frame 5 is the plain concatenation of frames 2..8
    np.testing.assert_array_equal(spliced[0, :39], np.tile(feats[0], 3))
    np.testing.assert_array_equal(spliced[5], feats[2:9].reshape(-1))


def test_parse_splice_opts():
    assert parse_splice_opts("--left-context=3 --right-context=3") == (3, 3)
    assert parse_splice_opts("") == (4, 4)
    with pytest.raises(InputError, match="unsupported option '--foo=1'"):
        parse_splice_opts("--foo=1")
    with pytest.raises(InputError, match="negative context"):
        parse_splice_opts("--left-context=-1")


def test_affine_transform_and_composition():
    rng = np.random.default_rng(1)
    feats = rng.standard_normal((6, 5))
    affine = rng.standard_normal((3, 6))
    np.testing.assert_allclose(apply_transform(feats, affine), feats @ affine[:, :5].T + affine[:, 5])
    square = rng.standard_normal((3, 3))
    composed = lda_mllt.compose_transforms(square, affine)
    np.testing.assert_allclose(apply_transform(feats, composed),
                               apply_transform(apply_transform(feats, affine), square))
    outer_affine = rng.standard_normal((3, 4))
    composed = lda_mllt.compose_transforms(outer_affine, affine, inner_is_affine=True)
    np.testing.assert_allclose(apply_transform(feats, composed),
                               apply_transform(apply_transform(feats, affine), outer_affine))
    means = rng.standard_normal((4, 3))
    np.testing.assert_allclose(lda_mllt.transform_means(means, square), means @ square.T)


# ---------------------------------------------------------------------------------------------------------------
# LDA

def _classes_separable_in_two_dims(rng, num_classes=6, frames_per_class=3000, dim=10):
    """Classes whose means differ only in dims 3 and 7 (noise std 1 there); the other 8 dims carry correlated,
    much larger noise (std ~5), so the informative dims are not the high-variance ones."""
    informative = [3, 7]
    means = np.zeros((num_classes, dim))
    angles = 2 * np.pi * np.arange(num_classes) / num_classes
    means[:, 3], means[:, 7] = 8 * np.cos(angles), 8 * np.sin(angles)
    others = [i for i in range(dim) if i not in informative]
    mixing = np.eye(dim)
    mixing[np.ix_(others, others)] = 5 * np.eye(len(others)) + rng.standard_normal((len(others), len(others)))
    class_ids = np.repeat(np.arange(num_classes), frames_per_class)
    feats = means[class_ids] + rng.standard_normal((len(class_ids), dim)) @ mixing.T
    return feats, class_ids


def test_lda_whitens_within_and_diagonalises_between():
    rng = np.random.default_rng(2)
    feats, class_ids = _classes_separable_in_two_dims(rng)
    weights = rng.uniform(0.5, 1.5, len(class_ids))
    stats = lda_mllt.lda_accumulate(feats, class_ids, 6, weights)
    # accumulation equals the direct per-class sums
    np.testing.assert_allclose(stats.sums[2], (feats[class_ids == 2] * weights[class_ids == 2, None]).sum(0))
    np.testing.assert_allclose(stats.counts.sum(), weights.sum())
    result = lda_mllt.lda_estimate(stats, dim=5)
    _, _, between, within, _ = lda_mllt.lda_covariances(stats)
    full = result.full_matrix
    within_err = np.abs(full @ within @ full.T - np.eye(10)).max()
    projected_between = full @ between @ full.T
    offdiag_err = np.abs(projected_between - np.diag(np.diag(projected_between))).max()
    eig = result.eigenvalues
    _report("lda_whitening", within_max_err=f"{within_err:.2e}", between_offdiag_max=f"{offdiag_err:.2e}",
            eigenvalues=np.round(eig, 4).tolist())
    assert result.matrix.shape == (5, 10)
    assert within_err < 1e-6
    assert offdiag_err < 1e-6
    np.testing.assert_allclose(np.diag(projected_between), eig, atol=1e-6)
    assert np.all(np.diff(eig) <= 1e-12), "eigenvalues must be sorted in decreasing order"
    # the population between-class covariance has rank 2; sampling noise leaves only tiny further eigenvalues
    assert eig[1] > 100 * eig[2] and eig[2] < 1e-2


def test_lda_puts_the_discriminative_dims_first():
    rng = np.random.default_rng(3)
    feats, class_ids = _classes_separable_in_two_dims(rng)
    result = lda_mllt.lda_estimate(lda_mllt.lda_accumulate(feats, class_ids, 6), dim=2)
    # the first two LDA rows put (almost) all their weight on input dims 3 and 7
    weight_on_informative = (result.matrix[:, [3, 7]] ** 2).sum(1) / (result.matrix ** 2).sum(1)

    def accuracy(x):   # nearest-class-mean classification
        centres = np.stack([x[class_ids == c].mean(0) for c in range(6)])
        return np.mean(np.argmin(((x[:, None] - centres[None]) ** 2).sum(-1), axis=1) == class_ids)
    acc_first = accuracy(apply_transform(feats, result.matrix))
    acc_last = accuracy(apply_transform(feats, result.full_matrix[-2:]))
    top_variance_dims = sorted(np.argsort(-feats.var(0))[:2].tolist())
    _report("lda_separable", weight_on_dims_3_7=np.round(weight_on_informative, 6).tolist(),
            accuracy_first2=f"{acc_first:.4f}", accuracy_last2=f"{acc_last:.4f}",
            top_variance_dims=top_variance_dims, top_eigenvalues=np.round(result.eigenvalues[:3], 4).tolist())
    assert top_variance_dims != [3, 7]          # plain PCA would pick other dims
    assert weight_on_informative.min() > 0.999
    assert acc_first > 0.99
    assert acc_last < 0.3                       # chance is 1/6
    assert result.eigenvalues[1] > 100 * abs(result.eigenvalues[2])


def test_lda_options():
    rng = np.random.default_rng(4)
    feats, class_ids = _classes_separable_in_two_dims(rng)
    stats = lda_mllt.lda_accumulate(feats, class_ids, 8)        # two classes without data are ignored
    plain = lda_mllt.lda_estimate(stats, dim=4)
    offset = lda_mllt.lda_estimate(stats, dim=4, remove_offset=True)
    assert offset.matrix.shape == (4, 11)
    projected = apply_transform(feats, offset.matrix)
    np.testing.assert_allclose(projected.mean(0), 0, atol=1e-9)
    np.testing.assert_allclose(offset.matrix[:, :10], plain.matrix)
    shrunk = lda_mllt.lda_estimate(stats, dim=4, within_class_factor=1e-4)
    _, _, _, within, _ = lda_mllt.lda_covariances(stats)
    within_var = np.diag(shrunk.matrix @ within @ shrunk.matrix.T)
    expected = (1e-4 + plain.eigenvalues[:4]) / (1 + plain.eigenvalues[:4])
    np.testing.assert_allclose(within_var, expected, rtol=1e-6)
    with pytest.raises(ValueError):
        lda_mllt.lda_estimate(stats, dim=6)                      # 6 classes with data: dim must be < 6
    assert lda_mllt.lda_estimate(stats, dim=6, allow_large_dim=True).matrix.shape == (6, 10)


# ---------------------------------------------------------------------------------------------------------------
# MLLT

def _rotated_classes(rng, dim=10, num_classes=8, frames=20000):
    """Classes with diagonal covariances (different per class) in a latent space z, observed as x = R^T z."""
    rotation = np.linalg.qr(rng.standard_normal((dim, dim)))[0]
    class_means = rng.standard_normal((num_classes, dim)) * 2
    class_vars = np.exp(rng.uniform(-2, 2, (num_classes, dim)))
    class_ids = rng.integers(0, num_classes, frames)
    latent = class_means[class_ids] + rng.standard_normal((frames, dim)) * np.sqrt(class_vars[class_ids])
    return latent @ rotation, class_ids, rotation


def _fit_diag(feats, class_ids, num_classes):
    means = np.stack([feats[class_ids == c].mean(0) for c in range(num_classes)])
    variances = np.stack([feats[class_ids == c].var(0) for c in range(num_classes)])
    return means, variances


def _avg_loglike(feats, transform, class_ids, num_classes):
    """Per-frame log-likelihood of x under the diagonal per-class model fitted in the space A x (with log|det A|)."""
    y = feats @ transform.T
    means, variances = _fit_diag(y, class_ids, num_classes)
    ll = -0.5 * (np.log(2 * np.pi * variances[class_ids]) + (y - means[class_ids]) ** 2 / variances[class_ids])
    return ll.sum(1).mean() + np.linalg.slogdet(transform)[1]


def _mllt_passes(feats, class_ids, num_classes, num_passes, num_iters=50):
    """Kaldi's schedule: each pass fits the diagonal model in the current space, accumulates, updates from I."""
    transform = np.eye(feats.shape[1])
    history = []
    for _ in range(num_passes):
        y = feats @ transform.T
        means, variances = _fit_diag(y, class_ids, num_classes)
        stats = lda_mllt.mllt_accumulate(y, np.arange(len(y)), class_ids, np.ones(len(y)), means, 1 / variances)
        update, objectives = lda_mllt.mllt_update(stats, num_iters=num_iters)
        history.append((objectives, stats.beta))
        transform = update @ transform
    return transform, history


def test_mllt_accumulation_matches_direct_sum():
    rng = np.random.default_rng(5)
    feats = rng.standard_normal((50, 4))
    means, inv_vars = rng.standard_normal((3, 4)), rng.uniform(0.5, 2, (3, 4))
    frame_ids = np.repeat(np.arange(50), 2)
    gauss_ids = rng.integers(0, 3, 100)
    posts = rng.uniform(0, 1, 100)
    stats = lda_mllt.mllt_accumulate(feats, frame_ids, gauss_ids, posts, means, inv_vars, chunk_size=7)
    direct = np.zeros((4, 4, 4))
    for f, g, p in zip(frame_ids, gauss_ids, posts):
        o = feats[f] - means[g]
        for i in range(4):
            direct[i] += p * inv_vars[g, i] * np.outer(o, o)
    np.testing.assert_allclose(stats.G, direct, rtol=1e-10)
    assert stats.beta == pytest.approx(posts.sum())


def test_mllt_raises_objective_and_likelihood():
    rng = np.random.default_rng(6)
    feats, class_ids, _ = _rotated_classes(rng)
    transform, history = _mllt_passes(feats, class_ids, 8, num_passes=3)
    per_frame = [((obj[-1] - obj[0]) / beta) for obj, beta in history]
    min_step = min(np.diff(obj).min() for obj, _ in history)
    ll_identity = _avg_loglike(feats, np.eye(10), class_ids, 8)
    ll_mllt = _avg_loglike(feats, transform, class_ids, 8)
    _report("mllt_objective", objf_impr_per_frame_by_pass=[f"{v:.4f}" for v in per_frame],
            min_objf_step=f"{min_step:.3e}", loglike_identity=f"{ll_identity:.4f}", loglike_mllt=f"{ll_mllt:.4f}")
    for objectives, _ in history:
        assert np.all(np.diff(objectives) >= -1e-9 * abs(objectives[0])), "objective decreased within a pass"
    assert per_frame[0] > 0.1 and all(v > 0 for v in per_frame)   # every pass raises Q
    assert ll_mllt > ll_identity + 0.5


def test_mllt_recovers_a_known_rotation():
    rng = np.random.default_rng(7)
    feats, class_ids, rotation = _rotated_classes(rng)
    transform, _ = _mllt_passes(feats, class_ids, 8, num_passes=4)
    # A = P S R up to permutation P and diagonal scale/sign S: normalised rows of A times R^T form |P|
    rows = transform / np.linalg.norm(transform, axis=1, keepdims=True)
    match = np.abs(rows @ rotation.T)
    best, second = match.max(1), np.sort(match, axis=1)[:, -2]
    _report("mllt_rotation", min_best_cosine=f"{best.min():.5f}", max_other_cosine=f"{second.max():.5f}")
    assert best.min() > 0.99
    assert second.max() < 0.1
    assert sorted(match.argmax(1)) == list(range(10)), "rows must match distinct latent dims (a permutation)"


def test_mllt_update_converges_to_a_stationary_point():
    rng = np.random.default_rng(8)
    feats, class_ids, _ = _rotated_classes(rng, dim=6, frames=5000)
    means, variances = _fit_diag(feats, class_ids, 8)
    stats = lda_mllt.mllt_accumulate(feats, np.arange(len(feats)), class_ids, np.ones(len(feats)), means,
                                     1 / variances)

    def gradient_per_frame(transform):   # dQ/dA = beta A^{-T} - [G_i a_i]_i, divided by beta
        return np.abs(np.linalg.inv(transform).T - np.einsum("iab,ib->ia", stats.G, transform) / stats.beta).max()
    transform, objectives = lda_mllt.mllt_update(stats, num_iters=200)
    _report("mllt_stationary", grad_identity=f"{gradient_per_frame(np.eye(6)):.3e}",
            grad_after_200=f"{gradient_per_frame(transform):.3e}",
            objf_impr_per_frame=f"{(objectives[-1] - objectives[0]) / stats.beta:.5f}")
    assert gradient_per_frame(np.eye(6)) > 0.1
    assert gradient_per_frame(transform) < 2e-3


# ---------------------------------------------------------------------------------------------------------------
# train_lda_mllt on the tiny synthetic corpus (the session fixtures tiny_recipe and mono of conftest.py)

from conftest import num_frames, read_job_vectors, run_step  # noqa: E402

TRI2B_ARGS = ["--num-iters", "8", "--mllt-iters", "2 4 6", "--realign-iters", "4 5", "--max-iter-inc", "6",
              "100", "400", "data/train", "data/lang", "exp/short/mono", "exp/short/tri2b"]


@pytest.fixture(scope="session")
def tri2b(tiny_recipe, mono):
    """tri2b trained from the monophone alignments (Kaldi's script accepts any alignment dir), with 8 passes and
    100 leaves / 400 Gaussians instead of conf/gmm.conf's 35 and 1000 / 7500, to take ~15 s on the tiny corpus."""
    log = run_step(["-m", "steps_py.gmm.train_lda_mllt"] + TRI2B_ARGS, tiny_recipe)
    return os.path.join(tiny_recipe, "exp", "short", "tri2b"), log


def test_train_lda_mllt_outputs(tiny_recipe, tri2b):
    import kaldiio
    from steps_py.kaldi.model_io import read_model
    from steps_py.kaldi.tree_io import read_tree
    d, _ = tri2b
    for f in ("final.mat", "final.mdl", "tree", "ali.1.gz", "ali.2.gz", "splice_opts", "num_jobs", "0.mat",
              "log/lda_est.log", "log/mupdate.2.log", "log/macc.6.1.log"):
        assert os.path.exists(os.path.join(d, f)), f
    assert open(os.path.join(d, "splice_opts")).read().split() == ["--left-context=3", "--right-context=3"]
    # final.mat: a Kaldi binary float matrix, 40 x 91, equal to MLLT_6 MLLT_4 MLLT_2 LDA
    raw = open(os.path.join(d, "final.mat"), "rb").read()
    assert raw.startswith(b"\0BFM ")
    final = kaldiio.load_mat(os.path.join(d, "final.mat"))
    assert final.shape == (40, 91)
    composed = kaldiio.load_mat(os.path.join(d, "0.mat")).astype(np.float64)
    for x in (2, 4, 6):
        composed = kaldiio.load_mat(os.path.join(d, f"{x}.mat.new")) @ composed
    rel_err = np.abs(final - composed).max() / np.abs(final).max()
    impr = [float(open(os.path.join(d, "log", f"mupdate.{x}.log")).read().split("total objf impr is ")[1].split()[0])
            for x in (2, 4, 6)]
    likes = [float(line.split()[3]) for line in open(os.path.join(d, "log", "likelihoods.txt"))]
    lda_log = open(os.path.join(d, "log", "lda_est.log")).read()
    _report("tri2b", final_mat=final.shape, compose_rel_err=f"{rel_err:.2e}", mllt_objf_impr=impr,
            loglike_first=likes[0], loglike_last=likes[-1],
            lda_selected=lda_log.split("Sum of selected singular values is ")[1].split()[0],
            lda_all=lda_log.split("Sum of all singular values is ")[1].split()[0])
    assert rel_err < 1e-5
    assert all(v > 0 for v in impr)
    assert likes[-1] > likes[0] + 1.0
    # the model lives in the 40-dim space, and the alignments cover the training data
    tree = read_tree(os.path.join(d, "tree"))
    tm, am, _ = read_model(os.path.join(d, "final.mdl"), tree)
    assert am.dim == 40 and tree.context_width == 3 and am.num_pdfs == tree.num_pdfs
    frames = num_frames(os.path.join(tiny_recipe, "data", "train"))
    alis = read_job_vectors(d)
    _report("tri2b_train_alignments", aligned=f"{len(alis)}/{len(frames)}")
    assert len(alis) >= 0.9 * len(frames) and all(len(a) == frames[u] for u, a in alis.items())
    # the shared feature pipeline picks up splice_opts + final.mat
    pipeline = FeaturePipeline(d)
    assert pipeline.type == "lda"
    utt, feats = next(iter_features(os.path.join(tiny_recipe, "data", "train"), d))
    assert feats.shape == (frames[utt], 40)


def test_train_lda_mllt_rerun_and_align(tiny_recipe, tri2b):
    d, _ = tri2b
    before = open(os.path.join(d, "final.mat"), "rb").read()
    log = run_step(["-m", "steps_py.gmm.train_lda_mllt"] + TRI2B_ARGS, tiny_recipe)     # finished: nothing is redone
    assert "accumulating" not in log and "skipped: exp/short/tri2b is up to date" in log
    assert open(os.path.join(d, "final.mat"), "rb").read() == before
    # align_si with the tri2b dir: features spliced + final.mat; on the training data it reproduces the last
    # training alignment closely; the 8 dev utterances are unseen voices for a model of 40 utterances
    run_step(["-m", "steps_py.gmm.align_si", "--nj", "2", "data/train", "data/lang", "exp/short/tri2b",
              "exp/short/tri2b_ali"], tiny_recipe)
    assert open(os.path.join(tiny_recipe, "exp", "short", "tri2b_ali", "final.mat"), "rb").read() == before
    ours = read_job_vectors(d)
    theirs = read_job_vectors(os.path.join(tiny_recipe, "exp", "short", "tri2b_ali"))
    common = sorted(set(ours) & set(theirs))
    agreement = np.mean(np.concatenate([ours[u] == theirs[u] for u in common]))
    dev_log = run_step(["-m", "steps_py.gmm.align_si", "--nj", "2", "data/dev", "data/lang", "exp/short/tri2b",
                        "exp/short/tri2b_ali_dev"], tiny_recipe)
    dev_aligned = int(dev_log.split("aligned ")[-1].split()[0])
    _report("tri2b_align", train_aligned=f"{len(theirs)}/{len(ours)}", tid_agreement=f"{agreement:.4f}",
            dev_aligned=f"{dev_aligned}/8")
    assert len(theirs) >= len(ours) - 1
    assert agreement > 0.7
    assert dev_aligned >= 5       # 6-8 of 8 in repeated runs: see test_gmm.test_align_dev_with_mono


def test_train_lda_mllt_resumes_to_the_same_model(tiny_recipe, tri2b):
    """A run killed after pass 5 (what a 6-pass run with the MLLT passes before 6 leaves: 6.mdl, 0/2/4.mat, the
    pass-5 alignments) resumes at the MLLT pass 6 and ends byte-identical to the uninterrupted fixture run."""
    d, _ = tri2b
    resumed = os.path.join(tiny_recipe, "exp", "short", "tri2b_resumed")
    args = TRI2B_ARGS[:-1] + [resumed]
    run_step(["-m", "steps_py.gmm.train_lda_mllt"] + args + ["--num-iters", "6", "--mllt-iters", "2 4"], tiny_recipe)
    os.unlink(os.path.join(resumed, "final.mdl"))
    os.unlink(os.path.join(resumed, ".done.train_lda_mllt"))   # a kill before the end leaves no stamp
    run_step(["-m", "steps_py.gmm.train_lda_mllt"] + args, tiny_recipe)
    for f in ("final.mdl", "final.mat", "6.mat", "tree", "ali.1.gz", "ali.2.gz", "log/likelihoods.txt"):
        assert open(os.path.join(d, f), "rb").read() == open(os.path.join(resumed, f), "rb").read(), f
