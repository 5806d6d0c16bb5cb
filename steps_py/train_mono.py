"""Usage: python -m steps_py.train_mono [options] <data-dir> <lang-dir> <exp-dir>

Flat-start monophone training with delta+delta-delta features and per-speaker CMVN, as Kaldi's steps/train_mono.sh:
gmm-init-mono (one Gaussian per pdf from the first 10 utterances, phones of a line of phones/sets.int share pdfs),
equal alignment, then --num-iters EM passes with Viterbi realignment at --realign-iters; the number of Gaussians
grows linearly from the number of pdfs to --totgauss over the first --max-iter-inc passes (Kaldi's integer
increment), allocated to pdfs by occupancy ** --power. Silence pdfs are boosted by --boost-silence when aligning.
Statistics are accumulated by --nj parallel jobs (steps_py.gmm_job through --cmd), each writing exp-dir/N.JOB.acc,
summed by this driver.

Outputs in <exp-dir>: final.mdl (Kaldi binary TransitionModel + AmDiagGmm), tree, ali.JOB.gz (gzipped ark of
int32 transition ids), phone_ali.JOB.gz (per-frame phone ids), num_jobs, phones.txt, cmvn_opts, log/ (one log per
job and per update), plus N.mdl of the last pass. A re-run resumes from the last finished pass.
e.g.: python -m steps_py.train_mono --nj 4 --cmd run.py --boost-silence 1.25 data/train data/lang exp/mono
"""
import argparse
import os
import shutil
import time

from steps_py import gmm
from steps_py.common import InputError, get_logger, run_main, write_lines
from steps_py.datadir import read_map
from steps_py.gmm_job import job_argv, run_jobs
from steps_py.kaldi import read_lang, read_model, read_tree, write_model, write_tree

log = get_logger("train_mono")

DEFAULT_REALIGN = "1 2 3 4 5 6 7 8 9 10 12 14 16 18 20 23 26 29 32 35 38"


def add_common_options(p):
    p.add_argument("--nj", type=int, default=4, help="number of parallel jobs")
    p.add_argument("--cmd", default="run.py", help="job runner (run.py, slurm.py ...)")
    p.add_argument("--config", help="file of --option=value lines read before the command line")
    p.add_argument("--boost-silence", type=float, default=1.0)
    p.add_argument("--power", type=float, default=0.25, help="exponent of occupancy for Gaussians per pdf")
    p.add_argument("--beam", type=float, default=10.0)
    p.add_argument("--retry-beam", type=float, default=40.0)
    p.add_argument("--careful", type=lambda s: s == "true", default=False)
    p.add_argument("--min-gaussian-occupancy", type=float, default=10.0)
    p.add_argument("--perturb-factor", type=float, default=0.01)
    p.add_argument("--min-count", type=float, default=20.0, help="gmm-est --min-count for mixing up")
    p.add_argument("--keep-models", action="store_true", help="keep every N.mdl (default: only the last)")


def parse_with_config(parser, argv=None):
    """argparse with Kaldi's --config: the file's --name=value lines come before the command line options."""
    import sys
    argv = list(sys.argv[1:] if argv is None else argv)
    pre, _ = argparse.ArgumentParser(add_help=False), None
    pre.add_argument("--config")
    known, _ = pre.parse_known_args(argv)
    if known.config:
        if not os.path.exists(known.config):
            raise InputError(f"no such file {known.config}")
        extra = []
        for n, line in enumerate(open(known.config), 1):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            if not line.startswith("--"):
                raise InputError(f"{known.config}:{n}: expected --option=value, got {line!r}")
            name, eq, value = line.partition("=")
            extra += [name] + ([value] if eq else [])
        argv = extra + argv
    return parser.parse_args(argv)


def check_files(*paths):
    for f in paths:
        if not os.path.exists(f):
            raise InputError(f"no such file {f}")


class Trainer:
    """The EM loop shared by train_mono and train_deltas (the `while [ $x -lt $num_iters ]` part of the scripts)."""

    def __init__(self, args, data_dir, lang_dir, exp_dir, lang, tree, split_dir, nj, name):
        self.args, self.data_dir, self.lang_dir, self.exp_dir = args, data_dir, lang_dir, exp_dir
        self.lang, self.tree, self.split_dir, self.nj, self.name = lang, tree, split_dir, nj, name
        self.history = []   # (iteration, log-likelihood per frame, Gaussians)

    def mdl(self, x):
        return os.path.join(self.exp_dir, f"{x}.mdl")

    def run_pass(self, x, align, numgauss, min_gauss_occ, beam, ali_in_model=None, ali_in_tree=None,
                 write_phone_ali=False):
        a, d = self.args, self.exp_dir
        job = os.path.join(self.split_dir, "JOB")
        realign = align in ("equal", "viterbi")
        opts = dict(model=self.mdl(x), align=align, beam=beam, retry_beam=a.retry_beam, careful=a.careful,
                    boost_silence=a.boost_silence, acc_out=os.path.join(d, f"{x}.JOB.acc"))
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
                          perturb_factor=a.perturb_factor, min_count=a.min_count)
        write_model(self.mdl(x + 1), tm, am, entries)
        with open(os.path.join(d, "log", f"update.{x}.log"), "w") as f:
            f.write(" ".join(f"{k}={v}" for k, v in info.items()) + "\n")
        log.info(f"pass {x}{' (realigned: ' + align + ')' if realign else ''}: log-likelihood per frame "
                 f"{info['loglike_per_frame']:.4f} over {info['frames']} frames; {info['num_gauss']} Gaussians, "
                 f"objf impr per frame {info['gmm_impr_per_frame']:.4f} (GMM) "
                 f"{info['trans_impr_per_frame']:.4f} (transitions)")
        self.history.append((x, info["loglike_per_frame"], info["num_gauss"]))
        for f in accs:
            os.unlink(f)
        if not a.keep_models and x > 0 and os.path.exists(self.mdl(x)):
            os.unlink(self.mdl(x))
        return info

    def finish(self, last):
        final = os.path.join(self.exp_dir, "final.mdl")
        tmp = final + ".tmp"
        shutil.copyfile(self.mdl(last), tmp)
        os.replace(tmp, final)
        with open(os.path.join(self.exp_dir, "log", "likelihoods.txt"), "a") as f:
            for x, like, ng in self.history:
                f.write(f"pass {x} loglike_per_frame {like:.6f} num_gauss {ng}\n")


