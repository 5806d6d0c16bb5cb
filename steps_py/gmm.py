"""GMM-HMM core: the feature pipeline, model initialisation, a vectorised E-step, per-pdf ML update, mixing up,
alignment, alignment conversion and tree-statistics accumulation.

The equivalents of Kaldi's gmm-init-mono, gmm-init-model, gmm-acc-stats-ali, gmm-sum-accs, gmm-est (with
--mix-up/--power), gmm-boost-silence, align-equal-compiled, gmm-align-compiled, convert-ali and acc-tree-stats, as
functions on numpy arrays and kaldi_hmm_gmm objects. Frames are 10 ms; features are [T, D] float32 arrays.

GMM statistics (``GmmStats``) cover all Gaussians of the model stacked in pdf order (G = total Gaussians):
occupancy [G], sum_x [G, D], sum_x2 [G, D] (float64), plus transition counts [num_transition_ids + 1], the total
log-likelihood and the frame count. Jobs write them with ``save_stats`` and the driver sums them with
``sum_stats``.
"""
import os
import pickle

import numpy as np

from steps_py.kaldi import _khg, kaldifst, khg  # noqa: I001  (binding import order)
from steps_py.common import InputError, get_logger
from steps_py.datadir import read_map

log = get_logger("gmm")

GMM_ALL = 15  # kGmmAll: means, variances, weights, transitions


# ---------------------------------------------------------------------------------------------------------------
# Feature pipeline

def _read_opts(path, defaults):
    """Kaldi-style option file ``--name=value ...`` (e.g. exp/tri1/cmvn_opts) -> dict with defaults filled in."""
    opts = dict(defaults)
    if path and os.path.exists(path):
        for word in open(path).read().split():
            name, _, value = word.lstrip("-").partition("=")
            opts[name.replace("-", "_")] = value or "true"
    return opts


def feature_type(exp_dir):
    """"lda" when exp_dir has final.mat (splice + transform, as align_si.sh decides), else "delta"."""
    return "lda" if exp_dir and os.path.exists(os.path.join(exp_dir, "final.mat")) else "delta"


class FeaturePipeline:
    """CMVN (per speaker, from cmvn.scp) then either deltas or splicing + a linear transform (final.mat).

    exp_dir options, as Kaldi's scripts keep them: cmvn_opts (--norm-means, --norm-vars), delta_opts
    (--delta-order, --delta-window; default 2 and 2), splice_opts (--left-context, --right-context; default 3, 3),
    final.mat (Kaldi matrix [out_dim, in_dim] or [out_dim, in_dim + 1] for an affine transform).
    ``transform`` overrides final.mat (LDA/MLLT training passes the current matrix here).
    """

    def __init__(self, exp_dir=None, transform=None, force_delta=False):
        import kaldi_native_fbank as knf
        self.knf = knf
        d = exp_dir or ""
        self.cmvn = _read_opts(os.path.join(d, "cmvn_opts"), {"norm_means": "true", "norm_vars": "false"})
        self.delta = _read_opts(os.path.join(d, "delta_opts"), {"delta_order": "2", "delta_window": "2"})
        self.splice = _read_opts(os.path.join(d, "splice_opts"), {"left_context": "3", "right_context": "3"})
        self.transform = transform
        if transform is None and not force_delta and feature_type(exp_dir) == "lda":
            import kaldiio
            self.transform = np.asarray(kaldiio.load_mat(os.path.join(exp_dir, "final.mat")), dtype=np.float32)
        self.type = "lda" if self.transform is not None else "delta"

    def describe(self):
        if self.type == "lda":
            return (f"cmvn {self.cmvn} + splice +-{self.splice['left_context']}/{self.splice['right_context']} + "
                    f"transform {self.transform.shape[0]}x{self.transform.shape[1]}")
        return f"cmvn {self.cmvn} + deltas order {self.delta['delta_order']} window {self.delta['delta_window']}"

    def __call__(self, feats, cmvn_stats):
        """feats [T, d] raw features, cmvn_stats [2, d+1] (or None) -> processed features [T, D] float32."""
        knf = self.knf
        x = np.ascontiguousarray(feats, dtype=np.float32)
        if cmvn_stats is not None and self.cmvn["norm_means"] != "false":
            opts = knf.CmvnOptions()
            opts.norm_vars = self.cmvn["norm_vars"] == "true"
            x = knf.apply_cmvn(np.asarray(cmvn_stats, dtype=np.float64), opts, x)
        if self.type == "lda":
            sopts = knf.SpliceOptions()
            sopts.left_context = int(self.splice["left_context"])
            sopts.right_context = int(self.splice["right_context"])
            x = knf.splice_frames(x, sopts)
            m = self.transform
            if m.shape[1] == x.shape[1]:
                return np.ascontiguousarray(x @ m.T, dtype=np.float32)
            if m.shape[1] == x.shape[1] + 1:
                return np.ascontiguousarray(x @ m[:, :-1].T + m[:, -1], dtype=np.float32)
            raise InputError(f"transform has {m.shape[1]} columns, spliced features have {x.shape[1]} dims")
        dopts = knf.DeltaOptions()
        dopts.order = int(self.delta["delta_order"])
        dopts.window = int(self.delta["delta_window"])
        return knf.compute_deltas(dopts, x)


