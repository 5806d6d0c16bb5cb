"""Prompt text of the synthetic corpus: fortune sentences normalised the WSJ way, split into disjoint sets.

Normalisation (``normalise_sentence``) follows the WSJ transcription conventions: upper case, no punctuation,
numbers spelled out (cardinals, ordinals, years, decimals, money, percentages), a few abbreviations expanded
(``Mr.`` -> MISTER), internal apostrophes kept (DON'T), hyphenated words split.  A sentence that cannot be
normalised safely (other abbreviations, code, URLs, odd number formats, non-ASCII letters) is dropped, and every
drop is counted by its reason.

Selection (``split_sentences``) makes disjoint train / dev / eval prompt sets and an LM-training text that contains
no dev or eval sentence.  Dev and eval sentences can be restricted to words that occur in some other (LM) sentence,
so that the test sets have no out-of-vocabulary words with respect to the LM text.
"""
import collections
import glob
import os
import re

import numpy as np

# Abbreviations read as a word (with their period).  Anything else that looks like an abbreviation drops the sentence.
ABBREVIATIONS = {
    "mr.": "MISTER", "mrs.": "MISSUS", "ms.": "MIZ", "dr.": "DOCTOR", "jr.": "JUNIOR", "sr.": "SENIOR",
    "vs.": "VERSUS", "etc.": "ET CETERA", "mt.": "MOUNT", "prof.": "PROFESSOR", "gen.": "GENERAL",
    "gov.": "GOVERNOR", "sen.": "SENATOR", "rep.": "REPRESENTATIVE", "capt.": "CAPTAIN", "col.": "COLONEL",
    "sgt.": "SERGEANT", "lt.": "LIEUTENANT", "rev.": "REVEREND", "st.": "SAINT",
}
# Tokens that end a sentence only in appearance (abbreviations that are then dropped or expanded).
NON_FINAL = set(ABBREVIATIONS) | {"e.g.", "i.e.", "no.", "vol.", "ch.", "p.", "pp.", "ed.", "cf.", "al.",
                                  "inc.", "co.", "ltd.", "corp.", "u.s.", "a.m.", "p.m.", "ca.", "approx."}

ONES = ["ZERO", "ONE", "TWO", "THREE", "FOUR", "FIVE", "SIX", "SEVEN", "EIGHT", "NINE", "TEN", "ELEVEN", "TWELVE",
        "THIRTEEN", "FOURTEEN", "FIFTEEN", "SIXTEEN", "SEVENTEEN", "EIGHTEEN", "NINETEEN"]
TENS = ["", "", "TWENTY", "THIRTY", "FORTY", "FIFTY", "SIXTY", "SEVENTY", "EIGHTY", "NINETY"]
SCALES = [(10 ** 12, "TRILLION"), (10 ** 9, "BILLION"), (10 ** 6, "MILLION"), (1000, "THOUSAND")]
ORDINAL_WORDS = {"ONE": "FIRST", "TWO": "SECOND", "THREE": "THIRD", "FIVE": "FIFTH", "EIGHT": "EIGHTH",
                 "NINE": "NINTH", "TWELVE": "TWELFTH"}

FORBIDDEN_CHARS = set("@#/\\<>=_|~^*{}[]+")
WORD_RE = re.compile(r"^[A-Z]+(?:'[A-Z]+)*'?$")


