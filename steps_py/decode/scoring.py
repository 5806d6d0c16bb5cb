"""Scoring of decodes, as Kaldi's steps/scoring/score_kaldi_wer.sh and utils/best_wer.sh: integer hypotheses
<decode-dir>/scoring/<LMWT>_<WIP>.tra against <data-dir>/text, with the filtered words (default: Kaldi's WSJ filter,
<NOISE> and <SPOKEN_NOISE>) removed from both, into compute-wer's lines:

  %WER 16.42 [ 1352 / 8234, 145 ins, 187 del, 1020 sub ]
  %SER 56.02 [ 279 / 498 ]
  Scored 498 sentences, 0 not present in hyp.

and the best of a decode dir's wer files, for RESULTS (the steps: steps_py.decode.score, steps_py.decode.best_wer).
"""
import glob
import os
import re

import kaldialign
import numpy as np

from steps_py.common import InputError, atomic_open, get_logger, require_files, write_lines
from steps_py.data.datadir import c_sorted, read_map
from steps_py.kaldi.symbols import read_symbol_table

log = get_logger("decode.scoring")

DEFAULT_FILTER_WORDS = "<NOISE>,<SPOKEN_NOISE>"
TRA_RE = re.compile(r"^(\d+)_(\d+(?:\.\d+)?)\.tra$")


def parse_word_list(text):
    """Words of a comma- or space-separated list (``<NOISE>,<SPOKEN_NOISE>``)."""
    return [w for w in re.split(r"[,\s]+", text) if w]


def filter_words(words, drop):
    """``words`` without the words in the set ``drop`` (Kaldi's wer_ref_filter / wer_hyp_filter)."""
    return [w for w in words if w not in drop]


def error_counts(refs, hyps):
    """Edit-distance statistics of hypotheses against references (compute-wer --mode=present).

    ``refs``, ``hyps``: {utt: [words]}. Utterances missing from ``hyps`` are not scored. Returns a dict with
    ``ins``, ``del``, ``sub``, ``errors``, ``ref_words``, ``sentences``, ``sentence_errors``, ``missing``.
    """
    out = dict.fromkeys(("ins", "del", "sub", "errors", "ref_words", "sentences", "sentence_errors", "missing"), 0)
    for utt, ref in refs.items():
        if utt not in hyps:
            out["missing"] += 1
            continue
        d = kaldialign.edit_distance(ref, hyps[utt])
        out["ins"] += d["ins"]
        out["del"] += d["del"]
        out["sub"] += d["sub"]
        out["errors"] += d["total"]
        out["ref_words"] += len(ref)
        out["sentences"] += 1
        out["sentence_errors"] += d["total"] > 0
    return out


def utterance_errors(refs, hyps):
    """{utt: (errors, reference words)} of the utterances of ``refs`` that ``hyps`` has (compute-wer
    --mode=present), errors = insertions + deletions + substitutions of the word alignment."""
    return {u: (kaldialign.edit_distance(ref, hyps[u])["total"], len(ref)) for u, ref in refs.items() if u in hyps}


def bootstrap_interval(systems, statistic, num_samples=2000, seed=0):
    """Percentile bootstrap over utterances and, where a system has several, seeds (Bisani and Ney 2004, with the
    training runs as a second level) -> (value, lower, upper) of the 95% interval (2.5 and 97.5 percentiles).

    systems: one array [S, U, ...] per system: S seeds (training runs; 1 for a single model) by the same U
        utterances for every system, any trailing dims (e.g. errors and words).
    statistic(list of arrays [S', U, ...]) -> float: e.g. the difference of two systems' means. Each resampling
        draws U utterances with replacement, the same draw for every system (paired), and each system's S seeds
        with replacement (independent systems); value is the statistic of the data as it is.
    """
    arrays = [np.asarray(a, np.float64) for a in systems]
    num_utts = {a.shape[1] for a in arrays}
    if len(num_utts) != 1 or any(a.shape[0] < 1 for a in arrays) or 0 in num_utts:
        raise ValueError(f"need [seeds, utterances, ...] arrays over the same utterances, got shapes "
                         f"{[a.shape for a in arrays]}")
    U = num_utts.pop()
    rng = np.random.default_rng(seed)
    stats = np.empty(num_samples)
    for b in range(num_samples):
        utts = rng.integers(0, U, U)
        stats[b] = statistic([a[rng.integers(0, len(a), len(a))][:, utts] if len(a) > 1 else a[:, utts]
                              for a in arrays])
    lo, hi = np.nanpercentile(stats, [2.5, 97.5])
    return float(statistic(arrays)), float(lo), float(hi)


def pooled_wer(errors_words):
    """WER (%) of an array [..., 2] of (errors, reference words), pooled over everything but the last dim (seeds
    and utterances: the mean over seeds of equal reference sets)."""
    return 100.0 * float(errors_words[..., 0].sum()) / float(errors_words[..., 1].sum())


