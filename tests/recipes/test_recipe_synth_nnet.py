"""egs/synth/s5 stages 5-9 on the tiny corpus, as a user runs them: RNN training (NSGD), hybrid decoding, the
comparison tables, memory extraction at decode time, the analyses and the HTML reports."""
import json
import os
import re
import subprocess

import kaldiio
import numpy as np
import pytest
import torch

from steps_py.decode.scoring import best_for_dir
from steps_py.kaldi.io import read_alignments

from conftest import ROOT, TINY_OPTS, TINY_TRAIN_CONF, recount_wer, run_recipe, run_stages

MODELS = ("lstm_2l", "gru_2l")


@pytest.fixture(scope="module")
def memvis_recipe(tiny_nnet):
    return run_stages(tiny_nnet, 8, 9)


def test_training_learns_and_writes_a_resumable_model_dir(tiny_nnet):
    for m in MODELS:
        d = os.path.join(tiny_nnet, "exp", "nnet", m)
        for f in ("final.pt", "prior.vec", "final.mdl", "tree", "cmvn_opts", "nnet.conf", "train_summary.json",
                  "log/train.log"):
            assert os.path.exists(os.path.join(d, f)), f"{d}/{f}"
        summary = json.load(open(os.path.join(d, "train_summary.json")))
        hist = summary["history"]
        assert len(hist) == summary["num_iters"] >= 3
        # the model learns: training CE falls well below the uniform-guess CE, and validation CE stays below it
        # and reaches well below it (40 training utterances: later iterations overfit the 4 held-out ones, so the
        # last validation CE need not be the lowest)
        num_pdfs = kaldiio.load_mat(os.path.join(d, "prior.vec")).size
        assert hist[-1]["train_ce"] < 0.75 * np.log(num_pdfs)
        assert max(h["valid_ce"] for h in hist) < np.log(num_pdfs)
        assert min(h["valid_ce"] for h in hist) < 0.85 * np.log(num_pdfs)
        assert 0.0 < hist[-1]["valid_acc"] <= 1.0
        assert hist[0]["lr"] > hist[-1]["lr"]
        assert os.listdir(os.path.join(d, "tensorboard"))
        ckpt = torch.load(os.path.join(d, "final.pt"), weights_only=False)
        assert ckpt["iter"] == summary["num_iters"] and ckpt["num_pdfs"] == num_pdfs


def test_hybrid_decoding_gives_wer_lines(tiny_nnet):
    results = open(os.path.join(tiny_nnet, "RESULTS")).read()
    for m in MODELS:
        for s in ("dev", "eval"):
            d = f"exp/nnet/{m}/decode_tgpr_{s}"
            line = best_for_dir(os.path.join(tiny_nnet, d))
            errors, words = (int(x) for x in re.match(r"%WER \S+ \[ (\d+) / (\d+),", line).groups())
            assert recount_wer(line.split()[-1]) == (errors, words), line
            assert f"{' '.join(line.split()[:-1])} {d}/{os.path.basename(line.split()[-1])}" in results, line


def test_compare_table_lists_both_models(tiny_nnet):
    text = open(os.path.join(tiny_nnet, "exp", "nnet", "compare_wer.txt")).read()
    assert "lstm_2l" in text and "gru_2l" in text
    assert re.search(r"# WER dev", text) and re.search(r"Table 1", text)


def test_rerun_of_stages_5_to_7_skips_finished_work(tiny_nnet):
    out, seconds = run_recipe(tiny_nnet, *TINY_OPTS, "--stage", "5", "--stop-stage", "7",
                              "--train-conf", TINY_TRAIN_CONF)
    assert out.count("final.pt exists; nothing to do") == 2
    # every decode of both models and both sets found its work done and up to date: no job was started
    for m in MODELS:
        for s in ("dev", "eval"):
            assert f"skipped: exp/nnet/{m}/decode_tgpr_{s} is up to date" in out, f"{m} {s}"
    assert "decoded data/" not in out and ") making " not in out


