"""Usage: python -m steps_py.train_lda_mllt [options] <num-leaves> <tot-gauss> <data-dir> <lang-dir> <ali-dir> <exp-dir>

Triphone training on LDA+MLLT features (tri2b), as Kaldi's steps/train_lda_mllt.sh:
1. LDA (acc-lda + est-lda): CMVN'd MFCC spliced with --splice-opts (13 x 7 = 91 dims), one class per pdf of the
   <ali-dir> model (silence frames weighted 0, as weight-silence-post 0.0), projected to --dim dims -> 0.mat;
2. tree statistics of the <ali-dir> alignments in the LDA space, cluster-phones, build-tree to <num-leaves>
   leaves, gmm-init-model, alignments converted to the new tree (the same code and options as steps_py.train_deltas);
3. --num-iters EM passes with realignment at --realign-iters and, at each of --mllt-iters, an MLLT update:
   gmm-acc-mllt statistics (posteriors of the Gaussians of each frame's aligned pdf, silence weighted 0), est-mllt
   (--mllt-update-iters row-by-row passes from the identity), the model's means transformed (gmm-transform-means;
   variances are re-estimated by the next pass) and the transform composed with the previous one: N.mat = M_N @ prev.
Outputs in <exp-dir>: final.mat (Kaldi binary float matrix, --dim x 91, final.mat = MLLT_k ... MLLT_1 LDA; during
training it holds the current transform), final.mdl, tree, ali.JOB.gz, phone_ali.JOB.gz, splice_opts, cmvn_opts,
num_jobs (that of <ali-dir>), phones.txt, questions.int, 0.mat (the LDA), N.mat.new (the MLLT of pass N), N.mat
(the composed transform after pass N), log/ (lda_acc.JOB.log, lda_est.log, acc_tree.JOB.log, macc.N.JOB.log,
mupdate.N.log, align/acc/update logs, likelihoods.txt).
Statistics are exact (Kaldi's --rand-prune subsampling is not needed). A re-run resumes after the last finished step.
e.g.: python -m steps_py.train_lda_mllt --splice-opts "--left-context=3 --right-context=3" \\
        2500 15000 data/train data/lang exp/tri1_ali exp/tri2b

Parallel jobs (run by the driver through --cmd; not for direct use):
  python -m steps_py.train_lda_mllt acc-lda --model M --tree T --ali A --out O.npz <data> <lang> <exp-dir>
  python -m steps_py.train_lda_mllt acc-mllt --model M --tree T --ali A --out O.npz <data> <lang> <exp-dir>
(features: cmvn_opts and splice_opts of <exp-dir>; acc-lda splices only, acc-mllt also applies <exp-dir>/final.mat).
"""
import argparse
import os
import shutil
import sys
import time

import numpy as np

from steps_py import gmm, lda_mllt, tree as tree_mod
from steps_py.common import InputError, atomic_open, atomic_path, get_logger, progress, run_main, write_lines
from steps_py.gmm_job import job_argv, run_jobs
from steps_py.kaldi import read_int_vectors, read_lang, read_model, read_tree, write_model, write_tree
from steps_py.train_deltas import build_tree_from_stats, get_parser as deltas_parser
from steps_py.train_mono import Trainer, check_files, last_model, parse_with_config

log = get_logger("train_lda_mllt")


# ---------------------------------------------------------------------------------------------------------------
# Kaldi matrix files

def write_kaldi_matrix(path, mat):
    """Writes a Kaldi binary float matrix (``\\0BFM ...``, what est-lda/compose-transforms write), atomically."""
    import kaldiio
    with atomic_path(path) as tmp:
        kaldiio.save_mat(tmp, np.ascontiguousarray(mat, dtype=np.float32))


def read_kaldi_matrix(path):
    import kaldiio
    try:
        return np.asarray(kaldiio.load_mat(path), dtype=np.float64)
    except (OSError, ValueError) as e:
        raise InputError(f"cannot read matrix {path}: {e}") from None


# ---------------------------------------------------------------------------------------------------------------
# Jobs: acc-lda and acc-mllt

