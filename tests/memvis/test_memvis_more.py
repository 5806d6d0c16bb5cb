"""Tests of the memvis analyses noise, cocluster, trajectories, compare and findings (steps_py.memvis): pure
functions against direct numpy computations and planted signals, then one end-to-end run per command on small
extractions (fakes.fake_extraction) and, for noise, on synthetic audio with a randomly initialised model bundle."""
import json
import os

import numpy as np
import pytest

from steps_py.feats.cmvn import cmvn_stats
from steps_py.memvis import cocluster as cocl
from steps_py.memvis import compare as cmp
from steps_py.memvis import findings as fnd
from steps_py.memvis import noise, stats
from steps_py.memvis import trajectories as traj

from conftest import ROOT, run_step


# ---------------------------------------------------------------------------------------------------------------
# fixtures

@pytest.fixture(scope="session")
def extractions(tmp_path_factory):
    """Small LSTM and GRU extractions (random-init models on synthetic features, 4 utterances)."""
    from fakes import fake_extraction
    d = tmp_path_factory.mktemp("memvis_more")
    return {cell: fake_extraction(str(d / f"extract_{cell}"), cell=cell, num_layers=2, cell_dim=16, num_utts=4,
                                  seed=1, max_frames=160)
            for cell in ("lstm", "gru")}


def random_bundle(cell, seed=0):
    """A checkpoint.AcousticModelBundle around a randomly initialised model (no transition model needed)."""
    import torch
    torch.set_num_threads(1)

    from steps_py.nnet.checkpoint import AcousticModelBundle
    from steps_py.feats.pipeline import CmvnPipeline
    from steps_py.nnet.config import NnetConfig
    from steps_py.nnet.model import AcousticModel
    torch.manual_seed(seed)
    cfg = NnetConfig(cell=cell, num_layers=2, cell_dim=16)
    model = AcousticModel(cfg, 40, 10).eval()
    return AcousticModelBundle(model, np.zeros(10, np.float32), cfg, CmvnPipeline(), None, None)


# ---------------------------------------------------------------------------------------------------------------
# noise: pure parts

def test_add_white_noise_level_and_span():
    rng = np.random.default_rng(0)
    rate = 16000
    clean = (1000 * np.sin(np.arange(3 * rate) * 0.05)).astype(np.float32)
    rms = np.sqrt(np.mean(clean.astype(np.float64) ** 2))
    noisy, (a, b) = noise.add_white_noise(clean, rate, 1.0, 0.2, -6.0, rng)
    assert (a, b) == (16000, 19200)
    np.testing.assert_array_equal(noisy[:a], clean[:a])
    np.testing.assert_array_equal(noisy[b:], clean[b:])
    added = noisy[a:b].astype(np.float64) - clean[a:b]
    assert np.sqrt(np.mean(added ** 2)) == pytest.approx(rms * 10 ** (-6 / 20), rel=0.05)
    replaced, _ = noise.add_white_noise(clean, rate, 1.0, 0.2, 0.0, np.random.default_rng(0), mode="replace")
    assert np.sqrt(np.mean(replaced[a:b].astype(np.float64) ** 2)) == pytest.approx(rms, rel=0.05)


def test_noisy_frame_span_matches_brute_force():
    window, shift, T = 400, 160, 300
    for first, end in ((16000, 19200), (0, 100), (5, 161), (47000, 48000)):
        frames = [t for t in range(T) if t * shift < end and t * shift + window > first]
        want = (frames[0], frames[-1] + 1) if frames else None
        got = noise.noisy_frame_span(first, end, window, shift, T)
        if want:
            assert got == want
        else:
            assert got[0] == got[1]
    assert noise.input_window_span((98, 120), splice=1, label_delay=5, num_frames=300) == (92, 116)


