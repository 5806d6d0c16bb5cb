"""Usage: python -m steps_py.decode [options] <graph-dir> <data-dir> <decode-dir>

The equivalent of Kaldi's steps/decode.sh followed by local/score.sh, for GMM models: the model is
<graph-dir>/../final.mdl (as in Kaldi: exp/tri1/graph_tgpr -> exp/tri1) unless --model is given. The data are
split into --nj parts, each decoded by a job run through --cmd (log: <decode-dir>/log/decode.JOB.log):

  features (steps_py.gmm's pipeline, as in training: per-speaker CMVN from cmvn.scp with <model-dir>/cmvn_opts,
  then deltas with delta_opts, or splicing with splice_opts and <model-dir>/final.mat, as Kaldi's decode.sh does)
  -> GMM pdf log-likelihoods [T, num_pdfs] (numpy, all frames at once)
  -> steps_py.decoding (lattice method: raw lattice + LMWT/WIP sweep; bestpath: one FasterDecoder run per pair)
  -> <decode-dir>/scoring/<LMWT>_<WIP>.tra (integer word ids; merged from the jobs' scoring/job.JOB/)
then steps_py.score writes <decode-dir>/wer_<LMWT>_<WIP> and scoring_kaldi/best_wer. Each job's log has its
real-time factor (decoding seconds / audio seconds). Finished jobs are not re-run.

Options are read from --config (default conf/decode.conf when it exists; Kaldi option-file syntax, one
--name=value per line); options on the command line override it.

Hybrid NN decoding uses the same jobs with another log-likelihood producer: see ``decode_job`` and
``merge_and_score``.

e.g.: python -m steps_py.decode --nj 4 --cmd run.py exp/mono/graph_tgpr data/dev exp/mono/decode_tgpr_dev
"""
import argparse
import os
import shlex
import subprocess
import sys
import time

import numpy as np

from steps_py.kaldi import kaldifst, read_model, read_tree  # noqa: I001  (binding import order)
from steps_py import decoding
from steps_py.common import InputError, atomic_open, get_logger, progress, run_main
from steps_py.datadir import c_sorted, read_map

log = get_logger("decode")

FRAME_SHIFT = 0.01  # seconds per frame, for the real-time factor


# ---------------------------------------------------------------------------------------------- options
def read_config(path):
    """Arguments of a Kaldi option file: ``--name=value`` per line, ``#`` comments, blank lines ignored."""
    args = []
    try:
        f = open(path, encoding="utf-8")
    except OSError as e:
        raise InputError(f"cannot read config {path}: {e.strerror}") from None
    with f:
        for n, line in enumerate(f, 1):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            if not line.startswith("--"):
                raise InputError(f"{path}:{n}: expected --name=value, got {line!r}")
            args.extend(shlex.split(line))
    return args


def parse_args_with_config(p, default_config, argv=None):
    """Parses ``argv`` (default sys.argv[1:]) with the Kaldi option file of --config read first, so the command
    line overrides it; --config defaults to ``default_config`` when that file exists. Returns (args, config)."""
    argv = sys.argv[1:] if argv is None else argv
    pre, _ = p.parse_known_args(argv)
    config = pre.config or (default_config if os.path.exists(default_config) else None)
    return p.parse_args((read_config(config) if config else []) + argv), config


def add_decode_options(p):
    d = decoding.DecodeOptions()
    p.add_argument("--method", choices=["lattice", "bestpath"], default=d.method,
                   help="lattice: one LatticeSimpleDecoder run + sweep over its raw lattice; bestpath: one "
                        f"FasterDecoder run per (LMWT, WIP) (default: {d.method})")
    p.add_argument("--acwt", type=float, default=d.acwt, help=f"acoustic scale of the lattice decode ({d.acwt})")
    p.add_argument("--beam", type=float, default=d.beam, help=f"decoding beam ({d.beam})")
    p.add_argument("--lattice-beam", type=float, default=d.lattice_beam, help=f"lattice beam ({d.lattice_beam})")
    p.add_argument("--max-active", type=int, default=d.max_active, help=f"bestpath: max active states "
                   f"({d.max_active})")
    p.add_argument("--min-active", type=int, default=d.min_active, help=f"bestpath: min active states "
                   f"({d.min_active})")
    p.add_argument("--min-lmwt", type=int, default=d.min_lmwt, help=f"smallest LM weight scored ({d.min_lmwt})")
    p.add_argument("--max-lmwt", type=int, default=d.max_lmwt, help=f"largest LM weight scored ({d.max_lmwt})")
    p.add_argument("--lmwt-step", type=int, default=d.lmwt_step, help=f"step between LM weights ({d.lmwt_step})")
    p.add_argument("--word-ins-penalty", default=",".join(str(w) for w in d.word_ins_penalties),
                   help="comma-separated word insertion penalties (default: 0.0,0.5,1.0)")