def get_job_parser(kind):
    p = argparse.ArgumentParser(prog=f"train_lda_mllt {kind}")
    p.add_argument("--model", required=True, help="model whose transition model maps transition ids to pdfs")
    p.add_argument("--tree", required=True)
    p.add_argument("--ali", required=True, help="gzipped ark of transition-id alignments")
    p.add_argument("--out", required=True, help="statistics (.npz)")
    p.add_argument("--silence-weight", type=float, default=0.0, help="weight of silence frames (weight-silence-post)")
    p.add_argument("data_dir")
    p.add_argument("lang_dir")
    p.add_argument("exp_dir", help="dir with cmvn_opts, splice_opts (and final.mat for acc-mllt)")
    return p


def _aligned_features(args, pipeline):
    """(tm info, am, generator of (utt, feats [T, D], tids [T], frame weights [T])) for the job's utterances.

    Utterances without an alignment or with a length mismatch are counted and logged when the generator ends;
    it raises InputError if no utterance has an alignment.
    """
    lang = read_lang(args.lang_dir)
    tm, am, entries = read_model(args.model, read_tree(args.tree))
    info = gmm.TransitionInfo(tm, entries)
    alis = read_int_vectors(args.ali)
    silence = np.zeros(info.phone.max() + 1, bool)
    silence[[p for p in lang.silence_ids if p < len(silence)]] = True

    def generate():
        done, missing, mismatched = 0, 0, 0
        for utt, feats in progress(gmm.iter_features(args.data_dir, pipeline=pipeline), desc="utterances"):
            tids = alis.get(utt)
            if tids is None:
                missing += 1
                continue
            if len(tids) != len(feats):
                mismatched += 1
                log.warning(f"{utt}: alignment has {len(tids)} frames, features {len(feats)}; skipped")
                continue
            done += 1
            yield utt, feats, tids, np.where(silence[info.phone[tids]], args.silence_weight, 1.0)
        log.info(f"{done} utterances with alignments, {missing} without, {mismatched} with a length mismatch")
        if not done:
            raise InputError(f"no utterance of {args.data_dir} has an alignment in {args.ali}")
    return info, am, generate()


def _spliced_dim(data_dir, splice_opts):
    import kaldiio
    from steps_py.datadir import read_map
    first = next(iter(read_map(os.path.join(data_dir, "feats.scp")).values()))
    left, right = lda_mllt.parse_splice_opts(splice_opts)
    return kaldiio.load_mat(first).shape[1] * (left + 1 + right)


def acc_lda_job(args):
    """acc-lda: LDA statistics with the pdfs of the alignment as classes, on spliced (untransformed) features."""
    splice_opts = open(os.path.join(args.exp_dir, "splice_opts")).read().strip()
    pipeline = gmm.FeaturePipeline(args.exp_dir, transform=np.eye(_spliced_dim(args.data_dir, splice_opts)))
    info, am, utts = _aligned_features(args, pipeline)
    stats = lda_mllt.LdaStats(np.zeros(am.num_pdfs), np.zeros((am.num_pdfs, pipeline.transform.shape[0])),
                              np.zeros((pipeline.transform.shape[0],) * 2))
    for _, feats, tids, weights in utts:
        s = lda_mllt.lda_accumulate(feats, info.pdf[tids], am.num_pdfs, weights)
        stats = lda_mllt.lda_stats_add(stats, s)
    with atomic_open(args.out, "wb") as f:
        np.savez(f, counts=stats.counts, sums=stats.sums, scatter=stats.scatter)
    log.info(f"LDA statistics: {stats.counts.sum():.0f} weighted frames, dim {stats.sums.shape[1]}, "
             f"{int((stats.counts > 0).sum())} of {am.num_pdfs} pdfs seen")
    return 0


def gauss_posteriors(arrays, feats, pdfs):
    """Posteriors of the Gaussians of each frame's pdf (AmDiagGmm::GetPdf(pdf).ComponentPosteriors).

    arrays: gmm.GmmArrays; feats [T, D]; pdfs [T]. Returns (frame_ids [N], gauss_ids [N] into the stacked arrays,
    posteriors [N], log-likelihoods [T]) with N = sum over frames of the number of Gaussians of the frame's pdf.
    """
    frame_ids, gauss_ids, posts = [], [], []
    loglikes = np.zeros(len(feats))
    order = np.argsort(pdfs, kind="stable")
    for block in np.split(order, np.flatnonzero(np.diff(pdfs[order])) + 1):
        if len(block) == 0:
            continue
        p = int(pdfs[block[0]])
        ll = arrays.component_loglikes(feats[block], p)                  # [n, G_p]
        top = ll.max(1, keepdims=True)
        post = np.exp(ll - top)
        total = post.sum(1, keepdims=True)
        loglikes[block] = (top + np.log(total))[:, 0]
        post /= total
        frame_ids.append(np.repeat(block, post.shape[1]))
        gauss_ids.append(np.tile(np.arange(arrays.offsets[p], arrays.offsets[p + 1]), len(block)))
        posts.append(post.ravel())
    return np.concatenate(frame_ids), np.concatenate(gauss_ids), np.concatenate(posts), loglikes