def test_delta_and_curve_match_numpy():
    rng = np.random.default_rng(2)
    clean, noisy = rng.normal(size=(50, 8)), rng.normal(size=(52, 8))
    d = noise.memory_delta(clean, noisy)
    np.testing.assert_allclose(d, np.abs(noisy[:50] - clean))
    np.testing.assert_allclose(noise.delta_curve(d), np.abs(noisy[:50] - clean).mean(1))


def test_persistence_of_planted_decays():
    """One persistent unit (time constant 40 frames) among quiet ones against a fast one (2 frames)."""
    T, H, start, end = 400, 10, 100, 120
    t = np.arange(T)
    clean = np.zeros((T, H))

    def noisy_with(tau):
        n = clean.copy()
        bump = np.where(t < start, 0.0, np.where(t < end, 1.0, np.exp(-(t - end) / tau)))
        n[:, 0] = bump * 5.0
        return n

    slow, fast = (noise.analyse_utterance([clean], [noisy_with(tau)], (start, end), end, threshold_rel=0.1,
                                          hold=5)[0]["1"] for tau in (40.0, 2.0))
    # curve = 0.5 * exp(-(t-end)/tau) after the noise; below 10% of the peak 0.5 once t - end > tau * ln 10
    assert slow["persistence_frames"] == int(np.floor(40 * np.log(10))) + 1
    assert fast["persistence_frames"] == int(np.floor(2 * np.log(10))) + 1
    assert not slow["censored"] and slow["peak"] == pytest.approx(0.5)
    never = noise.persistence(np.ones(50), 10, threshold_rel=0.5)
    assert never["censored"] and never["persistence_frames"] == 40
    absolute = noise.persistence(np.r_[np.zeros(10), np.linspace(1, 0, 41)], 10, threshold_abs=0.5)
    assert absolute["persistence_frames"] == 21 and absolute["threshold"] == 0.5


# ---------------------------------------------------------------------------------------------------------------
# noise end to end (synthetic audio, random-init model bundle; the command line itself needs a trained
# model dir with final.mdl, which the tests do not build)

def test_noise_end_to_end(tmp_path):
    import kaldiio
    import soundfile
    rate = 16000
    rng = np.random.default_rng(5)
    data = tmp_path / "data"
    data.mkdir()
    wav_lines, spk_lines = [], []
    for i in range(2):
        t = np.arange(int(2.2 * rate)) / rate
        x = 3000 * np.sin(2 * np.pi * (200 + 50 * i) * t) * (1 + np.sin(2 * np.pi * 3 * t)) + rng.normal(0, 30, t.size)
        path = tmp_path / f"u{i}.wav"
        soundfile.write(path, x.astype(np.int16), rate, subtype="PCM_16")
        wav_lines.append(f"spk1_u{i} {path}")
        spk_lines.append(f"spk1_u{i} spk1")
    (data / "wav.scp").write_text("\n".join(wav_lines) + "\n")
    (data / "utt2spk").write_text("\n".join(spk_lines) + "\n")
    conf = os.path.join(ROOT, "conf", "fbank.conf")
    # speaker CMVN stats of the clean audio, as compute_cmvn_stats would write them
    from steps_py.feats.features import compute_features, load_feature_config
    from steps_py.data.audio import UtteranceAudio
    fconf = load_feature_config("fbank", conf)
    src = UtteranceAudio.from_data_dir(str(data))
    feats = np.concatenate([compute_features(src.get(f"spk1_u{i}").samples[0], fconf) for i in range(2)])
    with kaldiio.WriteHelper(f"ark,scp:{tmp_path}/cmvn.ark,{data}/cmvn.scp") as w:
        w("spk1", cmvn_stats(feats))
    out = tmp_path / "noise"
    numbers = noise.run_noise(random_bundle("lstm"), str(data), str(out), num_utts=2, noise_start=1.0,
                              noise_dur=0.2, noise_db=0.0, fbank_config=conf, hold=3)
    for f in ("numbers.json", "persistence.png", "persistence.svg", "delta_spk1_u0.png", "delta_spk1_u1.svg"):
        assert (out / f).exists(), f
    on_disk = json.loads((out / "numbers.json").read_text())
    assert on_disk["cmvn"] == "speaker" and on_disk["quantity"] == "c"
    u0 = on_disk["utterances"]["spk1_u0"]
    assert u0["noise_frames"] == [98, 120]           # frames overlapping samples 16000..19200 (400/160 framing)
    assert u0["noise_input_frames"] == [92, 116]     # splice 1, label delay 5
    assert set(on_disk["layers"]) == {"1", "2"}
    for lay in on_disk["layers"].values():
        assert 0 <= lay["persistence_frames_min"] <= lay["persistence_frames_max"] <= 220 - 116
    assert on_disk["persistence_frames_mean"] == pytest.approx(numbers["persistence_frames_mean"])
    # the memory before the noise reaches the network is untouched: peak after, nothing before
    bundle = random_bundle("lstm")
    clean_f = fconf and compute_features(src.get("spk1_u0").samples[0], fconf)
    noisy_s, _ = noise.add_white_noise(src.get("spk1_u0").samples[0], rate, 1.0, 0.2, 0.0,
                                       np.random.default_rng(0))
    noisy_f = compute_features(noisy_s, fconf)
    c = bundle.internals(clean_f)[1][0]["c"]
    n = bundle.internals(noisy_f)[1][0]["c"]
    d = noise.delta_curve(noise.memory_delta(c, n))
    assert d[:92].max() == 0.0 and d[92:116].max() > 0.0


