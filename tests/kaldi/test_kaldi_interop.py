"""Reading files made by a real Kaldi installation (tests/fixtures/kaldi/yesno, see its README): transition model,
tree, alignments, HCLG and MFCC features of Kaldi's egs/yesno monophone system."""
import os
import shutil

import kaldiio
import numpy as np
import pytest

from steps_py.common import InputError
from steps_py.kaldi import interop, model_io, tree_io
from steps_py.kaldi.bindings import kaldifst
from steps_py.kaldi.io import read_int_vectors
from steps_py.kaldi.model_io import read_model
from steps_py.kaldi.tree_io import read_tree, tree_to_bytes

from conftest import FIXTURES

YESNO = os.path.join(FIXTURES, "kaldi", "yesno")
MONO = os.path.join(YESNO, "exp", "mono")


@pytest.fixture(scope="module")
def mono():
    tm, tree, tid2pdf = model_io.read_transition_model(MONO)
    parsed = model_io.read_transition_model_file(os.path.join(MONO, "final.mdl"))
    return tm, tree, tid2pdf, parsed


def test_transition_model_of_kaldi_gmm(mono):
    tm, tree, tid2pdf, parsed = mono
    assert (tm.num_pdfs, tm.num_transition_ids, tree.num_pdfs) == (11, 30, 11)
    assert (tree.context_width, tree.central_position) == (1, 0)
    assert parsed.binary and parsed.following == "gmm" and parsed.num_pdfs == 11
    assert len(parsed.tuples) == 11                       # <Triples>: 5 states of SIL + 3 each of 2 phones
    np.testing.assert_array_equal(tid2pdf[1:], np.asarray(tm.transition_id_to_pdf_array())[1:])
    # SIL (phone 1) owns pdfs 0-4 and tids 1-18; the transition log-probs are the file's
    assert set(tid2pdf[1:19]) == {0, 1, 2, 3, 4} and tm.transition_id_to_phone(18) == 1
    np.testing.assert_allclose(np.asarray(tm.log_probs)[1:], parsed.log_probs[1:], rtol=1e-6)
    # the GMM reader of steps_py.kaldi.model_io agrees on the same file
    tm2, am, _ = read_model(os.path.join(MONO, "final.mdl"), tree)
    assert am.num_pdfs == 11 and am.dim == 39
    assert list(tm2.transition_id_to_pdf_array()) == list(tm.transition_id_to_pdf_array())


def test_kaldi_alignments_are_consistent_with_the_transition_model(mono):
    tm, _, tid2pdf, parsed = mono
    ali = read_int_vectors(os.path.join(MONO, "ali.1.gz"))      # text-format records (train_mono.sh)
    assert len(ali) == 31 and sum(a.size for a in ali.values()) == 18996
    table = model_io.transition_table(parsed.topo_entries, parsed.tuples)
    for utt, tids in ali.items():
        assert 1 <= tids.min() and tids.max() <= tm.num_transition_ids
        assert interop.alignment_violations(table, tids) == 0, utt
    # the check can fail: Kaldi reorders self-loops after the forward transition, so reorder=False is wrong
    one = ali["0_0_0_0_1_1_1_1"]
    assert interop.alignment_violations(table, one, reorder=False) > 0
    # and a transition model with a shuffled tid numbering would not fit
    assert interop.alignment_violations(table, np.where(one == 17, 19, one)) > 0
    # every utterance starts and ends in silence: pdfs of phone 1 (SIL)
    pdfs = tid2pdf[one]
    assert pdfs[0] in range(5) and pdfs[-1] in range(5)


def test_lead_reader_of_alignment_dirs(tmp_path):
    from steps_py.nnet.egs import read_pdf_alignments
    targets, num_pdfs = read_pdf_alignments(MONO)
    assert num_pdfs == 11 and len(targets) == 31
    assert all(t.min() >= 0 and t.max() < 11 for t in targets.values())


def test_kaldi_hclg_uses_the_models_transition_ids(mono):
    tm = mono[0]
    hclg = kaldifst.StdVectorFst.read(os.path.join(MONO, "graph", "HCLG.fst"))
    ilabels = interop.hclg_input_labels(hclg)
    assert hclg.num_states == 24 and ilabels.size == 54
    assert ilabels.min() >= 0 and ilabels.max() == tm.num_transition_ids
    olabels = {arc.olabel for s in range(hclg.num_states) for arc in kaldifst.ArcIterator(hclg, s)}
    assert olabels <= {0, 1, 2, 3}                         # <eps> <SIL> NO YES of words.txt, no #0
    summary = interop.check_kaldi_dir(MONO, os.path.join(MONO, "graph"))
    assert summary["alignments_inconsistent"] == 0 and summary["hclg_ilabels_are_tids"]


