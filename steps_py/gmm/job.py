"""Usage: python -m steps_py.gmm.job [options] <data-dir> <lang-dir> <model-dir>

One parallel job of GMM training or alignment on a (split) data dir, the work of Kaldi's
align-equal-compiled / gmm-align-compiled | gmm-acc-stats-ali and acc-tree-stats / convert-ali pipelines.
The model is <model-dir>/tree with --model (default <model-dir>/final.mdl); the features follow <model-dir>'s
options (cmvn_opts, delta_opts, or splice_opts + final.mat; see steps_py.feats.pipeline.FeaturePipeline) unless
--feat-dir names another dir.

Alignment (--align):
  equal      equal alignment of the training graph (flat start); utterances too short for their transcript fail
  viterbi    Viterbi alignment with --beam, retried at --retry-beam, silence boosted by --boost-silence
  none       read the alignment from --ali-in (optionally made by another model: --ali-in-model/--ali-in-tree,
             which are converted to this model as convert-ali does)
Outputs (each optional, written atomically): --ali-out (gzipped ark of transition ids), --phone-ali-out (gzipped
ark of per-frame phone ids), --acc-out (GMM statistics, .npz), --tree-stats-out (acc-tree-stats, .npz).
Utterances that fail to align are logged by name and counted; the job fails only if none aligned.
"""
import argparse
import os
import time
import zlib

import numpy as np

from steps_py.common import InputError, atomic_open, get_logger, progress, run_main
from steps_py.data.datadir import read_map
from steps_py.feats.pipeline import iter_features
from steps_py.gmm import align
from steps_py.gmm import model as gmm
from steps_py.gmm import tree as tree_mod
from steps_py.kaldi.io import read_int_vectors, write_int_vectors
from steps_py.kaldi.model_io import read_model
from steps_py.kaldi.tree_io import read_tree
from steps_py.lang.lang_dir import read_lang

def utterance_seed(seed, utt):
    """The equal alignment's random seed for one utterance: a function of the run's seed and the utterance id only
    (as Kaldi hashes the key), so the alignment does not depend on how the data was split into jobs."""
    return (seed + zlib.crc32(utt.encode("utf-8"))) % 2 ** 31


log = get_logger("gmm.job")

def get_parser():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", help="model file (default <model-dir>/final.mdl)")
    p.add_argument("--feat-dir", help="dir whose feature options to use (default <model-dir>)")
    p.add_argument("--align", choices=["equal", "viterbi", "none"], default="none")
    p.add_argument("--beam", type=float, default=10.0)
    p.add_argument("--retry-beam", type=float, default=40.0)
    p.add_argument("--careful", action="store_true")
    p.add_argument("--boost-silence", type=float, default=1.0)
    p.add_argument("--transition-scale", type=float, default=1.0)
    p.add_argument("--self-loop-scale", type=float, default=0.1)
    p.add_argument("--acoustic-scale", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=0, help="seed of the equal alignment")
    p.add_argument("--ali-in")
    p.add_argument("--ali-in-model", help="model of --ali-in if not the job's model (converted, as convert-ali)")
    p.add_argument("--ali-in-tree", help="tree of --ali-in-model")
    p.add_argument("--ali-out")
    p.add_argument("--phone-ali-out")
    p.add_argument("--acc-out")
    p.add_argument("--tree-stats-out")
    p.add_argument("--context-width", type=int, default=3)
    p.add_argument("--central-position", type=int, default=1)
    p.add_argument("data_dir")
    p.add_argument("lang_dir")
    p.add_argument("model_dir")
    return p


