"""Pure pieces of a Kaldi lang dir (utils/prepare_lang.sh): word-position phones, disambiguation symbols, the
lexicon FST in OpenFst text form and the HMM topology. No file I/O.

Lexicon entries here are ``(word, prob, phones)`` with ``prob`` the pronunciation probability in (0, 1] and
``phones`` a tuple of phone names (after ``add_lex_disambig`` the last ones may be disambiguation symbols ``#N``).
"""
import math

from steps_py.common import InputError

POSITION_SUFFIXES = ["_B", "_E", "_I", "_S"]


def add_word_positions(entries):
    """Marks each phone with its position in the word: ``_B`` begin, ``_I`` internal, ``_E`` end, ``_S`` a
    one-phone word (as prepare_lang.sh does, also for silence phones inside words)."""
    out = []
    for word, prob, phones in entries:
        if len(phones) == 1:
            marked = (phones[0] + "_S",)
        else:
            marked = (phones[0] + "_B",) + tuple(p + "_I" for p in phones[1:-1]) + (phones[-1] + "_E",)
        out.append((word, prob, marked))
    return out


def phone_map(silence_lines, nonsilence_lines, position_dependent=True):
    """``{base phone: [its phones in the lang dir]}`` in phones.txt order.

    With position-dependent phones a silence phone keeps its plain form (used for optional silence between words)
    and gets the four position variants: ``SIL -> SIL SIL_B SIL_E SIL_I SIL_S``; a nonsilence phone only gets the
    variants: ``AA1 -> AA1_B AA1_E AA1_I AA1_S``.
    """
    out = {}
    for line in silence_lines:
        for p in line:
            out[p] = [p] + [p + s for s in POSITION_SUFFIXES] if position_dependent else [p]
    for line in nonsilence_lines:
        for p in line:
            out[p] = [p + s for s in POSITION_SUFFIXES] if position_dependent else [p]
    return out


def apply_phone_map(lines, pmap):
    """Expands each phone of each line (list of phones) to its list in ``pmap``; keeps the lines."""
    return [[q for p in line for q in pmap[p]] for line in lines]


def add_lex_disambig(entries, first_allowed=1):
    """Appends disambiguation symbols ``#1``, ``#2``, ... to pronunciations that are a prefix of another one or
    occur more than once (Kaldi's utils/add_lex_disambig.pl): ``TO t uw #1``, ``TWO t uw #2``.

    Returns ``(entries, max_disambig)``, the largest ``N`` of ``#N`` used (``first_allowed - 1`` if none).
    """
    count = {}
    prefixes = set()
    for _, _, phones in entries:
        count[phones] = count.get(phones, 0) + 1
        for k in range(len(phones)):
            prefixes.add(phones[:k])
    max_disambig = first_allowed - 1
    last_of = {}
    out = []
    for word, prob, phones in entries:
        if phones in prefixes or count[phones] > 1:
            n = last_of.get(phones, first_allowed - 1) + 1
            last_of[phones] = n
            max_disambig = max(max_disambig, n)
            out.append((word, prob, phones + (f"#{n}",)))
        else:
            out.append((word, prob, phones))
    return out, max_disambig