def acc_mllt_job(args, batch_frames=200000):
    """gmm-acc-mllt: MLLT statistics under the model, in the space of <exp-dir>/final.mat.

    Frames with non-zero weight are pooled over utterances into batches of about ``batch_frames`` frames, so the
    per-pdf and per-Gaussian loops run once per batch, not per utterance.
    """
    pipeline = gmm.FeaturePipeline(args.exp_dir)
    if pipeline.type != "lda":
        raise InputError(f"no such file {os.path.join(args.exp_dir, 'final.mat')}")
    info, am, utts = _aligned_features(args, pipeline)
    arrays = gmm.GmmArrays(am)
    means = arrays.means_invvars / arrays.inv_vars
    stats, tot_like, tot_weight = None, 0.0, 0.0

    def flush(batch):
        nonlocal stats, tot_like, tot_weight
        x = np.concatenate([b[0] for b in batch])
        pdfs = np.concatenate([b[1] for b in batch])
        w = np.concatenate([b[2] for b in batch])
        frame_ids, gauss_ids, posts, loglikes = gauss_posteriors(arrays, x, pdfs)
        s = lda_mllt.mllt_accumulate(x, frame_ids, gauss_ids, posts * w[frame_ids], means, arrays.inv_vars)
        stats = s if stats is None else lda_mllt.mllt_stats_add(stats, s)
        tot_like += float(loglikes @ w)
        tot_weight += float(w.sum())

    batch, num_batch_frames = [], 0
    for _, feats, tids, weights in utts:
        keep = weights > 0
        batch.append((np.asarray(feats, np.float64)[keep], info.pdf[tids][keep], weights[keep]))
        num_batch_frames += int(keep.sum())
        if num_batch_frames >= batch_frames:
            flush(batch)
            batch, num_batch_frames = [], 0
    if num_batch_frames:
        flush(batch)
    if stats is None:
        raise InputError(f"no non-silence frames with alignments in {args.data_dir}")
    with atomic_open(args.out, "wb") as f:
        np.savez(f, beta=np.array(stats.beta), G=stats.G)
    log.info(f"MLLT statistics over {stats.beta:.0f} frames; average log-likelihood per frame (Gaussian only) "
             f"{tot_like / max(tot_weight, 1e-10):.4f}")
    return 0


def _sum_npz(paths, keys):
    total = None
    for p in paths:
        try:
            z = np.load(p)
        except OSError as e:
            raise InputError(f"cannot read statistics {p}: {e}") from None
        part = [np.asarray(z[k], np.float64) for k in keys]
        total = part if total is None else [a + b for a, b in zip(total, part)]
    return total


# ---------------------------------------------------------------------------------------------------------------
# Driver

def get_parser():
    p = deltas_parser()
    p.description = __doc__
    p.add_argument("--splice-opts", default="--left-context=3 --right-context=3",
                   help="splice-feats options, kept in <exp-dir>/splice_opts (a single option needs --splice-opts=\"--left-context=N\")")
    p.add_argument("--dim", type=int, default=40, help="LDA output dimension")
    p.add_argument("--within-class-factor", type=float, default=1.0,
                   help="est-lda --within-class-factor (1.0: conventional LDA)")
    p.add_argument("--allow-large-dim", type=lambda s: s == "true", default=False,
                   help="est-lda --allow-large-dim (dim >= number of pdfs)")
    p.add_argument("--mllt-iters", default="2 4 6 12", help="passes at which MLLT is estimated")
    p.add_argument("--mllt-update-iters", type=int, default=200, help="row-update passes of one est-mllt")
    p.add_argument("--silence-weight", type=float, default=0.0,
                   help="weight of silence frames in the LDA and MLLT statistics")
    p.set_defaults(num_iters=35, max_iter_inc=25, realign_iters="10 20 30")
    return p


