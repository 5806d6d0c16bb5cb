"""Usage: python -m steps_py.train_deltas [options] <num-leaves> <tot-gauss> <data-dir> <lang-dir> <ali-dir> <exp-dir>

Context-dependent triphone training with delta+delta-delta features, as Kaldi's steps/train_deltas.sh:
1. acc-tree-stats from the alignments of <ali-dir> (context width 3, central position 1; context-independent
   phones from phones/context_indep.int keep no context), summed over the --nj jobs of <ali-dir>;
2. cluster-phones: questions by top-down binary k-means of the phone sets (phones/sets.int, central HMM state),
   plus phones/extra_questions.int; pdf-class questions {0}, {0,1}, ... as compile-questions adds them;
3. build-tree to <num-leaves> leaves with phones/roots.int (--tree-thresh, --cluster-thresh, --tree-min-count,
   --round-num-leaves), written to <exp-dir>/tree (Kaldi binary), questions to <exp-dir>/questions.int;
4. gmm-init-model (one Gaussian per leaf from the pooled tree statistics), gmm-mixup to <num-leaves>;
5. convert-ali of the <ali-dir> alignments to the new tree, then --num-iters EM passes with realignment at
   --realign-iters, Gaussians growing linearly to <tot-gauss> over --max-iter-inc passes.
Outputs as steps_py.train_mono: final.mdl, tree, ali.JOB.gz, phone_ali.JOB.gz, num_jobs, log/.
e.g.: python -m steps_py.train_deltas --config conf/gmm_tri1.conf 2000 10000 data/train data/lang exp/mono_ali exp/tri1
"""
import argparse
import os
import shutil
import time

import numpy as np

from steps_py import gmm, tree as tree_mod
from steps_py.common import InputError, get_logger, run_main, write_lines
from steps_py.gmm_job import job_argv, run_jobs
from steps_py.kaldi import read_lang, read_model, read_tree, tree_from_bytes, write_model, write_tree
from steps_py.train_mono import Trainer, add_common_options, check_files, last_model, parse_with_config

log = get_logger("train_deltas")


def get_parser():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_options(p)
    p.add_argument("--num-iters", type=int, default=35)
    p.add_argument("--max-iter-inc", type=int, default=25)
    p.add_argument("--realign-iters", default="10 20 30")
    p.add_argument("--tree-thresh", type=float, default=300.0, help="build-tree --thresh (log-likelihood gain)")
    p.add_argument("--cluster-thresh", type=float, default=-1.0,
                   help="merge leaves of a root costing less (-1: smallest split gain; 0: no merging)")
    p.add_argument("--tree-min-count", type=float, default=0.0, help="minimum frames on each side of a split")
    p.add_argument("--round-num-leaves", type=lambda s: s == "true", default=True)
    p.add_argument("--context-width", type=int, default=3)
    p.add_argument("--central-position", type=int, default=1)
    p.add_argument("--pdf-class-list", default="1", help="pdf-classes used by cluster-phones")
    p.add_argument("num_leaves", type=int)
    p.add_argument("tot_gauss", type=int)
    p.add_argument("data_dir")
    p.add_argument("lang_dir")
    p.add_argument("ali_dir")
    p.add_argument("exp_dir")
    return p


def build_tree_from_stats(stats, lang, args):
    """cluster-phones + extra questions + build-tree -> (khg tree, BuiltTree, questions)."""
    pdf_classes = [int(x) for x in args.pdf_class_list.split(",") if x.strip()]
    questions = tree_mod.cluster_phones(stats, lang.sets, pdf_classes, args.central_position)
    questions += [sorted(q) for q in lang.extra_questions]
    phone2num = lang.topo.get_phone_to_num_pdf_classes()
    roots = [(shared, split, phones) for shared, split, phones in lang.roots]
    built = tree_mod.build_tree(stats, roots, phone2num, questions, args.num_leaves, thresh=args.tree_thresh,
                                cluster_thresh=args.cluster_thresh, min_count=args.tree_min_count,
                                round_num_leaves=args.round_num_leaves, context_width=args.context_width,
                                central_position=args.central_position)
    return tree_from_bytes(built.data), built, questions