def _errors_words(errors, words):
    """errors [U] or [S, U] (S seeds) and words [U] -> array [S, U, 2] of (errors, words)."""
    n = np.asarray(words, np.float64)
    e = np.atleast_2d(np.asarray(errors, np.float64))
    if e.ndim != 2 or e.shape[1] != n.size or n.sum() <= 0:
        raise ValueError(f"need errors of {n.size} utterances with words, got shape {e.shape}")
    return np.stack([e, np.broadcast_to(n, e.shape)], axis=-1)


def bootstrap_wer(errors, words, num_samples=10000, seed=0):
    """Kaldi's compute-wer-bootci: the WER (%) of utterances with ``errors`` [U] (or [S, U] for S seeds) and
    reference ``words`` [U], recomputed on ``num_samples`` resamplings of the utterances (and seeds) with
    replacement -> (WER, lower, upper) of the 95% interval."""
    return bootstrap_interval([_errors_words(errors, words)], lambda a: pooled_wer(a[0]), num_samples, seed)


def bootstrap_wer_difference(errors_a, errors_b, words, num_samples=10000, seed=0):
    """The paired interval of WER(a) - WER(b) (%), two systems on the same utterances (errors [U] or [S, U] each,
    words [U]) -> (difference, lower, upper)."""
    return bootstrap_interval([_errors_words(errors_a, words), _errors_words(errors_b, words)],
                              lambda a: pooled_wer(a[0]) - pooled_wer(a[1]), num_samples, seed)


def wer_lines(c):
    """compute-wer's output lines for the counts of ``error_counts``."""
    wer = 100.0 * c["errors"] / c["ref_words"] if c["ref_words"] else (0.0 if c["errors"] == 0 else float("inf"))
    ser = 100.0 * c["sentence_errors"] / c["sentences"] if c["sentences"] else 0.0
    return [f"%WER {wer:.2f} [ {c['errors']} / {c['ref_words']}, {c['ins']} ins, {c['del']} del, {c['sub']} sub ]",
            f"%SER {ser:.2f} [ {c['sentence_errors']} / {c['sentences']} ]",
            f"Scored {c['sentences']} sentences, {c['missing']} not present in hyp."]


def read_tra(path, id2word):
    """{utt: [words]} from an integer transcription file (``utt id id ...``; an utterance may have no words)."""
    out = {}
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            fields = line.split()
            if not fields:
                raise InputError(f"{path}:{n}: empty line")
            try:
                out[fields[0]] = [id2word[int(i)] for i in fields[1:]]
            except (KeyError, ValueError):
                raise InputError(f"{path}:{n}: word id not in words.txt: {line.strip()!r}") from None
    return out


def tra_files(decode_dir):
    """{(lmwt, wip string): path} of <decode-dir>/scoring/<LMWT>_<WIP>.tra."""
    out = {}
    for path in glob.glob(os.path.join(decode_dir, "scoring", "*.tra")):
        m = TRA_RE.match(os.path.basename(path))
        if m:
            out[(int(m.group(1)), m.group(2))] = path
    return out


def parse_wer_file(path):
    """(wer %, the %WER line) of a wer_* file, or None if it has no %WER line."""
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.startswith("%WER"):
                return float(line.split()[1]), line.strip()
    return None


def best_wer_line(paths):
    """utils/best_wer.sh: the %WER line with the lowest WER followed by its file name (ties: first in C order)."""
    best = None
    for path in c_sorted(paths):
        parsed = parse_wer_file(path)
        if parsed and (best is None or parsed[0] < best[0]):
            best = (parsed[0], f"{parsed[1]} {path}")
    return None if best is None else best[1]


def score(data_dir, graph_dir, decode_dir, drop_words=None):
    """Writes <decode-dir>/wer_<LMWT>_<WIP> for every .tra of <decode-dir>/scoring, the filtered references and
    hypotheses in <decode-dir>/scoring_kaldi/ and its best_wer; returns the best_wer line. ``drop_words``: the
    words removed from both (None: DEFAULT_FILTER_WORDS)."""
    text_path = os.path.join(data_dir, "text")
    words_path = os.path.join(graph_dir, "words.txt")
    require_files(text_path, words_path)
    tras = tra_files(decode_dir)
    if not tras:
        raise InputError(f"no <LMWT>_<WIP>.tra files in {decode_dir}/scoring")
    drop = set(parse_word_list(DEFAULT_FILTER_WORDS) if drop_words is None else drop_words)
    refs = {u: filter_words(t.split(), drop) for u, t in read_map(text_path, allow_empty_value=True).items()}
    sdir = os.path.join(decode_dir, "scoring_kaldi")
    write_lines(os.path.join(sdir, "test_filt.txt"), [f"{u} {' '.join(refs[u])}".rstrip() for u in c_sorted(refs)])
    id2word = read_symbol_table(words_path, by_id=True)
    wer_paths = []
    for (lmwt, wip), path in sorted(tras.items(), key=lambda kv: (float(kv[0][1]), kv[0][0])):
        hyps = {u: filter_words(ws, drop) for u, ws in read_tra(path, id2word).items()}
        extra = set(hyps) - set(refs)
        if extra:
            raise InputError(f"{path}: {len(extra)} utterances not in {text_path}, e.g. {sorted(extra)[0]}")
        write_lines(os.path.join(sdir, f"penalty_{wip}", f"{lmwt}.txt"),
                    [f"{u} {' '.join(hyps[u])}".rstrip() for u in c_sorted(hyps)])
        counts = error_counts(refs, hyps)
        wer_path = os.path.join(decode_dir, f"wer_{lmwt}_{wip}")
        write_lines(wer_path, wer_lines(counts))
        wer_paths.append(wer_path)
        if counts["missing"]:
            log.warning(f"{path}: {counts['missing']} of {len(refs)} utterances have no hypothesis")
    best = best_wer_line(wer_paths)
    with atomic_open(os.path.join(sdir, "best_wer")) as f:
        f.write(best + "\n")
    log.info(best)
    return best


