"""Usage: python -m steps_py.gmm.train_deltas [options] <num-leaves> <tot-gauss> <data-dir> <lang-dir> <ali-dir> <exp-dir>

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
Outputs as steps_py.gmm.train_mono: final.mdl, tree, ali.JOB.gz, phone_ali.JOB.gz, num_jobs, log/. Skipped when
finished with the same data, lang dir, <ali-dir> and options (stamp <exp-dir>/.done.train_deltas), as train_mono.
e.g.: python -m steps_py.gmm.train_deltas --config conf/gmm_tri1.conf 2000 10000 data/train data/lang exp/mono_ali \\
        exp/tri1
"""
import os
import time

from steps_py.common import get_logger, run_main
from steps_py.gmm import model as gmm
from steps_py.gmm.trainer import (Trainer, ali_inputs, build_tree_and_model, check_triphone_args, last_model,
                                  prepare_triphone_dir, skip_finished_training, training_completion, triphone_parser)
from steps_py.kaldi.model_io import write_model
from steps_py.kaldi.options import parse_args_with_config
from steps_py.kaldi.tree_io import read_tree, write_tree

log = get_logger("gmm.train_deltas")


def train_deltas(args):
    """train_deltas.sh (see the module docstring)."""
    d = args.exp_dir
    done = training_completion(args, "train_deltas", ali_inputs(args.ali_dir))
    if skip_finished_training(done):
        return 0
    t0 = time.time()
    lang, nj, split_dir = prepare_triphone_dir(args)
    if last_model(d, args.num_iters) is None:
        tm, am, occs, tree = build_tree_and_model(args, lang, split_dir, nj)
        gmm.mix_up(am, occs, args.num_leaves, power=args.power, perturb_factor=args.perturb_factor,
                   min_count=args.min_count, rng=gmm.mixup_rng(args.seed, 0))   # step 0: before pass 1
        write_tree(os.path.join(d, "tree"), tree)
        write_model(os.path.join(d, "1.mdl"), tm, am, lang.topo_entries)
    tree = read_tree(os.path.join(d, "tree"))
    realign = {int(x) for x in args.realign_iters.split()}
    trainer = Trainer(args, tree, split_dir, nj)
    for x in range(last_model(d, args.num_iters), args.num_iters):
        numgauss = gmm.num_gauss_at(x, args.num_leaves, args.tot_gauss, args.max_iter_inc)
        if x == 1:   # pass 1 uses the source alignments converted to the new tree (convert-ali)
            trainer.run_pass(1, "none", numgauss, args.min_gaussian_occupancy, args.beam,
                             ali_in_model=os.path.join(args.ali_dir, "final.mdl"),
                             ali_in_tree=os.path.join(args.ali_dir, "tree"))
        else:
            trainer.run_pass(x, "viterbi" if x in realign else "none", numgauss, args.min_gaussian_occupancy,
                             args.beam)
    am = trainer.finish(args.num_iters)
    done.finish()
    log.info(f"done training triphone system in {d}: {am.num_pdfs} pdfs, {am.num_gauss} Gaussians, "
             f"{time.time() - t0:.1f} s")
    return 0


def main():
    args, _ = parse_args_with_config(triphone_parser(__doc__))
    check_triphone_args(args)
    return train_deltas(args)


if __name__ == "__main__":
    run_main(main)
