"""Diagonal-covariance GMM acoustic models: initialisation, a vectorised E-step, per-pdf ML update, mixing up,
silence boosting and log-likelihoods.

The equivalents of Kaldi's gmm-init-mono, gmm-init-model, gmm-acc-stats-ali, gmm-sum-accs, gmm-est (with
--mix-up/--power), gmm-boost-silence and DiagGmm::LogLikelihood, as functions on numpy arrays and kaldi_hmm_gmm
objects. Frames are 10 ms; features are [T, D] float32 arrays.

GMM statistics (``GmmStats``) cover all Gaussians of the model stacked in pdf order (G = total Gaussians):
occupancy [G], sum_x [G, D], sum_x2 [G, D] (float64), plus transition counts [num_transition_ids + 1], the total
log-likelihood and the frame count. Jobs write them with ``save_stats`` and the driver sums them with
``sum_stats``.
"""
import pickle

import numpy as np

from steps_py.common import InputError, atomic_open, get_logger
from steps_py.kaldi.bindings import khg, mle_diag_gmm_update

log = get_logger("gmm.model")

GMM_ALL = 15  # kGmmAll: means, variances, weights, transitions


# ---------------------------------------------------------------------------------------------------------------
# Model initialisation

def global_gaussian(feats_list, dim=None):
    """One-Gaussian DiagGmm from the mean and variance of the given feature matrices (gmm-init-mono)."""
    x = np.concatenate(feats_list).astype(np.float64) if feats_list else np.zeros((0, dim))
    mean = x.mean(0) if len(x) else np.zeros(dim)
    var = x.var(0) if len(x) else np.ones(dim)
    g = khg.DiagGmm(1, x.shape[1])
    g.set_weights(np.ones(1, np.float32))
    g.set_invvars_and_means((1.0 / np.maximum(var, 1e-6))[None].astype(np.float32), mean[None].astype(np.float32))
    g.compute_gconsts()
    return g


def init_mono(lang, feats_list):
    """gmm-init-mono --shared-phones=phones/sets.int: (TransitionModel, tree, AmDiagGmm) with one Gaussian per pdf
    equal to the global mean/variance of feats_list (a few utterances' features)."""
    phone2num = lang.topo.get_phone_to_num_pdf_classes()
    tree = khg.monophone_context_dependency_shared(lang.sets, phone2num)
    tm = khg.TransitionModel(ctx_dep=tree, hmm_topo=lang.topo)
    g = global_gaussian(feats_list)
    am = khg.AmDiagGmm()
    am.init(g, tree.num_pdfs)
    am.compute_gconsts()
    return tm, tree, am


def init_model_from_tree_stats(stats, tree, lang, var_floor=0.01):
    """gmm-init-model: one Gaussian per leaf from the tree statistics pooled by leaf. Returns (tm, am, occs [P]).

    Leaves without data get the global Gaussian (logged)."""
    tm = khg.TransitionModel(ctx_dep=tree, hmm_topo=lang.topo)
    num_pdfs = tree.num_pdfs
    D = stats.sum_x.shape[1]
    cnt = np.zeros(num_pdfs)
    sx = np.zeros((num_pdfs, D))
    sx2 = np.zeros((num_pdfs, D))
    for i in range(stats.num_events):
        ctx = [max(int(c), 0) for c in stats.contexts[i]]
        ok, pdf = tree.compute(ctx, int(stats.pdf_classes[i]))
        if not ok:
            raise InputError(f"tree gives no pdf for context {ctx} pdf-class {stats.pdf_classes[i]}")
        cnt[pdf] += stats.counts[i]
        sx[pdf] += stats.sum_x[i]
        sx2[pdf] += stats.sum_x2[i]
    tot_n = cnt.sum()
    glob_mean, glob_var = sx.sum(0) / tot_n, sx2.sum(0) / tot_n - (sx.sum(0) / tot_n) ** 2
    am = khg.AmDiagGmm()
    no_stats = 0
    for p in range(num_pdfs):
        if cnt[p] > 0:
            mean = sx[p] / cnt[p]
            var = np.maximum(sx2[p] / cnt[p] - mean ** 2, var_floor)
        else:
            mean, var = glob_mean, np.maximum(glob_var, var_floor)
            no_stats += 1
        g = khg.DiagGmm(1, D)
        g.set_weights(np.ones(1, np.float32))
        g.set_invvars_and_means((1.0 / var)[None].astype(np.float32), mean[None].astype(np.float32))
        g.compute_gconsts()
        am.add_pdf(g)
    if no_stats:
        log.warning(f"{no_stats} of {num_pdfs} pdfs had no stats (initialised from the global Gaussian)")
    return tm, am, cnt


