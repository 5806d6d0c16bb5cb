"""steps_py.decode.lattice and graph_arrays: the graph as arrays, our lattice decoder and the LMWT/WIP sweep, against kaldifst, a
hand-made lattice, kaldi_decoder's decoders and Kaldi's pruning rules (the tiny graph of test_graph_decode)."""
import os

import numpy as np
import pytest

from steps_py.decode import fst_utils, graph_arrays, lattice, search
from steps_py.kaldi.bindings import kaldifst
from test_graph_decode import SENTENCES, oracle_loglikes, tiny_fixture, to_words  # noqa: F401 (the fixture "tiny")


def test_graph_arrays_hold_the_fsts_arcs(tiny):
    hclg = tiny["graph"].hclg
    g = graph_arrays.graph_arrays(hclg)
    assert g.start == hclg.start and g.num_states == hclg.num_states
    arcs = [(a.ilabel, a.olabel, a.weight.value, a.nextstate)
            for s in range(hclg.num_states) for a in fst_utils._state_arcs(hclg, s)]
    assert g.num_arcs == len(arcs) > 0
    ilabel, olabel, weight, nextstate = (np.array(col) for col in zip(*arcs))
    assert np.array_equal(g.ilabel, ilabel) and np.array_equal(g.olabel, olabel)
    assert np.array_equal(g.nextstate, nextstate) and np.allclose(g.weight, weight)
    assert np.array_equal(np.diff(g.arc_start), [hclg.num_arcs(s) for s in range(hclg.num_states)])
    finals = np.array([hclg.final(s).value for s in range(hclg.num_states)], np.float32)
    assert np.array_equal(g.final, finals) and np.isfinite(g.final).any() and np.isinf(g.final).any()


def test_bad_graph_bytes_are_refused(tiny, tmp_path):
    path = str(tmp_path / "g.fst")
    tiny["graph"].hclg.write(path)
    good = open(path, "rb").read()
    with pytest.raises(ValueError, match="HCLG: truncated or inconsistent"):
        graph_arrays.parse_vector_fst(good[:-7], what="HCLG")
    with pytest.raises(ValueError, match="not an OpenFst binary FST"):
        graph_arrays.parse_vector_fst(b"#!/bin/sh\n" + good, what="HCLG")
    g = graph_arrays.graph_arrays(tiny["graph"].hclg)
    with pytest.raises(ValueError, match="not a transition id of the model"):
        graph_arrays.pdf_of_arcs(g, tiny["graph"].tid2pdf[:3])


def hand_lattice():
    """Two paths: word 1 (graph 1, acoustic 10) vs words 2 3 (graph 2 + 1, acoustic 1 + 1)."""
    return {"start": 0, "src": np.array([0, 0, 2], np.int32), "dst": np.array([1, 2, 1], np.int32),
            "ilabel": np.array([1, 1, 1], np.int32), "olabel": np.array([1, 2, 3], np.int32),
            "graph_cost": np.array([1.0, 2.0, 1.0]), "acoustic_cost": np.array([10.0, 1.0, 1.0]),
            "final_graph": np.array([np.inf, 0.0, np.inf]), "final_acoustic": np.array([np.inf, 0.0, np.inf])}


def test_sweep_on_a_hand_lattice():
    # LMWT 1: 11 vs 5 -> [2, 3]; LMWT 10: 2 vs 3.2 -> [1]; LMWT 1 with WIP 4: 15 vs 13 -> [2, 3]; WIP 10: 21 vs 25
    assert lattice.sweep_best_paths(hand_lattice(), [1, 10, 1, 1], [0, 0, 4, 10]) == [[2, 3], [1], [2, 3], [1]]


def test_sweep_refuses_a_cycle_and_a_lattice_without_a_final_state():
    cyclic = hand_lattice()
    cyclic["src"], cyclic["dst"] = np.array([0, 1, 2], np.int32), np.array([1, 2, 1], np.int32)
    with pytest.raises(RuntimeError, match="cycle"):
        lattice.sweep_best_paths(cyclic, [1], [0])
    no_final = hand_lattice()
    no_final["final_graph"] = np.full(3, np.inf)
    with pytest.raises(RuntimeError, match="no path to a final state"):
        lattice.sweep_best_paths(no_final, [1], [0])


