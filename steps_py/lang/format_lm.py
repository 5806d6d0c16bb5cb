"""Usage: python -m steps_py.lang.format_lm <lang-dir> <arpa[.gz]> <out-lang-dir>

Copies <lang-dir> to <out-lang-dir> and adds G.fst, the ARPA LM as an ilabel-sorted grammar FST over words.txt
(Kaldi's utils/format_lm.sh: ``arpa2fst --disambig-symbol=#0 --read-symbol-table=words.txt``; back-off arcs carry
#0, <s> and </s> become epsilons). N-grams with a word that is not in words.txt are removed first and counted per
order (as find_arpa_oovs.pl / remove_oovs.pl; WSJ's LDC LMs have such words). The result is loaded back and
checked. The out dir is built beside <out-lang-dir> and renamed into place at the end. A re-run with the same
<lang-dir> and ARPA file is skipped (stamp <out-lang-dir>/.done.format_lm).

kaldilm is imported after the Kaldi bindings (steps_py.kaldi.bindings): imported before kaldi_hmm_gmm it hangs.

e.g.: python -m steps_py.lang.format_lm data/lang data/local/lm/lm_tgpr.arpa.gz data/lang_test_tgpr
"""
import argparse
import collections
import gzip
import os
import shutil
import tempfile

from steps_py.common import InputError, get_logger, replace_dir, run_main
from steps_py.completion import DONE_PREFIX, Completion, done_stamp, settings_of, skip_if_done
from steps_py.kaldi.bindings import kaldifst
from steps_py.kaldi.symbols import read_symbol_table
from steps_py.lang.validation import check_g_fst

import kaldilm  # noqa: E402,I001  (after the bindings)

log = get_logger("lang.format_lm")


def _open_text(path):
    try:
        if path.endswith(".gz"):
            return gzip.open(path, "rt", encoding="utf-8", errors="surrogateescape")
        return open(path, encoding="utf-8", errors="surrogateescape")
    except OSError as e:
        raise InputError(f"cannot read {path}: {e.strerror}") from None


def _is_float(s):
    try:
        float(s)
        return True
    except ValueError:
        return False


def filter_arpa(lines, vocab, path="<arpa>"):
    """Removes the n-grams that contain a word not in ``vocab`` from ARPA lines (an iterable of strings).

    Returns ``(out_lines, kept_counts, removed_counts, oov_words)``: the new ARPA text as lines (header counts
    rewritten), ``{order: n}`` kept and removed, and ``{word: number of n-grams removed because of it}``.
    Raises InputError naming ``path`` and the line for malformed ARPA (missing sections, bad entry lines).
    """
    header_counts = {}
    sections = collections.OrderedDict()
    removed = collections.Counter()
    oov_words = collections.Counter()
    state, order, n = "preamble", 0, 0
    for n, line in enumerate(lines, 1):
        line = line.strip()
        if state == "preamble":
            if line == "\\data\\":
                state = "counts"
            continue
        if state == "counts":
            if line.startswith("ngram "):
                k, _, v = line[6:].partition("=")
                if not (k.strip().isdigit() and v.strip().isdigit()):
                    raise InputError(f"{path}:{n}: bad count line {line!r}")
                header_counts[int(k)] = int(v)
                continue
            if not line:
                continue
            state = "sections"
        if state == "sections":
            if not line:
                continue
            if line == "\\end\\":
                state = "end"
                break
            if line.startswith("\\") and line.endswith("-grams:"):
                try:
                    order = int(line[1:-7])
                except ValueError:
                    raise InputError(f"{path}:{n}: bad section header {line!r}") from None
                if order not in header_counts:
                    raise InputError(f"{path}:{n}: section {line} has no 'ngram {order}=' count in \\data\\")
                sections[order] = []
                continue
            if not order:
                raise InputError(f"{path}:{n}: n-gram line before any \\N-grams: section")
            fields = line.split()
            max_order = max(header_counts)
            if not (len(fields) == order + 1 or (len(fields) == order + 2 and order < max_order)) \
                    or not _is_float(fields[0]) or (len(fields) == order + 2 and not _is_float(fields[-1])):
                raise InputError(f"{path}:{n}: expected 'logprob w1..w{order} [backoff]' "
                                 f"(no backoff at the highest order), got {line!r}")
            words = fields[1:order + 1]
            bad = [w for w in words if w not in vocab]
            if bad:
                removed[order] += 1
                oov_words.update(set(bad))
                continue
            sections[order].append("\t".join([fields[0], " ".join(words)] + fields[order + 1:]))
    if state == "preamble":
        raise InputError(f"{path}: no \\data\\ section")
    if state != "end":
        raise InputError(f"{path}:{n}: no \\end\\ line (truncated file?)")
    for o in header_counts:
        if o not in sections:
            raise InputError(f"{path}: \\data\\ announces {o}-grams but there is no \\{o}-grams: section")
    kept = {o: len(v) for o, v in sections.items()}
    out = ["\\data\\"] + [f"ngram {o}={kept[o]}" for o in sections] + [""]
    for o, entries in sections.items():
        out.append(f"\\{o}-grams:")
        out.extend(entries)
        out.append("")
    out.append("\\end\\")
    return out, kept, dict(removed), dict(oov_words)