def iter_features(data_dir, exp_dir=None, utts=None, pipeline=None):
    """Yields (utt, features [T, D] float32) for the utterances of data_dir (all, or ``utts`` in that order),
    processed like the model in exp_dir expects (see FeaturePipeline). Utterances without features are logged."""
    import kaldiio
    pipeline = pipeline or FeaturePipeline(exp_dir)
    feats_scp = os.path.join(data_dir, "feats.scp")
    if not os.path.exists(feats_scp):
        raise InputError(f"no such file {feats_scp}")
    scp = read_map(feats_scp)
    utt2spk = read_map(os.path.join(data_dir, "utt2spk"))
    cmvn_path = os.path.join(data_dir, "cmvn.scp")
    cmvn = read_map(cmvn_path) if os.path.exists(cmvn_path) else None
    if cmvn is None and pipeline.cmvn["norm_means"] != "false":
        raise InputError(f"no such file {cmvn_path} (run compute_cmvn_stats first)")
    cache = {}
    for utt in (utts if utts is not None else scp):
        if utt not in scp:
            log.warning(f"no features for utterance {utt} in {feats_scp}")
            continue
        stats = None
        if cmvn is not None:
            spk = utt2spk.get(utt)
            if spk not in cmvn:
                raise InputError(f"{cmvn_path}: no CMVN stats for speaker {spk} of utterance {utt}")
            if spk not in cache:
                cache.clear()
                cache[spk] = kaldiio.load_mat(cmvn[spk])
            stats = cache[spk]
        yield utt, pipeline(kaldiio.load_mat(scp[utt]), stats)


def load_features(data_dir, exp_dir=None, utts=None, pipeline=None):
    """{utt: features [T, D] float32}: the one feature pipeline of the GMM systems (see iter_features)."""
    return dict(iter_features(data_dir, exp_dir, utts, pipeline))


# ---------------------------------------------------------------------------------------------------------------
# Transition-model tables

