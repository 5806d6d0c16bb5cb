"""Usage: python -m steps_py.kaldi_interop <model-or-ali-dir> [<graph-dir>]
  e.g. python -m steps_py.kaldi_interop exp/tri4b_ali_si284 exp/tri4b/graph_tgpr
prints what was read: number of pdfs, transition ids, alignments and their consistency with the transition
model, and whether HCLG's input labels are transition ids of this model.

Reading the model, tree, alignment and graph dirs of a real Kaldi installation (e.g. exp/tri4b_ali_si284).

The recurrent-network stages need only four things of a Kaldi system dir: the transition model (for the
transition-id -> pdf map), the tree, the alignments and, for decoding, HCLG.fst. steps_py.kaldi reads the files
our own GMM stages write (binary, GMM models). Real Kaldi dirs can differ:

- the model file may be an nnet2/nnet3 model (``<TransitionModel> ... </TransitionModel> <Nnet3> ...``) or a
  copy-transition-model output with nothing after the transition model: only the transition model is read here;
- files written with ``--binary=false`` (Kaldi text format): text trees and text transition models are read;
- older models have ``<Triples>`` (one pdf per HMM state), newer ones ``<Tuples>`` (forward and self-loop pdf);
- alignments of steps/train_mono.sh are text records (``ark,t:|gzip -c``); steps_py.kaldi.read_int_vectors
  reads both kinds.

The transition model is rebuilt with the bindings from the tree and the file's topology and checked against the
file's tuples (so a tree that does not belong to the model is an error, not silent garbage); the transition-id ->
pdf map is also computed directly from the file (``tid2pdf_from_tuples``), independently of the bindings.

Functions:
  read_transition_model(model_dir_or_file, tree=None) -> (trans_model, tree, tid2pdf [num_tids + 1] int32)
  read_tree_any(path)                                  -> khg.ContextDependency (binary or text tree file)
  tree_to_text(tree), tree_text_to_binary(text)        -> copy-tree --binary=false and back
  read_transition_model_file(path)                     -> ParsedTransitionModel (topology, tuples, log-probs, what
                                                          follows: "gmm", "nnet3", "nnet2", "none", ...)
  alignment_violations(info, tids)                     -> number of HMM-inconsistent steps in an alignment
  check_kaldi_dir(dir)                                 -> a summary dict (what a user sees with
                                                          ``python -m steps_py.kaldi_interop <dir>``)

"""
import argparse
import dataclasses
import glob
import json
import os

import numpy as np

from steps_py.kaldi import (BinaryReader, bin_int32, bin_int_vector, bin_token, kaldifst, khg,  # noqa: I001
                            parse_transition_model, read_int_vectors, tm_tuples, topo_entries_to_text,
                            tree_from_bytes,
                            _non_self_loop_log_probs)
from steps_py.common import InputError, get_logger, run_main

log = get_logger("kaldi_interop")

# What Kaldi writes after </TransitionModel> in a model file, by the first token.
FOLLOWING_PART = {"<DIMENSION>": "gmm", "<Nnet3>": "nnet3", "<Nnet>": "nnet2", "<NumComponents>": "nnet1"}


# ---------------------------------------------------------------------------------------------------------------
# Kaldi text format: a whitespace tokenizer with the same methods as steps_py.kaldi.BinaryReader

class TextReader:
    """Reads Kaldi text-format objects (``--binary=false``) token by token; ``name`` is used in error messages."""

    def __init__(self, text, name="<text>"):
        self.toks = text.split()
        self.i = 0
        self.name = name

    def _fail(self, what):
        raise InputError(f"{self.name}: token {self.i}: {what}")

    def at_end(self):
        return self.i >= len(self.toks)

    def peek_token(self):
        return None if self.at_end() else self.toks[self.i]

    def token(self):
        if self.at_end():
            self._fail("unexpected end of file")
        self.i += 1
        return self.toks[self.i - 1]

    def expect(self, tok):
        got = self.token()
        if got != tok:
            self.i -= 1
            self._fail(f"expected {tok}, got {got}")

    def int32(self):
        tok = self.token()
        try:
            return int(tok)
        except ValueError:
            self.i -= 1
            self._fail(f"expected an integer, got {tok}")

    def float32(self):
        tok = self.token()
        try:
            return float(tok)
        except ValueError:
            self.i -= 1
            self._fail(f"expected a number, got {tok}")

    def _bracketed(self):
        self.expect("[")
        out = []
        while self.peek_token() != "]":
            out.append(self.token())
        self.i += 1
        return out

    def int_vector(self):
        """WriteIntegerVector text form: ``[ 1 2 3 ]``."""
        return np.array(self._bracketed(), dtype=np.int32)

    def float_vector(self):
        """Vector<float> text form: ``[ 0.1 0.2 ]``."""
        return np.array(self._bracketed(), dtype=np.float32)


