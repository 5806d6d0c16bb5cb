"""Hybrid decoding with a trained acoustic model (Kaldi's steps/nnet3/decode.sh): pdf log-likelihoods
(log posterior - log prior) of whole utterances in length-sorted batches, decoded and scored by the jobs of
steps_py.decode.driver, as the GMM decodes are.

A job can hand the internals of chosen utterances to a *tap* (steps_py.memvis.extract's Extractor): an object with
``utts`` (set of utterance ids), ``add(utt, layers, feats)``, ``close()`` and ``abort()``. Those utterances are
computed with return_internals in the same forward pass that feeds the decoder, so the decoder gets the same
log-likelihoods either way.

A finished decode is skipped while the graph, the model's files (nnet_inputs), the data's tables and the options are
unchanged (steps_py.decode.driver's stamp <decode-dir>/.done.decode). torch is imported by the jobs only, so that
finding a decode up to date takes a fraction of a second.
"""
import argparse
import os

import numpy as np

from steps_py.common import InputError, get_logger
from steps_py.decode.driver import (add_decode_options, decode_completion, decode_in_jobs, decode_job, filter_words,
                                    job_is_done, load_graph, options_to_args)
from steps_py.jobs import module_argv
from steps_py.nnet.device import add_device_option
from steps_py.kaldi.io import ark_scp_writer

log = get_logger("nnet.hybrid")


def loglike_batches(bundle, data_dir, batch_utts=16, tap=None):
    """Yields (utt, loglikes [T, P] float32) for every utterance of data_dir, computed ``batch_utts`` at a time;
    the utterances of ``tap`` (see the module docstring) also go to ``tap.add`` with their internals."""
    from steps_py.nnet.model import forward_utterances   # torch: imported where the network runs

    def flush(pending):
        utts = [u for u, _ in pending]
        feats = [f for _, f in pending]
        if tap is not None and any(u in tap.utts for u in utts):
            out = forward_utterances(bundle.model, feats, bundle.label_delay, return_internals=True)
            for u, f, (_, layers) in zip(utts, feats, out):
                if u in tap.utts:
                    tap.add(u, layers, f)
            loglikes = [(logp - bundle.log_priors).astype(np.float32) for logp, _ in out]
        else:
            loglikes = bundle.loglikes_batch(feats)
        return zip(utts, loglikes)

    pending = []
    for utt, feats in bundle.iter_features(data_dir):
        pending.append((utt, feats))
        if len(pending) == batch_utts:
            yield from flush(pending)
            pending = []
    if pending:
        yield from flush(pending)


def with_ark_copy(items, stem):
    """Passes (utt, matrix) items through while writing them to <stem>.ark/.scp (binary Kaldi matrices, as
    latgen-faster-mapped reads them); the files appear only when every item has been written."""
    with ark_scp_writer(stem + ".ark", stem + ".scp") as writer:
        for utt, m in items:
            writer(utt, m)
            yield utt, m


def run_job(graph_dir, data_dir, nnet_dir, decode_dir, job, opts, iter_name="final", write_loglikes=False,
            num_threads=1, make_tap=None, tap_outputs=(), device="cpu"):
    """One decoding job on a part of the data; skipped when it finished after its inputs changed and its outputs
    (loglikes.JOB.scp with ``write_loglikes``, ``tap_outputs``) exist. ``make_tap(bundle)``: the job's tap or
    None. ``device``: where the network runs (steps_py.nnet.device); the search runs on the CPU."""
    inputs = [os.path.join(graph_dir, "HCLG.fst"), os.path.join(nnet_dir, f"{iter_name}.pt"),
              os.path.join(data_dir, "feats.scp")]
    outputs = [os.path.join(decode_dir, f"loglikes.{job}.scp")] if write_loglikes else []
    if job_is_done(decode_dir, job, opts, inputs, outputs + list(tap_outputs)):
        log.info(f"job {job} already done; skipping")
        return
    from steps_py.nnet.checkpoint import load_acoustic_model   # torch: imported where the network runs
    bundle = load_acoustic_model(nnet_dir, iter_name, num_threads=num_threads, device=device)
    graph = load_graph(graph_dir, bundle.trans_model)
    tap = make_tap(bundle) if make_tap else None
    utt_loglikes = loglike_batches(bundle, data_dir, tap=tap)
    if write_loglikes:
        utt_loglikes = with_ark_copy(utt_loglikes, os.path.join(decode_dir, f"loglikes.{job}"))
    try:
        decode_job(graph, utt_loglikes, opts, decode_dir, job)
    except BaseException:
        if tap:
            tap.abort()
        raise
    if tap:
        tap.close()