class TransitionInfo:
    """numpy lookup tables of a TransitionModel, indexed by transition id (index 0 unused).

    pdf [n+1], phone [n+1], hmm_state [n+1], pdf_class [n+1], is_final [n+1] (the transition leaves the phone),
    is_self_loop [n+1], tstate [n+1], trans_index [n+1] (index of the transition within its HMM state).
    """

    def __init__(self, tm, topo_entries):
        n = tm.num_transition_ids
        self.num_tids = n
        self.tuples = [tuple(t.__getstate__()) for t in tm.tuples]
        state2id = list(tm.state2id)
        self.state2id = np.asarray(state2id)
        self.tstate = np.asarray(tm.id2state, dtype=np.int32)
        self.pdf = np.asarray(tm.transition_id_to_pdf_array(), dtype=np.int32)
        phone2states = {p: states for phones, states in topo_entries for p in phones}
        self.phone = np.zeros(n + 1, np.int32)
        self.hmm_state = np.zeros(n + 1, np.int32)
        self.pdf_class = np.zeros(n + 1, np.int32)
        self.is_final = np.zeros(n + 1, bool)
        self.is_self_loop = np.zeros(n + 1, bool)
        self.trans_index = np.zeros(n + 1, np.int32)
        for tid in range(1, n + 1):
            s = self.tstate[tid]
            phone, hs, _, _ = self.tuples[s - 1]
            k = tid - state2id[s]
            fwd, slf, trans = phone2states[phone][hs]
            dst = trans[k][0]
            self.phone[tid], self.hmm_state[tid], self.trans_index[tid] = phone, hs, k
            self.is_self_loop[tid] = dst == hs
            self.pdf_class[tid] = slf if dst == hs else fwd
            self.is_final[tid] = phone2states[phone][dst][0] == -1 and not phone2states[phone][dst][2]
        self.tuple_to_tstate = {t: s for s, t in enumerate(self.tuples, 1)}


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
        """[T, P] log-likelihood of every frame under every pdf (for NN targets, diagnostics)."""
        x = np.asarray(feats, np.float64)
        comp = self.gconsts + x @ self.means_invvars.T - 0.5 * (x * x) @ self.inv_vars.T
        out = np.empty((len(x), self.num_pdfs))
        for p in range(self.num_pdfs):
            c = comp[:, self.offsets[p]:self.offsets[p + 1]]
            m = c.max(1, keepdims=True)
            out[:, p] = (m + np.log(np.exp(c - m).sum(1, keepdims=True)))[:, 0]
        return out


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
    pdfs = pdf_of_tid[tids]
    order = np.argsort(pdfs, kind="stable")
    pdf_sorted = pdfs[order]
    bounds = np.flatnonzero(np.diff(pdf_sorted)) + 1
    for block in np.split(order, bounds):
        if len(block) == 0:
            continue
        p = pdfs[block[0]]
        xb = x[block]
        ll = arrays.component_loglikes(xb, p)
        m = ll.max(1, keepdims=True)
        post = np.exp(ll - m)
        tot = post.sum(1, keepdims=True)
        post /= tot
        stats.tot_loglike += float((m + np.log(tot)).sum())
        a, b = arrays.offsets[p], arrays.offsets[p + 1]
        stats.occupancy[a:b] += post.sum(0)
        stats.sum_x[a:b] += post.T @ xb
        stats.sum_x2[a:b] += post.T @ (xb * xb)
    stats.num_frames += len(x)


def save_stats(path, stats):
    from steps_py.common import atomic_open
    with atomic_open(path, "wb") as f:
        np.savez(f, offsets=stats.offsets, occupancy=stats.occupancy, sum_x=stats.sum_x, sum_x2=stats.sum_x2,
                 trans_counts=stats.trans_counts, tot=np.array([stats.tot_loglike, stats.num_frames]))