def decode_options(a):
    wips = tuple(float(w) for w in a.word_ins_penalty.split(",") if w.strip())
    if a.min_lmwt < 1 or a.max_lmwt < a.min_lmwt or a.lmwt_step < 1 or not wips:
        raise InputError(f"bad sweep: LMWT {a.min_lmwt}..{a.max_lmwt}, WIP {a.word_ins_penalty!r}")
    return decoding.DecodeOptions(method=a.method, acwt=a.acwt, beam=a.beam, lattice_beam=a.lattice_beam,
                                  max_active=a.max_active, min_active=a.min_active, min_lmwt=a.min_lmwt,
                                  max_lmwt=a.max_lmwt, lmwt_step=a.lmwt_step,
                                  word_ins_penalties=wips)


def options_to_args(opts):
    return ["--method", opts.method, "--acwt", repr(opts.acwt), "--beam", repr(opts.beam),
            "--lattice-beam", repr(opts.lattice_beam), "--max-active", str(opts.max_active),
            "--min-active", str(opts.min_active), "--min-lmwt", str(opts.min_lmwt), "--max-lmwt", str(opts.max_lmwt),
            "--lmwt-step", str(opts.lmwt_step),
            "--word-ins-penalty", ",".join(repr(float(w)) for w in opts.word_ins_penalties)]


# ---------------------------------------------------------------------------------------------- GMM producer
def gmm_arrays(am):
    """The GMM parameters stacked over all Gaussians of all pdfs, for ``gmm_loglikes``.

    Returns (gconsts [G], means_invvars [G, D], inv_vars [G, D], pdf_start [num_pdfs] index of each pdf's first
    Gaussian), float64.
    """
    gconsts, mi, iv, starts, n = [], [], [], [], 0
    for pdf in range(am.num_pdfs):
        g = am.get_pdf(pdf)
        starts.append(n)
        gconsts.append(np.asarray(g.gconsts, dtype=np.float64))
        mi.append(np.asarray(g.means_invvars, dtype=np.float64))
        iv.append(np.asarray(g.inv_vars, dtype=np.float64))
        n += len(gconsts[-1])
    return np.concatenate(gconsts), np.vstack(mi), np.vstack(iv), np.asarray(starts)


def gmm_loglikes(arrays, feats):
    """Log-likelihoods [T, num_pdfs] of features [T, D] under every pdf (diagonal GMMs), as Kaldi's
    DiagGmm::LogLikelihood: per Gaussian gconst + x.(mu/var) - 0.5 x^2.(1/var), then log-sum-exp per pdf."""
    gconsts, means_invvars, inv_vars, pdf_start = arrays
    x = np.asarray(feats, dtype=np.float64)
    per_gauss = gconsts[None, :] + x @ means_invvars.T - 0.5 * (x * x) @ inv_vars.T       # [T, G]
    peak = np.maximum.reduceat(per_gauss, pdf_start, axis=1)                                # [T, P]
    counts = np.diff(np.r_[pdf_start, per_gauss.shape[1]])
    summed = np.add.reduceat(np.exp(per_gauss - np.repeat(peak, counts, axis=1)), pdf_start, axis=1)
    return (peak + np.log(summed)).astype(np.float32)


def gmm_loglike_producer(model_dir, model_path=None):
    """A function data_dir -> iterator of (utt, log-likelihoods [T, num_pdfs]) for the GMM in <model-dir>.

    Features go through the GMM systems' one feature pipeline (steps_py.gmm.iter_features: CMVN with
    <model-dir>/cmvn_opts, then deltas or splice + final.mat), as in training.
    """
    from steps_py.gmm import FeaturePipeline, iter_features
    tree = read_tree(os.path.join(model_dir, "tree"))
    _, am, _ = read_model(model_path or os.path.join(model_dir, "final.mdl"), tree)
    arrays = gmm_arrays(am)
    pipeline = FeaturePipeline(model_dir)
    dim = arrays[1].shape[1]

    def produce(data_dir):
        for utt, feats in iter_features(data_dir, model_dir, pipeline=pipeline):
            if feats.shape[1] != dim:
                raise InputError(f"{data_dir}/feats.scp: {utt} has {feats.shape[1]}-dim features after the "
                                 f"pipeline ({pipeline.describe()}), "
                                 f"the model {model_dir} wants {dim}")
            yield utt, gmm_loglikes(arrays, feats)
    return produce


