"""Usage: python -m steps_py.lang.train_lm [options] <lm-text> <lexicon.txt> <lm-dir>

Trains a back-off (not interpolated) Kneser-Ney n-gram LM (SRILM's ``ngram-count -ukndiscount
-kn-modify-counts-at-end -gtNmin 0``, with kaldingram) on <lm-text> (one sentence per line, no utterance ids).
Words of the text that are not in the lexicon become the unknown word (--unk-word, default <UNK>); they are
counted and logged. Writes <lm-dir>/lm_tg.arpa.gz (the full model, whatever --order is) and
<lm-dir>/lm_tgpr.arpa.gz, pruned with relative-entropy pruning (Stolcke 1998, SRILM's ``-prune``) at
--prune-threshold. With --dev-text (a Kaldi ``text`` file) logs the OOV rate and the perplexity of both models on
it and writes <lm-dir>/perplexity.txt.

Perplexity follows SRILM's ``ngram -ppl``: out-of-vocabulary tokens (not in the lexicon, or never seen in the LM
text) are not scored and are left out of the history; ppl counts one </s> per sentence, ppl1 does not.

A re-run with the same texts, lexicon and options is skipped (stamp <lm-dir>/.done.train_lm).

e.g.: python -m steps_py.lang.train_lm --order 3 --prune-threshold 1e-7 --dev-text data/dev/text \\
        data/local/lm_text.txt data/local/dict/lexicon.txt data/local/lm
"""
import argparse
import functools
import gc
import gzip
import io
import math
import os
import sys

import kaldingram.prune
import kaldingram.train
import tqdm
from kaldingram.prune import Arpa, ArpaParser, prune
from kaldingram.train import NgramCounts

from steps_py.common import InputError, atomic_path, get_logger, open_input, read_table, run_main, write_lines
from steps_py.completion import Completion, done_stamp, settings_of, skip_if_done
from steps_py.lang.lexicon import map_oovs_to_unk

# kaldingram draws tqdm bars in all its loops: show them only when common.progress would (a terminal, or
# KALDI_PY_PROGRESS=1), so that logs stay clean.
_SHOW_PROGRESS = os.environ.get("KALDI_PY_PROGRESS", "1" if sys.stderr.isatty() else "0") == "1"
kaldingram.train.tqdm = kaldingram.prune.tqdm = functools.partial(tqdm.tqdm, disable=not _SHOW_PROGRESS)

log = get_logger("lang.train_lm")

BOS, EOS = "<s>", "</s>"


def read_sentences(path, vocab, unk_word):
    """Sentences of <lm-text> as lists of words, with words not in ``vocab`` replaced by ``unk_word``.

    Returns ``(sentences, replaced, num_empty)``: ``replaced`` is ``{word: count}``; empty lines are skipped and
    counted. Raises InputError naming the file and line for ``<s>`` or ``</s>`` in the text.
    """
    sentences, rows, num_empty = [], [], 0
    with open_input(path) as f:
        for n, line in enumerate(f, 1):
            words = line.split()
            if not words:
                num_empty += 1
                continue
            for w in words:
                if w in (BOS, EOS):
                    raise InputError(f"{path}:{n}: {w} must not appear in the LM text")
            rows.append((n, words))
    rows, replaced = map_oovs_to_unk(rows, vocab, unk_word)
    sentences = [words for _, words in rows]
    return sentences, replaced, num_empty


def train_kn(sentences, order):
    """A Kneser-Ney back-off LM of the given order: returns ``(arpa_text, lm)``, the ARPA text (log10
    probabilities, 7 decimals) and the same model as a kaldingram ``Arpa`` object (``lm._ngrams[len(h)][h][w]``).

    kaldingram counts only the first word of each line when it reads a file with order 1, so lines are fed one
    by one here; for order 1 the count of <s> is also removed so that P(<s>) = 0 (-99 in the ARPA file), as SRILM
    writes it.
    """
    counts = NgramCounts(order, bos_symbol=BOS, eos_symbol=EOS)
    for words in sentences:
        counts.add_raw_counts_from_line(" ".join(words))
    if order == 1:
        unigrams = counts.counts[0][()]
        unigrams.total_count -= unigrams.word_to_count.get(BOS, 0)
        unigrams.word_to_count[BOS] = 0
    counts.cal_discounting_constants()
    counts.cal_f()
    counts.cal_bow()
    buf = io.StringIO()
    counts.print_as_arpa(fout=buf)
    lm = Arpa()
    for n in range(order):
        lm.add_count(n + 1, 0)
    for n in range(order):
        higher = lm._ngrams[n + 1] if n + 1 < order else None
        this = lm._ngrams[n]
        for hist, cfh in counts.counts[n].items():
            context = this[hist]
            for w in cfh.word_to_count:
                f = cfh.word_to_f[w]
                context[w] = round(math.log10(f), 7) if f > 0 else -99.0
                bow = cfh.word_to_bow[w]
                if bow is not None:
                    higher[hist + (w,)].log_bo = round(math.log10(bow), 7)
    lm._vocabulary.update(counts.counts[0][()].word_to_count)
    lm.update_counts()
    return buf.getvalue(), lm