def test_extraction_lines_up_with_alignment_and_decoding(memvis_recipe):
    from steps_py.nnet.checkpoint import load_acoustic_model
    from steps_py.memvis.data import Extraction
    d = os.path.join(memvis_recipe, "exp", "nnet", "lstm_2l")
    ext = Extraction.load(os.path.join(d, "extract_dev"))
    assert ext.cell == "lstm" and ext.num_layers == 2 and ext.quantities == ["c", "h", "i", "f", "o"]
    assert len(ext.utts) == 8
    # the utterances tri2b aligned carry their phones (the tiny GMM fails on some dev utterances: no phones)
    alis = read_alignments(os.path.join(memvis_recipe, "exp", "tri2b_ali_dev"), "phone_ali")
    assert len(set(ext.utts) & set(alis)) >= 4
    for utt in ext.utts:
        aligned = ext.aligned_frames[ext.utt_slice(utt)]
        if utt in alis:
            assert aligned.mean() > 0.99, utt
            ids = ext.kaldi_phone_ids[ext.utt_slice(utt)]
            n = min(len(ids), len(alis[utt]))
            assert (ids[:n] == alis[utt][:n]).all(), utt
        else:
            assert not aligned.any(), utt
    # the extracted values are those of the model on these features (float16 storage)
    bundle = load_acoustic_model(d)
    utt = ext.utts[0]
    feats = ext.feats[ext.utt_slice(utt)]
    _, layers = bundle.internals(np.asarray(feats))
    np.testing.assert_allclose(ext.values(2, "c", ext.utt_slice(utt)), layers[1]["c"], rtol=2e-3, atol=2e-3)
    gates = ext.values(1, "f")
    assert gates.min() >= 0.0 and gates.max() <= 1.0


def test_every_analysis_and_the_findings_are_written(memvis_recipe):
    for m in MODELS:
        out = os.path.join(memvis_recipe, "exp", "nnet", m, "memvis_dev")
        for a in ("distributions", "responsibility", "tsne", "saturation", "units", "noise", "noise_late",
                  "cocluster", "trajectories", "horizon"):
            numbers = json.load(open(os.path.join(out, a, "numbers.json")))
            assert numbers, f"{m} {a}"
            assert any(f.endswith(".png") for f in os.listdir(os.path.join(out, a))), f"{m} {a}"
            assert any(f.endswith(".svg") for f in os.listdir(os.path.join(out, a))), f"{m} {a}"
    nnet = os.path.join(memvis_recipe, "exp", "nnet")
    findings = json.load(open(os.path.join(nnet, "memvis_dev", "findings", "findings.json")))
    claims = {c["id"]: c for c in findings["claims"]}
    # every measured claim carries the interval of its difference, and its verdict is the interval's
    for cid, c in claims.items():
        if c["holds"] == "not measured":
            assert c["ci95"] is None, cid
            continue
        lo, hi = c["ci95"]
        assert lo <= hi, cid
        want = True if lo > 0 else False if hi < 0 else "inconclusive"
        if cid == "lstm_values_in_range" and want is True:     # mostly in range, and the tails beyond 2 too
            want = c["measured"]["lstm_2l"]["p99.9_abs"] > 2
        assert c["holds"] == want, cid
    # the noise claim rests on the per-utterance persistences memvis.noise wrote
    noise = {m: json.load(open(os.path.join(nnet, m, "memvis_dev", "noise", "numbers.json"))) for m in MODELS}
    medians = {m: np.median([np.mean([r["persistence_frames"] for r in u["layers"].values()])
                             for u in noise[m]["utterances"].values()]) for m in MODELS}
    measured = claims["noise_lingers_in_lstm"]["measured"]["lstm_2l vs gru_2l"]
    assert measured["lstm_median"] == pytest.approx(medians["lstm_2l"])
    assert measured["gru_median"] == pytest.approx(medians["gru_2l"])
    assert claims["lazy_improves_wer"]["holds"] == "not measured"   # no lazy model in the default grid
    assert findings["models"]["lstm_2l"]["wer_ci95"][0] <= findings["models"]["lstm_2l"]["wer"]