# ---------------------------------------------------------------------------------------------------------------
# E-step (gmm-acc-stats-ali) and statistics

class GmmArrays:
    """All Gaussians of an AmDiagGmm stacked: gconsts [G], means_invvars [G, D], inv_vars [G, D] (float64),
    offsets [P+1] (pdf p owns rows offsets[p]:offsets[p+1])."""

    def __init__(self, am):
        gc, mi, iv, sizes = [], [], [], []
        for p in range(am.num_pdfs):
            g = am.get_pdf(p)
            g.compute_gconsts()
            gc.append(np.asarray(g.gconsts, np.float64))
            mi.append(np.asarray(g.means_invvars, np.float64))
            iv.append(np.asarray(g.inv_vars, np.float64))
            sizes.append(len(gc[-1]))
        self.gconsts = np.concatenate(gc)
        self.means_invvars = np.concatenate(mi)
        self.inv_vars = np.concatenate(iv)
        self.offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        self.num_pdfs = am.num_pdfs
        self.dim = am.dim

    def component_loglikes(self, feats, pdf):
        """[T, G_pdf] log(weight * N(x; mean, var)) for frames feats [T, D] under pdf ``pdf``."""
        a, b = self.offsets[pdf], self.offsets[pdf + 1]
        x = np.asarray(feats, np.float64)
        return self.gconsts[a:b] + x @ self.means_invvars[a:b].T - 0.5 * (x * x) @ self.inv_vars[a:b].T

    def pdf_loglikes(self, feats):
        """[T, P] float64 log-likelihood of every frame under every pdf, as DiagGmm::LogLikelihood: per Gaussian
        gconst + x.(mu/var) - 0.5 x^2.(1/var), then log-sum-exp over the Gaussians of each pdf."""
        x = np.asarray(feats, np.float64)
        per_gauss = self.gconsts[None, :] + x @ self.means_invvars.T - 0.5 * (x * x) @ self.inv_vars.T    # [T, G]
        starts = self.offsets[:-1]
        peak = np.maximum.reduceat(per_gauss, starts, axis=1)                                       # [T, P]
        summed = np.add.reduceat(np.exp(per_gauss - np.repeat(peak, np.diff(self.offsets), axis=1)), starts, axis=1)
        return peak + np.log(summed)

    def pdf_posteriors(self, feats, pdfs):
        """Yields, for each pdf p among ``pdfs`` [T] (the pdf of each frame of feats [T, D]): (p, frames [n] with
        that pdf, posteriors [n, G_p] of p's Gaussians, log-likelihoods [n] of the frames under p), as
        DiagGmm::ComponentPosteriors; one matrix product per pdf."""
        x = np.asarray(feats, np.float64)
        order = np.argsort(pdfs, kind="stable")
        for block in np.split(order, np.flatnonzero(np.diff(pdfs[order])) + 1):
            if len(block) == 0:
                continue
            p = int(pdfs[block[0]])
            ll = self.component_loglikes(x[block], p)
            top = ll.max(1, keepdims=True)
            post = np.exp(ll - top)
            total = post.sum(1, keepdims=True)
            post /= total
            yield p, block, post, (top + np.log(total))[:, 0]


