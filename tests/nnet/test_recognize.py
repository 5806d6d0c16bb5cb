"""steps_py.nnet.recognize on the tiny recipe: the Fbank + per-file CMVN of recognize equal data/train_fbank's
features with per-utterance CMVN, an oracle acoustic model (one-hot log-likelihoods from the monophone
alignments) gives back the reference words, and the command line prints ``<file> <words>`` per file.

The acoustic model is a randomly initialised tiny network in the checkpoint format of steps_py.nnet.train (no
training here); the graph is mkgraph of exp/short/mono with data/lang_test_tgpr."""
import os
import subprocess
import sys

import kaldiio
import numpy as np
import pytest

from conftest import ROOT, run_step

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def model_dir(tiny_recipe, mono, mono_ali):
    import torch
    from steps_py.kaldi.io import write_kaldi_vector
    from steps_py.nnet.config import NnetConfig
    from steps_py.nnet.model import AcousticModel
    from steps_py.kaldi.model_io import read_transition_model
    import shutil
    ali_dir = mono_ali[0]
    graph = os.path.join(mono, "graph_tgpr")
    if not os.path.exists(os.path.join(graph, "HCLG.fst")):
        run_step(["-m", "steps_py.decode.mkgraph", "data/lang_test_tgpr", "exp/short/mono",
                  "exp/short/mono/graph_tgpr"],
                 tiny_recipe)
    d = os.path.join(tiny_recipe, "exp", "short", "nnet_random")
    os.makedirs(d, exist_ok=True)
    for f in ("final.mdl", "tree"):
        shutil.copy(os.path.join(ali_dir, f), d)
    num_pdfs = read_transition_model(d)[0].num_pdfs
    cfg = NnetConfig(cell="lstm", num_layers=1, cell_dim=16, label_delay=2)
    torch.manual_seed(0)
    model = AcousticModel(cfg, 40, num_pdfs)
    torch.save({"nnet_config": cfg.to_dict(), "input_dim": 40, "num_pdfs": num_pdfs,
                "model": model.state_dict()}, os.path.join(d, "final.pt"))
    write_kaldi_vector(os.path.join(d, "prior.vec"), np.full(num_pdfs, 1.0 / num_pdfs))
    with open(os.path.join(d, "cmvn_opts"), "w") as f:
        f.write("--norm-means=true --norm-vars=false\n")
    return d, graph, ali_dir


def wav_of(s5, utt):
    from steps_py.data.datadir import read_map
    path = read_map(os.path.join(s5, "data", "train", "wav.scp"))[utt]
    return path if os.path.isabs(path) else os.path.join(s5, path)


def test_features_and_oracle_decoding(tiny_recipe, model_dir):
    from steps_py.decode import search
    from steps_py.nnet import recognize
    from steps_py.feats.cmvn import apply_cmvn, cmvn_stats
    from steps_py.data.datadir import read_map
    from steps_py.kaldi.io import read_int_vectors
    d, graph, ali_dir = model_dir
    rec = recognize.Recognizer(d, graph, os.path.join(ROOT, "conf", "fbank.conf"),
                               search.DecodeOptions(beam=13.0, max_active=3000), lmwt=10, wip=0.0)
    feats_scp = read_map(os.path.join(tiny_recipe, "data", "train_fbank", "feats.scp"))
    text = read_map(os.path.join(tiny_recipe, "data", "train", "text"))
    ali = {}
    for job in (1, 2):
        ali.update(read_int_vectors(os.path.join(ali_dir, f"ali.{job}.gz")))
    tid2pdf = np.asarray(rec.bundle.trans_model.transition_id_to_pdf_array())
    utts = sorted(ali)[:3]
    for utt in utts:
        path = wav_of(tiny_recipe, utt)
        feats = rec.features(path)
        stored = kaldiio.load_mat(os.path.join(tiny_recipe, feats_scp[utt]) if not os.path.isabs(feats_scp[utt])
                                  else feats_scp[utt])
        np.testing.assert_allclose(feats, apply_cmvn(stored, cmvn_stats(stored)), atol=1e-4)
        # the random network gives [T, num_pdfs] log-likelihoods for the file
        assert rec.bundle.loglikes(feats).shape == (feats.shape[0], rec.graph.num_pdfs)
        # oracle: log-likelihood 0 for the aligned pdf, -10 elsewhere -> the reference words
        pdfs = tid2pdf[ali[utt]]
        oracle = np.full((pdfs.size, rec.graph.num_pdfs), -10.0, np.float32)
        oracle[np.arange(pdfs.size), pdfs] = 0.0
        rec.bundle.loglikes = lambda _feats, oracle=oracle: oracle
        assert rec.words(path) == text[utt].split()
        del rec.bundle.loglikes


def test_command_line(tiny_recipe, model_dir, tmp_path):
    d, graph, _ = model_dir
    from steps_py.data.datadir import read_map
    wavs = [wav_of(tiny_recipe, u) for u in sorted(read_map(os.path.join(tiny_recipe, "data", "train",
                                                                          "wav.scp")))[:2]]
    missing = str(tmp_path / "missing.wav")
    r = subprocess.run([sys.executable, "-m", "steps_py.nnet.recognize", "--nnet-dir", d, "--graph-dir", graph,
                        "--max-active", "500", *wavs, missing], cwd=ROOT, capture_output=True, text=True,
                       env=dict(os.environ, PYTHONPATH=ROOT))
    assert r.returncode == 1, r.stderr                      # the missing file fails, the others are printed
    lines = r.stdout.splitlines()
    assert [line.split()[0] for line in lines] == wavs
    vocab = set(read_map(os.path.join(graph, "words.txt")))
    assert all(w in vocab for line in lines for w in line.split()[1:])
    assert "missing.wav" in r.stderr and "LMWT 12, WIP 0.0" in r.stderr and "Traceback" not in r.stderr