def test_reports_render_in_chromium_without_errors(memvis_recipe):
    from chromium import Chromium, assert_clean_run, need_chromium, run_selftest
    need_chromium()
    with Chromium() as browser:
        for m in MODELS:
            page = os.path.join(memvis_recipe, "exp", "nnet", m, "memvis_dev", "report.html")
            html = open(page, encoding="utf-8").read()
            assert "findings" in html.lower() and html.count("data:image/png;base64") >= 8
            assert_clean_run(run_selftest(browser, page), page)
        page = os.path.join(memvis_recipe, "exp", "nnet", "memvis_dev", "report.html")   # the run's page
        run = run_selftest(browser, page)
        assert_clean_run(run, page)
        assert "claims first, 8 claim links resolve" in run.selftest and "model gru_2l" in run.selftest
        assert os.path.getsize(page) < 30e6


def test_recognize_new_audio(tiny_nnet):
    s5 = tiny_nnet
    wav_scp = dict(line.split(maxsplit=1) for line in open(os.path.join(s5, "data", "dev", "wav.scp")))
    utt, wav = sorted(wav_scp.items())[0]
    wav = wav.strip()
    assert not wav.endswith("|"), "the tiny corpus has plain wav files"
    res = subprocess.run([os.path.join(ROOT, "tools", "venv", "bin", "python"), "-m", "steps_py.nnet.recognize",
                          "--nnet-dir", "exp/nnet/lstm_2l", "--graph-dir", "exp/tri2b/graph_tgpr", wav],
                         cwd=s5, capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=ROOT))
    assert res.returncode == 0, res.stderr[-2000:]
    fields = res.stdout.split()
    assert fields[0] == wav and len(fields) >= 2


def test_grid_file_overrides_model_settings(tiny_gmm, tmp_path):
    """A grid line "<name> <conf> <setting>=<value>..." trains conf/nnet/<conf>.conf with the settings replaced
    (utils/nnet_stage.sh --grid FILE): the run dir's nnet.conf and checkpoint hold them, and the decay_time given
    there bounds the cell of the trained model on real features of dev (|c| <= decay_time)."""
    from steps_py.nnet.checkpoint import load_acoustic_model
    grid = tmp_path / "grid_override.txt"
    grid.write_text("# test grid\n\nov_lstm  lstm_2l  cell_dim=24 num_layers=1 decay_time=8\n")
    train_conf = tmp_path / "train.conf"
    train_conf.write_text(open(TINY_TRAIN_CONF).read() + "num_epochs=1\n")
    r = subprocess.run(["bash", "-c", f". ./path.sh && . ./cmd.sh && utils/nnet_stage.sh --nj 1 --grid {grid} "
                        f"--train-conf {train_conf} train train dev"], cwd=tiny_gmm, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    d = os.path.join(tiny_gmm, "exp", "nnet", "ov_lstm")
    bundle = load_acoustic_model(d)
    assert (bundle.cfg.cell, bundle.cfg.cell_dim, bundle.cfg.num_layers, bundle.cfg.decay_time, bundle.cfg.peephole) \
        == ("lstm", 24, 1, 8.0, True)                     # the overrides, and lstm_2l's own settings elsewhere
    assert "decay_time=8" in open(os.path.join(d, "nnet.conf")).read()
    peak = 0.0
    for _, feats in bundle.iter_features(os.path.join(tiny_gmm, "data", "dev_fbank")):
        _, layers = bundle.internals(feats)
        peak = max(peak, float(np.abs(layers[0]["c"]).max()))
    assert 0.0 < peak <= 8.0
