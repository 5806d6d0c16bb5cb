"""Usage: python local/wsj_format_lms.py [--prune-threshold 1e-7] [--bigram NAME] [--trigram NAME] <wsj1-dir> <lm-dir>

Copies the language models shipped with WSJ1 (disc 13-32.1, wsj1/doc/lng_modl/base_lm/) into <lm-dir>, as Kaldi's
local/wsj_data_prep.sh does:
  bcb20onp.z -> lm_bg.arpa.gz    (bigram, 20k open vocabulary with <UNK>, non-verbalised punctuation)
  tcb20onp.z -> lm_tg.arpa.gz    (trigram, same vocabulary)
  lm_tg pruned -> lm_tgpr.arpa.gz (Stolcke entropy pruning at --prune-threshold, as SRILM's ngram -prune)
and writes <lm-dir>/vocab.txt (the LM's words, one per line, without <s> and </s>).

The .z files are Unix `compress` (LZW) files; they are read with `gzip -dc`, which decodes that format. The text
before the \\data\\ line (a free-form header) is dropped, and n-gram lines are rewritten with tab separators.
Kaldi prunes with IRSTLM's prune-lm --threshold=1e-7, a different criterion: the tgpr made here has a different
size from Kaldi's (compare with `zcat lm_tgpr.arpa.gz | head`). Outputs that exist are kept (delete them to redo).
"""
import argparse
import gzip
import os
import re
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from steps_py.common import InputError, atomic_path, get_logger, run_main  # noqa: E402

log = get_logger("wsj_format_lms")

BASE_LM_DIR = "wsj1/doc/lng_modl/base_lm"
DISC_RE = re.compile(r"^\d\d-\d{1,2}\.\d$")


def find_discs(corpus_dir, corpus_name):
    """{disc name (e.g. '13-34.1'): path} of the LDC disc directories in corpus_dir (itself, a child or grandchild).

    Raises InputError naming what was expected when there is none.
    """
    if not os.path.isdir(corpus_dir):
        raise InputError(f"{corpus_name} directory {corpus_dir} does not exist")
    discs = {}
    level = [corpus_dir]
    for depth in range(3):
        below = []
        for c in level:
            name = os.path.basename(os.path.normpath(c))
            if DISC_RE.match(name):
                discs.setdefault(name, c)
            elif depth < 2:
                try:
                    below += [os.path.join(c, e) for e in sorted(os.listdir(c)) if os.path.isdir(os.path.join(c, e))]
                except OSError:
                    pass
        level = below
    if not discs:
        raise InputError(f"{corpus_dir} is not a WSJ {corpus_name} directory: expected LDC disc directories named "
                         f"like 11-1.1, 11-13.1 (wsj0) or 13-34.1 (wsj1), i.e. Kaldi's ??-{{?,??}}.? pattern, in it "
                         f"or one or two levels below it, and found none")
    return discs


def find_case_insensitive(root, relpath):
    """The existing path under root whose components equal relpath's ignoring case, or None."""
    cur = root
    for part in relpath.split("/"):
        if not part:
            continue
        try:
            entries = os.listdir(cur)
        except OSError:
            return None
        match = next((e for e in entries if e == part), None) or \
            next((e for e in entries if e.lower() == part.lower()), None)
        if match is None:
            return None
        cur = os.path.join(cur, match)
    return cur


def arpa_lines(lines, source):
    """ARPA lines from raw LM text: drops everything before \\data\\, strips CR, separates fields with tabs.

    Raises InputError naming the source when there is no \\data\\ line or no \\end\\ line.
    """
    started = ended = False
    order = None
    for line in lines:
        line = line.rstrip("\r\n")
        if not started:
            if line.strip() == "\\data\\":
                started = True
                yield "\\data\\"
            continue
        s = line.strip()
        m = re.match(r"^\\(\d+)-grams:$", s)
        if m:
            order = int(m.group(1))
            yield s
            continue
        if s == "\\end\\":
            ended = True
            yield s
            break
        if order is None or not s:
            yield s
            continue
        fields = s.split()
        if len(fields) == order + 1:
            yield f"{fields[0]}\t{' '.join(fields[1:])}"
        elif len(fields) == order + 2:
            yield f"{fields[0]}\t{' '.join(fields[1:-1])}\t{fields[-1]}"
        else:
            raise InputError(f"{source}: bad {order}-gram line {line!r}")
    if not started:
        raise InputError(f"{source}: no \\data\\ line: not an ARPA language model")
    if not ended:
        raise InputError(f"{source}: no \\end\\ line: truncated ARPA language model")