def parse_arpa(text):
    """An ARPA text as a kaldingram ``Arpa`` model (``_ngrams[len(h)][h][w] = log10 p``)."""
    models = ArpaParser().loads(text)
    if not models:
        raise InputError("no \\data\\ section in the ARPA text")
    return models[0]


def arpa_counts(lm):
    """``[(order, number of n-grams)]`` of an ``Arpa`` model."""
    return [(o, sum(len(ws) for ws in lm._ngrams[o - 1].values())) for o in range(1, lm.order() + 1)]


def perplexity(lm, sentences):
    """SRILM-style perplexity of an ``Arpa`` model on ``[[words]]``.

    Tokens not in the model's vocabulary are OOVs: not scored, and the history restarts after them. Returns a dict
    with sentences, words, oovs, logprob (log10), ppl (denominator: scored words + sentences) and ppl1 (scored
    words only).
    """
    vocab = lm._vocabulary
    n_hist = lm.order() - 1
    logprob, num_words, num_oov = 0.0, 0, 0
    for words in sentences:
        hist = [BOS]
        for w in words + [EOS]:
            if w != EOS:
                num_words += 1
            if w not in vocab:
                num_oov += 1
                hist = []
                continue
            ngram = tuple(hist[len(hist) - n_hist:] if n_hist else []) + (w,)
            logprob += lm.log_p_raw(ngram)
            hist.append(w)
    scored = num_words - num_oov
    denom = scored + len(sentences)
    return {"sentences": len(sentences), "words": num_words, "oovs": num_oov, "logprob": logprob,
            "ppl": 10 ** (-logprob / denom) if denom else math.inf,
            "ppl1": 10 ** (-logprob / scored) if scored else math.inf}


def dev_perplexity(lm, rows, vocab, unk_word):
    """Perplexity on Kaldi text rows ``[(utt, [words])]``; words not in the lexicon ``vocab`` (and ``unk_word``
    itself) are OOVs, never scored as ``unk_word``. Adds ``lexicon_oovs`` and ``oov_rate`` (%) to the stats."""
    mapped, replaced = map_oovs_to_unk(rows, vocab - {unk_word}, None)
    stats = perplexity(lm, [words for _, words in mapped])
    stats["lexicon_oovs"] = sum(replaced.values())
    stats["oov_rate"] = 100.0 * stats["lexicon_oovs"] / max(stats["words"], 1)
    return stats


def write_arpa_gz(path, text):
    """Writes ARPA text gzipped, atomically."""
    with atomic_path(path) as tmp:
        with gzip.open(tmp, "wt", encoding="utf-8", compresslevel=6) as f:
            f.write(text)