# ---------------------------------------------------------------------------------------------- jobs
def load_graph(graph_dir, trans_model):
    path = os.path.join(graph_dir, "HCLG.fst")
    if not os.path.exists(path):
        raise InputError(f"no such file {path}")
    hclg = kaldifst.StdVectorFst.read(path)
    graph = decoding.DecodingGraph.from_trans_model(hclg, trans_model)
    num_pdfs_file = os.path.join(graph_dir, "num_pdfs")
    if os.path.exists(num_pdfs_file) and int(open(num_pdfs_file).read()) != graph.num_pdfs:
        raise InputError(f"{num_pdfs_file} says {open(num_pdfs_file).read().strip()} pdfs, the model has "
                         f"{graph.num_pdfs}: graph and model do not match")
    return graph


def job_dir(decode_dir, job):
    return os.path.join(decode_dir, "scoring", f"job.{job}")


def decode_job(graph, utt_loglikes, opts, decode_dir, job):
    """Decodes one job's utterances; writes <decode-dir>/scoring/job.JOB/<LMWT>_<WIP>.tra and a ``done`` marker.

    ``utt_loglikes``: iterable of (utt, log-likelihoods [T, num_pdfs]) from any acoustic model. Logs the real-time
    factor. Utterances that fail to decode are logged and get no hypothesis (scored as missing).
    """
    out_dir = job_dir(decode_dir, job)
    pairs = opts.pairs()
    hyps = {pair: {} for pair in pairs}
    frames, t_decode, t_ac, n_fail, n_notfinal, arcs = 0, 0.0, 0.0, 0, 0, 0
    it = iter(utt_loglikes)
    bar = progress(desc=f"decode job {job}", unit="utt")
    while True:
        t0 = time.time()
        try:
            utt, loglikes = next(it)
        except StopIteration:
            break
        t1 = time.time()
        t_ac += t1 - t0
        frames += loglikes.shape[0]
        try:
            words, info = decoding.decode_sweep(graph, loglikes, opts)
        except RuntimeError as e:
            log.warning(f"{utt}: {e}; no hypothesis")
            n_fail += 1
            continue
        finally:
            t_decode += time.time() - t1
            bar.update(1)
        n_notfinal += not info["reached_final"]
        arcs += info.get("lattice_arcs", 0)
        for pair, w in zip(pairs, words):
            hyps[pair][utt] = w
    bar.close()
    for (lmwt, wip), table in hyps.items():
        with atomic_open(os.path.join(out_dir, f"{lmwt}_{wip}.tra")) as f:
            for utt in c_sorted(table):
                f.write(" ".join([utt] + [str(w) for w in table[utt]]) + "\n")
    audio = frames * FRAME_SHIFT
    n_utts = len(next(iter(hyps.values()))) + n_fail
    rtf = (t_decode / audio) if audio else 0.0
    log.info(f"job {job}: {n_utts} utterances, {frames} frames ({audio:.1f} s of audio), {n_fail} failed, "
             f"{n_notfinal} did not reach a final state; method {opts.method}, {len(pairs)} (LMWT, WIP) pairs"
             + (f", {arcs / max(frames, 1):.1f} lattice arcs per frame" if arcs else ""))
    log.info(f"job {job}: acoustic model {t_ac:.2f} s (RTF {t_ac / max(audio, 1e-9):.4f}), decoding "
             f"{t_decode:.2f} s (real-time factor {rtf:.4f})")
    with atomic_open(os.path.join(out_dir, "done")) as f:
        f.write(f"{n_utts} {frames} {t_decode:.3f} {t_ac:.3f}\n")
    return hyps


