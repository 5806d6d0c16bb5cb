"""Kaldi model files: the TransitionModel of any model (GMM, nnet2/nnet3, copy-transition-model output; binary or
text) and whole GMM models (TransitionModel + AmDiagGmm), read and written as Kaldi does.

GMM model files (``final.mdl``) are ``\\0B`` + TransitionModel + AmDiagGmm, byte for byte as gmm-init-mono/gmm-est
write them. A transition model is rebuilt with the bindings from the tree and the file's topology and checked
against the file's tuples (a tree that does not belong to the model is an error, not silent garbage); the
transition-id -> pdf map is also computed from the file alone (``tid2pdf_from_tuples``).
"""
import dataclasses
import os

import numpy as np

from steps_py.common import InputError, atomic_open, require_files
from steps_py.kaldi.bindings import khg
from steps_py.kaldi.io import (BinaryReader, TextReader, bin_float_matrix, bin_float_vector, bin_int32, bin_token,
                              is_binary, read_bytes)
from steps_py.kaldi.topology import topo_entries_to_text, topo_from_binary, topo_from_text_reader, topo_to_binary
from steps_py.kaldi.tree_io import read_tree

def tm_tuples(tm):
    """[(phone, hmm_state, forward_pdf, self_loop_pdf)] per transition state (index 0 = transition state 1)."""
    return [tuple(t.__getstate__()) for t in tm.tuples]


def transition_model_to_binary(tm, topo_entries):
    tuples = tm_tuples(tm)
    is_hmm = all(f == s for _, states in topo_entries for f, s, _ in states)
    b = bin_token("<TransitionModel>") + topo_to_binary(topo_entries)
    b += bin_token("<Triples>" if is_hmm else "<Tuples>") + bin_int32(len(tuples))
    for phone, state, fwd, slf in tuples:
        b += bin_int32(phone) + bin_int32(state) + bin_int32(fwd) + (b"" if is_hmm else bin_int32(slf))
    b += bin_token("</Triples>" if is_hmm else "</Tuples>")
    b += bin_token("<LogProbs>") + bin_float_vector(np.asarray(tm.log_probs, dtype=np.float32))
    return b + bin_token("</LogProbs>") + bin_token("</TransitionModel>")


def am_to_binary(am):
    b = bin_token("<DIMENSION>") + bin_int32(am.dim) + bin_token("<NUMPDFS>") + bin_int32(am.num_pdfs)
    for p in range(am.num_pdfs):
        g = am.get_pdf(p)
        g.compute_gconsts()
        b += (bin_token("<DiagGMM>") + bin_token("<GCONSTS>") + bin_float_vector(g.gconsts)
              + bin_token("<WEIGHTS>") + bin_float_vector(g.weights)
              + bin_token("<MEANS_INVVARS>") + bin_float_matrix(g.means_invvars)
              + bin_token("<INV_VARS>") + bin_float_matrix(g.inv_vars) + bin_token("</DiagGMM>"))
    return b


def write_model(path, tm, am, topo_entries):
    """Writes a Kaldi binary GMM model file (TransitionModel + AmDiagGmm) atomically."""
    data = b"\0B" + transition_model_to_binary(tm, topo_entries) + am_to_binary(am)
    with atomic_open(path, "wb") as f:
        f.write(data)


def _non_self_loop_log_probs(tuples, state2id, log_probs, topo_entries):
    """TransitionModel::ComputeDerivedOfProbs: log(1 - self-loop prob) per transition state (index 0 unused)."""
    phone2states = {p: states for phones, states in topo_entries for p in phones}
    out = [0.0] * (len(tuples) + 1)
    for s, (phone, hmm_state, _, _) in enumerate(tuples, 1):
        for k, (dst, _) in enumerate(phone2states[phone][hmm_state][2]):
            if dst == hmm_state:
                out[s] = float(np.log1p(-np.exp(log_probs[state2id[s] + k])))
    return out


def parse_transition_model(r, read_topology=None):
    """Reads ``<TransitionModel> ... </TransitionModel>`` from a reader (BinaryReader, or a text reader with the
    same methods) -> (topology entries, tuples [(phone, hmm_state, forward_pdf, self_loop_pdf)], log_probs).
    ``read_topology(r)``: how the topology is read (default: binary)."""
    r.expect("<TransitionModel>")
    entries = (read_topology or topo_from_binary)(r)
    tag = r.token()
    if tag not in ("<Triples>", "<Tuples>"):
        r.fail(f"expected <Triples> or <Tuples>, got {tag}")
    is_hmm = tag == "<Triples>"
    tuples = []
    for _ in range(r.int32()):
        phone, state, fwd = r.int32(), r.int32(), r.int32()
        tuples.append((phone, state, fwd, fwd if is_hmm else r.int32()))
    r.expect("</Triples>" if is_hmm else "</Tuples>")
    r.expect("<LogProbs>")
    log_probs = r.float_vector()
    r.expect("</LogProbs>")
    r.expect("</TransitionModel>")
    return entries, tuples, log_probs