def train_lm(lm_text, lexicon, lm_dir, order=3, prune_threshold=1e-7, dev_text=None, unk_word="<UNK>"):
    """Trains, prunes and evaluates; returns ``{"tg": stats, "tgpr": stats}`` (stats empty without dev text)."""
    if order < 1:
        raise InputError(f"--order must be at least 1, got {order}")
    vocab = {w for w, _ in read_table(lexicon, min_fields=2)}
    if unk_word not in vocab:
        raise InputError(f"{lexicon}: the unknown word {unk_word!r} has no entry")
    sentences, replaced, num_empty = read_sentences(lm_text, vocab, unk_word)
    if not sentences:
        raise InputError(f"{lm_text}: no sentences")
    tokens = sum(len(s) for s in sentences)
    n_unk = sum(replaced.values())
    log.info(f"{lm_text}: {len(sentences)} sentences, {tokens} words"
             + (f", {num_empty} empty lines skipped" if num_empty else ""))
    if replaced:
        top = ", ".join(f"{w} ({c})" for w, c in sorted(replaced.items(), key=lambda kv: -kv[1])[:10])
        log.warning(f"{lm_text}: {n_unk} of {tokens} words ({100.0 * n_unk / tokens:.2f}%, {len(replaced)} distinct) "
                    f"are not in {lexicon} and were replaced by {unk_word} (most frequent: {top})")

    gc_was_enabled = gc.isenabled()
    gc.disable()  # millions of small dicts and tuples without cycles: the cyclic GC only costs time here
    try:
        arpa, lm = train_kn(sentences, order)
        full_counts = arpa_counts(lm)
        log.info(f"{order}-gram: " + ", ".join(f"{n} {o}-grams" for o, n in full_counts))
        os.makedirs(lm_dir, exist_ok=True)
        write_arpa_gz(os.path.join(lm_dir, "lm_tg.arpa.gz"), arpa)
        del arpa
        dev_rows = read_table(dev_text, min_fields=1) if dev_text else None
        results = {"tg": {}, "tgpr": {}}
        if dev_text:
            results["tg"] = dev_perplexity(lm, dev_rows, vocab, unk_word)
        prune(lm, prune_threshold, 1)
        pruned_counts = arpa_counts(lm)
        write_arpa_gz(os.path.join(lm_dir, "lm_tgpr.arpa.gz"), ArpaParser().dumps(lm).lstrip("\n"))
        kept = sum(n for _, n in pruned_counts) / max(sum(n for _, n in full_counts), 1)
        log.info(f"pruned at {prune_threshold:g}: " + ", ".join(f"{n} {o}-grams" for o, n in pruned_counts)
                 + f" ({100.0 * kept:.1f}% of the n-grams kept)")
        if dev_text:
            results["tgpr"] = dev_perplexity(lm, dev_rows, vocab, unk_word)
    finally:
        if gc_was_enabled:
            gc.enable()

    report = [f"# lm text {lm_text}: {len(sentences)} sentences, {tokens} words, {n_unk} replaced by {unk_word}",
              f"# lm_tg: {order}-gram, " + " ".join(f"ngram {o}={n}" for o, n in full_counts),
              f"# lm_tgpr: pruned at {prune_threshold:g}, " + " ".join(f"ngram {o}={n}" for o, n in pruned_counts)]
    if dev_text:
        st = results["tg"]
        log.info(f"{dev_text}: {st['sentences']} sentences, {st['words']} words, {st['lexicon_oovs']} not in the "
                 f"lexicon (OOV rate {st['oov_rate']:.2f}%)")
        report.append(f"# dev text {dev_text}: {st['sentences']} sentences, {st['words']} words, "
                      f"{st['lexicon_oovs']} OOV (not in lexicon), OOV rate {st['oov_rate']:.2f}%; OOVs below also "
                      "count words never seen in the LM text; OOVs are not scored")
        for name in ("tg", "tgpr"):
            st = results[name]
            line = (f"lm_{name}: {st['sentences']} sentences, {st['words']} words, {st['oovs']} OOVs, "
                    f"logprob= {st['logprob']:.2f} ppl= {st['ppl']:.2f} ppl1= {st['ppl1']:.2f}")
            log.info(f"{dev_text}: {line}")
            report.append(line)
    else:
        report.append("# no --dev-text given: no perplexity")
    write_lines(os.path.join(lm_dir, "perplexity.txt"), report)
    return results


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--order", type=int, default=3, help="n-gram order (default: 3)")
    p.add_argument("--prune-threshold", type=float, default=1e-7,
                   help="relative-entropy pruning threshold of lm_tgpr (SRILM -prune; default: 1e-7)")
    p.add_argument("--dev-text", metavar="FILE", help="Kaldi text file for OOV rate and perplexity")
    p.add_argument("--unk-word", default="<UNK>", help="word replacing words not in the lexicon (default: <UNK>)")
    p.add_argument("lm_text")
    p.add_argument("lexicon")
    p.add_argument("lm_dir")
    a = p.parse_args()
    outputs = [os.path.join(a.lm_dir, f) for f in ("lm_tg.arpa.gz", "lm_tgpr.arpa.gz", "perplexity.txt")]
    done = Completion(done_stamp(a.lm_dir, "train_lm"), [a.lm_text, a.lexicon] + ([a.dev_text] if a.dev_text else []),
                      settings_of(a), outputs)
    if skip_if_done(done, a.lm_dir, log):
        return
    train_lm(a.lm_text, a.lexicon, a.lm_dir, a.order, a.prune_threshold, a.dev_text, a.unk_word)
    done.finish()


if __name__ == "__main__":
    run_main(main)
