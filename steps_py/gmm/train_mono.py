"""Usage: python -m steps_py.gmm.train_mono [options] <data-dir> <lang-dir> <exp-dir>

Flat-start monophone training with delta+delta-delta features and per-speaker CMVN, as Kaldi's steps/train_mono.sh:
gmm-init-mono (one Gaussian per pdf from the first 10 utterances, phones of a line of phones/sets.int share pdfs),
equal alignment, then --num-iters EM passes with Viterbi realignment at --realign-iters; the number of Gaussians
grows linearly from the number of pdfs to --totgauss over the first --max-iter-inc passes (Kaldi's integer
increment), allocated to pdfs by occupancy ** --power. Silence pdfs are boosted by --boost-silence when aligning.
Statistics are accumulated by --nj parallel jobs (steps_py.gmm.job through --cmd), each writing exp-dir/N.JOB.acc,
summed by this driver.

Outputs in <exp-dir>: final.mdl (Kaldi binary TransitionModel + AmDiagGmm), tree, ali.JOB.gz (gzipped ark of
int32 transition ids), phone_ali.JOB.gz (per-frame phone ids), num_jobs, phones.txt, cmvn_opts, log/ (one log per
job and per update), plus N.mdl of the last pass. A re-run resumes from the last finished pass; a finished training
is skipped while its data (feats.scp, cmvn.scp, text, utt2spk, spk2utt), lang dir and options are unchanged
(stamp <exp-dir>/.done.train_mono), and starts over when they changed.
e.g.: python -m steps_py.gmm.train_mono --nj 4 --cmd run.py --boost-silence 1.25 data/train data/lang exp/mono
"""
import argparse
import os
import shutil
import time

from steps_py.common import get_logger, require_files, run_main, write_lines
from steps_py.data.datadir import read_map, split_data
from steps_py.feats.pipeline import load_features
from steps_py.gmm import model as gmm
from steps_py.gmm.trainer import Trainer, add_common_options, last_model, skip_finished_training, training_completion
from steps_py.kaldi.model_io import write_model
from steps_py.kaldi.options import parse_args_with_config
from steps_py.kaldi.tree_io import read_tree, write_tree
from steps_py.lang.lang_dir import read_lang

log = get_logger("gmm.train_mono")

DEFAULT_REALIGN = "1 2 3 4 5 6 7 8 9 10 12 14 16 18 20 23 26 29 32 35 38"


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
    """train_mono.sh (see the module docstring)."""
    data, lang_dir, d = args.data_dir, args.lang_dir, args.exp_dir
    require_files(os.path.join(data, "feats.scp"), os.path.join(data, "text"), os.path.join(lang_dir, "L.fst"),
                os.path.join(lang_dir, "topo"), os.path.join(lang_dir, "phones", "sets.int"))
    done = training_completion(args, "train_mono")
    if skip_finished_training(done):
        return 0
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
        feats = list(load_features(os.path.join(split_dir, "1"), d, utts).values())
        tm, tree, am = gmm.init_mono(lang, feats)
        write_tree(os.path.join(d, "tree"), tree)
        write_model(os.path.join(d, "0.mdl"), tm, am, lang.topo_entries)
        log.info(f"initialised: {tree.num_pdfs} pdfs, feature dim {am.dim}, from {len(feats)} utterances")
    tree = read_tree(os.path.join(d, "tree"))
    numgauss0 = tree.num_pdfs
    trainer = Trainer(args, tree, split_dir, args.nj)
    start = last_model(d, args.num_iters) or 0
    if start == 0:
        trainer.run_pass(0, "equal", numgauss0, 3.0, args.initial_beam, write_phone_ali=True)
        start = 1
    for x in range(start, args.num_iters):
        numgauss = gmm.num_gauss_at(x, numgauss0, args.totgauss, args.max_iter_inc)
        beam = args.initial_beam if x == 1 else args.beam
        trainer.run_pass(x, "viterbi" if x in realign else "none", numgauss, args.min_gaussian_occupancy, beam)
    am = trainer.finish(args.num_iters)
    done.finish()
    log.info(f"done training monophone system in {d}: {am.num_pdfs} pdfs, {am.num_gauss} Gaussians, "
             f"{time.time() - t0:.1f} s")
    return 0


def main():
    return train_mono(parse_args_with_config(get_parser())[0])


if __name__ == "__main__":
    run_main(main)
