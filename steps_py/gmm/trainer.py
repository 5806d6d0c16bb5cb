"""What the GMM training scripts share: their options, the EM pass loop over parallel jobs (steps_py.gmm.job),
resuming from the last finished pass, skipping a finished training whose inputs and options are unchanged (and
starting over when they changed), and building a triphone tree from accumulated statistics."""
import argparse
import contextlib
import filecmp
import os
import re
import shutil

import numpy as np

from steps_py.common import InputError, atomic_open, get_logger, require_files, str2bool, write_lines
from steps_py.completion import Completion, done_stamp, settings_of, skip_if_done
from steps_py.data.datadir import data_dir_inputs, split_data
from steps_py.feats.pipeline import pipeline_inputs
from steps_py.gmm import model as gmm
from steps_py.gmm import tree as tree_mod
from steps_py.jobs import module_argv, run_jobs
from steps_py.kaldi.model_io import read_model, write_model
from steps_py.kaldi.tree_io import tree_from_bytes
from steps_py.lang.lang_dir import read_lang

log = get_logger("gmm.trainer")


def add_common_options(p):
    """The options of every GMM training script (train_mono, train_deltas, train_lda_mllt)."""
    p.add_argument("--nj", type=int, default=4, help="number of parallel jobs")
    p.add_argument("--cmd", default="run.py", help="job runner (run.py, slurm.py ...)")
    p.add_argument("--config", help="file of --option=value lines read before the command line")
    p.add_argument("--boost-silence", type=float, default=1.0)
    p.add_argument("--power", type=float, default=0.25, help="exponent of occupancy for Gaussians per pdf")
    p.add_argument("--beam", type=float, default=10.0)
    p.add_argument("--retry-beam", type=float, default=40.0)
    p.add_argument("--careful", type=str2bool, default=False)
    p.add_argument("--min-gaussian-occupancy", type=float, default=10.0)
    p.add_argument("--perturb-factor", type=float, default=0.01)
    p.add_argument("--min-count", type=float, default=20.0, help="gmm-est --min-count for mixing up")
    p.add_argument("--keep-models", action="store_true", help="keep every N.mdl (default: only the last)")
    p.add_argument("--seed", type=nonnegative_int, default=0,
                   help="seed of every random choice (equal alignment, the perturbation of split Gaussians, "
                        "cluster-phones' k-means): runs with the same inputs, seed and --nj give identical models")


def nonnegative_int(text):
    """argparse type: an integer >= 0."""
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def triphone_parser(doc, num_iters=35, max_iter_inc=25, realign_iters="10 20 30"):
    """The command line of a triphone training script: common and tree options, then <num-leaves> <tot-gauss>
    <data-dir> <lang-dir> <ali-dir> <exp-dir>."""
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_options(p)
    p.add_argument("--num-iters", type=int, default=num_iters)
    p.add_argument("--max-iter-inc", type=int, default=max_iter_inc)
    p.add_argument("--realign-iters", default=realign_iters)
    p.add_argument("--tree-thresh", type=float, default=300.0, help="build-tree --thresh (log-likelihood gain)")
    p.add_argument("--cluster-thresh", type=float, default=-1.0,
                   help="merge leaves of a root costing less (-1: smallest split gain; 0: no merging)")
    p.add_argument("--tree-min-count", type=float, default=0.0, help="minimum frames on each side of a split")
    p.add_argument("--round-num-leaves", type=str2bool, default=True)
    p.add_argument("--context-width", type=int, default=3)
    p.add_argument("--central-position", type=int, default=1)
    p.add_argument("--pdf-class-list", default="1", help="pdf-classes used by cluster-phones")
    for name in ("num_leaves", "tot_gauss"):
        p.add_argument(name, type=int)
    for name in ("data_dir", "lang_dir", "ali_dir", "exp_dir"):
        p.add_argument(name)
    return p


def check_triphone_args(args):
    """InputError unless 1 <= num-leaves <= tot-gauss."""
    if args.num_leaves < 1 or args.tot_gauss < args.num_leaves:
        raise InputError(f"need 1 <= num-leaves <= tot-gauss, got {args.num_leaves} and {args.tot_gauss}")


def job_argv(data_dir, lang_dir, model_dir, **opts):
    """The command of one steps_py.gmm.job on a (split) data dir; JOB placeholders are substituted by the runner."""
    return module_argv("steps_py.gmm.job", data_dir, lang_dir, model_dir, **opts)