def merge_and_score(data_dir, graph_dir, decode_dir, nj, opts, filter_words=None, skip_scoring=False):
    """Merges the jobs' .tra files into <decode-dir>/scoring/<LMWT>_<WIP>.tra and scores them (steps_py.score).
    Returns the best_wer line (None with skip_scoring)."""
    import glob
    from steps_py import score as scoring
    wanted = {f"{lmwt}_{wip}" for lmwt, wip in opts.pairs()}
    for stale in glob.glob(os.path.join(decode_dir, "scoring", "*.tra")) + glob.glob(os.path.join(decode_dir, "wer_*")):
        name = os.path.basename(stale)
        if name.removesuffix(".tra").removeprefix("wer_") not in wanted:
            os.unlink(stale)  # from an earlier run with another sweep: would confuse best_wer
    for lmwt, wip in opts.pairs():
        lines = []
        for job in range(1, nj + 1):
            path = os.path.join(job_dir(decode_dir, job), f"{lmwt}_{wip}.tra")
            if not os.path.exists(path):
                raise InputError(f"no such file {path}: decoding job {job} did not finish "
                                 f"(see {decode_dir}/log/decode.{job}.log)")
            lines.extend(open(path, encoding="utf-8").read().splitlines())
        with atomic_open(os.path.join(decode_dir, "scoring", f"{lmwt}_{wip}.tra")) as f:
            for line in sorted(lines, key=lambda s: s.split(" ", 1)[0].encode()):
                f.write(line + "\n")
    if skip_scoring:
        return None
    words = scoring.parse_word_list(scoring.DEFAULT_FILTER_WORDS) if filter_words is None else filter_words
    return scoring.score(data_dir, graph_dir, decode_dir, words)


def run_jobs(cmd, nj, log_pattern, argv):
    """``$cmd JOB=1:nj log_pattern python -m ...``; raises InputError naming the log when a job fails."""
    full = shlex.split(cmd) + [f"JOB=1:{nj}", log_pattern] + argv
    res = subprocess.run(full)
    if res.returncode != 0:
        raise InputError(f"decoding jobs failed; see {log_pattern}")


def decode(graph_dir, data_dir, decode_dir, opts, nj=1, cmd="run.py", model=None, config=None,
           filter_words=None, skip_scoring=False):
    """The whole of steps/decode.sh + score: split, parallel GMM decoding jobs, merge, score."""
    from steps_py.split_data import split_data
    model_dir = os.path.dirname(os.path.abspath(graph_dir.rstrip("/")))
    for f in [os.path.join(graph_dir, "HCLG.fst"), os.path.join(graph_dir, "words.txt"),
              model or os.path.join(model_dir, "final.mdl"), os.path.join(model_dir, "tree"),
              os.path.join(data_dir, "feats.scp")]:
        if not os.path.exists(f):
            raise InputError(f"no such file {f}")
    os.makedirs(os.path.join(decode_dir, "log"), exist_ok=True)
    split = split_data(data_dir, nj) if nj > 1 else None
    t0 = time.time()
    job_args = (["--config", config] if config else []) + options_to_args(opts) + \
        (["--model", model] if model else [])
    sub_data = os.path.join(split, "JOB") if split else data_dir
    run_jobs(cmd, nj, os.path.join(decode_dir, "log", "decode.JOB.log"),
             [sys.executable, "-m", "steps_py.decode", "--job", "JOB"] + job_args + [graph_dir, sub_data, decode_dir])
    log.info(f"decoded {data_dir} with {nj} jobs in {time.time() - t0:.1f} s")
    with open(os.path.join(decode_dir, "num_jobs"), "w") as f:
        f.write(f"{nj}\n")
    return merge_and_score(data_dir, graph_dir, decode_dir, nj, opts, filter_words, skip_scoring)


def run_one_job(graph_dir, data_dir, decode_dir, job, opts, model=None):
    """One decoding job on an already split data dir; skipped when its done marker is newer than its inputs."""
    model_dir = os.path.dirname(os.path.abspath(graph_dir.rstrip("/")))
    model_path = model or os.path.join(model_dir, "final.mdl")
    done = os.path.join(job_dir(decode_dir, job), "done")
    inputs = [os.path.join(graph_dir, "HCLG.fst"), model_path, os.path.join(data_dir, "feats.scp")]
    if os.path.exists(done) and all(os.path.getmtime(p) < os.path.getmtime(done) for p in inputs):
        pairs_present = all(os.path.exists(os.path.join(job_dir(decode_dir, job), f"{lmwt}_{wip}.tra"))
                            for lmwt, wip in opts.pairs())
        if pairs_present:
            log.info(f"job {job} already done ({done}); skipping")
            return
    tree = read_tree(os.path.join(model_dir, "tree"))
    trans_model, _, _ = read_model(model_path, tree)
    graph = load_graph(graph_dir, trans_model)
    produce = gmm_loglike_producer(model_dir, model_path)
    decode_job(graph, produce(data_dir), opts, decode_dir, job)


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
    from steps_py.score import parse_word_list
    filter_words = None if a.filter_words is None else parse_word_list(a.filter_words)
    best = decode(a.graph_dir, a.data_dir, a.decode_dir, opts, a.nj, a.cmd, a.model, config, filter_words,
                  a.skip_scoring)
    if best:
        print(best)


if __name__ == "__main__":
    run_main(main)