def _is_binary(data):
    return data[:2] == b"\0B"


def _read_bytes(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise InputError(f"cannot read {path}: {e.strerror}") from None


# ---------------------------------------------------------------------------------------------------------------
# Trees

def _event_map_text_to_binary(r):
    """One EventMap from TextReader ``r`` -> Kaldi binary bytes (src/tree/event-map.cc Write(binary=true))."""
    tok = r.token()
    if tok == "NULL":
        return bin_token("NULL")
    if tok == "CE":
        return bin_token("CE") + bin_int32(r.int32())
    if tok == "TE":
        key, size = r.int32(), r.int32()
        r.expect("(")
        parts = [_event_map_text_to_binary(r) for _ in range(size)]
        r.expect(")")
        return bin_token("TE") + bin_int32(key) + b"\xfc" + int(size).to_bytes(4, "little") + bin_token("(") \
            + b"".join(parts) + bin_token(")")
    if tok == "SE":
        key = r.int32()
        yes_set = r.int_vector()
        r.expect("{")
        yes = _event_map_text_to_binary(r)
        no = _event_map_text_to_binary(r)
        r.expect("}")
        return bin_token("SE") + bin_int32(key) + bin_int_vector(yes_set) + bin_token("{") + yes + no \
            + bin_token("}")
    r.i -= 1
    r._fail(f"expected an event map (NULL, CE, TE or SE), got {tok}")


def tree_text_to_binary(text, name="<tree>"):
    """Kaldi text ContextDependency (``ContextDependency 3 1 ToPdf TE ... EndContextDependency``) -> the binary
    ContextDependency bytes (without the \\0B header) that steps_py.kaldi.tree_from_bytes loads."""
    r = TextReader(text, name)
    r.expect("ContextDependency")
    width, central = r.int32(), r.int32()
    r.expect("ToPdf")
    body = _event_map_text_to_binary(r)
    r.expect("EndContextDependency")
    return (bin_token("ContextDependency") + bin_int32(width) + bin_int32(central) + bin_token("ToPdf") + body
            + bin_token("EndContextDependency"))


def _event_map_binary_to_text(r, out):
    tok = r.token()
    if tok == "NULL":
        out.append("NULL")
    elif tok == "CE":
        out.append(f"CE {r.int32()}")
    elif tok == "TE":
        key, size = r.int32(), r.uint32()
        r.expect("(")
        out.append(f"TE {key} {size} (")
        for _ in range(size):
            _event_map_binary_to_text(r, out)
        r.expect(")")
        out.append(")\n")
    elif tok == "SE":
        key = r.int32()
        yes_set = r.int_vector()
        r.expect("{")
        out.append(f"SE {key} [ {' '.join(map(str, yes_set))} ]\n{{")
        _event_map_binary_to_text(r, out)
        _event_map_binary_to_text(r, out)
        r.expect("}")
        out.append("}\n")
    else:
        r._fail(f"expected an event map, got {tok}")


def tree_to_text(tree):
    """khg.ContextDependency -> Kaldi text form (what ``copy-tree --binary=false`` prints)."""
    from steps_py.kaldi import tree_to_bytes
    r = BinaryReader(tree_to_bytes(tree), "<tree>")
    r.expect("ContextDependency")
    out = [f"ContextDependency {r.int32()} {r.int32()}"]
    r.expect("ToPdf")
    out.append("ToPdf")
    _event_map_binary_to_text(r, out)
    r.expect("EndContextDependency")
    return " ".join(out) + " EndContextDependency \n"


def read_tree_any(path):
    """A Kaldi tree file, binary or text -> khg.ContextDependency."""
    data = _read_bytes(path)
    if _is_binary(data):
        return tree_from_bytes(data[2:])
    text = data.decode("latin-1")
    if not text.lstrip().startswith("ContextDependency"):
        raise InputError(f"{path}: not a Kaldi tree (neither binary nor text ContextDependency)")
    return tree_from_bytes(tree_text_to_binary(text, path))


# ---------------------------------------------------------------------------------------------------------------
# Transition models

@dataclasses.dataclass
class ParsedTransitionModel:
    """The transition-model part of a Kaldi model file, as written there.

    topo_entries: steps_py.kaldi's parsed topology [(phones, [(forward_pdf_class, self_loop_pdf_class,
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


def _topo_from_text_reader(r):
    """HmmTopology text form inside a model file -> parsed entries (same as steps_py.kaldi.parse_topo_text)."""
    from steps_py.kaldi import parse_topo_text
    start = r.i
    r.expect("<Topology>")
    while r.token() != "</Topology>":
        pass
    return parse_topo_text(" ".join(r.toks[start:r.i]))


def read_transition_model_file(path):
    """Parses only the transition-model part of a Kaldi model file (GMM, nnet2/nnet3, copy-transition-model
    output; binary or text) -> ParsedTransitionModel. Nothing after </TransitionModel> is read."""
    data = _read_bytes(path)
    binary = _is_binary(data)
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
        entries, tuples, log_probs = parse_transition_model(r, _topo_from_text_reader)
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
    transition log-probabilities (as steps_py.kaldi.read_model does for GMM files)."""
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
    for f in [model_path] + ([tree] if isinstance(tree, str) else []):
        if not os.path.exists(f):
            raise InputError(f"no such file {f}")
    if isinstance(tree, str):
        tree = read_tree_any(tree)
    parsed = read_transition_model_file(model_path)
    tm = transition_model_from_parsed(parsed, tree, model_path)
    tid2pdf = tid2pdf_from_tuples(parsed.topo_entries, parsed.tuples)
    bindings = np.asarray(tm.transition_id_to_pdf_array(), dtype=np.int32)
    if bindings.size != tid2pdf.size or not np.array_equal(bindings[1:], tid2pdf[1:]):
        raise InputError(f"{model_path}: the bindings' transition-id -> pdf map differs from the file's")
    return tm, tree, tid2pdf


# ---------------------------------------------------------------------------------------------------------------
# Checks of alignments and graphs

def alignment_violations(table, tids, reorder=True):
    """Number of steps of a transition-id alignment [T] that the HMM topology does not allow.

    ``table``: transition_table(...). Forward transitions (not self-loops) must chain: after a transition to a
    non-final HMM state d the next forward transition leaves state d of the same phone; after one into the final
    state the next leaves state 0 of a (new) phone; the first leaves state 0 and the last enters a final state.
    Self-loops belong to the transition state of the forward transition just before them (``reorder=True``,
    Kaldi's default in compile-train-graphs and mkgraph.sh: a state's self-loops come after its forward
    transition) or just after them (reorder=False). 0 for every real Kaldi alignment of this model.
    """
    tids = np.asarray(tids, dtype=np.int64)
    if tids.size == 0:
        return 0
    if tids.min() < 1 or tids.max() >= table["pdf"].size:
        raise InputError(f"transition ids outside 1..{table['pdf'].size - 1}")
    is_loop = table["dst"][tids] == table["hmm_state"][tids]
    fwd_pos = np.flatnonzero(~is_loop)
    if fwd_pos.size == 0:
        return int(tids.size)
    fwd = tids[fwd_pos]
    cur, nxt = fwd[:-1], fwd[1:]
    ok_within = (table["phone"][nxt] == table["phone"][cur]) & (table["hmm_state"][nxt] == table["dst"][cur])
    ok_new = table["hmm_state"][nxt] == 0
    bad = int(np.where(table["final"][cur] == 1, ~ok_new, ~ok_within).sum())
    bad += int(table["hmm_state"][fwd[0]] != 0) + int(table["final"][fwd[-1]] != 1)
    loop_pos = np.flatnonzero(is_loop)
    if loop_pos.size:
        k = np.searchsorted(fwd_pos, loop_pos)          # index of the first forward transition after each loop
        owner = k - 1 if reorder else k
        valid = (owner >= 0) & (owner < fwd_pos.size)
        bad += int((~valid).sum())
        owner_tid = tids[fwd_pos[owner[valid]]]
        bad += int((table["tstate"][tids[loop_pos[valid]]] != table["tstate"][owner_tid]).sum())
    return bad


def ali_files(ali_dir):
    """ali.N.gz of a Kaldi alignment dir, N = 1..num_jobs (num_jobs file) or all present, in job order."""
    nj_path = os.path.join(ali_dir, "num_jobs")
    if os.path.exists(nj_path):
        nj = int(open(nj_path).read().split()[0])
        files = [os.path.join(ali_dir, f"ali.{j}.gz") for j in range(1, nj + 1)]
        missing = [f for f in files if not os.path.exists(f)]
        if missing:
            raise InputError(f"{nj_path} says {nj} jobs but {missing[0]} is missing")
        return files
    return sorted(glob.glob(os.path.join(ali_dir, "ali.*.gz")), key=lambda p: int(p.split(".")[-2]))


def hclg_input_labels(hclg):
    """All arc input labels of an FST, int64 [num_arcs]."""
    labels = []
    for s in range(hclg.num_states):
        for arc in kaldifst.ArcIterator(hclg, s):
            labels.append(arc.ilabel)
    return np.asarray(labels, dtype=np.int64)


def check_kaldi_dir(model_dir, graph_dir=None):
    """Reads a Kaldi model/alignment dir (and optionally a graph dir) and says what was found (a dict)."""
    tm, tree, tid2pdf = read_transition_model(model_dir)
    parsed = read_transition_model_file(os.path.join(model_dir, "final.mdl"))
    table = transition_table(parsed.topo_entries, parsed.tuples)
    out = {"model_dir": model_dir, "model_format": "binary" if parsed.binary else "text",
           "model_kind": parsed.following, "num_pdfs": int(tm.num_pdfs),
           "num_transition_ids": int(tm.num_transition_ids), "context_width": int(tree.context_width),
           "central_position": int(tree.central_position)}
    files = ali_files(model_dir)
    if files:
        utts = frames = bad_utts = 0
        for path in files:
            for utt, tids in read_int_vectors(path).items():
                utts += 1
                frames += tids.size
                if tids.size and (tids.min() < 1 or tids.max() > tm.num_transition_ids):
                    raise InputError(f"{path}: {utt}: transition ids outside 1..{tm.num_transition_ids}")
                bad_utts += alignment_violations(table, tids) > 0
        out.update(alignment_files=len(files), alignment_utts=utts, alignment_frames=frames,
                   alignments_inconsistent=bad_utts)
    if graph_dir:
        path = os.path.join(graph_dir, "HCLG.fst")
        if not os.path.exists(path):
            raise InputError(f"no such file {path}")
        hclg = kaldifst.StdVectorFst.read(path)
        ilabels = hclg_input_labels(hclg)
        out.update(hclg_states=int(hclg.num_states), hclg_arcs=int(ilabels.size),
                   hclg_max_ilabel=int(ilabels.max(initial=0)),
                   hclg_ilabels_are_tids=bool(ilabels.max(initial=0) <= tm.num_transition_ids))
        if not out["hclg_ilabels_are_tids"]:
            log.warning(f"{path}: input label {out['hclg_max_ilabel']} > {tm.num_transition_ids} transition ids "
                        f"of {model_dir}/final.mdl: graph and model do not belong together")
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model_dir", help="Kaldi dir with final.mdl and tree (and maybe ali.*.gz, num_jobs)")
    p.add_argument("graph_dir", nargs="?", help="Kaldi graph dir with HCLG.fst")
    a = p.parse_args()
    print(json.dumps(check_kaldi_dir(a.model_dir, a.graph_dir), indent=1))


if __name__ == "__main__":
    run_main(main)
