"""LDA and MLLT (global semi-tied covariance) estimation in numpy, as Kaldi's est-lda and est-mllt do it.

Pure maths, no file I/O. Shapes: T frames (10 ms each), D input dims (spliced features, e.g. 13 x 7 = 91),
d output dims (e.g. 40), C classes (pdf-ids), M Gaussians.

Feature pipeline of an LDA+MLLT system (Kaldi's train_lda_mllt.sh):
  MFCC+CMVN [T, 13] -> splice-feats (left=3, right=3) [T, 91] -> transform-feats (final.mat) [T, 40]
(steps_py.feats.pipeline)
with final.mat = MLLT_k @ ... @ MLLT_1 @ LDA, a d x D matrix (d x (D+1) when it carries an offset column, as Kaldi's
transform-feats accepts).

LDA (src/transform/lda-estimate.cc): with within-class covariance W = L L^T (Cholesky), the rows of
U^T L^{-1} where U holds the eigenvectors of L^{-1} B L^{-T} (B = between-class covariance) sorted by decreasing
eigenvalue; the projected data have unit within-class covariance and diagonal between-class covariance.

MLLT (src/transform/mllt.cc, Gales 1999 "Semi-tied covariance matrices"): a square A maximising
  Q(A) = beta * log|det A| - 1/2 sum_i a_i G_i a_i^T
with a_i the i-th row of A, beta the frame count and G_i = sum_{t,m} gamma_{t,m} (x_t - mu_m)(x_t - mu_m)^T / var_{m,i}
accumulated in the current feature space under the current diagonal model. Each row is set in closed form,
a_i = c_i G_i^{-1} sqrt(beta / (c_i G_i^{-1} c_i^T)), c_i the i-th row of the cofactor matrix of A.
"""
import collections

import numpy as np

from steps_py.common import get_logger

log = get_logger("gmm.lda_mllt")


# ----------------------------------------------------------------------------------------------------------------
# Composing transforms (compose-transforms, gmm-transform-means)

def compose_transforms(outer, inner, inner_is_affine=False):
    """Kaldi's compose-transforms outer inner: the transform applying ``inner`` first, then ``outer``.

    outer: d x e (linear) or d x (e+1) (affine); inner: e x D (linear) or e x (D+1) (affine, ``inner_is_affine``;
    needed only when outer is affine, since then inner's last column must receive outer's offset).
    Returns d x D, or d x (D+1) when either is affine.
    """
    e = inner.shape[0]
    if outer.shape[1] == e:
        return outer @ inner
    if outer.shape[1] != e + 1:
        raise ValueError(f"cannot compose a {outer.shape} transform with a {inner.shape} one")
    out = outer[:, :e] @ inner
    if not inner_is_affine:
        out = np.concatenate([out, np.zeros((outer.shape[0], 1))], axis=1)
    out[:, -1] += outer[:, e]
    return out


def transform_means(means, mat):
    """Kaldi's gmm-transform-means: means [M, d] -> [M, d] as row-wise mat @ mu (+ offset for a d x (d+1) mat).

    Variances are left as they are, as Kaldi does; the next EM iteration re-estimates them.
    """
    d = means.shape[1]
    if mat.shape == (d, d):
        return means @ mat.T
    if mat.shape == (d, d + 1):
        return means @ mat[:, :d].T + mat[:, d]
    raise ValueError(f"transform of shape {mat.shape} does not fit means of dim {d}")


# ----------------------------------------------------------------------------------------------------------------
# LDA

LdaStats = collections.namedtuple("LdaStats", "counts sums scatter")
LdaStats.__doc__ = """LDA statistics (Kaldi's LdaEstimate accumulators), all float64:
counts [C] weighted frame counts per class, sums [C, D] weighted feature sums per class,
scatter [D, D] total weighted sum of x x^T."""

LdaResult = collections.namedtuple("LdaResult", "matrix full_matrix eigenvalues total_mean count")
LdaResult.__doc__ = """Output of lda_estimate: matrix [dim, D] (or [dim, D+1] with remove_offset), full_matrix [D, D]
(or [D, D+1]), eigenvalues [D] of the whitened between-class covariance in decreasing order (Kaldi logs them as
'LDA singular values'), total_mean [D], count (total weight)."""