class GmmStats:
    """Sufficient statistics of one E-step (see module docstring). ``offsets`` are those of the GmmArrays."""

    def __init__(self, offsets, dim, num_tids):
        G = int(offsets[-1])
        self.offsets = np.asarray(offsets, np.int64)
        self.occupancy = np.zeros(G)
        self.sum_x = np.zeros((G, dim))
        self.sum_x2 = np.zeros((G, dim))
        self.trans_counts = np.zeros(num_tids + 1)
        self.tot_loglike = 0.0
        self.num_frames = 0

    def add(self, other):
        self.occupancy += other.occupancy
        self.sum_x += other.sum_x
        self.sum_x2 += other.sum_x2
        self.trans_counts += other.trans_counts
        self.tot_loglike += other.tot_loglike
        self.num_frames += other.num_frames

    def pdf_occupancy(self):
        """[P] frames per pdf."""
        return np.add.reduceat(self.occupancy, self.offsets[:-1]) if len(self.occupancy) else np.zeros(0)


def accumulate(arrays, stats, feats, tids, pdf_of_tid):
    """Adds one utterance's (or a batch's) statistics: feats [T, D], tids [T] transition ids (the alignment).

    Posteriors of the Gaussians within each frame's pdf (as AccumAmDiagGmm::AccumulateForGmm); vectorised per pdf.
    """
    x = np.asarray(feats, np.float64)
    tids = np.asarray(tids)
    if len(x) != len(tids):
        raise ValueError(f"{len(x)} frames but alignment of {len(tids)}")
    stats.trans_counts += np.bincount(tids, minlength=len(stats.trans_counts))
    for p, block, post, loglikes in arrays.pdf_posteriors(x, pdf_of_tid[tids]):
        xb = x[block]
        stats.tot_loglike += float(loglikes.sum())
        a, b = arrays.offsets[p], arrays.offsets[p + 1]
        stats.occupancy[a:b] += post.sum(0)
        stats.sum_x[a:b] += post.T @ xb
        stats.sum_x2[a:b] += post.T @ (xb * xb)
    stats.num_frames += len(x)


def save_stats(path, stats):
    """Writes GmmStats as .npz, atomically."""
    with atomic_open(path, "wb") as f:
        np.savez(f, offsets=stats.offsets, occupancy=stats.occupancy, sum_x=stats.sum_x, sum_x2=stats.sum_x2,
                 trans_counts=stats.trans_counts, tot=np.array([stats.tot_loglike, stats.num_frames]))


def load_stats(path):
    """GmmStats of a save_stats file."""
    try:
        z = np.load(path)
    except OSError as e:
        raise InputError(f"cannot read statistics {path}: {e}") from None
    s = GmmStats(z["offsets"], z["sum_x"].shape[1], len(z["trans_counts"]) - 1)
    s.occupancy, s.sum_x, s.sum_x2, s.trans_counts = z["occupancy"], z["sum_x"], z["sum_x2"], z["trans_counts"]
    s.tot_loglike, s.num_frames = float(z["tot"][0]), int(z["tot"][1])
    return s


def sum_stats(paths):
    """gmm-sum-accs: the sum of the job statistics files."""
    total = None
    for p in paths:
        s = load_stats(p)
        if total is None:
            total = s
        else:
            if not np.array_equal(total.offsets, s.offsets):
                raise InputError(f"{p}: statistics of a different model than {paths[0]}")
            total.add(s)
    return total


# ---------------------------------------------------------------------------------------------------------------
# M-step (gmm-est)