def run_job(args):
    t0 = time.time()
    lang = read_lang(args.lang_dir)
    tree = read_tree(os.path.join(args.model_dir, "tree"))
    tm, am, topo_entries = read_model(args.model or os.path.join(args.model_dir, "final.mdl"), tree)
    info = align.TransitionInfo(tm, topo_entries)
    text_path = os.path.join(args.data_dir, "text")
    text = {u: t.split() for u, t in read_map(text_path, allow_empty_value=True).items()} \
        if os.path.exists(text_path) else {}
    feats_iter = iter_features(args.data_dir, args.feat_dir or args.model_dir)

    ali_in = read_int_vectors(args.ali_in) if args.ali_in else None
    if ali_in is not None and args.ali_in_model:
        old_tree = read_tree(args.ali_in_tree)
        old_tm, _, old_entries = read_model(args.ali_in_model, old_tree)
        old_info = align.TransitionInfo(old_tm, old_entries)
        ali_in = {u: align.convert_alignment(a, old_info, info, tree) for u, a in ali_in.items()}
    aligner = align.Aligner(tm, tree, lang, args.transition_scale, args.self_loop_scale, args.acoustic_scale) \
        if args.align != "none" else None
    align_am = gmm.boosted_copy(am, gmm.silence_pdfs(tm, lang), args.boost_silence) \
        if args.align == "viterbi" else am
    arrays = gmm.GmmArrays(am) if args.acc_out else None
    stats = gmm.GmmStats(arrays.offsets, am.dim, tm.num_transition_ids) if arrays else None
    alis, events, event_feats = {}, [], []
    n_total = n_retried = n_no_text = 0
    failed = []
    tot_align_like = 0.0
    for utt, feats in progress(feats_iter, desc="utterances"):
        n_total += 1
        if args.align == "none":
            ali = ali_in.get(utt)
            if ali is None:
                failed.append(utt)
                continue
            if len(ali) != len(feats):
                log.warning(f"{utt}: alignment has {len(ali)} frames, features {len(feats)}; skipped")
                failed.append(utt)
                continue
        else:
            if utt not in text:
                n_no_text += 1
                log.warning(f"{utt}: no transcript in {text_path}; skipped")
                continue
            if args.align == "equal":
                ali = aligner.equal_align(text[utt], len(feats), seed=utterance_seed(args.seed, utt))
            else:
                ali, like, retried = aligner.align(align_am, utt, text[utt], feats, args.beam, args.retry_beam,
                                                   args.careful)
                n_retried += retried
                tot_align_like += like
            if ali is None:
                failed.append(utt)
                log.warning(f"{utt}: failed to align ({args.align}, {len(feats)} frames, "
                            f"{len(text[utt])} words)")
                continue
        alis[utt] = ali
        if stats is not None:
            gmm.accumulate(arrays, stats, feats, ali, info.pdf)
        if args.tree_stats_out:
            events.append(align.tree_events(info, ali, lang.context_indep_ids, args.context_width,
                                          args.central_position))
            event_feats.append(feats)
    n_ok = len(alis)
    log.info(f"{args.align if args.align != 'none' else 'read'} alignments: {n_ok} of {n_total} utterances "
             f"({100.0 * n_ok / max(n_total, 1):.2f}%), {len(failed)} failed, {n_retried} retried"
             + (f", {n_no_text} without transcript" if n_no_text else ""))
    if failed:
        log.warning(f"utterances without alignment ({len(failed)}): {' '.join(failed[:50])}"
                    + (" ..." if len(failed) > 50 else ""))
    if n_ok == 0:
        raise InputError(f"no utterance of {args.data_dir} could be aligned")
    if args.align == "viterbi":
        nfr = sum(len(a) for a in alis.values())
        log.info(f"overall log-likelihood per frame (alignment, acoustic scale {args.acoustic_scale}) is "
                 f"{tot_align_like / max(nfr, 1):.4f} over {nfr} frames")
    if args.ali_out:
        write_int_vectors(args.ali_out, alis)
    if args.phone_ali_out:
        write_int_vectors(args.phone_ali_out, {u: align.phones_per_frame(info, a) for u, a in alis.items()})
    if stats is not None:
        gmm.save_stats(args.acc_out, stats)
        log.info(f"GMM statistics: {stats.num_frames} frames, average log-likelihood per frame "
                 f"{stats.tot_loglike / max(stats.num_frames, 1):.4f}")
    if args.tree_stats_out:
        ts = tree_mod.events_to_stats(np.concatenate(events), np.concatenate(event_feats))
        with atomic_open(args.tree_stats_out, "wb") as f:
            np.savez(f, **tree_mod.tree_stats_to_npz(ts))
        log.info(f"tree statistics: {ts.num_events} distinct events over {int(ts.counts.sum())} frames")
    log.info(f"done in {time.time() - t0:.1f} s")
    return 0


def main():
    return run_job(get_parser().parse_args())


if __name__ == "__main__":
    run_main(main)