def lda_accumulate(feats, class_ids, num_classes, weights=None):
    """LDA statistics of frames labelled with classes (acc-lda with alignment posteriors, without rand-prune).

    feats [T, D]; class_ids [T] ints in [0, num_classes); weights [T] (None = 1; 0 drops the frame, as
    weight-silence-post 0.0 does for silence). Returns LdaStats.
    """
    feats = np.asarray(feats, dtype=np.float64)
    class_ids = np.asarray(class_ids)
    if feats.ndim != 2 or class_ids.shape != (feats.shape[0],):
        raise ValueError(f"feats {feats.shape} and class_ids {class_ids.shape} do not match")
    if class_ids.size and (class_ids.min() < 0 or class_ids.max() >= num_classes):
        raise ValueError(f"class ids must lie in [0, {num_classes})")
    weights = np.ones(feats.shape[0]) if weights is None else np.asarray(weights, dtype=np.float64)
    counts = np.bincount(class_ids, weights=weights, minlength=num_classes)
    sums = np.zeros((num_classes, feats.shape[1]))
    order = np.argsort(class_ids, kind="stable")
    weighted = feats * weights[:, None]
    bounds = np.searchsorted(class_ids[order], np.arange(num_classes + 1))
    # reduceat over sorted classes: one vectorised pass instead of a per-frame loop
    nonempty = bounds[:-1] < bounds[1:]
    if nonempty.any():
        sums[nonempty] = np.add.reduceat(weighted[order], bounds[:-1][nonempty], axis=0)
    scatter = weighted.T @ feats
    return LdaStats(counts, sums, scatter)


def lda_stats_add(a, b):
    """Sum of two LdaStats (Kaldi sums the per-job accumulators)."""
    return LdaStats(a.counts + b.counts, a.sums + b.sums, a.scatter + b.scatter)


def lda_covariances(stats):
    """(total_mean [D], total_cov [D, D], between_cov [D, D], within_cov [D, D], count) of LdaStats.

    Covariances are per frame (divided by the total count), as in LdaEstimate::GetStats; classes with zero count
    are skipped.
    """
    count = stats.counts.sum()
    if count <= 0:
        raise ValueError("LDA statistics are empty (no frames with non-zero weight)")
    total_mean = stats.sums.sum(axis=0) / count
    total_cov = stats.scatter / count - np.outer(total_mean, total_mean)
    seen = stats.counts > 0
    class_means = stats.sums[seen] / stats.counts[seen, None]
    between_cov = (class_means * (stats.counts[seen, None] / count)).T @ class_means - np.outer(total_mean, total_mean)
    within_cov = total_cov - between_cov
    return total_mean, total_cov, between_cov, within_cov, count


def lda_estimate(stats, dim, allow_large_dim=False, within_class_factor=1.0, remove_offset=False):
    """Kaldi's est-lda: the LDA projection to ``dim`` dims from LdaStats.

    dim must be < number of classes with data (the between-class covariance has rank C-1) unless allow_large_dim.
    within_class_factor != 1 scales row i by sqrt((f + e_i) / (1 + e_i)) (e_i the i-th eigenvalue), as Kaldi's
    option for nnet inputs; remove_offset appends a column that subtracts the projected total mean.
    Returns LdaResult. If the within-class covariance is not positive definite, 1e-3 * its mean diagonal is added
    to the diagonal (Kaldi does the same).
    """
    total_mean, _, between_cov, within_cov, count = lda_covariances(stats)
    in_dim = within_cov.shape[0]
    num_seen = int((stats.counts > 0).sum())
    if not 0 < dim <= in_dim:
        raise ValueError(f"LDA dim {dim} must be in [1, {in_dim}]")
    if dim >= num_seen and not allow_large_dim:
        raise ValueError(f"LDA dim {dim} needs more than {num_seen} classes with data (or allow_large_dim)")
    try:
        chol = np.linalg.cholesky(within_cov)
    except np.linalg.LinAlgError:
        smooth = 1.0e-3 * np.trace(within_cov) / in_dim
        log.warning(f"Cholesky of the within-class covariance failed; adding {smooth:g} to its diagonal")
        chol = np.linalg.cholesky(within_cov + smooth * np.eye(in_dim))
    chol_inv = np.linalg.solve(chol, np.eye(in_dim))           # L^{-1}, lower triangular
    whitened_between = chol_inv @ between_cov @ chol_inv.T
    whitened_between = 0.5 * (whitened_between + whitened_between.T)
    eigenvalues, eigenvectors = np.linalg.eigh(whitened_between)
    order = np.argsort(-eigenvalues, kind="stable")
    eigenvalues, eigenvectors = eigenvalues[order], eigenvectors[:, order]
    full = eigenvectors.T @ chol_inv                            # rows: LDA directions, best first
    if within_class_factor != 1.0:
        scale = np.sqrt((within_class_factor + eigenvalues) / (1.0 + eigenvalues))
        full = full * scale[:, None]
    if remove_offset:
        full = np.concatenate([full, -(full @ total_mean)[:, None]], axis=1)
    return LdaResult(full[:dim].copy(), full, eigenvalues, total_mean, count)


# ----------------------------------------------------------------------------------------------------------------
# MLLT

