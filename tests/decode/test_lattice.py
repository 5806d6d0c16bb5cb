"""steps_py.decode.lattice and steps_py.kaldi.fst_io: the graph as arrays (vector and Kaldi's const FSTs), our
lattice decoder and the LMWT/WIP sweep, against kaldifst, a hand-made lattice, kaldi_decoder's decoders and Kaldi's
pruning rules (the tiny graph of test_graph_decode)."""
import dataclasses
import os

import numpy as np
import pytest

from steps_py.common import InputError
from steps_py.decode import fst_utils, lattice, search
from steps_py.kaldi import fst_io
from steps_py.kaldi.bindings import kaldifst
from test_graph_decode import SENTENCES, oracle_loglikes, tiny_fixture, to_words  # noqa: F401 (the fixture "tiny")


def test_graph_arrays_hold_the_fsts_arcs(tiny):
    hclg = tiny["graph"].hclg
    g = fst_io.graph_arrays(hclg)
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
        fst_io.parse_fst(good[:-7], what="HCLG")
    with pytest.raises(ValueError, match="not an OpenFst binary FST"):
        fst_io.parse_fst(b"#!/bin/sh\n" + good, what="HCLG")
    g = fst_io.graph_arrays(tiny["graph"].hclg)
    with pytest.raises(ValueError, match="not a transition id of the model"):
        lattice.pdf_of_arcs(g, tiny["graph"].tid2pdf[:3])


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
    g = fst_io.parse_fst(open(path, "rb").read(), what=path)
    again = fst_io.graph_arrays(kaldifst.StdVectorFst.read(path))
    assert np.array_equal(g.nextstate, again.nextstate) and np.array_equal(g.final, again.final)


def test_warm_up_decodes_its_toy_graph():
    assert lattice.warm_up() == [[1]]


# toy graphs where Kaldi's pruning rules decide (each against kaldi_decoder.FasterDecoder's best path)
def toy_graph(arcs, finals, num_states):
    """A StdVectorFst from (src, tid, word, weight, dst) arcs and (state, weight) finals; start 0."""
    f = kaldifst.StdVectorFst()
    for _ in range(num_states):
        f.add_state()
    f.start = 0
    for s, i, o, w, d in arcs:
        f.add_arc(s, kaldifst.StdArc(i, o, w, d))
    for s, w in finals:
        f.set_final(s, w)
    return f


def toy_decodes(arcs, finals, num_states, loglikes, tid2pdf, **opts):
    """(our (reached_final, words), FasterDecoder's (reached_final, words)) at acoustic scale 1."""
    num_pdfs = max(tid2pdf) + 1
    graph = search.DecodingGraph(toy_graph(arcs, finals, num_states), np.array(tid2pdf, np.int64), num_pdfs)
    ll = np.asarray(loglikes, np.float32)
    o = search.DecodeOptions(method="lattice-faster", acwt=1.0, min_lmwt=1, max_lmwt=1,
                             word_ins_penalties=(0.0,), **opts)
    (words,), info = search.decode_sweep(graph, ll, o)
    bp = search.best_path(graph, ll, 1.0, o)
    return (info["reached_final"], words), (bp.reached_final, bp.words)


def test_an_epsilon_arc_from_a_token_beyond_max_active_still_reaches_the_final_state():
    # one frame: tokens at 0, 0.5, 0.7 and 1.0; only the last one goes on (epsilon, word 7) to the final state
    arcs = [(0, 1, 0, 0.0, 1), (0, 2, 0, 0.5, 2), (0, 3, 0, 0.7, 3), (0, 3, 0, 1.0, 5), (5, 0, 7, 0.0, 4)]
    ours, faster = toy_decodes(arcs, [(4, 0.0)], 6, [[0, 0, 0]], [0, 0, 1, 2], beam=10.0, max_active=2,
                               min_active=0)
    assert ours == faster == (True, [7])


