"""Decoding core: one utterance's pdf log-likelihoods [T, num_pdfs] and an HCLG graph -> word ids.

The acoustic model is not known here: a GMM, or later a hybrid NN (log-softmax minus log-prior), produces a
matrix of pdf log-likelihoods per utterance (T frames of 10 ms, num_pdfs columns) and this module does the rest.
The matrix is expanded to transition ids (``M[:, tid - 1] = acwt * loglik[:, pdf(tid)]``) for
``kaldi_decoder.DecodableCtc``, which returns ``M[t, ilabel - 1]``; this is exactly Kaldi's
DecodableMatrixScaledMapped, and keeps HCLG standard (transition ids on the input side).

Kaldi's score.sh picks the best path of each lattice for every LM weight (LMWT, acoustic scale 1/LMWT) and word
insertion penalty (WIP). Determinised lattices are not available in the Python bindings, so two methods:

- ``lattice`` (default): ``kaldi_decoder.LatticeSimpleDecoder`` at one acoustic scale (``acwt``) with a lattice
  beam gives a raw state-level lattice; every (LMWT, WIP) best path is then found at once by a dynamic programme
  over the lattice in numpy, vectorised over all the (LMWT, WIP) pairs (one numpy step per topological level of
  the lattice, i.e. about one per frame). Same as Kaldi, paths outside the lattice beam cannot win.
- ``bestpath``: ``kaldi_decoder.FasterDecoder`` once per (LMWT, WIP) with acoustic scale 1/LMWT on a copy of HCLG
  whose word arcs carry the penalty. Exact for each pair, has ``max_active`` (safe on big graphs with uncertain
  acoustics), but costs one decode per pair.

Costs are those of Kaldi's scoring: graph cost + acoustic cost / LMWT + WIP * number of words, with the acoustic
cost the negated unscaled log-likelihood.
"""
import dataclasses

import numpy as np

from steps_py.decode import fst_utils
from steps_py.kaldi.bindings import kaldi_decoder


@dataclasses.dataclass
class DecodeOptions:
    """Decoder settings (conf/decode.conf). Beams are in cost units at the decoding acoustic scale."""
    method: str = "lattice"          # lattice | bestpath
    acwt: float = 0.083333           # acoustic scale of the lattice decode (Kaldi's GMM decode.sh: 1/12)
    beam: float = 13.0
    lattice_beam: float = 6.0
    max_active: int = 7000           # bestpath only (LatticeSimpleDecoder has no max_active)
    min_active: int = 200
    min_lmwt: int = 8
    max_lmwt: int = 26
    lmwt_step: int = 1               # LM weights min_lmwt, min_lmwt + step, ... up to max_lmwt
    word_ins_penalties: tuple = (0.0, 0.5, 1.0)

    @property
    def lmwts(self):
        return list(range(self.min_lmwt, self.max_lmwt + 1, self.lmwt_step))

    def pairs(self):
        """All (LMWT, WIP) pairs of the sweep, in the order used by the result arrays."""
        return [(lmwt, wip) for wip in self.word_ins_penalties for lmwt in self.lmwts]


class DecodingGraph:
    """An HCLG (input labels: transition ids, output labels: word ids) with its transition-id -> pdf map.

    ``tid2pdf``: int array [num_transition_ids + 1], entry 0 unused. ``wip_graphs`` caches copies of HCLG with a
    word insertion penalty on the word arcs (bestpath method only).
    """

    def __init__(self, hclg, tid2pdf, num_pdfs):
        self.hclg = hclg
        self.tid2pdf = np.asarray(tid2pdf, dtype=np.int64)
        self.num_pdfs = int(num_pdfs)
        self.wip_graphs = {0.0: hclg}

    @classmethod
    def from_trans_model(cls, hclg, trans_model):
        t2p = np.asarray(trans_model.transition_id_to_pdf_array(), dtype=np.int64)  # [0] is a dummy entry
        if t2p.size != trans_model.num_transition_ids + 1:
            raise ValueError(f"transition_id_to_pdf_array has {t2p.size} entries for "
                             f"{trans_model.num_transition_ids} transition ids")
        return cls(hclg, t2p, trans_model.num_pdfs)

    def with_penalty(self, wip):
        wip = float(wip)
        if wip not in self.wip_graphs:
            g = self.hclg.copy()
            fst_utils.add_word_insertion_penalty(g, wip)
            self.wip_graphs[wip] = g
        return self.wip_graphs[wip]


