"""HMM topologies (src/hmm/hmm-topology.cc): Kaldi's text form, binary form and the parsed entries used here.

Parsed entries: [(phones, [(forward_pdf_class, self_loop_pdf_class, [(dst, prob)])])], one per <TopologyEntry>;
the last state of each entry is final (no transitions).
"""
import struct

import numpy as np

from steps_py.common import InputError
from steps_py.kaldi.io import bin_int32, bin_int_vector, bin_token


def parse_topo_text(text):
    """Parses Kaldi's text topology into [(phones, [(forward_pdf_class, self_loop_pdf_class, [(dst, prob)])])]."""
    toks = text.split()
    entries, i = [], 0

    def need(t):
        nonlocal i
        if toks[i] != t:
            raise InputError(f"topology: expected {t}, got {toks[i]}")
        i += 1
    need("<Topology>")
    while toks[i] == "<TopologyEntry>":
        i += 1
        need("<ForPhones>")
        phones = []
        while toks[i] != "</ForPhones>":
            phones.append(int(toks[i]))
            i += 1
        i += 1
        states = []
        while toks[i] == "<State>":
            i += 2  # <State> index
            fwd = slf = -1
            trans = []
            while toks[i] != "</State>":
                if toks[i] == "<PdfClass>":
                    fwd = slf = int(toks[i + 1])
                    i += 2
                elif toks[i] == "<ForwardPdfClass>":
                    fwd = int(toks[i + 1])
                    i += 2
                elif toks[i] == "<SelfLoopPdfClass>":
                    slf = int(toks[i + 1])
                    i += 2
                elif toks[i] == "<Transition>":
                    trans.append((int(toks[i + 1]), float(toks[i + 2])))
                    i += 3
                else:
                    raise InputError(f"topology: unexpected token {toks[i]}")
            i += 1
            states.append((fwd, slf, trans))
        need("</TopologyEntry>")
        entries.append((phones, states))
    need("</Topology>")
    return entries


def topo_entries_to_text(entries):
    """The inverse of parse_topo_text (the text HmmTopology().read accepts)."""
    out = ["<Topology>"]
    for phones, states in entries:
        out += ["<TopologyEntry>", "<ForPhones>", " ".join(map(str, phones)), "</ForPhones>"]
        is_hmm = all(f == s for f, s, _ in states)
        for j, (fwd, slf, trans) in enumerate(states):
            s = f"<State> {j} "
            if fwd != -1:
                s += f"<PdfClass> {fwd} " if is_hmm else f"<ForwardPdfClass> {fwd} <SelfLoopPdfClass> {slf} "
            s += "".join(f"<Transition> {d} {p!r} " for d, p in trans)
            out.append(s + "</State>")
        out.append("</TopologyEntry>")
    out.append("</Topology>")
    return "\n".join(out) + "\n"


def topo_to_binary(entries):
    """HmmTopology::Write(binary=true) of parsed entries."""
    phones = sorted(p for ps, _ in entries for p in ps)
    phone2idx = np.full(max(phones) + 1, -1, dtype=np.int32)
    for i, (ps, _) in enumerate(entries):
        phone2idx[ps] = i
    is_hmm = all(f == s for _, states in entries for f, s, _ in states)
    b = bin_token("<Topology>") + bin_int_vector(phones) + bin_int_vector(phone2idx)
    if not is_hmm:
        b += bin_int32(-1)
    b += bin_int32(len(entries))
    for _, states in entries:
        b += bin_int32(len(states))
        for fwd, slf, trans in states:
            b += bin_int32(fwd) + (b"" if is_hmm else bin_int32(slf)) + bin_int32(len(trans))
            for dst, p in trans:
                b += bin_int32(dst) + b"\x04" + struct.pack("<f", p)
    return b + bin_token("</Topology>")


def topo_from_binary(r):
    """Reads HmmTopology binary from BinaryReader ``r`` into parsed entries."""
    r.expect("<Topology>")
    r.int_vector()
    phone2idx = r.int_vector()
    n = r.int32()
    is_hmm = n != -1
    if not is_hmm:
        n = r.int32()
    entries = []
    for i in range(n):
        states = []
        for _ in range(r.int32()):
            fwd = r.int32()
            slf = fwd if is_hmm else r.int32()
            trans = [(r.int32(), r.float32()) for _ in range(r.int32())]
            states.append((fwd, slf, trans))
        entries.append(([int(p) for p in np.flatnonzero(phone2idx == i)], states))
    r.expect("</Topology>")
    return entries


def topo_from_text_reader(r):
    """The HmmTopology text form inside a model file, from TextReader ``r`` -> parsed entries."""
    start = r.i
    r.expect("<Topology>")
    while r.token() != "</Topology>":
        pass
    return parse_topo_text(" ".join(r.toks[start:r.i]))