def spell_cardinal(n):
    """Spells a non-negative integer < 10**15 the WSJ way: 2341 -> TWO THOUSAND THREE HUNDRED FORTY ONE."""
    if n < 0 or n >= 10 ** 15:
        raise ValueError(f"number out of range: {n}")
    if n < 20:
        return ONES[n]
    if n < 100:
        return TENS[n // 10] + ("" if n % 10 == 0 else " " + ONES[n % 10])
    if n < 1000:
        rest = n % 100
        return ONES[n // 100] + " HUNDRED" + ("" if rest == 0 else " " + spell_cardinal(rest))
    for scale, name in SCALES:
        if n >= scale:
            rest = n % scale
            return spell_cardinal(n // scale) + " " + name + ("" if rest == 0 else " " + spell_cardinal(rest))
    raise AssertionError(n)


def spell_ordinal(n):
    """1 -> FIRST, 22 -> TWENTY SECOND, 40 -> FORTIETH, 100 -> ONE HUNDREDTH."""
    words = spell_cardinal(n).split()
    last = words[-1]
    if last in ORDINAL_WORDS:
        words[-1] = ORDINAL_WORDS[last]
    elif last.endswith("Y"):
        words[-1] = last[:-1] + "IETH"
    else:
        words[-1] = last + "TH"
    return " ".join(words)


def spell_year(n):
    """Reads a year: 1984 -> NINETEEN EIGHTY FOUR, 1905 -> NINETEEN OH FIVE, 1900 -> NINETEEN HUNDRED,
    2000 -> TWO THOUSAND, 2007 -> TWO THOUSAND SEVEN, 2019 -> TWENTY NINETEEN."""
    hi, lo = divmod(n, 100)
    if n % 1000 == 0 or (2000 <= n < 2010):
        return spell_cardinal(n)
    if lo == 0:
        return spell_cardinal(hi) + " HUNDRED"
    if lo < 10:
        return spell_cardinal(hi) + " OH " + ONES[lo]
    return spell_cardinal(hi) + " " + spell_cardinal(lo)


def _spell_number_token(tok):
    """Spells one token containing digits, or returns None when its format is not handled.

    Handles 42, 1,000,000, 3.14, 1984 (a year when 1100-2099 without a comma), 21st, $5, $1.50, 50%.
    """
    m = re.fullmatch(r"\$(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d\d))?", tok)
    if m:
        dollars = int(m.group(1).replace(",", ""))
        out = spell_cardinal(dollars) + (" DOLLAR" if dollars == 1 else " DOLLARS")
        if m.group(2) and int(m.group(2)):
            cents = int(m.group(2))
            out += " AND " + spell_cardinal(cents) + (" CENT" if cents == 1 else " CENTS")
        return out
    m = re.fullmatch(r"(\d+(?:\.\d+)?)%", tok)
    if m:
        spelled = _spell_number_token(m.group(1))
        return None if spelled is None else spelled + " PERCENT"
    m = re.fullmatch(r"(\d+)(st|nd|rd|th)", tok, flags=re.IGNORECASE)
    if m:
        return spell_ordinal(int(m.group(1)))
    if re.fullmatch(r"\d{1,3}(?:,\d{3})+", tok):
        return spell_cardinal(int(tok.replace(",", "")))
    if re.fullmatch(r"\d+", tok):
        if len(tok) > 1 and tok.startswith("0") or len(tok) > 15:
            return None
        n = int(tok)
        if len(tok) == 4 and 1100 <= n <= 2099:
            return spell_year(n)
        return spell_cardinal(n)
    m = re.fullmatch(r"(\d+)\.(\d+)", tok)
    if m and len(m.group(1)) <= 15:
        return spell_cardinal(int(m.group(1))) + " POINT " + " ".join(ONES[int(d)] for d in m.group(2))
    return None


def normalise_sentence(raw):
    """Normalises one sentence; returns (words, None) or (None, reason) when it is dropped.

    Reasons: non_ascii, symbols, abbreviation, number_format, empty.
    """
    s = raw.replace("\u2019", "'").replace("\u2018", "'").replace("\u201c", '"').replace("\u201d", '"')
    s = s.replace("\u2014", " -- ").replace("\u2013", " -- ").replace("`", "'")
    if any(ord(c) > 127 for c in s):
        return None, "non_ascii"
    if any(c in FORBIDDEN_CHARS for c in s) or "http" in s.lower() or "www." in s.lower():
        return None, "symbols"
    s = s.replace("&", " and ").replace("--", " ")
    words = []
    for tok in s.split():
        # Strip surrounding quotes and brackets, keep the token's own final period for the abbreviation check.
        core = tok.strip("\"'()")
        low = core.lower().rstrip(",;:!?")
        if low in ABBREVIATIONS:
            words.extend(ABBREVIATIONS[low].split())
            continue
        if re.search(r"[a-z]\.[a-z]", low) or low in NON_FINAL:
            return None, "abbreviation"
        if re.search(r"\d", core):
            num = core.rstrip(".,;:!?")
            spelled = _spell_number_token(num)
            if spelled is None:
                return None, "number_format"
            words.extend(spelled.split())
            continue
        core = re.sub(r"[.,;:!?()\"]", " ", core)
        for part in re.split(r"[\s-]+", core):
            part = part.strip("'").upper()
            if not part:
                continue
            if not WORD_RE.match(part):
                return None, "symbols"
            words.append(part)
    if not words:
        return None, "empty"
    return words, None


def split_into_sentences(paragraph):
    """Splits running text into sentences at . ! ? followed by a capital, a digit or a quote.

    Abbreviations of NON_FINAL and single-letter initials (``J.``) do not end a sentence.
    """
    tokens = paragraph.split()
    sentences, cur = [], []
    for i, tok in enumerate(tokens):
        cur.append(tok)
        core = tok.rstrip("\"')]")
        if not core or core[-1] not in ".!?":
            continue
        nxt = tokens[i + 1] if i + 1 < len(tokens) else ""
        if nxt and not re.match(r"[\"'(\[]?[A-Z0-9]", nxt):
            continue
        low = core.lstrip("\"'(").lower()
        if low in NON_FINAL or re.fullmatch(r"[a-z]\.", low):
            continue
        sentences.append(" ".join(cur))
        cur = []
    if cur:
        sentences.append(" ".join(cur))
    return sentences


def read_fortunes(fortune_dir, exclude=()):
    """Reads every fortune file of ``fortune_dir`` (not .dat/.u8, not sub-directories, not ``exclude``).

    Returns (paragraphs, stats): one paragraph per fortune with attribution lines (``-- Author``) removed.
    """
    paths = sorted(p for p in glob.glob(os.path.join(fortune_dir, "*"))
                   if os.path.isfile(p) and not os.path.islink(p) and not p.endswith((".dat", ".u8"))
                   and os.path.basename(p) not in set(exclude))
    if not paths:
        raise FileNotFoundError(f"no fortune files in {fortune_dir} (install the fortunes and fortunes-min packages)")
    paragraphs, n_bad_bytes = [], 0
    for path in paths:
        with open(path, "rb") as f:
            data = f.read()
        try:
            content = data.decode("utf-8")
        except UnicodeDecodeError:
            content = data.decode("latin-1")
            n_bad_bytes += 1
        for entry in re.split(r"^%\s*$", content, flags=re.MULTILINE):
            lines = []
            for line in entry.splitlines():
                if re.match(r"^\s*--", line):
                    break  # attribution: the rest is the author / source
                lines.append(line.strip())
            text = " ".join(ln for ln in lines if ln)
            if text:
                paragraphs.append(text)
    return paragraphs, {"files": len(paths), "fortunes": len(paragraphs), "files_not_utf8": n_bad_bytes}


def normalise_corpus(paragraphs, lexicon, min_words, max_words, lm_min_words, lm_max_words):
    """Normalises every sentence and sorts it into prompt candidates and extra LM-only sentences.

    lexicon: a set of lower-case words with a pronunciation.  Returns (prompts, lm_only, drops):
    prompts are unique word tuples of min_words..max_words words, lm_only are the other unique in-lexicon
    sentences of lm_min_words..lm_max_words words, drops counts sentences by reason.
    """
    drops = collections.Counter()
    seen = set()
    prompts, lm_only = [], []
    for para in paragraphs:
        for raw in split_into_sentences(para):
            words, reason = normalise_sentence(raw)
            if words is None:
                drops[reason] += 1
                continue
            if any(w.lower() not in lexicon for w in words):
                drops["not_in_cmudict"] += 1
                continue
            key = tuple(words)
            if key in seen:
                drops["duplicate"] += 1
                continue
            seen.add(key)
            if min_words <= len(words) <= max_words:
                prompts.append(key)
            elif lm_min_words <= len(words) <= lm_max_words:
                lm_only.append(key)
            else:
                drops["too_short" if len(words) < min(min_words, lm_min_words) else "too_long"] += 1
    return prompts, lm_only, drops


def split_sentences(prompts, lm_only, n_dev, n_eval, n_train, seed, test_words_in_lm=True):
    """Draws disjoint dev, eval and train prompt lists and the LM text.

    prompts, lm_only: lists of word tuples.  Dev and eval sentences are drawn first; with test_words_in_lm each of
    their words must still occur in some sentence left for the LM text (so dev/eval have no OOV against it).
    Train sentences come from the rest; the LM text is every sentence that is neither dev nor eval (train included,
    as in WSJ).  Returns a dict with lists dev, eval, train, lm (word tuples).  Raises ValueError if there are too
    few sentences.
    """
    rng = np.random.default_rng([seed, 7919])
    order = rng.permutation(len(prompts))
    counts = collections.Counter(w for s in prompts for w in s)
    counts.update(w for s in lm_only for w in s)
    test, rest = [], []
    need = n_dev + n_eval
    for i in order:
        sent = prompts[i]
        if len(test) < need:
            sent_counts = collections.Counter(sent)
            if not test_words_in_lm or all(counts[w] > c for w, c in sent_counts.items()):
                counts.subtract(sent_counts)
                test.append(sent)
                continue
        rest.append(sent)
    if len(test) < need:
        raise ValueError(f"only {len(test)} sentences usable for dev+eval, {need} wanted")
    if len(rest) < n_train:
        raise ValueError(f"only {len(rest)} sentences left for train, {n_train} wanted")
    return {"dev": test[:n_dev], "eval": test[n_dev:], "train": rest[:n_train], "lm": rest + list(lm_only)}


def oov_rate(sentences, vocab):
    """Fraction of running words of ``sentences`` (word tuples) not in ``vocab`` (a set)."""
    total = sum(len(s) for s in sentences)
    return 0.0 if total == 0 else sum(w not in vocab for s in sentences for w in s) / total