def format_lm(lang_dir, arpa_path, out_dir):
    """Writes <out-dir> = <lang-dir> + G.fst; returns ``(num_states, num_arcs, removed_counts)``."""
    words_path = os.path.join(lang_dir, "words.txt")
    if not os.path.isfile(words_path):
        raise InputError(f"no such file {words_path}")
    word_ids = read_symbol_table(words_path)
    for w in ("#0", "<s>", "</s>"):
        if w not in word_ids:
            raise InputError(f"{words_path}: {w} is missing (run steps_py.lang.prepare_lang)")
    with _open_text(arpa_path) as f:
        try:
            lines, kept, removed, oov_words = filter_arpa(f, set(word_ids) - {"<eps>", "#0"}, arpa_path)
        except (UnicodeDecodeError, EOFError, OSError) as e:
            raise InputError(f"{arpa_path}: cannot read: {e}") from None
    log.info(f"{arpa_path}: " + ", ".join(f"{kept[o]} {o}-grams" for o in kept))
    if removed:
        top = ", ".join(f"{w} ({c})" for w, c in sorted(oov_words.items(), key=lambda kv: -kv[1])[:10])
        log.warning(f"{arpa_path}: removed " + ", ".join(f"{removed.get(o, 0)} {o}-grams" for o in kept)
                    + f" containing {len(oov_words)} word(s) not in {words_path} (most n-grams: {top})")
    if not kept.get(1):
        raise InputError(f"{arpa_path}: no unigram left whose word is in {words_path}")

    parent = os.path.dirname(os.path.abspath(out_dir))
    os.makedirs(parent, exist_ok=True)
    build = tempfile.mkdtemp(prefix="." + os.path.basename(os.path.abspath(out_dir)) + ".tmp.", dir=parent)
    try:
        os.rmdir(build)
        shutil.copytree(lang_dir, build, ignore=shutil.ignore_patterns("G.fst", "G.carpa", DONE_PREFIX + "*"))
        filtered = os.path.join(build, ".lm.arpa")
        with open(filtered, "w", encoding="utf-8", errors="surrogateescape") as f:
            f.write("\n".join(lines) + "\n")
        del lines
        g_text = kaldilm.arpa2fst(input_arpa=filtered, disambig_symbol="#0", read_symbol_table=words_path,
                                  max_arpa_warnings=0)
        os.unlink(filtered)
        g = kaldifst.compile(s=g_text, acceptor=False)
        del g_text
        kaldifst.arcsort(g, sort_type="ilabel")
        g_path = os.path.join(build, "G.fst")
        if not g.write(g_path):
            raise InputError(f"cannot write {g_path}")
        num_states, num_arcs = check_g_fst(g_path, word_ids)
        os.chmod(build, 0o755)
        replace_dir(build, out_dir)
    except BaseException:
        shutil.rmtree(build, ignore_errors=True)
        raise
    log.info(f"{out_dir}/G.fst: {num_states} states, {num_arcs} arcs")
    return num_states, num_arcs, removed


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("lang_dir")
    p.add_argument("arpa")
    p.add_argument("out_lang_dir")
    a = p.parse_args()
    done = Completion(done_stamp(a.out_lang_dir, "format_lm"), [a.lang_dir, a.arpa], settings_of(a),
                      outputs=[os.path.join(a.out_lang_dir, "G.fst")])
    if skip_if_done(done, a.out_lang_dir, log):
        return
    format_lm(a.lang_dir, a.arpa, a.out_lang_dir)
    done.finish()


if __name__ == "__main__":
    run_main(main)
