"""Phone tables of the extractions: Kaldi phone ids (with word-position suffixes _B/_E/_I/_S) mapped to
position-independent phone names, silence phones first."""
import os
import re

import numpy as np

POSITION_SUFFIX = re.compile(r"_[BEIS]$")


# Position-independent silence phone symbols assumed when no lang dir tells (Kaldi WSJ: SIL, SPN, NSN).
DEFAULT_SILENCE = ("SIL", "SPN", "NSN", "sil", "spn", "nsn", "<sil>", "<SIL>")


def strip_position(symbol):
    """AA_B -> AA; SIL -> SIL (Kaldi word-position suffixes _B/_E/_I/_S removed)."""
    return POSITION_SUFFIX.sub("", symbol)


def find_silence_phones(phones):
    """Position-independent silence symbols: <dir of phones.txt>/phones/silence.txt when it exists (a lang dir),
    else the DEFAULT_SILENCE names. ``phones`` is the path given to the writer (or a dict: defaults)."""
    if isinstance(phones, str):
        path = os.path.join(os.path.dirname(os.path.abspath(phones)), "phones", "silence.txt")
        if os.path.exists(path):
            return sorted({strip_position(line.split()[0]) for line in open(path) if line.strip()})
    return list(DEFAULT_SILENCE)


def position_independent_table(table, silence_phones):
    """{kaldi_id: symbol} -> (phone_names [P] list, is_silence [P] bool, phone_of_id [max_id + 1] int32).

    <eps> and disambiguation symbols (#0, #1, ...) map to -1. phone_names lists silence phones first, then the
    other phones alphabetically."""
    silence = set(silence_phones)
    names = {strip_position(s) for k, s in table.items() if k > 0 and not s.startswith("#") and s != "<eps>"}
    phone_names = sorted(n for n in names if n in silence) + sorted(n for n in names if n not in silence)
    index = {n: i for i, n in enumerate(phone_names)}
    phone_of_id = np.full(max(table) + 1 if table else 1, -1, dtype=np.int32)
    for k, s in table.items():
        if k > 0 and strip_position(s) in index:
            phone_of_id[k] = index[strip_position(s)]
    is_silence = np.array([n in silence for n in phone_names], dtype=bool)
    return phone_names, is_silence, phone_of_id