def train_deltas(args):
    from steps_py.split_data import split_data
    data, lang_dir, ali_dir, d = args.data_dir, args.lang_dir, args.ali_dir, args.exp_dir
    check_files(os.path.join(ali_dir, "final.mdl"), os.path.join(ali_dir, "tree"), os.path.join(ali_dir, "ali.1.gz"),
                os.path.join(ali_dir, "num_jobs"), os.path.join(data, "feats.scp"),
                os.path.join(lang_dir, "phones.txt"), os.path.join(lang_dir, "phones", "roots.int"))
    t0 = time.time()
    lang = read_lang(lang_dir)
    nj = int(open(os.path.join(ali_dir, "num_jobs")).read().split()[0])
    os.makedirs(os.path.join(d, "log"), exist_ok=True)
    write_lines(os.path.join(d, "num_jobs"), [str(nj)])
    shutil.copyfile(os.path.join(lang_dir, "phones.txt"), os.path.join(d, "phones.txt"))
    src_cmvn = os.path.join(ali_dir, "cmvn_opts")
    write_lines(os.path.join(d, "cmvn_opts"), [open(src_cmvn).read().strip() if os.path.exists(src_cmvn) else ""])
    split_dir = split_data(data, nj)
    job = os.path.join(split_dir, "JOB")

    if last_model(d, args.num_iters) is None:
        log.info("accumulating tree stats")
        run_jobs(args.cmd, nj, os.path.join(d, "log", "acc_tree.JOB.log"),
                 job_argv(job, lang_dir, ali_dir, feat_dir=d, align="none", ali_in=os.path.join(ali_dir, "ali.JOB.gz"),
                          tree_stats_out=os.path.join(d, "JOB.treeacc"), context_width=args.context_width,
                          central_position=args.central_position), what="tree-statistics jobs")
        parts = [os.path.join(d, f"{j}.treeacc") for j in range(1, nj + 1)]
        stats = tree_mod.sum_tree_stats([tree_mod.tree_stats_from_npz(np.load(p)) for p in parts])
        log.info(f"tree statistics: {stats.num_events} distinct events, {int(stats.counts.sum())} frames")
        tree, built, questions = build_tree_from_stats(stats, lang, args)
        write_lines(os.path.join(d, "questions.int"), [" ".join(map(str, q)) for q in questions])
        log.info(f"built the tree: {built.num_leaves} leaves (asked for {args.num_leaves}); split gain "
                 f"{built.objf_gain / stats.counts.sum():.4f} per frame over {int(stats.counts.sum())} frames, "
                 f"smallest split {built.smallest_split:.1f}, {built.num_merged} leaves merged afterwards; "
                 f"{len(questions)} questions")
        low = int((built.leaf_counts < 100).sum())
        if low:
            log.info(f"{low} leaves have fewer than 100 frames")
        tm, am, occs = gmm.init_model_from_tree_stats(stats, tree, lang)
        gmm.mixup(am, occs, args.num_leaves, power=args.power, perturb_factor=args.perturb_factor,
                  min_count=args.min_count)
        write_tree(os.path.join(d, "tree"), tree)
        write_model(os.path.join(d, "1.mdl"), tm, am, lang.topo_entries)
        for p in parts:
            os.unlink(p)
    tree = read_tree(os.path.join(d, "tree"))
    numgauss0 = args.num_leaves
    inc = gmm.gauss_increment(args.tot_gauss, numgauss0, args.max_iter_inc)
    realign = {int(x) for x in args.realign_iters.split()}
    trainer = Trainer(args, data, lang_dir, d, lang, tree, split_dir, nj, "tri")
    start = last_model(d, args.num_iters)
    for x in range(start, args.num_iters):
        numgauss = numgauss0 + inc * min(x - 1, args.max_iter_inc)
        if x == 1:   # pass 1 uses the source alignments converted to the new tree (convert-ali)
            trainer.run_pass(1, "none", numgauss, args.min_gaussian_occupancy, args.beam,
                             ali_in_model=os.path.join(ali_dir, "final.mdl"), ali_in_tree=os.path.join(ali_dir, "tree"))
        else:
            trainer.run_pass(x, "viterbi" if x in realign else "none", numgauss, args.min_gaussian_occupancy,
                             args.beam)
    trainer.finish(args.num_iters)
    _, am, _ = read_model(os.path.join(d, "final.mdl"), tree)
    log.info(f"done training triphone system in {d}: {am.num_pdfs} pdfs, {am.num_gauss} Gaussians, "
             f"{time.time() - t0:.1f} s")
    return 0


def main():
    args = parse_with_config(get_parser())
    if args.num_leaves < 1 or args.tot_gauss < args.num_leaves:
        raise InputError(f"need 1 <= num-leaves <= tot-gauss, got {args.num_leaves} and {args.tot_gauss}")
    return train_deltas(args)


if __name__ == "__main__":
    run_main(main)