def check_loglikes(graph, loglikes):
    loglikes = np.asarray(loglikes)
    if loglikes.ndim != 2 or loglikes.shape[1] != graph.num_pdfs:
        raise ValueError(f"log-likelihoods have shape {loglikes.shape}, expected [T, {graph.num_pdfs}]")
    return loglikes


def decodable(graph, loglikes, acwt):
    """kaldi_decoder.DecodableCtc over ``acwt * loglikes`` expanded to transition ids ([T, num_tids], float32)."""
    loglikes = check_loglikes(graph, loglikes)
    scaled = (acwt * loglikes).astype(np.float32, copy=False)
    return kaldi_decoder.DecodableCtc(np.ascontiguousarray(scaled[:, graph.tid2pdf[1:]]))


@dataclasses.dataclass
class BestPath:
    words: list             # word ids
    tids: list              # transition ids, one per frame
    cost: float             # graph cost + acwt-scaled acoustic cost
    reached_final: bool


def best_path(graph, loglikes, acwt, opts, wip=0.0):
    """FasterDecoder best path of one utterance at acoustic scale ``acwt`` and word insertion penalty ``wip``."""
    dopts = kaldi_decoder.FasterDecoderOptions(beam=opts.beam, max_active=opts.max_active,
                                               min_active=opts.min_active)
    decoder = kaldi_decoder.FasterDecoder(graph.with_penalty(wip), dopts)
    decoder.decode(decodable(graph, loglikes, acwt))
    reached_final = decoder.reached_final()
    ok, lat = decoder.get_best_path(use_final_probs=reached_final)
    if not ok:
        return BestPath([], [], float("inf"), False)
    arrays = fst_utils.lattice_to_arrays(lat)
    # The best path is linear: follow it from the start state.
    order = _linear_path_arcs(arrays)
    cost = float(np.sum(arrays["graph_cost"][order] + arrays["acoustic_cost"][order]))
    words = [int(w) for w in arrays["olabel"][order] if w != 0]
    tids = [int(t) for t in arrays["ilabel"][order] if t != 0]
    return BestPath(words, tids, cost, reached_final)


def _linear_path_arcs(arrays):
    """Arc indices of a linear lattice in path order."""
    by_src = {int(s): i for i, s in enumerate(arrays["src"])}
    out, state = [], arrays["start"]
    while state in by_src:
        i = by_src[state]
        out.append(i)
        state = int(arrays["dst"][i])
    return np.asarray(out, dtype=np.int64)


def raw_lattice(graph, loglikes, acwt, opts):
    """Raw state-level lattice (LatticeSimpleDecoder) as arrays, acoustic costs unscaled (-log-likelihood).

    Returns (arrays as fst_utils.lattice_to_arrays, reached_final). Raises RuntimeError if decoding failed.
    """
    config = kaldi_decoder.LatticeSimpleDecoderConfig(beam=opts.beam, lattice_beam=opts.lattice_beam)
    decoder = kaldi_decoder.LatticeSimpleDecoder(graph.hclg, config)
    if not decoder.decode(decodable(graph, loglikes, acwt)):
        raise RuntimeError("decoding failed: no active tokens")
    reached_final = np.isfinite(decoder.final_relative_cost())
    ok, lat = decoder.get_raw_lattice(use_final_probs=reached_final)
    if not ok or lat.num_states == 0:
        raise RuntimeError("decoder returned an empty lattice")
    arrays = fst_utils.lattice_to_arrays(lat)
    arrays["acoustic_cost"] /= acwt
    arrays["final_acoustic"] /= acwt
    return arrays, bool(reached_final)