def load_stats(path):
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
           mixup=0, power=0.2, perturb_factor=0.01, min_count=20.0, trans_floor=0.01, trans_mincount=5.0):
    """gmm-est: updates tm (transitions) and am (every pdf, in place) from stats; mixes up to ``mixup`` Gaussians.

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
        impr, count, fl_el, fl_g, rm = _khg.mle_diag_gmm_update(opts, acc, GMM_ALL, gmm)
        tot_impr += impr
        tot_count += count
        floored += fl_g
        removed += rm
    am.compute_gconsts()
    pdf_occs = np.add.reduceat(stats.occupancy, stats.offsets[:-1])
    if mixup > am.num_gauss:
        am.split_by_count(pdf_occs.astype(np.float32)[:, None], mixup, perturb_factor, power, min_count)
        am.compute_gconsts()
    n = max(stats.num_frames, 1)
    return {"trans_impr_per_frame": t_impr / n, "gmm_impr_per_frame": tot_impr / n, "count": tot_count,
            "floored_gauss": floored, "removed_gauss": removed, "num_gauss": am.num_gauss,
            "loglike_per_frame": stats.tot_loglike / n, "frames": stats.num_frames}


def mixup(am, pdf_occs, target, power=0.2, perturb_factor=0.01, min_count=20.0):
    """gmm-mixup --mix-up: splits Gaussians to ``target`` in total, shared out by pdf_occs ** power."""
    if target > am.num_gauss:
        am.split_by_count(np.asarray(pdf_occs, np.float32)[:, None], target, perturb_factor, power, min_count)
        am.compute_gconsts()


def gauss_increment(tot_gauss, start_gauss, max_iter_inc):
    """Kaldi's per-iteration increment ($[($totgauss-$numgauss)/$max_iter_inc], integer division)."""
    return int((tot_gauss - start_gauss) / max_iter_inc) if tot_gauss > start_gauss else 0


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
    ok, pdfs = khg.get_pdfs_for_phones(tm, sorted(lang.optional_silence_ids))
    return pdfs


# ---------------------------------------------------------------------------------------------------------------
# Alignment

class Aligner:
    """Training graphs from transcripts and Viterbi alignment (compile-train-graphs + gmm-align-compiled).

    Graphs are compiled with transition and self-loop scales 0 (as compile-train-graphs does); the transition
    probabilities are added at alignment time with --transition-scale 1.0 --self-loop-scale 0.1.
    """

    def __init__(self, tm, tree, lang, transition_scale=1.0, self_loop_scale=0.1, acoustic_scale=0.1):
        self.tm, self.lang = tm, lang
        self.compiler = khg.TrainingGraphCompiler(
            trans_model=tm, ctx_dep=tree, lex_fst=lang.L.copy(), disambig_syms=lang.disambig_ids,
            opts=khg.TrainingGraphCompilerOptions(transition_scale=0.0, self_loop_scale=0.0))
        self.transition_scale, self.self_loop_scale, self.acoustic_scale = \
            transition_scale, self_loop_scale, acoustic_scale

    def graph(self, words):
        """Training graph (without transition probabilities) for a word sequence."""
        return self.compiler.compile_graph_from_text(self.lang.words_to_ids(words))

    def equal_align(self, words, num_frames, seed=0):
        """align-equal-compiled: a random path of the graph with frames shared out equally; None on failure."""
        ok, afst = kaldifst.equal_align(ifst=self.graph(words), length=num_frames, rand_seed=seed)
        if not ok:
            return None
        ok, ali, _, _ = kaldifst.get_linear_symbol_sequence(afst)
        ali = [t for t in ali if t != 0]
        return np.asarray(ali, np.int32) if ok and len(ali) == num_frames else None

    def align(self, am, utt, words, feats, beam=10.0, retry_beam=40.0, careful=False):
        """Viterbi alignment: (transition ids [T] or None, log-likelihood, retried: bool)."""
        fst = self.graph(words)
        khg.add_transition_probs(trans_model=self.tm, transition_scale=self.transition_scale,
                                 self_loop_scale=self.self_loop_scale, fst=fst)
        dec = khg.DecodableAmDiagGmmScaled(am=am, tm=self.tm, feats=np.ascontiguousarray(feats, np.float32),
                                           scale=self.acoustic_scale)
        nd, ne, nr, like, nfr, ali, _ = khg.align_utterance_wrapper(
            config=khg.AlignConfig(beam=beam, retry_beam=retry_beam, careful=careful), utt=utt,
            acoustic_scale=self.acoustic_scale, fst=fst, decodable=dec, num_done=0, num_error=0, num_retried=0,
            tot_like=0.0, frame_count=0)
        if nd != 1 or len(ali) != len(feats):
            return None, 0.0, bool(nr)
        return np.asarray(ali, np.int32), float(like), bool(nr)