def decompress_lines(path):
    """Lines of a compress(.z/.Z)-, gzip- or un-compressed text file, decoded through `gzip -dc` when needed."""
    with open(path, "rb") as f:
        magic = f.read(2)
    if magic not in (b"\x1f\x9d", b"\x1f\x8b"):
        with open(path, encoding="latin-1") as f:
            yield from f
        return
    gz = shutil.which("gzip")
    if gz is None:
        raise InputError(f"{path} is compressed and reading it needs gzip (gzip -dc reads compress .z files); "
                         f"install gzip")
    proc = subprocess.Popen([gz, "-dc", path], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        for raw in proc.stdout:
            yield raw.decode("latin-1")
    finally:
        proc.stdout.close()
        err = proc.stderr.read().decode(errors="replace")
        if proc.wait() != 0:
            raise InputError(f"gzip -dc {path} failed: {err.strip()}")


def copy_arpa(src, dst):
    """Writes src (possibly .z) as a gzipped, header-free, tab-separated ARPA file dst; returns the vocabulary."""
    vocab = []
    in_unigrams = False
    with atomic_path(dst) as tmp:
        with gzip.open(tmp, "wt", encoding="latin-1") as out:
            for line in arpa_lines(decompress_lines(src), src):
                if line.startswith("\\"):
                    in_unigrams = line == "\\1-grams:"
                elif in_unigrams and line:
                    vocab.append(line.split()[1])
                out.write(line + "\n")
    log.info(f"{src} -> {dst} ({len(vocab)} words)")
    return vocab


def read_vocab(arpa_gz):
    """Unigram words of a gzipped ARPA file."""
    vocab, in_unigrams = [], False
    with gzip.open(arpa_gz, "rt", encoding="latin-1") as f:
        for line in f:
            s = line.strip()
            if s.startswith("\\"):
                if in_unigrams:
                    break
                in_unigrams = s == "\\1-grams:"
            elif in_unigrams and s:
                vocab.append(s.split()[1])
    return vocab


class _QuietBar:
    """Stands in for tqdm (iterator and context manager) when no progress bar is wanted."""

    def __init__(self, iterable=None, *args, **kwargs):
        self.iterable = iterable

    def __iter__(self):
        return iter(self.iterable)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def update(self, n=1):
        pass


def prune_arpa(src, dst, threshold):
    """Entropy-prunes the gzipped ARPA src into dst (kaldingram's port of SRILM's ngram -prune)."""
    import kaldingram.prune as kn_prune
    from kaldingram.prune import ArpaParser, prune
    saved = kn_prune.tqdm
    if os.environ.get("KALDI_PY_PROGRESS", "1" if sys.stderr.isatty() else "0") != "1":
        kn_prune.tqdm = _QuietBar  # kaldingram draws its bars unconditionally; keep logs readable
    try:
        parser = ArpaParser()
        lm = parser.loadf(src, encoding="latin-1")[0]
        before = dict(lm.counts())
        prune(lm, threshold, 1)
        after = dict(lm.counts())
        with atomic_path(dst) as tmp:
            parser.dumpf(lm, tmp, encoding="latin-1")
    finally:
        kn_prune.tqdm = saved
    log.info(f"{src} pruned at {threshold:g} -> {dst}: " +
             ", ".join(f"{o}-grams {before[o]} -> {after.get(o, 0)}" for o in sorted(before)))


def format_lms(discs, lm_dir, prune_threshold=1e-7, bigram="bcb20onp.z", trigram="tcb20onp.z"):
    """Copies the WSJ1 bigram and trigram into lm_dir and prunes the trigram; see the module docstring.

    discs: {disc name: path} of the WSJ1 discs. Returns the LM vocabulary (list of words).
    """
    sources = {}
    order = sorted(discs, key=lambda d: (d != "13-32.1", d))
    for name, out in [(bigram, "lm_bg.arpa.gz"), (trigram, "lm_tg.arpa.gz")]:
        for d in order:
            p = find_case_insensitive(discs[d], f"{BASE_LM_DIR}/{name}")
            if p and os.path.isfile(p):
                sources[out] = p
                break
        else:
            raise InputError(f"language model {BASE_LM_DIR}/{name} not found on the WSJ1 discs "
                             f"({', '.join(sorted(discs))}); it is on disc 13-32.1 of LDC94S13B")
    os.makedirs(lm_dir, exist_ok=True)
    vocab = None
    for out, src in sources.items():
        dst = os.path.join(lm_dir, out)
        if os.path.isfile(dst):
            log.info(f"{dst} exists, kept")
            continue
        v = copy_arpa(src, dst)
        if out == "lm_tg.arpa.gz":
            vocab = v
    tg, tgpr = os.path.join(lm_dir, "lm_tg.arpa.gz"), os.path.join(lm_dir, "lm_tgpr.arpa.gz")
    if os.path.isfile(tgpr):
        log.info(f"{tgpr} exists, kept")
    else:
        prune_arpa(tg, tgpr, prune_threshold)
    if vocab is None:
        vocab = read_vocab(tg)
    words = [w for w in vocab if w not in ("<s>", "</s>")]
    with atomic_path(os.path.join(lm_dir, "vocab.txt")) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            f.writelines(w + "\n" for w in words)
    return words


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--prune-threshold", type=float, default=1e-7,
                   help="relative perplexity increase below which a trigram/bigram is pruned (default 1e-7)")
    p.add_argument("--bigram", default="bcb20onp.z", help="bigram file in base_lm/ (default bcb20onp.z)")
    p.add_argument("--trigram", default="tcb20onp.z", help="trigram file in base_lm/ (default tcb20onp.z)")
    p.add_argument("wsj1_dir")
    p.add_argument("lm_dir")
    a = p.parse_args()
    format_lms(find_discs(a.wsj1_dir, "wsj1"), a.lm_dir, a.prune_threshold, a.bigram, a.trigram)


if __name__ == "__main__":
    run_main(main)