def update(tm, am, stats, min_gaussian_occupancy=10.0, min_gaussian_weight=1e-5, min_variance=0.001,
           mixup=0, power=0.2, perturb_factor=0.01, min_count=20.0, trans_floor=0.01, trans_mincount=5.0, rng=None):
    """gmm-est: updates tm (transitions) and am (every pdf, in place) from stats; mixes up to ``mixup`` Gaussians,
    drawing the perturbations of the split Gaussians from ``rng`` (a numpy Generator, see mixup_rng; needed only
    when Gaussians are added).

    Returns a dict of diagnostics: objf improvements per frame, counts, floored and removed Gaussians.
    """
    t_impr, t_count = tm.mle_update(stats.trans_counts, khg.MleTransitionUpdateConfig(floor=trans_floor,
                                                                                    mincount=trans_mincount))
    opts = khg.MleDiagGmmOptions(min_gaussian_weight=min_gaussian_weight,
                                 min_gaussian_occupancy=min_gaussian_occupancy, min_variance=min_variance)
    tot_impr = tot_count = 0.0
    floored = removed = 0
    for p in range(am.num_pdfs):
        a, b = stats.offsets[p], stats.offsets[p + 1]
        gmm = am.get_pdf(p)
        if gmm.num_gauss != b - a:
            raise ValueError(f"pdf {p}: model has {gmm.num_gauss} Gaussians, statistics {b - a}")
        acc = khg.AccumDiagGmm(gmm, GMM_ALL)
        acc.occupancy = stats.occupancy[a:b]
        acc.mean_accumulator = stats.sum_x[a:b]
        acc.variance_accumulator = stats.sum_x2[a:b]
        if stats.occupancy[a:b].sum() <= 0:
            continue          # no data for this pdf: keep it (Kaldi warns and leaves it unchanged)
        impr, count, fl_el, fl_g, rm = mle_diag_gmm_update(opts, acc, GMM_ALL, gmm)
        tot_impr += impr
        tot_count += count
        floored += fl_g
        removed += rm
    am.compute_gconsts()
    mix_up(am, stats.pdf_occupancy(), mixup, power, perturb_factor, min_count, rng)
    n = max(stats.num_frames, 1)
    return {"trans_impr_per_frame": t_impr / n, "gmm_impr_per_frame": tot_impr / n, "count": tot_count,
            "floored_gauss": floored, "removed_gauss": removed, "num_gauss": am.num_gauss,
            "loglike_per_frame": stats.tot_loglike / n, "frames": stats.num_frames}


def mixup_rng(seed, step):
    """The random generator of one mixing up: a function of the run's ``seed`` and the ``step`` (the EM pass) only,
    so a run resumed at any pass draws what an uninterrupted run draws there."""
    if seed < 0 or step < 0:
        raise ValueError(f"mixing-up seed and step must be >= 0, got {seed} and {step}")
    return np.random.default_rng([seed, step])


def split_targets(am, pdf_occs, target, power, min_count):
    """[P] Gaussians of each pdf after mixing up to ``target``: Kaldi's GetSplitTargets (a share of ``target``
    proportional to pdf_occs ** power, at least ``min_count`` frames per Gaussian, never fewer than now).

    They are read off a copy of ``am`` split by kaldi_hmm_gmm's own split_by_count with a perturbation factor of 0
    (its random draws are multiplied by 0, so the copy's split is exact), which keeps Kaldi's priority-queue order
    between pdfs of equal occupancy."""
    probe = pickle.loads(pickle.dumps(am))
    probe.split_by_count(np.asarray(pdf_occs, np.float32)[:, None], target, 0.0, power, min_count)
    return np.array([probe.num_gauss_in_pdf(p) for p in range(am.num_pdfs)])


def split_gaussians(weights, inv_vars, means_invvars, target, perturb_factor, rng):
    """DiagGmm::Split of one pdf to ``target`` Gaussians, with the random draws from ``rng``.

    weights [n], inv_vars [n, D], means_invvars [n, D] (float32, Kaldi's parameterisation). Repeatedly the
    Gaussian of largest weight (the first of equal ones) is halved into two that share its variance, with means
    moved apart by -/+ perturb_factor * r * stddev (r a standard-normal [D] draw; in means_invvars, r * sqrt(inv_var)).
    Returns new (weights [target], inv_vars [target, D], means_invvars [target, D]) float32 arrays."""
    w, iv, mi = (np.asarray(a, np.float32) for a in (weights, inv_vars, means_invvars))
    n, dim = iv.shape
    if target < n:
        raise ValueError(f"cannot split {n} Gaussians to {target}")
    w = np.concatenate([w, np.zeros(target - n, np.float32)])
    iv = np.concatenate([iv, np.zeros((target - n, dim), np.float32)])
    mi = np.concatenate([mi, np.zeros((target - n, dim), np.float32)])
    factor = np.float32(perturb_factor)
    for k in range(n, target):
        i = int(np.argmax(w[:k]))
        w[i] /= 2
        w[k] = w[i]
        r = rng.standard_normal(dim).astype(np.float32) * np.sqrt(iv[i])
        iv[k] = iv[i]
        mi[k] = mi[i] + r * factor
        mi[i] = mi[i] - r * factor
    return w, iv, mi