class Trainer:
    """The EM loop shared by the training scripts (the `while [ $x -lt $num_iters ]` part of Kaldi's): passes of
    ``nj`` jobs on ``split_dir`` with the model of ``args.exp_dir``, the lang dir ``args.lang_dir``."""

    def __init__(self, args, tree, split_dir, nj):
        self.args, self.lang_dir, self.exp_dir = args, args.lang_dir, args.exp_dir
        self.tree, self.split_dir, self.nj = tree, split_dir, nj

    def mdl(self, x):
        return os.path.join(self.exp_dir, f"{x}.mdl")

    def run_pass(self, x, align, numgauss, min_gauss_occ, beam, ali_in_model=None, ali_in_tree=None,
                 write_phone_ali=False):
        a, d = self.args, self.exp_dir
        job = os.path.join(self.split_dir, "JOB")
        realign = align in ("equal", "viterbi")
        opts = dict(model=self.mdl(x), align=align, beam=beam, retry_beam=a.retry_beam, careful=a.careful,
                    boost_silence=a.boost_silence, acc_out=os.path.join(d, f"{x}.JOB.acc"))
        if align == "equal":
            opts.update(seed=a.seed)
        if realign:
            opts.update(ali_out=os.path.join(d, "ali.JOB.gz"))
            if write_phone_ali or align == "viterbi":
                opts.update(phone_ali_out=os.path.join(d, "phone_ali.JOB.gz"))
        else:
            opts.update(ali_in=os.path.join(d, "ali.JOB.gz"))
        if ali_in_model:
            opts.update(ali_in_model=ali_in_model, ali_in_tree=ali_in_tree, ali_out=os.path.join(d, "ali.JOB.gz"),
                        phone_ali_out=os.path.join(d, "phone_ali.JOB.gz"))
            opts["ali_in"] = os.path.join(os.path.dirname(ali_in_model), "ali.JOB.gz")
        logname = f"align.{x}.JOB.log" if realign else f"acc.{x}.JOB.log"
        run_jobs(a.cmd, self.nj, os.path.join(d, "log", logname),
                 job_argv(job, self.lang_dir, d, **opts), what=f"pass {x} jobs")
        accs = [os.path.join(d, f"{x}.{j}.acc") for j in range(1, self.nj + 1)]
        stats = gmm.sum_stats(accs)
        tm, am, entries = read_model(self.mdl(x), self.tree)
        info = gmm.update(tm, am, stats, min_gaussian_occupancy=min_gauss_occ, mixup=numgauss, power=a.power,
                          perturb_factor=a.perturb_factor, min_count=a.min_count, rng=gmm.mixup_rng(a.seed, x))
        with atomic_open(update_log(d, x)) as f:    # before the model: a resume point always has its pass's log
            f.write(" ".join(f"{k}={v}" for k, v in info.items()) + "\n")
        write_model(self.mdl(x + 1), tm, am, entries)
        log.info(f"pass {x}{' (realigned: ' + align + ')' if realign else ''}: log-likelihood per frame "
                 f"{info['loglike_per_frame']:.4f} over {info['frames']} frames; {info['num_gauss']} Gaussians, "
                 f"objf impr per frame {info['gmm_impr_per_frame']:.4f} (GMM) "
                 f"{info['trans_impr_per_frame']:.4f} (transitions)")
        for f in accs:
            os.unlink(f)
        if not a.keep_models and x > 0 and os.path.exists(self.mdl(x)):
            os.unlink(self.mdl(x))
        return info

    def finish(self, last):
        """Makes <last>.mdl the final.mdl (left untouched, time stamp too, when it is already the same), appends
        the passes to log/likelihoods.txt; returns the final AmDiagGmm."""
        final = os.path.join(self.exp_dir, "final.mdl")
        if not (os.path.exists(final) and filecmp.cmp(self.mdl(last), final, shallow=False)):
            tmp = final + ".tmp"
            shutil.copyfile(self.mdl(last), tmp)
            os.replace(tmp, final)
        with atomic_open(os.path.join(self.exp_dir, "log", "likelihoods.txt")) as f:
            for x, info in pass_logs(self.exp_dir, last):
                f.write(f"pass {x} loglike_per_frame {float(info['loglike_per_frame']):.6f} "
                        f"num_gauss {info['num_gauss']}\n")
        return read_model(final, self.tree)[1]