def lexicon_fst_text(entries, phone_ids, word_ids, sil_prob=0.5, sil_phone=None, sil_disambig=None):
    """The lexicon FST (phones to words) in OpenFst text form with integer labels, as utils/make_lexicon_fst.pl
    writes it with ``--pron-probs``: costs are negated natural logs.

    With ``sil_prob > 0``: state 0 starts, 1 is the loop state, 2 is after an optional silence; each word may be
    followed by ``sil_phone`` (cost ``-log sil_prob``) or not (``-log(1 - sil_prob)``); ``sil_disambig`` (e.g. #3
    in L_disambig) follows the optional silence. Raises InputError for a phone or word missing from the tables.
    """
    lines = []

    def arc(src, dst, phone, word, cost=0.0):
        try:
            ilabel = phone_ids[phone] if phone != "<eps>" else 0
            olabel = word_ids[word] if word != "<eps>" else 0
        except KeyError as e:
            raise InputError(f"symbol {e.args[0]!r} is not in the symbol tables") from None
        lines.append(f"{src}\t{dst}\t{ilabel}\t{olabel}" + (f"\t{cost:.9g}" if cost != 0.0 else ""))

    if sil_prob == 0.0:
        loop, next_state = 0, 1
        for word, prob, phones in entries:
            src, out_word, cost = loop, word, -math.log(prob)
            for i, p in enumerate(phones):
                dst = loop if i == len(phones) - 1 else next_state
                if dst != loop:
                    next_state += 1
                arc(src, dst, p, out_word, cost)
                out_word, cost, src = "<eps>", 0.0, dst
        lines.append(f"{loop}\t0")
        return "\n".join(lines) + "\n"

    if not 0.0 < sil_prob < 1.0:
        raise InputError(f"sil-prob must be in [0, 1), got {sil_prob}")
    sil_cost, nosil_cost = -math.log(sil_prob), -math.log(1.0 - sil_prob)
    start, loop, sil_state = 0, 1, 2
    arc(start, loop, "<eps>", "<eps>", nosil_cost)
    if sil_disambig is None:
        arc(start, loop, sil_phone, "<eps>", sil_cost)
        arc(sil_state, loop, sil_phone, "<eps>")
        next_state = 3
    else:
        disambig_state, next_state = 3, 4
        arc(start, disambig_state, sil_phone, "<eps>", sil_cost)
        arc(sil_state, disambig_state, sil_phone, "<eps>")
        arc(disambig_state, loop, sil_disambig, "<eps>")
    for word, prob, phones in entries:
        pron_cost = -math.log(prob)
        src, out_word = loop, word
        for i, p in enumerate(phones):
            if i < len(phones) - 1:
                arc(src, next_state, p, out_word, pron_cost)
                out_word, pron_cost, src = "<eps>", 0.0, next_state
                next_state += 1
            elif p != sil_phone:
                arc(src, loop, p, out_word, nosil_cost + pron_cost)
                arc(src, sil_state, p, out_word, sil_cost + pron_cost)
            else:
                arc(src, loop, p, out_word, pron_cost)
    lines.append(f"{loop}\t0")
    return "\n".join(lines) + "\n"


def _perl_number(x):
    """A float the way Perl prints it (15 significant digits): 0.25, 0.333333333333333."""
    return f"{x:.15g}"


def gen_topo(nonsil_ids, sil_ids, num_nonsil_states=3, num_sil_states=5):
    """The HMM topology text of utils/gen_topo.pl: left-to-right ``num_nonsil_states``-state models (self-loop
    0.75) for nonsilence phones; for silence a first state, fully connected middle states and a last state."""
    if not 1 <= num_nonsil_states <= 100 or not 1 <= num_sil_states <= 100:
        raise InputError(f"numbers of HMM states must be in 1..100, got {num_nonsil_states} and {num_sil_states}")
    out = ["<Topology>", "<TopologyEntry>", "<ForPhones>", " ".join(map(str, nonsil_ids)), "</ForPhones>"]
    for s in range(num_nonsil_states):
        out.append(f"<State> {s} <PdfClass> {s} <Transition> {s} 0.75 <Transition> {s + 1} 0.25 </State>")
    out += [f"<State> {num_nonsil_states} </State>", "</TopologyEntry>"]
    out += ["<TopologyEntry>", "<ForPhones>", " ".join(map(str, sil_ids)), "</ForPhones>"]
    n = num_sil_states
    if n == 1:
        out.append("<State> 0 <PdfClass> 0 <Transition> 0 0.75 <Transition> 1 0.25 </State>")
    else:
        p = _perl_number(1.0 / (n - 1))
        out.append("<State> 0 <PdfClass> 0 " + "".join(f"<Transition> {t} {p} " for t in range(n - 1)) + "</State>")
        for s in range(1, n - 1):
            out.append(f"<State> {s} <PdfClass> {s} " + "".join(f"<Transition> {t} {p} " for t in range(1, n))
                       + "</State>")
        out.append(f"<State> {n - 1} <PdfClass> {n - 1} <Transition> {n - 1} 0.75 <Transition> {n} 0.25 </State>")
    out += [f"<State> {n} </State>", "</TopologyEntry>", "</Topology>"]
    return "\n".join(out) + "\n"


def word_boundary(phone):
    """Word-boundary class of a position-dependent phone: begin, end, internal, singleton or nonword."""
    return {"_B": "begin", "_E": "end", "_I": "internal", "_S": "singleton"}.get(phone[-2:], "nonword")