def phone_end_frames(info, tids):
    """[T] bool: frame t is the last frame of a phone instance (SplitToPhones).

    Works for alignments from reordered graphs (the default of compile-train-graphs, where a state's self-loops come
    after the transition that leaves it) and from non-reordered ones: a phone ends at the end of the run of frames in
    the same transition state that contains the transition into the final state.
    """
    tids = np.asarray(tids)
    T = len(tids)
    if T == 0:
        return np.zeros(0, bool)
    ts = info.tstate[tids]
    run_end = np.ones(T, bool)
    run_end[:-1] = ts[1:] != ts[:-1]
    run_id = np.concatenate([[0], np.cumsum(run_end[:-1])])
    run_has_final = np.zeros(run_id[-1] + 1, bool)
    np.logical_or.at(run_has_final, run_id, info.is_final[tids])
    ends = run_end & run_has_final[run_id]
    ends[-1] = True
    return ends


def phones_per_frame(info, tids):
    """ali-to-phones --per-frame: phone id of every frame, [T] int32."""
    return info.phone[np.asarray(tids)]


def convert_alignment(tids, old_info, new_info, new_tree):
    """convert-ali: maps an alignment of one model to another model with a different tree (same topology).

    Each frame keeps its phone, HMM state and transition index; the pdfs come from the new tree with the phone
    context of the alignment (0 outside the utterance). Returns new transition ids [T] int32.
    """
    tids = np.asarray(tids)
    phones = old_info.phone[tids]
    ends = np.flatnonzero(phone_end_frames(old_info, tids))
    starts = np.concatenate([[0], ends[:-1] + 1])
    seq = phones[starts]
    N, P = new_tree.context_width, new_tree.central_position
    padded = np.concatenate([np.zeros(P, int), seq, np.zeros(N, int)])
    out = np.empty(len(tids), np.int32)
    cache = {}
    for i, (s, e) in enumerate(zip(starts, ends)):
        ctx = [int(v) for v in padded[i:i + N]]
        for t in range(s, e + 1):
            tid = tids[t]
            phone, hs, k = int(old_info.phone[tid]), int(old_info.hmm_state[tid]), int(old_info.trans_index[tid])
            key = (tuple(ctx), hs, k)
            if key not in cache:
                fwd_pc, slf_pc = _pdf_classes(new_info, phone, hs)
                fwd = new_tree.compute(ctx, fwd_pc)[1] if fwd_pc >= 0 else -1
                slf = new_tree.compute(ctx, slf_pc)[1] if slf_pc >= 0 else -1
                tstate = new_info.tuple_to_tstate.get((phone, hs, fwd, slf))
                if tstate is None:
                    raise ValueError(f"no transition state for phone {phone} state {hs} pdfs {fwd},{slf}")
                cache[key] = new_info.state2id[tstate] + k
            out[t] = cache[key]
    return out


def _pdf_classes(info, phone, hmm_state):
    if not hasattr(info, "_pc"):
        info._pc = {}
        for tid in range(1, info.num_tids + 1):
            key = (int(info.phone[tid]), int(info.hmm_state[tid]))
            fwd, slf = info._pc.get(key, (-1, -1))
            if info.is_self_loop[tid]:
                slf = int(info.pdf_class[tid])
            else:
                fwd = int(info.pdf_class[tid])
            info._pc[key] = (fwd, slf)
    fwd, slf = info._pc[(phone, hmm_state)]
    return (fwd if fwd >= 0 else slf), (slf if slf >= 0 else fwd)


def tree_events(info, tids, ci_phones, context_width=3, central_position=1):
    """acc-tree-stats events of one aligned utterance, [T, N+1] int32 (see tree.frame_events)."""
    from steps_py.tree import frame_events
    tids = np.asarray(tids)
    return frame_events(info.phone[tids], info.pdf_class[tids], phone_end_frames(info, tids), ci_phones,
                        context_width, central_position)