MlltStats = collections.namedtuple("MlltStats", "beta G")
MlltStats.__doc__ = """MLLT statistics (Kaldi's MlltAccs): beta = total posterior weight (frames);
G [d, d, d] with G[i] = sum gamma (x - mu)(x - mu)^T / var_i, float64."""


def mllt_accumulate(feats, frame_ids, gauss_ids, posteriors, means, inv_vars, chunk_size=8192):
    """MLLT statistics from Gaussian-level posteriors (gmm-acc-mllt without rand-prune).

    feats [T, d] features in the current (transformed) space; frame_ids, gauss_ids, posteriors [N]: the N
    (frame, Gaussian, posterior) triples with non-zero posterior, Gaussians indexed into means [M, d] and
    inv_vars [M, d] (1 / variance). Returns MlltStats.

    Per Gaussian m with data, C_m = sum gamma (x - mu_m)(x - mu_m)^T is one matrix product over its frames (in
    chunks of ``chunk_size``), then G_i = sum_m inv_var_{m,i} C_m: O(N d^2 + M d^3) work with a Python loop over
    Gaussians, not frames. Call it on large batches (e.g. all utterances of a job): the loop costs ~20 us per
    Gaussian per call. Memory: M' d^2 doubles (M' Gaussians with data) plus chunk_size * d.
    """
    feats = np.asarray(feats, dtype=np.float64)
    means = np.asarray(means, dtype=np.float64)
    frame_ids, gauss_ids = np.asarray(frame_ids), np.asarray(gauss_ids)
    posteriors = np.asarray(posteriors, dtype=np.float64)
    d = feats.shape[1]
    order = np.argsort(gauss_ids, kind="stable")
    sorted_ids = gauss_ids[order]
    starts = np.flatnonzero(np.r_[True, sorted_ids[1:] != sorted_ids[:-1]]) if len(order) else np.zeros(0, int)
    ends = np.r_[starts[1:], len(order)].astype(int)
    used = sorted_ids[starts]
    scatters = np.empty((len(used), d, d))
    for k, (start, end) in enumerate(zip(starts, ends)):
        mean = means[used[k]]
        scatter = np.zeros((d, d))
        for c in range(start, end, chunk_size):
            sel = order[c:min(c + chunk_size, end)]
            offsets = feats[frame_ids[sel]] - mean
            scatter += (offsets * posteriors[sel, None]).T @ offsets
        scatters[k] = scatter
    G = (np.asarray(inv_vars, dtype=np.float64)[used].T @ scatters.reshape(len(used), d * d)).reshape(d, d, d)
    G = 0.5 * (G + G.transpose(0, 2, 1))
    return MlltStats(float(posteriors.sum()), G)


def mllt_stats_add(a, b):
    """Sum of two MlltStats (est-mllt reads and adds the per-job accumulators)."""
    return MlltStats(a.beta + b.beta, a.G + b.G)


def mllt_objective(transform, stats):
    """The MLLT auxiliary function Q(A) = beta log|det A| - 1/2 sum_i a_i G_i a_i^T (A square [d, d]).

    Up to a constant it is the data log-likelihood (in the transformed space, Jacobian included) of the diagonal
    model whose variances are re-estimated for A; the value per frame is Q / beta.
    """
    _, logabsdet = np.linalg.slogdet(transform)
    quad = np.einsum("ia,iab,ib->", transform, stats.G, transform)
    return stats.beta * logabsdet - 0.5 * quad


def mllt_update(stats, transform=None, num_iters=200):
    """Kaldi's MlltAccs::Update: ``num_iters`` passes of closed-form row updates of the square transform.

    transform: starting [d, d] matrix (None = identity, as est-mllt). Returns (transform [d, d], objectives) with
    objectives[k] = mllt_objective after k passes (objectives[0] = start); it never decreases.
    """
    d = stats.G.shape[0]
    if stats.beta < 10 * d:
        log.warning(f"MLLT update: {'very small' if stats.beta > 2 * d else 'insufficient'} count {stats.beta:g} "
                    f"for dim {d}")
    A = np.eye(d) if transform is None else np.array(transform, dtype=np.float64)
    try:
        G_inv = np.linalg.inv(stats.G)
    except np.linalg.LinAlgError:
        raise ValueError("MLLT statistics are singular (a dimension without data?)") from None
    objectives = [mllt_objective(A, stats)]
    for _ in range(num_iters):
        for i in range(d):
            # cofactor row i, up to the factor det(A): row i of inv(A)^T, i.e. column i of inv(A)
            cofactor = np.linalg.inv(A)[:, i]
            g_inv_c = G_inv[i] @ cofactor
            A[i] = g_inv_c * np.sqrt(stats.beta / (cofactor @ g_inv_c))
        objectives.append(mllt_objective(A, stats))
    return A, np.array(objectives)