# What Kaldi writes after </TransitionModel> in a model file, by the first token.
FOLLOWING_PART = {"<DIMENSION>": "gmm", "<Nnet3>": "nnet3", "<Nnet>": "nnet2", "<NumComponents>": "nnet1"}


@dataclasses.dataclass
class ParsedTransitionModel:
    """The transition-model part of a Kaldi model file, as written there.

    topo_entries: steps_py.kaldi.topology's parsed topology [(phones, [(forward_pdf_class, self_loop_pdf_class,
    [(dst, prob)])])]; tuples: [(phone, hmm_state, forward_pdf, self_loop_pdf)] per transition state (index 0 =
    transition state 1); log_probs [num_transition_ids + 1] float32 (entry 0 unused); binary: the file's format;
    following: what comes after </TransitionModel> ("gmm", "nnet3", "nnet2", "nnet1", "none" or the token).
    """
    topo_entries: list
    tuples: list
    log_probs: np.ndarray
    binary: bool
    following: str

    @property
    def num_pdfs(self):
        return 1 + max(max(f, s) for _, _, f, s in self.tuples)


def read_transition_model_file(path):
    """Parses only the transition-model part of a Kaldi model file (GMM, nnet2/nnet3, copy-transition-model
    output; binary or text) -> ParsedTransitionModel. Nothing after </TransitionModel> is read."""
    data = read_bytes(path)
    binary = is_binary(data)
    if binary:
        r = BinaryReader(data, path)
        r.header()
        entries, tuples, log_probs = parse_transition_model(r)
        rest = data[r.pos:r.pos + 64].lstrip()
        nxt = rest.split(b" ", 1)[0].decode("latin-1") if rest else ""
    else:
        text = data.decode("latin-1")
        if not text.lstrip().startswith("<TransitionModel>"):
            raise InputError(f"{path}: not a Kaldi model file (it does not start with <TransitionModel>)")
        r = TextReader(text, path)
        entries, tuples, log_probs = parse_transition_model(r, topo_from_text_reader)
        nxt = r.peek_token() or ""
    following = FOLLOWING_PART.get(nxt, "none" if not nxt else nxt)
    return ParsedTransitionModel(entries, tuples, np.asarray(log_probs, np.float32), binary, following)


def transition_table(topo_entries, tuples):
    """Pure function: the transition ids of a transition model, in Kaldi's numbering.

    Transition state s (1-based, tuples[s-1] = (phone, hmm_state, forward_pdf, self_loop_pdf)) owns one
    transition id per transition of its topology state, numbered consecutively from 1. Returns a dict of int32
    arrays indexed by transition id [num_tids + 1] (entry 0 unused, -1): ``pdf`` (self_loop_pdf for a self-loop,
    else forward_pdf: TransitionModel::TransitionIdToPdf), ``phone``, ``hmm_state``, ``dst`` (destination HMM
    state), ``tstate`` (transition state), ``final`` (1 if dst is the topology's final state).
    """
    phone2states = {p: states for phones, states in topo_entries for p in phones}
    cols = {k: [-1] for k in ("pdf", "phone", "hmm_state", "dst", "tstate", "final")}
    for s, (phone, hmm_state, fwd, slf) in enumerate(tuples, 1):
        if phone not in phone2states:
            raise InputError(f"transition state {s}: phone {phone} is not in the topology")
        states = phone2states[phone]
        final_state = len(states) - 1   # Kaldi topologies: the last state is final, with no transitions
        for dst, _ in states[hmm_state][2]:
            cols["pdf"].append(slf if dst == hmm_state else fwd)
            cols["phone"].append(phone)
            cols["hmm_state"].append(hmm_state)
            cols["dst"].append(dst)
            cols["tstate"].append(s)
            cols["final"].append(int(dst == final_state))
    return {k: np.asarray(v, dtype=np.int32) for k, v in cols.items()}