def mix_up(am, pdf_occs, target, power, perturb_factor, min_count, rng):
    """gmm-mixup --mix-up: splits Gaussians to ``target`` in total, shared out by pdf_occs ** power (split_targets),
    each pdf split by split_gaussians with draws from ``rng`` in pdf order; in place.

    kaldi_hmm_gmm's split_by_count is not used for the split itself: its draws come from a std::random_device
    seeded anew at every split (kaldi-hmm-gmm 1.1.4, csrc/eigen.cc RandnVector), so no two runs agree."""
    if target <= am.num_gauss:
        return
    if rng is None:
        raise ValueError("mixing up needs a random generator (mixup_rng)")
    targets = split_targets(am, pdf_occs, target, power, min_count)
    state = list(am.__getstate__())     # (weights, inv_vars, means_invvars) of each pdf
    for p in np.flatnonzero(targets > [am.num_gauss_in_pdf(p) for p in range(am.num_pdfs)]):
        state[3 * p:3 * p + 3] = split_gaussians(*state[3 * p:3 * p + 3], int(targets[p]), perturb_factor, rng)
    split = khg.AmDiagGmm.__new__(khg.AmDiagGmm)
    split.__setstate__(tuple(state))
    am.copy_from_am_diag_gmm(split)
    am.compute_gconsts()


def num_gauss_at(x, start_gauss, tot_gauss, max_iter_inc):
    """The Gaussians of EM pass ``x`` >= 1 in Kaldi's schedule: ``start_gauss`` at pass 1, then after each pass up
    to ``max_iter_inc`` the integer increment $[($totgauss-$numgauss)/$max_iter_inc]."""
    inc = int((tot_gauss - start_gauss) / max_iter_inc) if tot_gauss > start_gauss else 0
    return start_gauss + inc * min(x - 1, max_iter_inc)


def boosted_copy(am, pdfs, boost):
    """gmm-boost-silence: a copy of am with the weights of ``pdfs`` multiplied by ``boost`` (not renormalised)."""
    out = pickle.loads(pickle.dumps(am))
    if boost != 1.0:
        for p in pdfs:
            g = out.get_pdf(int(p))
            g.set_weights(np.asarray(g.weights, np.float32) * boost)
            g.compute_gconsts()
    return out


def silence_pdfs(tm, lang):
    """The pdfs of the lang's optional-silence phones (what gmm-boost-silence boosts)."""
    ok, pdfs = khg.get_pdfs_for_phones(tm, sorted(lang.optional_silence_ids))
    return pdfs


def gauss_posteriors(arrays, feats, pdfs):
    """Posteriors of the Gaussians of each frame's pdf, flattened (for MLLT statistics).

    arrays: GmmArrays; feats [T, D]; pdfs [T]. Returns (frame_ids [N], gauss_ids [N] into the stacked arrays,
    posteriors [N], log-likelihoods [T]) with N = sum over frames of the number of Gaussians of the frame's pdf.
    """
    frame_ids, gauss_ids, posts = [], [], []
    loglikes = np.zeros(len(feats))
    for p, block, post, ll in arrays.pdf_posteriors(feats, pdfs):
        loglikes[block] = ll
        frame_ids.append(np.repeat(block, post.shape[1]))
        gauss_ids.append(np.tile(np.arange(arrays.offsets[p], arrays.offsets[p + 1]), len(block)))
        posts.append(post.ravel())
    return np.concatenate(frame_ids), np.concatenate(gauss_ids), np.concatenate(posts), loglikes