def decode_parser(doc, default_config="conf/decode_nnet.conf"):
    """The command line of a hybrid decoding step: runner, model and decoder options, then <graph-dir> <data-dir>
    <nnet-dir> <decode-dir>."""
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", help=f"Kaldi option file (default: {default_config} if it exists)")
    p.add_argument("--nj", type=int, default=1, help="number of parallel jobs (default: 1)")
    p.add_argument("--cmd", default="run.py", help="job runner, as $decode_cmd (default: run.py)")
    p.add_argument("--iter", default="final", help="model to decode: <nnet-dir>/<iter>.pt (default: final)")
    p.add_argument("--num-threads", type=int, default=1, help="torch threads per job (default: 1)")
    add_device_option(p)
    p.add_argument("--write-loglikes", action="store_true",
                   help="also write loglikes.JOB.{ark,scp} (Kaldi matrices for latgen-faster-mapped)")
    p.add_argument("--filter-words", default=None, help="comma-separated words removed before scoring")
    p.add_argument("--job", help=argparse.SUPPRESS)   # internal: run one job on an already split data dir
    add_decode_options(p)
    for name in ("graph_dir", "data_dir", "nnet_dir", "decode_dir"):
        p.add_argument(name)
    return p


def nnet_inputs(nnet_dir, iter_name="final"):
    """The files of a model dir that steps_py.nnet.checkpoint.load_acoustic_model reads: <iter>.pt, prior.vec,
    cmvn_opts, final.mdl and tree."""
    return [os.path.join(nnet_dir, f) for f in (f"{iter_name}.pt", "prior.vec", "cmvn_opts", "final.mdl", "tree")]


def hybrid_completion(args, module, inputs=(), outputs=()):
    """The Completion of the hybrid decoding step ``module`` (steps_py.nnet.decode, steps_py.memvis.extract) with
    options ``args``: the model's files (nnet_inputs) and ``inputs``, with the graph and data dir's, and
    ``outputs`` besides the scoring's (decode_completion)."""
    return decode_completion(module, args, nnet_inputs(args.nnet_dir, args.iter) + list(inputs), outputs=outputs)


def decode(args, opts, config, module="steps_py.nnet.decode", skip_scoring=False, **job_options):
    """The driver of a hybrid decoding step: the jobs run ``python -m <module> --job JOB`` with the step's options
    (``args`` of decode_parser, DecodeOptions ``opts``, the config file used) and ``job_options``. Returns (the best
    %WER line, None with skip_scoring; number of jobs)."""
    model = os.path.join(args.nnet_dir, f"{args.iter}.pt")
    if not os.path.exists(model):
        raise InputError(f"no such file {model} (train the model first: steps_py.nnet.train)")
    def job_argv(sub_data):
        return module_argv(module, args.graph_dir, sub_data, args.nnet_dir, args.decode_dir, job="JOB",
                           iter=args.iter, num_threads=args.num_threads, device=args.device, config=config,
                           write_loglikes=args.write_loglikes, **job_options) + options_to_args(opts)
    return decode_in_jobs(args.data_dir, args.graph_dir, args.decode_dir, opts, args.nj, args.cmd, job_argv,
                          filter_words(args), skip_scoring)