def lattice_best_paths(arrays, lmwts, wips):
    """Best word sequence of a lattice for every (LMWT, WIP) pair, all pairs in one pass.

    ``arrays``: lattice arrays with unscaled acoustic costs; ``lmwts``, ``wips``: equal-length sequences (K pairs).
    Path cost = graph + acoustic / LMWT + WIP * number of words (Kaldi's lattice-scale --inv-acoustic-scale=LMWT |
    lattice-add-penalty --word-ins-penalty=WIP | lattice-best-path). Returns a list of K word-id lists.
    """
    inv_lmwt = 1.0 / np.asarray(lmwts, dtype=np.float64)
    wips = np.asarray(wips, dtype=np.float64)
    src, dst, olabel = arrays["src"], arrays["dst"], arrays["olabel"]
    num_states = arrays["final_graph"].size
    num_pairs = inv_lmwt.size
    # arc costs [A, K]
    arc_cost = (arrays["graph_cost"][:, None] + arrays["acoustic_cost"][:, None] * inv_lmwt[None, :]
                + (olabel != 0)[:, None] * wips[None, :])
    level = fst_utils.topological_levels(num_states, src, dst, arrays["start"])
    best = np.full((num_states, num_pairs), np.inf)
    best[arrays["start"]] = 0.0
    back = np.full((num_states, num_pairs), -1, dtype=np.int64)
    # arcs sorted by (level of destination, destination): each level is one block, each destination a segment
    order = np.lexsort((dst, level[dst]))
    arc_level = level[dst][order]
    bounds = np.searchsorted(arc_level, np.arange(level.max() + 2))
    cols = np.arange(num_pairs)
    for lev in range(1, level.max() + 1):
        arcs = order[bounds[lev]:bounds[lev + 1]]
        if arcs.size == 0:
            continue
        cand = best[src[arcs]] + arc_cost[arcs]                       # [n, K]
        d = dst[arcs]
        seg = np.flatnonzero(np.r_[True, d[1:] != d[:-1]])            # first arc of each destination
        seg_min = np.minimum.reduceat(cand, seg, axis=0)              # [num_dst, K]
        best[d[seg]] = seg_min
        win_arc, win_col = np.nonzero(cand == best[d])
        back[d[win_arc], win_col] = arcs[win_arc]
    total = best + (arrays["final_graph"][:, None] + arrays["final_acoustic"][:, None] * inv_lmwt[None, :])
    state = np.argmin(total, axis=0)                                   # [K]
    if not np.all(np.isfinite(total[state, cols])):
        raise RuntimeError("lattice has no path to a final state")
    words = [[] for _ in range(num_pairs)]
    while True:
        arc = back[state, cols]
        live = arc >= 0
        if not live.any():
            break
        for k in np.flatnonzero(live & (olabel[np.maximum(arc, 0)] != 0)):
            words[k].append(int(olabel[arc[k]]))
        state = np.where(live, src[np.maximum(arc, 0)], state)
    return [w[::-1] for w in words]


def decode_sweep(graph, loglikes, opts):
    """Word ids for every (LMWT, WIP) pair of ``opts.pairs()`` for one utterance.

    Returns (list of word-id lists in the order of ``opts.pairs()``, info dict with ``reached_final`` and, for the
    lattice method, ``lattice_arcs``).
    """
    pairs = opts.pairs()
    if opts.method == "lattice":
        arrays, reached_final = raw_lattice(graph, loglikes, opts.acwt, opts)
        hyps = lattice_best_paths(arrays, [p[0] for p in pairs], [p[1] for p in pairs])
        return hyps, {"reached_final": reached_final, "lattice_arcs": int(arrays["src"].size)}
    if opts.method == "bestpath":
        hyps, finals = [], []
        for lmwt, wip in pairs:
            bp = best_path(graph, loglikes, 1.0 / lmwt, opts, wip=wip)
            hyps.append(bp.words)
            finals.append(bp.reached_final)
        return hyps, {"reached_final": all(finals)}
    raise ValueError(f"unknown decoding method {opts.method!r} (lattice or bestpath)")