def tid2pdf_from_tuples(topo_entries, tuples):
    """[num_tids + 1] int32 transition id -> pdf id (entry 0 = -1), from the file's topology and tuples alone."""
    return transition_table(topo_entries, tuples)["pdf"]


def transition_model_from_parsed(parsed, tree, what="<model>"):
    """khg.TransitionModel from ``tree`` and the file's topology, checked against its tuples, with its
    transition log-probabilities."""
    topo = khg.HmmTopology()
    topo.read(topo_entries_to_text(parsed.topo_entries))
    tm = khg.TransitionModel(ctx_dep=tree, hmm_topo=topo)
    ours = tm_tuples(tm)
    if ours != parsed.tuples:
        diff = next((i for i, (a, b) in enumerate(zip(ours, parsed.tuples)) if a != b), min(len(ours),
                                                                                              len(parsed.tuples)))
        raise InputError(f"{what}: the transition model does not match the tree: {len(parsed.tuples)} transition "
                         f"states in the file, {len(ours)} from tree + topology; first difference at transition "
                         f"state {diff + 1}")
    state = list(tm.__getstate__())
    if len(state[6]) != len(parsed.log_probs):
        raise InputError(f"{what}: {len(parsed.log_probs)} transition log-probs, expected {len(state[6])}")
    state[6] = parsed.log_probs.tolist()
    state[7] = _non_self_loop_log_probs(parsed.tuples, state[2], parsed.log_probs, parsed.topo_entries)
    tm = khg.TransitionModel.__new__(khg.TransitionModel)
    tm.__setstate__(tuple(state))
    return tm


def read_transition_model(model, tree=None):
    """(trans_model, tree, tid2pdf) of a Kaldi model dir (final.mdl + tree) or model file.

    ``model``: a dir holding final.mdl and tree, or a model file (then ``tree`` is its tree file, khg tree, or
    None for <dir of model>/tree). Works for GMM, nnet2/nnet3 and transition-only model files, binary or text.
    tid2pdf: int32 [num_transition_ids + 1], entry 0 unused (computed from the file; equal to the bindings'
    transition_id_to_pdf_array, which is checked).
    """
    if os.path.isdir(model):
        model_path = os.path.join(model, "final.mdl")
        tree = os.path.join(model, "tree") if tree is None else tree
    else:
        model_path = model
        tree = os.path.join(os.path.dirname(model) or ".", "tree") if tree is None else tree
    require_files(model_path, *([tree] if isinstance(tree, str) else []))
    if isinstance(tree, str):
        tree = read_tree(tree)
    parsed = read_transition_model_file(model_path)
    tm = transition_model_from_parsed(parsed, tree, model_path)
    tid2pdf = tid2pdf_from_tuples(parsed.topo_entries, parsed.tuples)
    bindings = np.asarray(tm.transition_id_to_pdf_array(), dtype=np.int32)
    if bindings.size != tid2pdf.size or not np.array_equal(bindings[1:], tid2pdf[1:]):
        raise InputError(f"{model_path}: the bindings' transition-id -> pdf map differs from the file's")
    return tm, tree, tid2pdf


def read_model(path, tree):
    """A Kaldi binary GMM model file (written by write_model or by Kaldi) -> (TransitionModel, AmDiagGmm,
    topo_entries). The transition model comes from ``tree`` and the file (transition_model_from_parsed)."""
    r = BinaryReader(read_bytes(path), path)
    r.header()
    entries, tuples, log_probs = parse_transition_model(r)
    parsed = ParsedTransitionModel(entries, tuples, np.asarray(log_probs, np.float32), True, "gmm")
    tm = transition_model_from_parsed(parsed, tree, path)
    r.expect("<DIMENSION>")
    r.int32()
    r.expect("<NUMPDFS>")
    num_pdfs = r.int32()
    pdfs = []
    for _ in range(num_pdfs):
        tok = r.token()
        if tok not in ("<DiagGMM>", "<DiagGMMBegin>"):
            r.fail(f"expected <DiagGMM>, got {tok}")
        parts = {}
        while True:
            tok = r.token()
            if tok in ("</DiagGMM>", "<DiagGMMEnd>"):
                break
            parts[tok] = r.float_vector() if r.peek(2) == b"FV" else r.float_matrix()
        pdfs.extend([parts["<WEIGHTS>"], parts["<INV_VARS>"], parts["<MEANS_INVVARS>"]])
    am = khg.AmDiagGmm.__new__(khg.AmDiagGmm)
    am.__setstate__(tuple(pdfs))
    am.compute_gconsts()
    return tm, am, entries