# ---------------------------------------------------------------------------------------------------------------
# cocluster

def test_response_and_updates_match_direct_computation():
    rng = np.random.default_rng(4)
    values = rng.normal(size=(40, 5))
    phone_ids = rng.integers(-1, 4, size=40)
    starts = np.zeros(40, bool)
    starts[[0, 17]] = True
    upd = cocl.state_updates(values, starts)
    for t in range(40):
        want = values[t] - (0 if starts[t] else values[t - 1])
        np.testing.assert_allclose(upd[t], want)
    resp, counts = cocl.unit_phone_response(values, phone_ids, 5)
    for p in range(5):
        sel = phone_ids == p
        assert counts[p] == sel.sum()
        if sel.any():
            np.testing.assert_allclose(resp[:, p], values[sel].mean(0))
        else:
            assert np.isnan(resp[:, p]).all()


def test_cocluster_recovers_planted_blocks():
    from sklearn.metrics import adjusted_rand_score
    rng = np.random.default_rng(0)
    n_clusters, H, P = 4, 24, 12
    unit_cluster = rng.permutation(np.repeat(np.arange(n_clusters), H // n_clusters))
    phone_cluster = rng.permutation(np.repeat(np.arange(n_clusters), P // n_clusters))
    phone_ids = rng.integers(0, P, size=3000)
    values = rng.normal(0, 0.3, size=(3000, H))
    values += 2.0 * (unit_cluster[None, :] == phone_cluster[phone_ids][:, None])
    res = cocl.cocluster_layer(values, phone_ids, np.r_[True, np.zeros(2999, bool)], [f"P{i}" for i in range(P)],
                               n_clusters=n_clusters, response="mean", min_frames=1, seed=0)
    assert adjusted_rand_score(unit_cluster, res["row_labels"]) == 1.0
    assert adjusted_rand_score(phone_cluster, res["col_labels"]) == 1.0
    assert res["diagonal_ratio"] > 5
    assert sorted(c["num_units"] for c in res["clusters"]) == [6, 6, 6, 6]
    # blocks agree with a direct mean over the block's entries
    m = np.abs(res["matrix"])
    r, c = res["row_labels"], res["col_labels"]
    assert res["block_mean_abs"][0, 1] == pytest.approx(m[np.ix_(r == 0, c == 1)].mean())
    # without structure the ratio is near 1
    flat = cocl.cocluster_layer(rng.normal(0, 1, size=(3000, H)), phone_ids, np.r_[True, np.zeros(2999, bool)],
                                [f"P{i}" for i in range(P)], n_clusters=n_clusters, response="mean", min_frames=1)
    assert flat["diagonal_ratio"] < 2


# ---------------------------------------------------------------------------------------------------------------
# trajectories

def test_pca_matches_sklearn():
    from sklearn.decomposition import PCA
    x = np.random.default_rng(1).normal(size=(200, 6)) * [5, 3, 1, 1, 0.5, 0.1]
    comps, ratios, mean = traj.pca_2d(x)
    ref = PCA(2).fit(x)
    np.testing.assert_allclose(ratios, ref.explained_variance_ratio_, rtol=1e-6)
    np.testing.assert_allclose(np.abs(traj.pca_project(x, comps, mean)), np.abs(ref.transform(x)), atol=1e-8)


def test_autoencoder_learns_a_2d_manifold():
    """Vectors that are a nonlinear function of 2 latent numbers: the autoencoder's 2-D code reconstructs them far
    better than the mean vector does, and the projection of an utterance gives [T, 2] paths."""
    rng = np.random.default_rng(0)
    z = rng.uniform(-1, 1, size=(1500, 2))
    w1, w2 = rng.normal(size=(2, 20)), rng.normal(size=(2, 20))
    x = np.tanh(z @ w1) + 0.5 * np.sin(2 * z @ w2) + rng.normal(0, 0.02, size=(1500, 20))
    import torch
    torch.set_num_threads(1)  # as the command's --num-threads default; more threads only contend on 2 shared cores
    numbers, project = traj.fit_layer(x, epochs=20, batch_size=128, lr=0.005, seed=0)
    assert numbers["baseline_mse"] == pytest.approx(1.0, abs=1e-6)
    assert numbers["dae_reconstruction_mse"] < 0.3 * numbers["baseline_mse"]
    assert numbers["dae_reconstruction_mse"] < 0.5 * numbers["pca_reconstruction_mse"]  # a curved manifold
    assert numbers["pca_explained_variance_2d"] == pytest.approx(1 - numbers["pca_reconstruction_mse"], abs=1e-6)
    dae, pca = project(x[:37])
    assert dae.shape == (37, 2) and pca.shape == (37, 2)


# ---------------------------------------------------------------------------------------------------------------
# compare

def test_smoothness_and_steps():
    rng = np.random.default_rng(0)
    offsets = np.array([0, 100, 250])
    walk = np.cumsum(rng.normal(0, 0.1, size=(250, 8)), axis=0)
    iid = rng.normal(size=(250, 8))
    steps = stats.step_lengths(walk, offsets)
    assert len(steps) == 248
    direct = [np.linalg.norm(walk[t] - walk[t - 1]) for t in range(1, 250) if t != 100]
    np.testing.assert_allclose(steps, direct)
    s_walk = stats.smoothness(walk, offsets, np.random.default_rng(0))
    s_iid = stats.smoothness(iid, offsets, np.random.default_rng(0))
    assert s_walk < 0.3 < 0.9 < s_iid < 1.1


def test_compare_rows_equal_single_model_numbers(extractions):
    lstm, gru = extractions["lstm"], extractions["gru"]
    both = {"rows": cmp.model_rows(lstm, "lstm", num_pairs=2000) + cmp.model_rows(gru, "gru", num_pairs=2000)}
    for ext, name in ((lstm, "lstm"), (gru, "gru")):
        dist = stats.distribution_numbers(ext, seed=0)
        sat = stats.saturation_numbers(ext, seed=0)
        rows = [r for r in both["rows"] if r["model"] == name]
        q = "c" if name == "lstm" else "h"
        for r, d in zip(rows, dist["layers"]):
            assert r["share_in_range"] == d["share_in_range"] and r["std"] == d["std"]
            for g, layers in sat["per_gate"].items():
                assert r["saturation"][g]["mean_left"] == layers[r["layer"] - 1]["mean_left"]
            v = np.abs(ext.values(r["layer"], q))
            assert r["share_abs_below_2"] == pytest.approx(np.mean(v < 2))   # all frames and units are sampled
            assert r["smoothness"] == pytest.approx(
                stats.smoothness(ext.values(r["layer"], q), ext.offsets, np.random.default_rng(0), 2000))


# ---------------------------------------------------------------------------------------------------------------
# findings

def _model(name, cell, wer=None, lazy="none", residual=False, share=None, tail=None, smooth=None, persist=None):
    numbers = {}
    if share is not None:
        numbers["distributions"] = {"cell": cell, "lstm_range": 2.0, "gru_edge": 0.7,
                                    "layers": [{"share_in_range": share,
                                                "percentiles": {"0.1": -tail, "99.9": tail}}]}
    if persist is not None:
        numbers["noise"] = {"persistence_frames_mean": persist}
    return {"name": name, "dir": name, "cell": cell, "num_layers": 2, "lazy": lazy, "residual": residual,
            "wer": wer, "wer_line": None, "numbers": numbers, "extract_dir": None, "_smooth": smooth}


def _rows(models):
    return [{"model": m["name"], "layer": 1, "smoothness": m["_smooth"], "noise_persistence_frames": None}
            for m in models if m["_smooth"] is not None]


def _holds(claims):
    return {c["id"]: c["holds"] for c in claims}


def test_findings_flip_with_planted_numbers():
    paper_like = [_model("lstm", "lstm", wer=10.0, share=0.9, tail=9.0, smooth=0.1, persist=40),
                  _model("gru", "gru", wer=9.5, share=0.6, tail=1.0, smooth=0.3, persist=8),
                  _model("lstm_lazy", "lstm", wer=9.6, lazy="last"),
                  _model("lstm_res", "lstm", wer=9.8, residual=True)]
    h = _holds(fnd.evaluate_claims(paper_like, _rows(paper_like)))
    assert h == {"lstm_values_in_range": True, "gru_values_pile_at_1": True, "lstm_smoother_than_gru": True,
                 "noise_lingers_in_lstm": True, "lazy_improves_wer": True, "residual_improves_wer": True}
    flipped = [_model("lstm", "lstm", wer=10.0, share=0.3, tail=9.0, smooth=0.5, persist=4),
               _model("gru", "gru", wer=9.5, share=0.2, tail=1.0, smooth=0.3, persist=8),
               _model("lstm_lazy", "lstm", wer=10.4, lazy="last"),
               _model("lstm_res", "lstm", wer=10.0, residual=True)]
    h = _holds(fnd.evaluate_claims(flipped, _rows(flipped)))
    assert h == {k: False for k in h}
    only_lstm = [paper_like[0]]
    h = _holds(fnd.evaluate_claims(only_lstm, _rows(only_lstm)))
    assert h["lstm_values_in_range"] is True
    assert all(h[k] == "not measured" for k in h if k != "lstm_values_in_range")
    # GRU density ratio: 30% of the values in the outer 30% of [-1, 1] is flat
    assert fnd.pile_ratio(0.3, 0.7) == pytest.approx(1.0)


# ---------------------------------------------------------------------------------------------------------------
# end to end: one run of each command

def run_main_in_process(module, argv, monkeypatch):
    """Runs ``module.main()`` with the command line ``argv`` in this process (saves the import time of a new
    interpreter; the argument parsing and all I/O are the command's own)."""
    monkeypatch.setattr("sys.argv", [module.__name__] + [str(a) for a in argv])
    assert module.main() == 0


def test_commands_end_to_end(extractions, tmp_path, monkeypatch):
    lstm_dir, gru_dir = extractions["lstm"].dir, extractions["gru"].dir
    exp = tmp_path / "exp"
    out_c = tmp_path / "cocluster"
    run_main_in_process(cocl, ["--n-clusters", "3", "--min-frames", "5", lstm_dir, out_c], monkeypatch)
    n = json.loads((out_c / "numbers.json").read_text())
    assert set(n["layers"]) == {"1", "2"}
    for lay in n["layers"].values():
        assert sum(c["num_units"] for c in lay["clusters"]) == 16
        assert sorted(p for c in lay["clusters"] for p in c["phones"]) == sorted(n["phones_used"])
    assert (out_c / "matrix_layer2.svg").exists() and (out_c / "bipartite_layer1.png").exists()

    out_t = tmp_path / "trajectories"
    run_main_in_process(traj, ["--epochs", "2", "--num-utts", "1", gru_dir, out_t], monkeypatch)
    n = json.loads((out_t / "numbers.json").read_text())
    assert len(n["utts"]) == 1 and (out_t / f"trajectory_{n['utts'][0]}.png").exists()
    assert 0 < n["layers"]["1"]["pca_explained_variance_2d"] <= 1

    # model dirs for findings: distributions numbers, noise numbers, WERs
    from steps_py.memvis.analysis import write_numbers
    for cell, ext, wer in (("lstm", extractions["lstm"], 12.5), ("gru", extractions["gru"], 11.0)):
        m = exp / cell
        (m / "decode_tgpr_dev").mkdir(parents=True)
        (m / "nnet.conf").write_text(f"cell={cell}\nnum_layers=2\n")
        (m / "decode_tgpr_dev" / "wer_10_0.0").write_text(f"%WER {wer} [ 1 / 8, 0 ins, 0 del, 1 sub ]\n")
        write_numbers(str(m / "memvis_dev" / "distributions"), stats.distribution_numbers(ext))
        write_numbers(str(m / "memvis_dev" / "noise"), {"persistence_frames_mean": 30 if cell == "lstm" else 5,
                                                        "layers": {"1": {"persistence_frames_mean": 1.0},
                                                                   "2": {"persistence_frames_mean": 2.0}}})
    out_cmp = tmp_path / "compare"
    run_main_in_process(cmp, ["--names", "lstm,gru", "--noise", f"{exp}/lstm/memvis_dev/noise/numbers.json,-",
                              lstm_dir, gru_dir, out_cmp], monkeypatch)
    n = json.loads((out_cmp / "numbers.json").read_text())
    assert [(r["model"], r["layer"]) for r in n["rows"]] == [("lstm", 1), ("lstm", 2), ("gru", 1), ("gru", 2)]
    assert n["rows"][1]["noise_persistence_frames"] == 2.0 and n["rows"][2]["noise_persistence_frames"] is None
    for f in ("table.md", "heatmaps.png", "traces.svg", "histograms.png", "smoothness.svg"):
        assert (out_cmp / f).exists(), f

    out_f = tmp_path / "findings"   # as a separate process: the python -m entry point
    run_step(["-m", "steps_py.memvis.findings", "--compare", str(out_cmp / "numbers.json"), str(exp / "lstm"),
              str(exp / "gru"), str(out_f)], ROOT)
    f = json.loads((out_f / "findings.json").read_text())
    holds = {c["id"]: c["holds"] for c in f["claims"]}
    assert holds["noise_lingers_in_lstm"] is True
    assert holds["lazy_improves_wer"] == "not measured" and holds["residual_improves_wer"] == "not measured"
    smooth = {m: np.mean([r["smoothness"] for r in n["rows"] if r["model"] == m]) for m in ("lstm", "gru")}
    assert holds["lstm_smoother_than_gru"] == (smooth["lstm"] < smooth["gru"])
    assert f["models"]["gru"]["wer"] == 11.0 and f["models"]["lstm"]["analyses"] == ["distributions", "noise"]
    assert "| noise_lingers_in_lstm |" in (out_f / "findings.md").read_text()