class LdaMlltTrainer:
    """train_lda_mllt.sh's stages, each skipped when its output exists (so a re-run resumes)."""

    def __init__(self, args):
        from steps_py.split_data import split_data
        self.args = a = args
        self.d, self.ali_dir, self.lang_dir, self.data = a.exp_dir, a.ali_dir, a.lang_dir, a.data_dir
        check_files(*[os.path.join(self.ali_dir, f) for f in ("final.mdl", "tree", "ali.1.gz", "num_jobs")],
                    os.path.join(self.data, "feats.scp"), os.path.join(self.data, "cmvn.scp"),
                    os.path.join(self.lang_dir, "phones.txt"), os.path.join(self.lang_dir, "phones", "roots.int"))
        try:
            lda_mllt.parse_splice_opts(a.splice_opts)
        except ValueError as e:
            raise InputError(f"--splice-opts: {e}") from None
        self.lang = read_lang(self.lang_dir)
        self.nj = int(open(os.path.join(self.ali_dir, "num_jobs")).read().split()[0])
        if a.nj != self.nj:
            log.info(f"using the {self.nj} jobs of {self.ali_dir} (its alignments are split that way), not --nj {a.nj}")
        self.mllt_iters = sorted({int(x) for x in a.mllt_iters.split()})
        self.realign_iters = {int(x) for x in a.realign_iters.split()}
        d = self.d
        os.makedirs(os.path.join(d, "log"), exist_ok=True)
        write_lines(os.path.join(d, "num_jobs"), [str(self.nj)])
        write_lines(os.path.join(d, "splice_opts"), [a.splice_opts])
        src_cmvn = os.path.join(self.ali_dir, "cmvn_opts")
        write_lines(os.path.join(d, "cmvn_opts"), [open(src_cmvn).read().strip() if os.path.exists(src_cmvn) else ""])
        shutil.copyfile(os.path.join(self.lang_dir, "phones.txt"), os.path.join(d, "phones.txt"))
        self.split_dir = split_data(self.data, self.nj)
        self.job = os.path.join(self.split_dir, "JOB")

    def path(self, *p):
        return os.path.join(self.d, *p)

    def _jobs(self, kind, logname, **opts):
        argv = [sys.executable, "-m", "steps_py.train_lda_mllt", kind]
        for k, v in opts.items():
            argv += [f"--{k.replace('_', '-')}", str(v)]
        run_jobs(self.args.cmd, self.nj, self.path("log", logname),
                 argv + [self.job, self.lang_dir, self.d], what=f"{kind} jobs")

    def current_mat(self, x):
        """The transform in force at pass x: N.mat of the last MLLT pass N <= x that finished, else 0.mat."""
        done = [n for n in self.mllt_iters if n <= x and os.path.exists(self.path(f"{n}.mat"))]
        return self.path(f"{done[-1]}.mat" if done else "0.mat")

    def set_final_mat(self, mat_path):
        """Makes <exp-dir>/final.mat (the features every job reads) a copy of ``mat_path``."""
        final = self.path("final.mat")
        if os.path.exists(final) and open(final, "rb").read() == open(mat_path, "rb").read():
            return
        with atomic_path(final) as tmp:
            shutil.copyfile(mat_path, tmp)

    # stage -4
    def estimate_lda(self):
        a = self.args
        if os.path.exists(self.path("0.mat")):
            return
        log.info("accumulating LDA statistics")
        self._jobs("acc-lda", "lda_acc.JOB.log", model=os.path.join(self.ali_dir, "final.mdl"),
                   tree=os.path.join(self.ali_dir, "tree"), ali=os.path.join(self.ali_dir, "ali.JOB.gz"),
                   out=self.path("lda.JOB.npz"), silence_weight=a.silence_weight)
        parts = [self.path(f"lda.{j}.npz") for j in range(1, self.nj + 1)]
        stats = lda_mllt.LdaStats(*_sum_npz(parts, ["counts", "sums", "scatter"]))
        try:
            result = lda_mllt.lda_estimate(stats, a.dim, allow_large_dim=a.allow_large_dim,
                                           within_class_factor=a.within_class_factor)
        except ValueError as e:
            raise InputError(f"LDA estimation: {e}") from None
        eig = result.eigenvalues
        lines = [f"Data count is {result.count:.1f}",
                 f"LDA singular values are [ {' '.join(f'{v:.6g}' for v in eig)} ]",
                 f"Sum of all singular values is {eig.sum():.6g}",
                 f"Sum of selected singular values is {eig[:a.dim].sum():.6g}",
                 f"LDA matrix {result.matrix.shape[0]} x {result.matrix.shape[1]}"]
        write_lines(self.path("log", "lda_est.log"), lines)
        log.info(f"LDA: {result.count:.0f} frames, {int((stats.counts > 0).sum())} classes, "
                 f"{stats.sums.shape[1]} -> {a.dim} dims, kept {eig[:a.dim].sum() / eig.sum():.4f} of the "
                 f"between-class variance (sum of eigenvalues {eig[:a.dim].sum():.4g} of {eig.sum():.4g})")
        write_kaldi_matrix(self.path("0.mat"), result.matrix)
        for p in parts:
            os.unlink(p)

    # stages -3, -2
    def build_tree(self):
        a, d = self.args, self.d
        if last_model(d, a.num_iters) is not None:
            return
        self.set_final_mat(self.path("0.mat"))
        log.info("accumulating tree stats in the LDA space")
        run_jobs(a.cmd, self.nj, self.path("log", "acc_tree.JOB.log"),
                 job_argv(self.job, self.lang_dir, self.ali_dir, feat_dir=d, align="none",
                          ali_in=os.path.join(self.ali_dir, "ali.JOB.gz"), tree_stats_out=self.path("JOB.treeacc"),
                          context_width=a.context_width, central_position=a.central_position),
                 what="tree-statistics jobs")
        parts = [self.path(f"{j}.treeacc") for j in range(1, self.nj + 1)]
        stats = tree_mod.sum_tree_stats([tree_mod.tree_stats_from_npz(np.load(p)) for p in parts])
        tree, built, questions = build_tree_from_stats(stats, self.lang, a)
        write_lines(self.path("questions.int"), [" ".join(map(str, q)) for q in questions])
        log.info(f"built the tree: {built.num_leaves} leaves (asked for {a.num_leaves}), split gain "
                 f"{built.objf_gain / stats.counts.sum():.4f} per frame over {int(stats.counts.sum())} frames")
        tm, am, occs = gmm.init_model_from_tree_stats(stats, tree, self.lang)
        write_tree(self.path("tree"), tree)
        write_model(self.path("1.mdl"), tm, am, self.lang.topo_entries)
        for p in parts:
            os.unlink(p)

    # MLLT at pass x (est-mllt, gmm-transform-means, compose-transforms)
    def estimate_mllt(self, x):
        a = self.args
        new_mat, mllt_only, new_mdl = self.path(f"{x}.mat"), self.path(f"{x}.mat.new"), self.path(f"{x}.mdl.new")
        if not os.path.exists(new_mat):
            prev = self.current_mat(x - 1)
            self.set_final_mat(prev)
            self._jobs("acc-mllt", f"macc.{x}.JOB.log", model=self.path(f"{x}.mdl"), tree=self.path("tree"),
                       ali=self.path("ali.JOB.gz"), out=self.path(f"{x}.JOB.macc.npz"),
                       silence_weight=a.silence_weight)
            parts = [self.path(f"{x}.{j}.macc.npz") for j in range(1, self.nj + 1)]
            beta, G = _sum_npz(parts, ["beta", "G"])
            stats = lda_mllt.MlltStats(float(beta), G)
            try:
                mllt, objectives = lda_mllt.mllt_update(stats, num_iters=a.mllt_update_iters)
            except ValueError as e:
                raise InputError(f"MLLT estimation at pass {x}: {e}") from None
            impr = (objectives[-1] - objectives[0]) / stats.beta
            logdet = np.linalg.slogdet(mllt)[1]
            shown = [k for k in range(1, len(objectives)) if k <= 10 or k % 10 == 0]
            write_lines(self.path("log", f"mupdate.{x}.log"),
                        [f"MLLT objective improvement per frame by {k}'th iteration is "
                         f"{(objectives[k] - objectives[0]) / stats.beta:.6f} per frame over {stats.beta:.1f} frames"
                         for k in shown]
                        + [f"Updated MLLT, total objf impr is {impr:.6f} over {stats.beta:.1f} frames, "
                           f"logdet is {logdet:.6f}"])
            log.info(f"pass {x}: MLLT objective improvement {impr:.4f} per frame over {stats.beta:.0f} frames, "
                     f"log|det| {logdet:.4f}")
            write_kaldi_matrix(mllt_only, mllt)
            tm, am, entries = read_model(self.path(f"{x}.mdl"), read_tree(self.path("tree")))
            for p in range(am.num_pdfs):
                pdf = am.get_pdf(p)
                pdf.set_means(lda_mllt.transform_means(np.asarray(pdf.means, np.float64), mllt).astype(np.float32))
                pdf.compute_gconsts()
            write_model(new_mdl, tm, am, entries)
            write_kaldi_matrix(new_mat, lda_mllt.compose_transforms(mllt, read_kaldi_matrix(prev)))
            for p in parts:
                os.unlink(p)
        if os.path.exists(new_mdl):
            os.replace(new_mdl, self.path(f"{x}.mdl"))

    def align_only(self, x):
        """gmm-align-compiled at a pass that also estimates MLLT (Kaldi aligns first, with the old transform)."""
        a = self.args
        self.set_final_mat(self.current_mat(x - 1))
        run_jobs(a.cmd, self.nj, self.path("log", f"align.{x}.JOB.log"),
                 job_argv(self.job, self.lang_dir, self.d, model=self.path(f"{x}.mdl"), align="viterbi",
                          beam=a.beam, retry_beam=a.retry_beam, careful=a.careful, boost_silence=a.boost_silence,
                          ali_out=self.path("ali.JOB.gz"), phone_ali_out=self.path("phone_ali.JOB.gz")),
                 what=f"pass {x} alignment jobs")

    def train(self):
        a, d = self.args, self.d
        t0 = time.time()
        self.estimate_lda()
        self.build_tree()
        tree = read_tree(self.path("tree"))
        numgauss0 = a.num_leaves
        inc = gmm.gauss_increment(a.tot_gauss, numgauss0, a.max_iter_inc)
        trainer = Trainer(a, self.data, self.lang_dir, d, self.lang, tree, self.split_dir, self.nj, "tri2b")
        start = last_model(d, a.num_iters)
        for x in range(start, a.num_iters):
            numgauss = numgauss0 + inc * min(x - 1, a.max_iter_inc)
            align = "viterbi" if x in self.realign_iters else "none"
            if x in self.mllt_iters:
                if align == "viterbi" and not os.path.exists(self.path(f"{x}.mat")):
                    self.align_only(x)
                align = "none"
                self.estimate_mllt(x)
            self.set_final_mat(self.current_mat(x))
            if x == 1:   # the source alignments converted to the new tree (convert-ali)
                trainer.run_pass(1, "none", numgauss, a.min_gaussian_occupancy, a.beam,
                                 ali_in_model=os.path.join(self.ali_dir, "final.mdl"),
                                 ali_in_tree=os.path.join(self.ali_dir, "tree"))
            else:
                trainer.run_pass(x, align, numgauss, a.min_gaussian_occupancy, a.beam)
        self.set_final_mat(self.current_mat(a.num_iters))
        trainer.finish(a.num_iters)
        _, am, _ = read_model(self.path("final.mdl"), tree)
        mat = read_kaldi_matrix(self.path("final.mat"))
        log.info(f"done training the LDA+MLLT system in {d}: {am.num_pdfs} pdfs, {am.num_gauss} Gaussians, "
                 f"final.mat {mat.shape[0]} x {mat.shape[1]}, {time.time() - t0:.1f} s")
        return 0


JOBS = {"acc-lda": acc_lda_job, "acc-mllt": acc_mllt_job}


def main():
    if len(sys.argv) > 1 and sys.argv[1] in JOBS:
        kind = sys.argv[1]
        return JOBS[kind](get_job_parser(kind).parse_args(sys.argv[2:]))
    args = parse_with_config(get_parser())
    if args.num_leaves < 1 or args.tot_gauss < args.num_leaves:
        raise InputError(f"need 1 <= num-leaves <= tot-gauss, got {args.num_leaves} and {args.tot_gauss}")
    if not set(int(x) for x in args.mllt_iters.split()) <= set(range(2, args.num_iters)):
        raise InputError(f"--mllt-iters {args.mllt_iters!r} must lie in 2..{args.num_iters - 1} "
                         "(pass 1 converts the alignments)")
    return LdaMlltTrainer(args).train()


if __name__ == "__main__":
    run_main(main)