def best_for_dir(decode_dir):
    """The best_wer line of a decode dir's wer_* files (InputError if it has none)."""
    paths = [p for p in glob.glob(os.path.join(decode_dir, "wer_*")) if os.path.isfile(p)]
    line = best_wer_line(paths) if paths else None
    if line is None:
        raise InputError(f"no wer_* files with a %WER line in {decode_dir}")
    return line


def best_wer(decode_dir):
    """(WER %, best_wer line) of a decode dir's wer_* files, or (None, None) when it has none (or is missing)."""
    try:
        line = best_for_dir(decode_dir)
    except InputError:
        return None, None
    return float(line.split()[1]), line


def _line_dir(line):
    """The decode dir a %WER line names (by its wer file)."""
    return os.path.normpath(os.path.dirname(line.split()[-1]))


def merged_results(old_lines, lines):
    """The lines of a RESULTS file ``old_lines`` with the %WER ``lines`` added: a new line takes the place of the
    (first) old %WER line of the same decode dir, so the order of the file stays that of the first run; lines of
    decode dirs not there yet are appended."""
    new_of = {_line_dir(line): line for line in lines}
    out, placed = [], set()
    for old in old_lines:
        d = _line_dir(old) if old.startswith("%WER") else None
        if d in new_of:
            if d not in placed:
                out.append(new_of[d])
                placed.add(d)
            continue
        out.append(old)
    return out + [line for line in lines if _line_dir(line) not in placed]


def append_results(results_path, lines):
    """Adds ``lines`` to ``results_path`` (merged_results); the file is not rewritten when that changes nothing, so
    a re-run of finished decodes leaves RESULTS as it was, time stamp included."""
    old = []
    if os.path.exists(results_path):
        with open(results_path, encoding="utf-8") as f:
            old = f.read().splitlines()
    new = merged_results(old, list(lines))
    if new == old:
        return
    with atomic_open(results_path) as f:
        for line in new:
            f.write(line + "\n")


def best_hypotheses(decode_dir):
    """The filtered references and the hypotheses of a decode dir's best LM weight and penalty (its best_wer line)
    -> ({utt: [words]}, {utt: [words]}), from scoring_kaldi/test_filt.txt and scoring_kaldi/penalty_<WIP>/<LMWT>.txt
    as score writes them."""
    line = best_for_dir(decode_dir)
    m = re.search(r"wer_(\d+)_([\d.]+)$", line.split()[-1])
    if not m:
        raise InputError(f"{decode_dir}: cannot tell LMWT and WIP from {line!r}")
    sdir = os.path.join(decode_dir, "scoring_kaldi")
    paths = os.path.join(sdir, "test_filt.txt"), os.path.join(sdir, f"penalty_{m.group(2)}", f"{m.group(1)}.txt")
    require_files(*paths)
    return tuple({u: t.split() for u, t in read_map(p, allow_empty_value=True).items()} for p in paths)


def best_utterance_errors(decode_dir):
    """{utt: (errors, reference words)} of a decode dir's best LM weight and penalty (best_hypotheses), or None when
    it has no wer files."""
    if best_wer(decode_dir)[0] is None:
        return None
    return utterance_errors(*best_hypotheses(decode_dir))


def stack_errors(runs, utts=None):
    """The per-utterance errors of one system's runs ([{utt: (errors, words)}], one per seed) on the utterances all
    of them have (and ``utts``, when given), sorted -> (utts, array [S, U, 2] of (errors, words)); None for no run."""
    runs = [r for r in runs if r]
    if not runs:
        return None
    common = set(runs[0]).intersection(*runs[1:])
    if utts is not None:
        common &= set(utts)
    order = sorted(common)
    return order, np.array([[e[u] for u in order] for e in runs], dtype=np.float64)