def last_model(exp_dir, num_iters):
    """The highest N.mdl (N <= num_iters) in exp_dir, or None: where a re-run resumes."""
    found = [int(f[:-4]) for f in os.listdir(exp_dir) if f.endswith(".mdl") and f[:-4].isdigit()]
    found = [x for x in found if x <= num_iters]
    return max(found) if found else None


def get_parser():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_options(p)
    p.add_argument("--num-iters", type=int, default=40)
    p.add_argument("--max-iter-inc", type=int, default=30, help="last pass that increases the Gaussians")
    p.add_argument("--totgauss", type=int, default=1000, help="target number of Gaussians")
    p.add_argument("--initial-beam", type=float, default=6.0, help="beam of the first realignment")
    p.add_argument("--realign-iters", default=DEFAULT_REALIGN)
    p.add_argument("--init-utts", type=int, default=10, help="utterances for the initial global Gaussian")
    p.add_argument("--cmvn-opts", default="", help="e.g. --norm-vars=true (kept in <exp-dir>/cmvn_opts)")
    p.add_argument("data_dir")
    p.add_argument("lang_dir")
    p.add_argument("exp_dir")
    return p


def train_mono(args):
    from steps_py.split_data import split_data
    data, lang_dir, d = args.data_dir, args.lang_dir, args.exp_dir
    check_files(os.path.join(data, "feats.scp"), os.path.join(data, "text"), os.path.join(lang_dir, "L.fst"),
                os.path.join(lang_dir, "topo"), os.path.join(lang_dir, "phones", "sets.int"))
    t0 = time.time()
    lang = read_lang(lang_dir)
    os.makedirs(os.path.join(d, "log"), exist_ok=True)
    split_dir = split_data(data, args.nj)
    write_lines(os.path.join(d, "num_jobs"), [str(args.nj)])
    shutil.copyfile(os.path.join(lang_dir, "phones.txt"), os.path.join(d, "phones.txt"))
    write_lines(os.path.join(d, "cmvn_opts"), [args.cmvn_opts])
    realign = {int(x) for x in args.realign_iters.split()}

    if not (os.path.exists(os.path.join(d, "0.mdl")) or last_model(d, args.num_iters)):
        utts = list(read_map(os.path.join(split_dir, "1", "feats.scp")))[:args.init_utts]
        feats = list(gmm.load_features(os.path.join(split_dir, "1"), d, utts).values())
        tm, tree, am = gmm.init_mono(lang, feats)
        write_tree(os.path.join(d, "tree"), tree)
        write_model(os.path.join(d, "0.mdl"), tm, am, lang.topo_entries)
        log.info(f"initialised: {tree.num_pdfs} pdfs, feature dim {am.dim}, from {len(feats)} utterances")
    tree = read_tree(os.path.join(d, "tree"))
    numgauss0 = tree.num_pdfs
    inc = gmm.gauss_increment(args.totgauss, numgauss0, args.max_iter_inc)
    trainer = Trainer(args, data, lang_dir, d, lang, tree, split_dir, args.nj, "mono")
    start = last_model(d, args.num_iters) or 0
    if start == 0:
        trainer.run_pass(0, "equal", numgauss0, 3.0, args.initial_beam, write_phone_ali=True)
        start = 1
    for x in range(start, args.num_iters):
        numgauss = numgauss0 + inc * min(x - 1, args.max_iter_inc)
        beam = args.initial_beam if x == 1 else args.beam
        trainer.run_pass(x, "viterbi" if x in realign else "none", numgauss, args.min_gaussian_occupancy, beam)
    trainer.finish(args.num_iters)
    _, am, _ = read_model(os.path.join(d, "final.mdl"), tree)
    log.info(f"done training monophone system in {d}: {am.num_pdfs} pdfs, {am.num_gauss} Gaussians, "
             f"{time.time() - t0:.1f} s")
    return 0


def main():
    return train_mono(parse_with_config(get_parser()))


if __name__ == "__main__":
    run_main(main)