def update_log(exp_dir, x):
    """log/update.<x>.log: the numbers of pass x's update (key=value ...)."""
    return os.path.join(exp_dir, "log", f"update.{x}.log")


def pass_logs(exp_dir, last):
    """[(x, {key: value string})] of the passes x < ``last`` whose update log is in exp_dir, in pass order: every
    pass of the training, those of a killed earlier run that this one resumed from included."""
    out = []
    for x in range(last):
        with contextlib.suppress(FileNotFoundError), open(update_log(exp_dir, x), encoding="utf-8") as f:
            out.append((x, dict(kv.split("=", 1) for kv in f.read().split())))
    return out


def last_model(exp_dir, num_iters):
    """The highest N.mdl (N <= num_iters) in exp_dir, or None: where a re-run resumes."""
    found = [int(f[:-4]) for f in os.listdir(exp_dir) if f.endswith(".mdl") and f[:-4].isdigit()]
    found = [x for x in found if x <= num_iters]
    return max(found) if found else None


# The files of a training dir a re-run resumes from: N.mdl, N.mat (LDA/MLLT) and their N.*.new halves.
RESUME_POINT = re.compile(r"^\d+\.(mdl|mat)(\.new)?$")


def model_inputs(model_dir):
    """The files of a GMM system dir that aligning or decoding with it reads: final.mdl, tree and the feature
    pipeline's files (cmvn_opts, delta_opts, splice_opts, final.mat) it has."""
    return [os.path.join(model_dir, "final.mdl"), os.path.join(model_dir, "tree")] + pipeline_inputs(model_dir)


def ali_inputs(ali_dir):
    """model_inputs of an alignment dir plus num_jobs and its ali.JOB.gz (all jobs when num_jobs is readable)."""
    files = model_inputs(ali_dir) + [os.path.join(ali_dir, "num_jobs")]
    try:
        nj = int(open(os.path.join(ali_dir, "num_jobs")).read().split()[0])
    except (OSError, ValueError, IndexError):
        return files + [os.path.join(ali_dir, "ali.1.gz")]
    return files + [os.path.join(ali_dir, f"ali.{j}.gz") for j in range(1, nj + 1)]


def training_completion(args, step, src_inputs=()):
    """The Completion of training ``step`` (train_mono, train_deltas, train_lda_mllt) into args.exp_dir: the
    training data's tables, the whole lang dir and ``src_inputs`` (the source alignments), with every option
    but --cmd; done when final.mdl and tree exist."""
    inputs = data_dir_inputs(args.data_dir) + [args.lang_dir] + list(src_inputs)
    d = args.exp_dir
    return Completion(done_stamp(d, step), inputs, settings_of(args),
                      outputs=[os.path.join(d, "final.mdl"), os.path.join(d, "tree")])


def discard_resume_points(exp_dir):
    """Removes the N.mdl / N.mat files a re-run would resume from (RESUME_POINT), and final.mdl, which no later
    step must take for the new one until the new training has finished: the training starts over."""
    removed = [f for f in sorted(os.listdir(exp_dir)) if RESUME_POINT.match(f) or f == "final.mdl"] \
        if os.path.isdir(exp_dir) else []
    for f in removed:
        os.unlink(os.path.join(exp_dir, f))
    return removed


def skip_finished_training(done):
    """True when the training of Completion ``done`` is finished and up to date (logged as skipped). When it had
    finished with other inputs or options, its resume points are discarded so that it starts over instead of
    resuming from its old last pass; a killed training (no stamp) resumes as before."""
    exp_dir = os.path.dirname(done.stamp)

    def start_over():       # before the stamp goes: a kill in between must not resume from the old models
        if done.finished_before:
            removed = discard_resume_points(exp_dir)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(exp_dir, "log", "likelihoods.txt"))
            log.info(f"{exp_dir}: training again from the start ({len(removed)} models and transforms of the old "
                     "run removed)")
    return skip_if_done(done, exp_dir, log, before_start=start_over)


