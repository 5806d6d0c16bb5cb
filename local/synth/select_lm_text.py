#!/usr/bin/env python3
"""Usage: select_lm_text.py --vocab-size N [--output FILE] <lm-text> <kaldi-text>... [> <out-lm-text>]

A closed vocabulary for the LM, as WSJ's 5k/20k closed-vocabulary conditions: the N most frequent words of the LM
text plus every word of the given Kaldi ``text`` files (train, dev, eval prompts); the LM text keeps only the
sentences whose words all lie in it. A prompt word that only occurs in dropped sentences brings back the shortest sentence containing it
(and so a few extra words). A smaller vocabulary gives a smaller HCLG and faster decoding. Counts of kept
and dropped sentences go to the log; ``--vocab-size 0`` keeps everything.

With --output FILE the text is written to FILE (atomically) instead of stdout, and a re-run with the same inputs and
--vocab-size is skipped (stamp <dir of FILE>/.done.<name of FILE>), so FILE keeps its time stamp and what is made
from it stays up to date; so does a FILE made again with the same text (e.g. after stage 1 dropped an utterance).
"""
import argparse
import collections
import os
import sys

from steps_py.common import atomic_path, get_logger, keep_time_stamp_if_same, read_table, run_main, write_lines
from steps_py.completion import Completion, done_stamp, skip_if_done

log = get_logger("select_lm_text")


def select_sentences(sentences, vocab_size, required_words):
    """Returns (kept sentences, vocabulary set). sentences: lists of words; required_words: a set of words."""
    if vocab_size <= 0:
        return sentences, {w for s in sentences for w in s} | set(required_words)
    counts = collections.Counter(w for s in sentences for w in s)
    vocab = set(required_words)
    for word, _ in counts.most_common():
        if len(vocab) >= vocab_size:
            break
        vocab.add(word)
    kept = [s for s in sentences if all(w in vocab for w in s)]
    # A required word that no kept sentence contains would be out of the LM: add the shortest sentence holding it.
    covered = {w for s in kept for w in s}
    shortest = {}
    for s in sentences:
        for w in set(s) & (required_words - covered):
            if w not in shortest or len(s) < len(shortest[w]):
                shortest[w] = s
    for w in sorted(shortest):
        if w not in covered:
            kept.append(shortest[w])
            covered.update(shortest[w])
    return kept, covered | set(required_words)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--vocab-size", type=int, required=True)
    p.add_argument("--output", metavar="FILE", help="write the text to FILE (skipped when up to date), not stdout")
    p.add_argument("lm_text")
    p.add_argument("texts", nargs="+")
    a = p.parse_args()
    done = None
    if a.output:
        done = Completion(done_stamp(os.path.dirname(a.output) or ".", os.path.basename(a.output)),
                          [a.lm_text] + a.texts, {"vocab_size": a.vocab_size}, outputs=[a.output])
        if skip_if_done(done, a.output, log):
            return
    with open(a.lm_text, encoding="utf-8") as f:
        sentences = [line.split() for line in f if line.strip()]
    required = {w for t in a.texts for _, words in read_table(t, min_fields=1) for w in words}
    kept, vocab = select_sentences(sentences, a.vocab_size, required)
    if a.output:   # the same text as before keeps its time stamp: the dictionary made from it stays valid
        with atomic_path(a.output) as tmp:
            write_lines(tmp, (" ".join(s) for s in kept))
            keep_time_stamp_if_same(tmp, a.output)
    else:
        for s in kept:
            sys.stdout.write(" ".join(s) + "\n")
    log.info(f"vocabulary {len(vocab)} words ({len(required)} from {', '.join(a.texts)}); kept {len(kept)} of "
             f"{len(sentences)} LM sentences ({len(sentences) - len(kept)} dropped for words outside the vocabulary)")
    if done:
        done.finish()


if __name__ == "__main__":
    run_main(main)
