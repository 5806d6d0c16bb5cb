"""Usage: python -m steps_py.gmm.acc_lda_mllt {lda|mllt} --model M --tree T --ali A --out O.npz <data-dir> <lang-dir> <exp-dir>

One statistics job of steps_py.gmm.train_lda_mllt on a (split) data dir, with the alignment A (transition ids) of
model M (tree T) and the features of <exp-dir> (cmvn_opts, splice_opts):
  lda   acc-lda: LDA statistics with the pdfs of the alignment as classes, on spliced (untransformed) features;
  mllt  gmm-acc-mllt: MLLT statistics under model M in the space of <exp-dir>/final.mat.
Silence frames are weighted by --silence-weight (weight-silence-post). Writes O.npz atomically.
"""
import argparse
import os

import numpy as np

from steps_py.common import InputError, atomic_open, get_logger, progress, run_main
from steps_py.data.datadir import read_map
from steps_py.feats.pipeline import FeaturePipeline, iter_features, parse_splice_opts
from steps_py.gmm import lda_mllt
from steps_py.gmm import model as gmm
from steps_py.gmm.align import TransitionInfo
from steps_py.kaldi.io import read_int_vectors
from steps_py.kaldi.model_io import read_model
from steps_py.kaldi.tree_io import read_tree
from steps_py.lang.lang_dir import read_lang

log = get_logger("gmm.acc_lda_mllt")


def get_parser():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("kind", choices=sorted(JOBS), help="lda: acc-lda statistics; mllt: gmm-acc-mllt statistics")
    p.add_argument("--model", required=True, help="model whose transition model maps transition ids to pdfs")
    p.add_argument("--tree", required=True)
    p.add_argument("--ali", required=True, help="gzipped ark of transition-id alignments")
    p.add_argument("--out", required=True, help="statistics (.npz)")
    p.add_argument("--silence-weight", type=float, default=0.0, help="weight of silence frames (weight-silence-post)")
    p.add_argument("data_dir")
    p.add_argument("lang_dir")
    p.add_argument("exp_dir", help="dir with cmvn_opts, splice_opts (and final.mat for mllt)")
    return p


def _aligned_features(args, pipeline):
    """(tm info, am, generator of (utt, feats [T, D], tids [T], frame weights [T])) for the job's utterances.

    Utterances without an alignment or with a length mismatch are counted and logged when the generator ends;
    it raises InputError if no utterance has an alignment.
    """
    lang = read_lang(args.lang_dir)
    tm, am, entries = read_model(args.model, read_tree(args.tree))
    info = TransitionInfo(tm, entries)
    alis = read_int_vectors(args.ali)
    silence = np.zeros(info.phone.max() + 1, bool)
    silence[[p for p in lang.silence_ids if p < len(silence)]] = True

    def generate():
        done, missing, mismatched = 0, 0, 0
        for utt, feats in progress(iter_features(args.data_dir, pipeline=pipeline), desc="utterances"):
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
    first = next(iter(read_map(os.path.join(data_dir, "feats.scp")).values()))
    left, right = parse_splice_opts(splice_opts)
    return kaldiio.load_mat(first).shape[1] * (left + 1 + right)


def acc_lda_job(args):
    """acc-lda: LDA statistics with the pdfs of the alignment as classes, on spliced (untransformed) features."""
    splice_opts = open(os.path.join(args.exp_dir, "splice_opts")).read().strip()
    pipeline = FeaturePipeline(args.exp_dir, transform=np.eye(_spliced_dim(args.data_dir, splice_opts)))
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


def acc_mllt_job(args, batch_frames=200000):
    """gmm-acc-mllt: MLLT statistics under the model, in the space of <exp-dir>/final.mat.

    Frames with non-zero weight are pooled over utterances into batches of about ``batch_frames`` frames, so the
    per-pdf and per-Gaussian loops run once per batch, not per utterance.
    """
    pipeline = FeaturePipeline(args.exp_dir)
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
        frame_ids, gauss_ids, posts, loglikes = gmm.gauss_posteriors(arrays, x, pdfs)
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


JOBS = {"lda": acc_lda_job, "mllt": acc_mllt_job}


def main():
    args = get_parser().parse_args()
    return JOBS[args.kind](args)


if __name__ == "__main__":
    run_main(main)
