"""Usage: python -m steps_py.gmm.train_lda_mllt [options] <num-leaves> <tot-gauss> <data-dir> <lang-dir> <ali-dir> <exp-dir>

Triphone training on LDA+MLLT features (tri2b), as Kaldi's steps/train_lda_mllt.sh:
1. LDA (acc-lda + est-lda): CMVN'd MFCC spliced with --splice-opts (13 x 7 = 91 dims), one class per pdf of the
   <ali-dir> model (silence frames weighted 0, as weight-silence-post 0.0), projected to --dim dims -> 0.mat;
2. tree statistics of the <ali-dir> alignments in the LDA space, cluster-phones, build-tree to <num-leaves>
   leaves, gmm-init-model, alignments converted to the new tree (the code and options of steps_py.gmm.train_deltas);
3. --num-iters EM passes with realignment at --realign-iters and, at each of --mllt-iters, an MLLT update:
   gmm-acc-mllt statistics (posteriors of the Gaussians of each frame's aligned pdf, silence weighted 0), est-mllt
   (--mllt-update-iters row-by-row passes from the identity), the model's means transformed (gmm-transform-means;
   variances are re-estimated by the next pass) and the transform composed with the previous one: N.mat = M_N @ prev.
Outputs in <exp-dir>: final.mat (Kaldi binary float matrix, --dim x 91, final.mat = MLLT_k ... MLLT_1 LDA; during
training it holds the current transform), final.mdl, tree, ali.JOB.gz, phone_ali.JOB.gz, splice_opts, cmvn_opts,
num_jobs (that of <ali-dir>), phones.txt, questions.int, 0.mat (the LDA), N.mat.new (the MLLT of pass N), N.mat
(the composed transform after pass N), log/ (lda_acc.JOB.log, lda_est.log, acc_tree.JOB.log, macc.N.JOB.log,
mupdate.N.log, align/acc/update logs, likelihoods.txt).
Statistics are exact (Kaldi's --rand-prune subsampling is not needed). A re-run resumes after the last finished step;
a finished training is skipped while the data, lang dir, <ali-dir> and options are unchanged (stamp
<exp-dir>/.done.train_lda_mllt), and starts over when they changed.
e.g.: python -m steps_py.gmm.train_lda_mllt --splice-opts "--left-context=3 --right-context=3" \\
        2500 15000 data/train data/lang exp/tri1_ali exp/tri2b

The parallel statistics jobs are steps_py.gmm.acc_lda_mllt's.
"""
import os
import shutil
import time

import numpy as np

from steps_py.common import InputError, atomic_path, get_logger, require_files, run_main, str2bool, write_lines
from steps_py.feats.pipeline import parse_splice_opts
from steps_py.gmm import lda_mllt
from steps_py.gmm import model as gmm
from steps_py.gmm.trainer import (Trainer, ali_inputs, build_tree_and_model, check_triphone_args, job_argv,
                                  last_model, prepare_triphone_dir, skip_finished_training, training_completion,
                                  triphone_parser)
from steps_py.jobs import module_argv, run_jobs
from steps_py.kaldi.io import read_kaldi_matrix, write_kaldi_matrix
from steps_py.kaldi.model_io import read_model, write_model
from steps_py.kaldi.options import parse_args_with_config
from steps_py.kaldi.tree_io import read_tree, write_tree

log = get_logger("gmm.train_lda_mllt")


def _sum_npz(paths, keys):
    """The sums of arrays ``keys`` over the .npz files ``paths`` (the jobs' statistics), float64."""
    total = None
    for p in paths:
        try:
            z = np.load(p)
        except OSError as e:
            raise InputError(f"cannot read statistics {p}: {e}") from None
        part = [np.asarray(z[k], np.float64) for k in keys]
        total = part if total is None else [a + b for a, b in zip(total, part)]
    return total


