"""The parts of a decoding step shared by the GMM and the hybrid NN decodes (Kaldi's steps/decode.sh and
steps/nnet3/decode.sh): the decoder options on the command line, the graph, one job's decoding of (utt,
log-likelihoods [T, num_pdfs]) pairs into <decode-dir>/scoring/job.JOB/<LMWT>_<WIP>.tra, the split -> jobs -> merge
-> score driver, and the checks that let a re-run skip a finished decode (its stamp <decode-dir>/.done.decode: the
step, its options and the signatures of the graph, model and data it decoded) or the finished jobs of a killed one.
"""
import glob
import os
import time

from steps_py.common import InputError, atomic_open, get_logger, progress, require_files
from steps_py.completion import WHERE_SETTINGS, Completion, done_stamp, settings_of, skip_if_done
from steps_py.data.datadir import c_sorted, data_dir_inputs, read_map, split_data
from steps_py.decode import scoring, search
from steps_py.jobs import run_jobs
from steps_py.kaldi.fst_io import read_fst

log = get_logger("decode.driver")

FRAME_SHIFT = 0.01  # seconds per frame, for the real-time factor


def add_decode_options(p):
    """The decoder and LM-weight sweep options (DecodeOptions) on an argparse parser."""
    d = search.DecodeOptions()
    p.add_argument("--method", choices=["lattice", "lattice-faster", "bestpath"], default=d.method,
                   help="lattice: one LatticeSimpleDecoder run + sweep over its raw lattice; lattice-faster: the "
                        "same with our decoder, which bounds its active states (--max-active); bestpath: one "
                        f"FasterDecoder run per (LMWT, WIP) (default: {d.method})")
    p.add_argument("--acwt", type=float, default=d.acwt, help=f"acoustic scale of the lattice decode ({d.acwt})")
    p.add_argument("--beam", type=float, default=d.beam, help=f"decoding beam ({d.beam})")
    p.add_argument("--lattice-beam", type=float, default=d.lattice_beam, help=f"lattice beam ({d.lattice_beam})")
    p.add_argument("--max-active", type=int, default=d.max_active, help=f"bestpath, lattice-faster: max active states "
                   f"({d.max_active})")
    p.add_argument("--min-active", type=int, default=d.min_active, help=f"bestpath, lattice-faster: min active states "
                   f"({d.min_active})")
    p.add_argument("--min-lmwt", type=int, default=d.min_lmwt, help=f"smallest LM weight scored ({d.min_lmwt})")
    p.add_argument("--max-lmwt", type=int, default=d.max_lmwt, help=f"largest LM weight scored ({d.max_lmwt})")
    p.add_argument("--lmwt-step", type=int, default=d.lmwt_step, help=f"step between LM weights ({d.lmwt_step})")
    p.add_argument("--word-ins-penalty", default=",".join(str(w) for w in d.word_ins_penalties),
                   help="comma-separated word insertion penalties (default: 0.0,0.5,1.0)")


def decode_options(a):
    """DecodeOptions from parsed add_decode_options arguments (InputError for a bad sweep)."""
    wips = tuple(float(w) for w in a.word_ins_penalty.split(",") if w.strip())
    if a.min_lmwt < 1 or a.max_lmwt < a.min_lmwt or a.lmwt_step < 1 or not wips:
        raise InputError(f"bad sweep: LMWT {a.min_lmwt}..{a.max_lmwt}, WIP {a.word_ins_penalty!r}")
    return search.DecodeOptions(method=a.method, acwt=a.acwt, beam=a.beam, lattice_beam=a.lattice_beam,
                                  max_active=a.max_active, min_active=a.min_active, min_lmwt=a.min_lmwt,
                                  max_lmwt=a.max_lmwt, lmwt_step=a.lmwt_step,
                                  word_ins_penalties=wips)


def options_to_args(opts):
    """DecodeOptions as the command-line words that add_decode_options parses (for the jobs)."""
    return ["--method", opts.method, "--acwt", repr(opts.acwt), "--beam", repr(opts.beam),
            "--lattice-beam", repr(opts.lattice_beam), "--max-active", str(opts.max_active),
            "--min-active", str(opts.min_active), "--min-lmwt", str(opts.min_lmwt), "--max-lmwt", str(opts.max_lmwt),
            "--lmwt-step", str(opts.lmwt_step),
            "--word-ins-penalty", ",".join(repr(float(w)) for w in opts.word_ins_penalties)]


def load_graph(graph_dir, trans_model):
    """search.DecodingGraph of <graph-dir>/HCLG.fst with the model's transition-id -> pdf map; checked against
    <graph-dir>/num_pdfs."""
    path = os.path.join(graph_dir, "HCLG.fst")
    require_files(path)
    graph = search.DecodingGraph.from_trans_model(read_fst(path), trans_model, path)   # a Kaldi ConstFst too
    num_pdfs_file = os.path.join(graph_dir, "num_pdfs")
    if os.path.exists(num_pdfs_file):
        with open(num_pdfs_file) as f:
            num_pdfs = f.read().strip()
        if int(num_pdfs) != graph.num_pdfs:
            raise InputError(f"{num_pdfs_file} says {num_pdfs} pdfs, the model has {graph.num_pdfs}: graph and "
                             "model do not match")
    return graph


