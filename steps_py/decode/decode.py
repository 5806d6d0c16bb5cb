"""Usage: python -m steps_py.decode.decode [options] <graph-dir> <data-dir> <decode-dir>

The equivalent of Kaldi's steps/decode.sh followed by local/score.sh, for GMM models: the model is
<graph-dir>/../final.mdl (as in Kaldi: exp/tri1/graph_tgpr -> exp/tri1) unless --model is given. The data are
split into --nj parts, each decoded by a job run through --cmd (log: <decode-dir>/log/decode.JOB.log):

  features (steps_py.feats.pipeline, as in training: per-speaker CMVN from cmvn.scp with <model-dir>/cmvn_opts,
  then deltas with delta_opts, or splicing with splice_opts and <model-dir>/final.mat, as Kaldi's decode.sh does)
  -> GMM pdf log-likelihoods [T, num_pdfs] (numpy, all frames at once)
  -> steps_py.decode.search (lattice method: raw lattice + LMWT/WIP sweep; bestpath: one FasterDecoder run per pair)
  -> <decode-dir>/scoring/<LMWT>_<WIP>.tra (integer word ids; merged from the jobs' scoring/job.JOB/)
then steps_py.decode.score writes <decode-dir>/wer_<LMWT>_<WIP> and scoring_kaldi/best_wer. Each job's log has its
real-time factor (decoding seconds / audio seconds). Finished jobs are not re-run, and a finished decode is skipped
while the graph, the model's files, the data's tables and the options are unchanged (stamp <decode-dir>/.done.decode).

Options are read from --config (default conf/decode.conf when it exists; Kaldi option-file syntax, one
--name=value per line); options on the command line override it.

The job, merging and scoring code is steps_py.decode.driver's, shared with the hybrid NN decode.

e.g.: python -m steps_py.decode.decode --nj 4 --cmd run.py exp/mono/graph_tgpr data/dev exp/mono/decode_tgpr_dev
"""
import argparse
import os

from steps_py.common import InputError, get_logger, require_files, run_main
from steps_py.decode.driver import (add_decode_options, decode_completion, decode_in_jobs, decode_job, decode_options,
                                    filter_words, job_is_done, load_graph, options_to_args, skip_finished_decode)
from steps_py.decode.scoring import best_for_dir
from steps_py.feats.pipeline import FeaturePipeline, iter_features
from steps_py.gmm.model import GmmArrays
from steps_py.gmm.trainer import model_inputs
from steps_py.jobs import module_argv
from steps_py.kaldi.model_io import read_model
from steps_py.kaldi.options import parse_args_with_config
from steps_py.kaldi.tree_io import read_tree

log = get_logger("decode.decode")


def gmm_loglike_producer(model_dir, am):
    """A function data_dir -> iterator of (utt, log-likelihoods [T, num_pdfs] float32) for the GMM ``am`` of
    <model-dir>, whose features go through <model-dir>'s pipeline (CMVN with cmvn_opts, then deltas or splice +
    final.mat), as in training."""
    arrays = GmmArrays(am)
    pipeline = FeaturePipeline(model_dir)

    def produce(data_dir):
        for utt, feats in iter_features(data_dir, model_dir, pipeline=pipeline):
            if feats.shape[1] != arrays.dim:
                raise InputError(f"{data_dir}/feats.scp: {utt} has {feats.shape[1]}-dim features after the "
                                 f"pipeline ({pipeline.describe()}), the model {model_dir} wants {arrays.dim}")
            yield utt, arrays.pdf_loglikes(feats).astype("float32")
    return produce


def run_one_job(graph_dir, data_dir, decode_dir, job, opts, model=None):
    """One decoding job on an already split data dir; skipped when it finished after its inputs changed."""
    model_dir = os.path.dirname(os.path.abspath(graph_dir.rstrip("/")))
    model_path = model or os.path.join(model_dir, "final.mdl")
    if job_is_done(decode_dir, job, opts, [os.path.join(graph_dir, "HCLG.fst"), model_path,
                                           os.path.join(data_dir, "feats.scp")]):
        log.info(f"job {job} already done; skipping")
        return
    trans_model, am, _ = read_model(model_path, read_tree(os.path.join(model_dir, "tree")))
    graph = load_graph(graph_dir, trans_model)
    decode_job(graph, gmm_loglike_producer(model_dir, am)(data_dir), opts, decode_dir, job)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", help="Kaldi option file (default: conf/decode.conf if it exists)")
    p.add_argument("--nj", type=int, default=1, help="number of parallel jobs (default: 1)")
    p.add_argument("--cmd", default="run.py", help="job runner, as $decode_cmd (default: run.py)")
    p.add_argument("--model", help="model file (default: <graph-dir>/../final.mdl)")
    p.add_argument("--filter-words", default=None, help="comma-separated words removed before scoring "
                   "(default: <NOISE>,<SPOKEN_NOISE>)")
    p.add_argument("--skip-scoring", action="store_true", help="decode only")
    p.add_argument("--job", help=argparse.SUPPRESS)  # internal: run one job on an already split data dir
    add_decode_options(p)
    p.add_argument("graph_dir")
    p.add_argument("data_dir")
    p.add_argument("decode_dir")
    a, config = parse_args_with_config(p, "conf/decode.conf")
    opts = decode_options(a)
    if a.job is not None:
        run_one_job(a.graph_dir, a.data_dir, a.decode_dir, a.job, opts, a.model)
        return
    model_dir = os.path.dirname(os.path.abspath(a.graph_dir.rstrip("/")))
    require_files(a.model or os.path.join(model_dir, "final.mdl"), os.path.join(model_dir, "tree"))
    # the model dir as the graph dir names it (not made absolute): a stamp names its inputs as the recipe does, so
    # a copied or moved recipe dir stays up to date
    model_files = model_inputs(os.path.dirname(os.path.normpath(a.graph_dir)) or ".") + ([a.model] if a.model else [])
    done = decode_completion("decode.decode", a, model_files, a.skip_scoring)
    if skip_finished_decode(done):
        if not a.skip_scoring:
            print(best_for_dir(a.decode_dir))
        return

    def job_argv(sub_data):
        return module_argv("steps_py.decode.decode", a.graph_dir, sub_data, a.decode_dir, job="JOB", config=config,
                           model=a.model) + options_to_args(opts)
    best, _ = decode_in_jobs(a.data_dir, a.graph_dir, a.decode_dir, opts, a.nj, a.cmd, job_argv, filter_words(a),
                             a.skip_scoring)
    done.finish()
    if best:
        print(best)


if __name__ == "__main__":
    run_main(main)