def test_decoding_kaldi_features_with_kaldi_model_and_graph(mono):
    """Kaldi MFCC + CMVN -> deltas -> Kaldi GMM log-likelihoods -> our decoder on Kaldi's HCLG: the words are the
    references and the best path's pdfs are those of Kaldi's own forced alignment."""
    from steps_py.decode import search
    from steps_py.feats.pipeline import FeaturePipeline
    from steps_py.gmm.model import GmmArrays
    tm, tree, tid2pdf, _ = mono
    _, am, _ = read_model(os.path.join(MONO, "final.mdl"), tree)
    arrays, pipeline = GmmArrays(am), FeaturePipeline(MONO)
    data = os.path.join(YESNO, "data", "train_yesno")
    cmvn = dict(kaldiio.load_ark(os.path.join(data, "cmvn_train_yesno.ark")))["global"]
    graph = search.DecodingGraph.from_trans_model(
        kaldifst.StdVectorFst.read(os.path.join(MONO, "graph", "HCLG.fst")), tm)
    words = {int(i): w for w, i in (line.split() for line in open(os.path.join(MONO, "graph", "words.txt")))}
    refs = dict(line.split(None, 1) for line in open(os.path.join(data, "text")))
    ali = read_int_vectors(os.path.join(MONO, "ali.1.gz"))
    n = 0
    for utt, mfcc in kaldiio.load_ark(os.path.join(data, "raw_mfcc_train_yesno.1.ark")):
        loglikes = arrays.pdf_loglikes(pipeline(mfcc, cmvn))
        best = search.best_path(graph, loglikes, 0.1, search.DecodeOptions(beam=13.0))
        assert " ".join(words[w] for w in best.words) == refs[utt].strip()
        assert len(best.tids) == ali[utt].size == mfcc.shape[0]
        assert np.mean(tid2pdf[best.tids] == tid2pdf[ali[utt]]) > 0.98
        n += 1
    assert n == 8


def test_nnet3_and_transition_only_model_files(tmp_path, mono):
    """An nnet3 final.mdl starts with the same TransitionModel; copy-transition-model writes it alone."""
    tm, _, tid2pdf, _ = mono
    data = open(os.path.join(MONO, "final.mdl"), "rb").read()
    end = data.index(b"</TransitionModel> ") + len(b"</TransitionModel> ")
    for name, tail, kind in [("nnet3.mdl", b"<Nnet3> \ninput-node name=input dim=40\n", "nnet3"),
                             ("trans.mdl", b"", "none")]:
        path = tmp_path / name
        path.write_bytes(data[:end] + tail)
        shutil.copy(os.path.join(MONO, "tree"), tmp_path / "tree")
        tm2, _, t2p = model_io.read_transition_model(str(path))
        assert model_io.read_transition_model_file(str(path)).following == kind
        np.testing.assert_array_equal(t2p, tid2pdf)
        assert tm2.num_transition_ids == tm.num_transition_ids
    with pytest.raises(InputError, match="does not start with <TransitionModel>"):
        (tmp_path / "bad.mdl").write_text("<Nnet3> ")
        model_io.read_transition_model(str(tmp_path / "bad.mdl"))


def test_text_format_tree_and_transition_model(tmp_path, mono):
    """--binary=false files: text tree (copy-tree) and text transition model (copy-transition-model)."""
    tm, tree, tid2pdf, parsed = mono
    text_tree = tree_io.tree_to_text(tree)
    assert text_tree.startswith("ContextDependency 1 0 ToPdf TE 0 4 ( NULL")
    assert tree_io.tree_text_to_binary(text_tree) == tree_to_bytes(tree)
    from steps_py.kaldi.topology import topo_entries_to_text
    lines = ["<TransitionModel> ", topo_entries_to_text(parsed.topo_entries), f"<Triples> {len(parsed.tuples)} "]
    lines += [f"{p} {s} {f} " for p, s, f, _ in parsed.tuples]
    lines += ["</Triples> ", "<LogProbs> ", " [ " + " ".join(repr(float(x)) for x in parsed.log_probs) + " ]",
              "</LogProbs> ", "</TransitionModel> "]
    (tmp_path / "final.mdl").write_text("\n".join(lines) + "\n")
    (tmp_path / "tree").write_text(text_tree)
    tm2, tree2, t2p = model_io.read_transition_model(str(tmp_path))
    assert not model_io.read_transition_model_file(str(tmp_path / "final.mdl")).binary
    np.testing.assert_array_equal(t2p, tid2pdf)
    np.testing.assert_allclose(np.asarray(tm2.log_probs), np.asarray(tm.log_probs), rtol=1e-6)
    assert tree_to_bytes(tree2) == tree_to_bytes(tree)


def test_tree_that_does_not_belong_to_the_model(tmp_path, mono):
    """A model with other transition states than tree + topology give is refused with a clear message."""
    parsed = mono[3]
    other = model_io.ParsedTransitionModel(parsed.topo_entries, parsed.tuples[:-1], parsed.log_probs[:-2],
                                     parsed.binary, parsed.following)
    with pytest.raises(InputError, match="does not match the tree"):
        model_io.transition_model_from_parsed(other, mono[1], "x.mdl")


def test_our_own_dirs_read_the_same(tmp_path, mono):
    """Our writer's binary tree round-trips through the any-format reader."""
    tree = mono[1]
    from steps_py.kaldi.tree_io import write_tree
    write_tree(str(tmp_path / "tree"), tree)
    assert tree_to_bytes(tree_io.read_tree(str(tmp_path / "tree"))) == tree_to_bytes(read_tree(os.path.join(MONO,
                                                                                                          "tree")))