def job_dir(decode_dir, job):
    """<decode-dir>/scoring/job.JOB: one job's hypotheses."""
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
            words, info = search.decode_sweep(graph, loglikes, opts)
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
    """Merges the jobs' .tra files into <decode-dir>/scoring/<LMWT>_<WIP>.tra and scores them (steps_py.decode.score).
    Returns the best_wer line (None with skip_scoring)."""
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
            for line in sorted(lines, key=lambda s: s.split(None, 1)[0].encode()):
                f.write(line + "\n")
    if skip_scoring:
        return None
    return scoring.score(data_dir, graph_dir, decode_dir, filter_words)


def filter_words(args):
    """The words a decoding step's --filter-words removes before scoring, None for the default filter."""
    return None if args.filter_words is None else scoring.parse_word_list(args.filter_words)


def job_is_done(decode_dir, job, opts, inputs, outputs=()):
    """True when job ``job`` finished after every file of ``inputs`` changed: its done marker is newer than them
    and its .tra files of every (LMWT, WIP) pair and ``outputs`` exist."""
    done = os.path.join(job_dir(decode_dir, job), "done")
    if not os.path.exists(done) or any(os.path.getmtime(p) >= os.path.getmtime(done) for p in inputs):
        return False
    tras = [os.path.join(job_dir(decode_dir, job), f"{lmwt}_{wip}.tra") for lmwt, wip in opts.pairs()]
    return all(os.path.exists(p) for p in tras + list(outputs))


def decode_completion(step, args, inputs, skip_scoring=False, outputs=()):
    """The Completion of decoding step ``step`` (e.g. "decode.decode") with parsed options ``args`` (every one
    but completion.WHERE_SETTINGS and --job counts) into args.decode_dir: ``inputs`` (the model's files) plus the
    graph's HCLG.fst
    and words.txt and the data dir's tables; done when num_jobs, ``outputs`` and, unless ``skip_scoring``, the
    best_wer of scoring_kaldi/ exist."""
    d = args.decode_dir
    inputs = [os.path.join(args.graph_dir, "HCLG.fst"), os.path.join(args.graph_dir, "words.txt")] + \
        list(inputs) + data_dir_inputs(args.data_dir)
    outputs = [os.path.join(d, "num_jobs")] + list(outputs) + \
        ([] if skip_scoring else [os.path.join(d, "scoring_kaldi", "best_wer")])
    settings = dict(settings_of(args, ignore=WHERE_SETTINGS + ("job",)), step=step)
    return Completion(done_stamp(d, "decode"), inputs, settings, outputs)


def skip_finished_decode(done):
    """True when the decode of Completion ``done`` is finished and up to date (logged as skipped). A decode that
    had finished with other inputs or options loses its jobs' done markers, so that every job runs again; the
    jobs of a killed decode (no stamp) keep theirs and are not redone."""
    decode_dir = os.path.dirname(done.stamp)
    if skip_if_done(done, decode_dir, log):
        return True
    if done.finished_before:
        for marker in glob.glob(os.path.join(decode_dir, "scoring", "job.*", "done")):
            os.unlink(marker)
    return False


def decode_in_jobs(data_dir, graph_dir, decode_dir, opts, nj, cmd, job_argv, filter_words=None, skip_scoring=False):
    """Splits data_dir into ``nj`` parts (at most one per utterance), runs ``job_argv(<split>/JOB)`` (the command of
    one job on its part) through ``cmd`` with logs in <decode-dir>/log/decode.JOB.log, writes num_jobs, merges and
    scores the hypotheses. Returns (the best %WER line or None with skip_scoring, number of jobs run)."""
    require_files(os.path.join(graph_dir, "HCLG.fst"), os.path.join(graph_dir, "words.txt"),
                  os.path.join(data_dir, "feats.scp"))
    os.makedirs(os.path.join(decode_dir, "log"), exist_ok=True)
    nj = max(1, min(nj, len(read_map(os.path.join(data_dir, "feats.scp")))))
    sub_data = os.path.join(split_data(data_dir, nj), "JOB") if nj > 1 else data_dir
    seconds = run_jobs(cmd, nj, os.path.join(decode_dir, "log", "decode.JOB.log"), job_argv(sub_data),
                       what="decoding jobs")
    log.info(f"decoded {data_dir} with {nj} jobs in {seconds:.1f} s")
    with atomic_open(os.path.join(decode_dir, "num_jobs")) as f:
        f.write(f"{nj}\n")
    return merge_and_score(data_dir, graph_dir, decode_dir, nj, opts, filter_words, skip_scoring), nj