def test_a_negative_epsilon_weight_keeps_the_path_through_it():
    arcs = [(0, 0, 5, -3.0, 1), (1, 1, 0, 0.0, 2)]      # start --eps (word 5, -3)--> 1 --emitting--> 2 (final)
    ours, faster = toy_decodes(arcs, [(2, 0.0)], 3, [[0]], [0, 0], beam=2.0, max_active=10 ** 6, min_active=0)
    assert ours == faster == (True, [5])


def test_fewer_tokens_than_min_active_are_not_pruned():
    # the cheap branch (cost 0) is a dead end; the one beyond the beam (5 > 3) reaches the final state
    arcs = [(0, 1, 0, 0.0, 1), (0, 2, 9, 5.0, 2), (1, 1, 0, 0.0, 1), (2, 3, 0, 0.0, 3)]
    ours, faster = toy_decodes(arcs, [(3, 0.0)], 4, [[0, 0, 0], [0, 0, 0]], [0, 0, 1, 2], beam=3.0,
                               max_active=10 ** 6, min_active=5)
    assert ours == faster == (True, [9])


def test_a_kaldi_const_fst_reads_as_the_vector_fst(tiny, tmp_path):
    """Kaldi's mkgraph.sh writes HCLG as a ConstFst, which the kaldifst bindings cannot read: ours parses it (both
    layouts, packed and aligned), and the decoders get the same graph."""
    hclg = tiny["graph"].hclg
    path = str(tmp_path / "HCLG.fst")
    kaldifst.StdConstFst(hclg).write(path)
    assert kaldifst.StdVectorFst.read(path) is None
    g, ref = fst_io.parse_fst(open(path, "rb").read(), what=path), fst_io.graph_arrays(hclg)
    for name in ("final", "arc_start", "ilabel", "olabel", "weight", "nextstate"):
        assert np.array_equal(getattr(g, name), getattr(ref, name)), name
    again = fst_io.read_fst(path)
    assert again.num_states == hclg.num_states and fst_utils.num_arcs_total(again) == ref.num_arcs
    graph = search.DecodingGraph.from_trans_model(again, tiny["tm"], path)
    ll = oracle_loglikes(tiny["utts"][0][1], graph.num_pdfs)
    opts = search.DecodeOptions(min_lmwt=8, max_lmwt=12)
    for method in ("bestpath", "lattice-faster"):
        hyps, _ = search.decode_sweep(graph, ll, dataclasses.replace(opts, method=method))
        assert all(to_words(tiny, h) == SENTENCES[0] for h in hyps), method


def aligned_const_fst(packed):
    """The same ConstFst binary with the states and the arcs at multiples of 16 bytes (OpenFst's --fst_align)."""
    buf = np.frombuffer(packed, np.uint8)
    pos = 4
    for _ in range(2):
        pos += 4 + int(np.frombuffer(buf, np.int32, 1, pos)[0])
    flags_at, body = pos + 4, pos + 4 + 4 + 8 + 24
    num_states = int(np.frombuffer(buf, np.int64, 1, pos + 16 + 8)[0])
    states_end = body + 20 * num_states
    def pad(b):
        return b + bytes(-len(b) % 16)
    head = bytearray(packed[:body])
    head[flags_at:flags_at + 4] = (int(np.frombuffer(buf, np.int32, 1, flags_at)[0]) | 4).to_bytes(4, "little")
    out = pad(bytes(head)) + packed[body:states_end]
    return pad(out) + packed[states_end:]


def test_an_aligned_const_fst_and_bad_ones(tiny, tmp_path):
    path = str(tmp_path / "HCLG.fst")
    kaldifst.StdConstFst(tiny["graph"].hclg).write(path)
    packed = open(path, "rb").read()
    ref = fst_io.parse_fst(packed)
    g = fst_io.parse_fst(aligned_const_fst(packed))
    assert np.array_equal(g.nextstate, ref.nextstate) and np.array_equal(g.final, ref.final)
    with pytest.raises(ValueError, match="truncated or inconsistent"):
        fst_io.parse_fst(packed[:-5])
    bad = tmp_path / "bad.fst"
    bad.write_bytes(b"not an fst")
    with pytest.raises(InputError, match="cannot read .*bad.fst: .*not an OpenFst binary FST"):
        fst_io.read_fst(str(bad))