def build_tree_from_stats(stats, lang, args):
    """cluster-phones + extra questions + build-tree -> (khg tree, BuiltTree, questions)."""
    pdf_classes = [int(x) for x in args.pdf_class_list.split(",") if x.strip()]
    questions = tree_mod.cluster_phones(stats, lang.sets, pdf_classes, args.central_position, seed=args.seed)
    questions += [sorted(q) for q in lang.extra_questions]
    phone2num = lang.topo.get_phone_to_num_pdf_classes()
    roots = [(shared, split, phones) for shared, split, phones in lang.roots]
    built = tree_mod.build_tree(stats, roots, phone2num, questions, args.num_leaves, thresh=args.tree_thresh,
                                cluster_thresh=args.cluster_thresh, min_count=args.tree_min_count,
                                round_num_leaves=args.round_num_leaves, context_width=args.context_width,
                                central_position=args.central_position)
    return tree_from_bytes(built.data), built, questions


def prepare_triphone_dir(args):
    """The start of train_deltas.sh / train_lda_mllt.sh: checks the inputs, makes <exp-dir> with num_jobs (those of
    <ali-dir>, whose alignments are split that way), phones.txt and cmvn_opts (from <ali-dir>), splits the data.
    Returns (Lang, number of jobs, split dir)."""
    data, lang_dir, ali_dir, d = args.data_dir, args.lang_dir, args.ali_dir, args.exp_dir
    require_files(*[os.path.join(ali_dir, f) for f in ("final.mdl", "tree", "ali.1.gz", "num_jobs")],
                  os.path.join(data, "feats.scp"),
                  os.path.join(lang_dir, "phones.txt"), os.path.join(lang_dir, "phones", "roots.int"))
    lang = read_lang(lang_dir)
    nj = int(open(os.path.join(ali_dir, "num_jobs")).read().split()[0])
    if args.nj != nj:
        log.info(f"using the {nj} jobs of {ali_dir} (its alignments are split that way), not --nj {args.nj}")
    os.makedirs(os.path.join(d, "log"), exist_ok=True)
    write_lines(os.path.join(d, "num_jobs"), [str(nj)])
    shutil.copyfile(os.path.join(lang_dir, "phones.txt"), os.path.join(d, "phones.txt"))
    src_cmvn = os.path.join(ali_dir, "cmvn_opts")
    write_lines(os.path.join(d, "cmvn_opts"), [open(src_cmvn).read().strip() if os.path.exists(src_cmvn) else ""])
    return lang, nj, split_data(data, nj)


def build_tree_and_model(args, lang, split_dir, nj):
    """acc-tree-stats (jobs on the <ali-dir> alignments, features as <exp-dir> says), cluster-phones, build-tree
    and gmm-init-model: writes <exp-dir>/questions.int and returns (tm, am, occs [P], tree)."""
    d = args.exp_dir
    log.info("accumulating tree stats")
    run_jobs(args.cmd, nj, os.path.join(d, "log", "acc_tree.JOB.log"),
             job_argv(os.path.join(split_dir, "JOB"), args.lang_dir, args.ali_dir, feat_dir=d, align="none",
                      ali_in=os.path.join(args.ali_dir, "ali.JOB.gz"), tree_stats_out=os.path.join(d, "JOB.treeacc"),
                      context_width=args.context_width, central_position=args.central_position),
             what="tree-statistics jobs")
    parts = [os.path.join(d, f"{j}.treeacc") for j in range(1, nj + 1)]
    stats = tree_mod.sum_tree_stats([tree_mod.tree_stats_from_npz(np.load(p)) for p in parts])
    frames = stats.counts.sum()
    log.info(f"tree statistics: {stats.num_events} distinct events, {int(frames)} frames")
    tree, built, questions = build_tree_from_stats(stats, lang, args)
    write_lines(os.path.join(d, "questions.int"), [" ".join(map(str, q)) for q in questions])
    log.info(f"built the tree: {built.num_leaves} leaves (asked for {args.num_leaves}); split gain "
             f"{built.objf_gain / frames:.4f} per frame over {int(frames)} frames, smallest split "
             f"{built.smallest_split:.1f}, {built.num_merged} leaves merged afterwards; {len(questions)} questions")
    low = int((built.leaf_counts < 100).sum())
    if low:
        log.info(f"{low} leaves have fewer than 100 frames")
    tm, am, occs = gmm.init_model_from_tree_stats(stats, tree, lang)
    for p in parts:
        os.unlink(p)
    return tm, am, occs, tree