def test_oracle_log_likelihoods_decode_to_the_known_words(tiny):
    g = tiny["graph"]
    opts = search.DecodeOptions(method="lattice-faster", min_lmwt=8, max_lmwt=12)
    for sentence, (_, pdfs) in zip(SENTENCES, tiny["utts"]):
        hyps, info = search.decode_sweep(g, oracle_loglikes(pdfs, g.num_pdfs), opts)
        assert info["reached_final"] and all(to_words(tiny, h) == sentence for h in hyps)


def noisy(tiny, k, scale=2.0):
    pdfs = tiny["utts"][k][1]
    rng = np.random.default_rng(k)
    return oracle_loglikes(pdfs, tiny["graph"].num_pdfs, wrong=-2.0) + \
        rng.normal(scale=scale, size=(pdfs.size, tiny["graph"].num_pdfs))


def test_wide_beams_give_the_lattice_of_kaldis_decoder(tiny):
    """With beams that prune nothing our raw lattice and LatticeSimpleDecoder's have the same arcs (as multisets of
    word, graph cost and acoustic cost: the state numbering differs)."""
    g = tiny["graph"]
    opts = search.DecodeOptions(beam=1e4, lattice_beam=1e4, max_active=10 ** 6, min_active=0)
    ours, _ = lattice.decode_lattice(*g.arrays(), noisy(tiny, 0), opts.acwt, opts.beam, opts.max_active,
                                     opts.min_active, opts.lattice_beam)
    theirs, _ = search.raw_lattice(g, noisy(tiny, 0), opts.acwt, opts)

    def arcs(a):
        return sorted(zip(a["olabel"].tolist(), np.round(a["graph_cost"], 3).tolist(),
                          np.round(a["acoustic_cost"], 2).tolist()))
    assert len(ours["src"]) == len(theirs["src"]) > 100
    assert arcs(ours) == arcs(theirs)


def test_max_active_bounds_the_tokens_and_the_beam_prunes(tiny):
    g = tiny["graph"]
    ll = noisy(tiny, 1, scale=0.5)
    wide = search.DecodeOptions(method="lattice-faster", beam=1e4, max_active=10 ** 6, min_active=0)
    _, info_wide = search.decode_sweep(g, ll, wide)
    assert info_wide["max_tokens"] > 8
    for max_active in (2, 5):
        narrow = search.DecodeOptions(method="lattice-faster", beam=1e4, max_active=max_active, min_active=0)
        hyps, info = search.decode_sweep(g, ll, narrow)
        assert info["max_tokens"] <= max_active + 1          # Kaldi keeps the tokens up to the (max_active+1)-th
        assert len(hyps) == len(narrow.pairs()) and info["lattice_arcs"] < info_wide["lattice_arcs"]
    _, info_beam = search.decode_sweep(g, ll, search.DecodeOptions(method="lattice-faster", beam=0.5,
                                                                   max_active=10 ** 6, min_active=0))
    assert info_beam["max_tokens"] < info_wide["max_tokens"]


def test_min_active_keeps_tokens_a_tight_beam_would_drop(tiny):
    g = tiny["graph"]
    ll = noisy(tiny, 1, scale=0.5)
    tight = dict(method="lattice-faster", beam=0.5, max_active=10 ** 6)
    _, info0 = search.decode_sweep(g, ll, search.DecodeOptions(min_active=0, **tight))
    _, info8 = search.decode_sweep(g, ll, search.DecodeOptions(min_active=8, **tight))
    assert info8["max_tokens"] >= 8 > info0["max_tokens"]


def test_a_graph_file_written_by_kaldifst_parses_after_reading_back(tiny, tmp_path):
    path = os.path.join(tiny["graph_dir"], "HCLG.fst")
    g = graph_arrays.parse_vector_fst(open(path, "rb").read(), what=path)
    again = graph_arrays.graph_arrays(kaldifst.StdVectorFst.read(path))
    assert np.array_equal(g.nextstate, again.nextstate) and np.array_equal(g.final, again.final)


def test_warm_up_decodes_its_toy_graph():
    assert lattice.warm_up() == [[1]]