def get_parser():
    p = triphone_parser(__doc__)
    p.add_argument("--splice-opts", default="--left-context=3 --right-context=3",
                   help="splice-feats options, kept in <exp-dir>/splice_opts (a single option needs "
                        "--splice-opts=\"--left-context=N\")")
    p.add_argument("--dim", type=int, default=40, help="LDA output dimension")
    p.add_argument("--within-class-factor", type=float, default=1.0,
                   help="est-lda --within-class-factor (1.0: conventional LDA)")
    p.add_argument("--allow-large-dim", type=str2bool, default=False,
                   help="est-lda --allow-large-dim (dim >= number of pdfs)")
    p.add_argument("--mllt-iters", default="2 4 6 12", help="passes at which MLLT is estimated")
    p.add_argument("--mllt-update-iters", type=int, default=200, help="row-update passes of one est-mllt")
    p.add_argument("--silence-weight", type=float, default=0.0,
                   help="weight of silence frames in the LDA and MLLT statistics")
    return p


class LdaMlltTrainer:
    """train_lda_mllt.sh's stages, each skipped when its output exists (so a re-run resumes)."""

    def __init__(self, args, done):
        """``done``: the training's Completion (trainer.training_completion), finished by train()."""
        self.args = a = args
        self.done = done
        self.d, self.ali_dir, self.lang_dir = a.exp_dir, a.ali_dir, a.lang_dir
        parse_splice_opts(a.splice_opts, "--splice-opts")
        require_files(os.path.join(a.data_dir, "cmvn.scp"))
        self.lang, self.nj, self.split_dir = prepare_triphone_dir(a)
        self.job = os.path.join(self.split_dir, "JOB")
        self.mllt_iters = sorted({int(x) for x in a.mllt_iters.split()})
        self.realign_iters = {int(x) for x in a.realign_iters.split()}
        write_lines(self.path("splice_opts"), [a.splice_opts])

    def path(self, *p):
        return os.path.join(self.d, *p)

    def _jobs(self, kind, logname, **opts):
        """steps_py.gmm.acc_lda_mllt <kind> jobs (lda or mllt) on the split data."""
        argv = module_argv("steps_py.gmm.acc_lda_mllt", kind, self.job, self.lang_dir, self.d, **opts)
        run_jobs(self.args.cmd, self.nj, self.path("log", logname), argv, what=f"acc-{kind} jobs")

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
        self._jobs("lda", "lda_acc.JOB.log", model=os.path.join(self.ali_dir, "final.mdl"),
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
        """The tree and the first model, in the LDA space."""
        if last_model(self.d, self.args.num_iters) is not None:
            return
        self.set_final_mat(self.path("0.mat"))
        tm, am, _, tree = build_tree_and_model(self.args, self.lang, self.split_dir, self.nj)
        write_tree(self.path("tree"), tree)
        write_model(self.path("1.mdl"), tm, am, self.lang.topo_entries)

    # MLLT at pass x (est-mllt, gmm-transform-means, compose-transforms)
    def estimate_mllt(self, x):
        a = self.args
        new_mat, mllt_only, new_mdl = self.path(f"{x}.mat"), self.path(f"{x}.mat.new"), self.path(f"{x}.mdl.new")
        if not os.path.exists(new_mat):
            prev = self.current_mat(x - 1)
            self.set_final_mat(prev)
            self._jobs("mllt", f"macc.{x}.JOB.log", model=self.path(f"{x}.mdl"), tree=self.path("tree"),
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
        trainer = Trainer(a, tree, self.split_dir, self.nj)
        for x in range(last_model(d, a.num_iters), a.num_iters):
            numgauss = gmm.num_gauss_at(x, a.num_leaves, a.tot_gauss, a.max_iter_inc)
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
        am = trainer.finish(a.num_iters)
        self.done.finish()
        mat = read_kaldi_matrix(self.path("final.mat"))
        log.info(f"done training the LDA+MLLT system in {d}: {am.num_pdfs} pdfs, {am.num_gauss} Gaussians, "
                 f"final.mat {mat.shape[0]} x {mat.shape[1]}, {time.time() - t0:.1f} s")
        return 0


def main():
    args, _ = parse_args_with_config(get_parser())
    check_triphone_args(args)
    if not set(int(x) for x in args.mllt_iters.split()) <= set(range(2, args.num_iters)):
        raise InputError(f"--mllt-iters {args.mllt_iters!r} must lie in 2..{args.num_iters - 1} "
                         "(pass 1 converts the alignments)")
    done = training_completion(args, "train_lda_mllt", ali_inputs(args.ali_dir))
    if skip_finished_training(done):
        return 0
    return LdaMlltTrainer(args, done).train()


if __name__ == "__main__":
    run_main(main)
