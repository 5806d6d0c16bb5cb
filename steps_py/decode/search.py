"""Decoding core: one utterance's pdf log-likelihoods [T, num_pdfs] and an HCLG graph -> word ids.

The acoustic model is not known here: a GMM, or later a hybrid NN (log-softmax minus log-prior), produces a
matrix of pdf log-likelihoods per utterance (T frames of 10 ms, num_pdfs columns) and this module does the rest.
The matrix is expanded to transition ids (``M[:, tid - 1] = acwt * loglik[:, pdf(tid)]``) for
``kaldi_decoder.DecodableCtc``, which returns ``M[t, ilabel - 1]``; this is exactly Kaldi's
DecodableMatrixScaledMapped, and keeps HCLG standard (transition ids on the input side).

Kaldi's score.sh picks the best path of each lattice for every LM weight (LMWT, acoustic scale 1/LMWT) and word
insertion penalty (WIP). Determinised lattices are not available in the Python bindings, so two methods:

- ``lattice``: ``kaldi_decoder.LatticeSimpleDecoder`` at one acoustic scale (``acwt``) with a lattice beam gives
  a raw state-level lattice; every (LMWT, WIP) best path is then found at once by a dynamic programme over the
  lattice (steps_py.decode.lattice.sweep_best_paths: every arc relaxed once for all the pairs, in topological
  order). Same as Kaldi, paths outside the lattice beam cannot win.
- ``lattice-faster``: our decoder (steps_py.decode.lattice, numba): token passing with beam, max-active
  and min-active like Kaldi's LatticeFasterDecoder, one decode per utterance giving the raw lattice that the same
  dynamic programme sweeps. Bounded active states and one decode per sweep.
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
    method: str = "lattice-faster"   # lattice-faster | lattice | bestpath
    acwt: float = 0.083333           # acoustic scale of the lattice decode (Kaldi's GMM decode.sh: 1/12)
    beam: float = 13.0
    lattice_beam: float = 6.0
    max_active: int = 7000           # bestpath and lattice-faster (LatticeSimpleDecoder has no max_active)
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

    def __init__(self, hclg, tid2pdf, num_pdfs, path=None):
        self.hclg = hclg
        self.path = path            # the file hclg was read from (lattice-faster parses it directly)
        self.tid2pdf = np.asarray(tid2pdf, dtype=np.int64)
        self.num_pdfs = int(num_pdfs)
        self.wip_graphs = {0.0: hclg}
        self._arrays = None

    def arrays(self):
        """(kaldi.fst_io.GraphArrays of HCLG, the pdf of each arc): made on first use (lattice-faster only)."""
        if self._arrays is None:
            from steps_py.decode import lattice
            from steps_py.kaldi import fst_io
            g = None
            if self.path:                      # the file hclg was read from, parsed as it is
                with open(self.path, "rb") as f:
                    try:
                        g = fst_io.parse_fst(f.read(), what=self.path)
                    except ValueError:
                        g = None
            if g is None or g.num_states != self.hclg.num_states:
                g = fst_io.graph_arrays(self.hclg)
            self._arrays = g, lattice.pdf_of_arcs(g, self.tid2pdf)
        return self._arrays

    @classmethod
    def from_trans_model(cls, hclg, trans_model, path=None):
        t2p = np.asarray(trans_model.transition_id_to_pdf_array(), dtype=np.int64)  # [0] is a dummy entry
        if t2p.size != trans_model.num_transition_ids + 1:
            raise ValueError(f"transition_id_to_pdf_array has {t2p.size} entries for "
                             f"{trans_model.num_transition_ids} transition ids")
        return cls(hclg, t2p, trans_model.num_pdfs, path)

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


def decode_sweep(graph, loglikes, opts):
    """Word ids for every (LMWT, WIP) pair of ``opts.pairs()`` for one utterance.

    Returns (list of word-id lists in the order of ``opts.pairs()``, info dict with ``reached_final`` and, for the
    lattice method, ``lattice_arcs``).
    """
    pairs = opts.pairs()
    if opts.method in ("lattice", "lattice-faster"):
        from steps_py.decode import lattice      # numba: imported by the lattice methods only
        if opts.method == "lattice":
            arrays, reached_final = raw_lattice(graph, loglikes, opts.acwt, opts)
        else:
            g, pdf_of_arc = graph.arrays()
            arrays, reached_final = lattice.decode_lattice(
                g, pdf_of_arc, check_loglikes(graph, loglikes), opts.acwt, opts.beam, opts.max_active,
                opts.min_active, opts.lattice_beam)
        hyps = lattice.sweep_best_paths(arrays, [p[0] for p in pairs], [p[1] for p in pairs])
        info = {"reached_final": reached_final, "lattice_arcs": int(arrays["src"].size)}
        if "max_tokens" in arrays:
            info["max_tokens"] = arrays["max_tokens"]
        return hyps, info
    if opts.method == "bestpath":
        hyps, finals = [], []
        for lmwt, wip in pairs:
            bp = best_path(graph, loglikes, 1.0 / lmwt, opts, wip=wip)
            hyps.append(bp.words)
            finals.append(bp.reached_final)
        return hyps, {"reached_final": all(finals)}
    raise ValueError(f"unknown decoding method {opts.method!r} (lattice, lattice-faster or bestpath)")
