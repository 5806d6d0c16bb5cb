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
from fakes import random_bundle


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

    slow, fast = (noise.analyse_utterance([clean], [noisy_with(tau)], (start, end), end, normalise="none",
                                          threshold_rel=0.1, hold=5)[0]["1"] for tau in (40.0, 2.0))
    # curve = 0.5 * exp(-(t-end)/tau) after the noise; below 10% of the peak 0.5 once t - end > tau * ln 10
    assert slow["persistence_frames"] == int(np.floor(40 * np.log(10))) + 1
    assert fast["persistence_frames"] == int(np.floor(2 * np.log(10))) + 1
    assert not slow["censored"] and slow["peak"] == pytest.approx(0.5)
    never = noise.persistence(np.ones(50), 10, threshold_rel=0.5)
    assert never["censored"] and never["persistence_frames"] == 40
    absolute = noise.persistence(np.r_[np.zeros(10), np.linspace(1, 0, 41)], 10, threshold_abs=0.5)
    assert absolute["persistence_frames"] == 21 and absolute["threshold"] == 0.5


def test_unit_normalised_persistence_does_not_depend_on_the_units_magnitudes():
    """Units whose natural frame-to-frame change differs 100-fold, each perturbed by 4 of its own natural changes
    decaying with time constant 10 frames: the normalised curve is 4 exp(-(t - end) / 10) whatever the scales, so it
    is below 1 after 10 ln 4 frames. The raw curve follows the large units alone."""
    T, H, start, end = 400, 10, 100, 120
    rng = np.random.default_rng(0)
    scales = np.where(np.arange(H) < 2, 100.0, 1.0)
    clean = np.cumsum(rng.normal(size=(T, H)), axis=0) * scales
    sigma = noise.natural_variation(clean)
    np.testing.assert_allclose(sigma / scales, np.diff(clean / scales, axis=0).std(0))
    t = np.arange(T)[:, None]
    bump = np.where(t < start, 0.0, np.where(t < end, 4.0, 4.0 * np.exp(-(t - end) / 10.0)))
    noisy = clean + bump * sigma
    r = noise.analyse_utterance([clean], [noisy], (start, end), end, threshold=1.0, hold=5)[0]["1"]
    assert r["persistence_frames"] == int(np.floor(10 * np.log(4))) + 1 and not r["censored"]
    # the same perturbation on the small units only: the raw curve hardly moves, the normalised one sees it
    small = clean + bump * sigma * (scales == 1.0)
    raw = noise.analyse_utterance([clean], [small], (start, end), end, normalise="none", threshold_rel=0.1)[2][0]
    normed = noise.analyse_utterance([clean], [small], (start, end), end)[2][0]
    assert normed[end] == pytest.approx(4.0 * 0.8)
    assert raw[end] < 0.05 * sigma[:2].mean()       # under 5% of one ordinary step of a large unit
    decay = noise.decay_curves({"1": [(normed, end), (normed[:200], end)]}, decay_frames=100)["1"]
    assert decay["num_utts"][0] == 2 and decay["num_utts"][-1] == 1 and len(decay["median"]) == 100
    assert decay["median"][0] == pytest.approx(3.2, rel=1e-4)


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
    for f in ("numbers.json", "persistence.png", "persistence.svg", "delta_spk1_u0.png", "delta_spk1_u1.svg",
              "decay.png"):
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
    assert on_disk["normalise"] == "unit" and 0.0 <= on_disk["censored_share"] <= 1.0
    assert set(on_disk["decay"]) == {"1", "2"} and on_disk["persistence_frames_median"] >= 0
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
            x = ext.values(r["layer"], q)
            assert r["smoothness_raw"] == pytest.approx(stats.smoothness(x, ext.offsets, np.random.default_rng(0), 2000))
            assert r["smoothness"] == pytest.approx(np.nanmean(stats.utterance_smoothness(
                x, ext.offsets, x.mean(0, dtype=np.float64), x.std(0, dtype=np.float64))))


# ---------------------------------------------------------------------------------------------------------------
# findings

def _run(utts, share=None, smooth=None, persist=None, errors=None, tail=9.0):
    """One planted run: per-utterance samples as findings.run_info gives them."""
    return {"dir": "run", "analyses": [],
            "memory": None if share is None else {"utts": utts, "share": np.asarray(share),
                                                  "smoothness": np.asarray(smooth), "smoothness_raw": 0.5,
                                                  "extreme_abs": tail},
            "noise": None if persist is None else {"utts": utts, "persistence": np.asarray(persist),
                                                   "censored_share": 0.0},
            "errors": None if errors is None else {u: (e, 10) for u, e in zip(utts, errors)}}


def _model(name, cell, runs, lazy="none", residual=False, num_layers=2):
    return {"name": name, "cell": cell, "num_layers": num_layers, "lazy": lazy, "residual": residual, "runs": runs}


def _holds(claims):
    return {c["id"]: c["holds"] for c in claims}


def _world(lstm, gru, lazy_errors, base_errors, gru_errors=None, shallow_errors=(None, None), n=60, seed=0):
    """Models whose per-utterance samples are the given means plus noise: lstm/gru = (share, smoothness,
    persistence) means; per-utterance errors of the 2-layer LSTM (base), GRU, lazy and residual LSTMs, and of a
    1-layer LSTM and GRU (shallow_errors)."""
    rng = np.random.default_rng(seed)
    utts = [f"u{i:03d}" for i in range(n)]

    def noisy(mean, sd):
        return mean + sd * rng.normal(size=n)
    return [_model("lstm", "lstm", [_run(utts, noisy(lstm[0], 0.02), noisy(lstm[1], 0.05), noisy(lstm[2], 5),
                                         base_errors)]),
            _model("gru", "gru", [_run(utts, noisy(gru[0], 0.02), noisy(gru[1], 0.05), noisy(gru[2], 5),
                                       gru_errors)]),
            _model("lstm_lazy", "lstm", [_run(utts, errors=lazy_errors)], lazy="last"),
            _model("lstm_res", "lstm", [_run(utts, errors=lazy_errors)], residual=True),
            _model("lstm_1l", "lstm", [_run(utts, errors=shallow_errors[0])], num_layers=1),
            _model("gru_1l", "gru", [_run(utts, errors=shallow_errors[1])], num_layers=1)]


def test_findings_hold_fail_or_stay_inconclusive_with_planted_samples():
    n = 60
    none, fewer, more, most = [0] * n, [1] * n, [3] * n, [5] * n
    # the paper's world: lazy and residual help, GRU beats LSTM, 2 layers beat 1
    paper_like = _world((0.9, 0.1, 40), (0.8, 0.3, 8), fewer, more, fewer, (most, more))
    claims = fnd.evaluate_claims(paper_like, num_samples=500)
    assert _holds(claims) == {k: True for k in _holds(claims)}
    assert {c["id"]: c for c in claims}["deeper_improves_wer"]["measured"]["lstm vs lstm_1l"]["improvement"] == \
        pytest.approx(20.0)                                            # 5 -> 3 errors in 10 words
    for c in claims:       # each measured claim carries the interval of the difference it rests on, above 0
        assert c["ci95"][0] > 0
    smooth = {c["id"]: c for c in claims}["lstm_smoother_than_gru"]
    assert smooth["measured"]["lstm vs gru"]["d"] == pytest.approx(0.2, abs=0.03)
    for cid, lstm_key, gru_key in (("lstm_smoother_than_gru", "lstm", "gru"),
                                   ("noise_lingers_in_lstm", "lstm_median", "gru_median")):
        m = {c["id"]: c for c in claims}[cid]["measured"]["lstm vs gru"]   # each model's own number and interval
        for key, ci in ((lstm_key, "lstm_ci95"), (gru_key, "gru_ci95")):
            assert m[ci][0] <= m[key] <= m[ci][1] and m[ci][0] < m[ci][1], (cid, key, m)
        assert m["lstm_ci95"][0] > m["gru_ci95"][1] if cid == "noise_lingers_in_lstm" else \
            m["lstm_ci95"][1] < m["gru_ci95"][0]
    flipped = _world((0.3, 0.5, 4), (0.2, 0.3, 8), more, fewer, more, (none, fewer))
    h = _holds(fnd.evaluate_claims(flipped, num_samples=500))
    assert h == {k: False for k in h}
    # no difference between the models: the intervals contain 0, nothing is decided
    alike = _world((0.5, 0.3, 8), (0.3, 0.3, 8), fewer, fewer, fewer, (fewer, fewer))
    h = _holds(fnd.evaluate_claims(alike, num_samples=500))
    for k in ("lstm_values_in_range", "gru_values_pile_at_1", "lstm_smoother_than_gru", "noise_lingers_in_lstm",
              "lazy_improves_wer", "residual_improves_wer", "gru_beats_lstm_wer", "deeper_improves_wer"):
        assert h[k] == "inconclusive", k
    h = _holds(fnd.evaluate_claims(paper_like[:1], num_samples=500))
    assert h["lstm_values_in_range"] is True
    assert all(h[k] == "not measured" for k in h if k != "lstm_values_in_range")
    # GRU density ratio: 30% of the values in the outer 30% of [-1, 1] is flat
    assert fnd.pile_ratio(0.3, 0.7) == pytest.approx(1.0)


def test_seeds_widen_the_interval():
    """One LSTM seed clearly smoother than the GRU holds; three seeds spread around the GRU do not."""
    n = 80
    utts = [f"u{i:03d}" for i in range(n)]
    rng = np.random.default_rng(1)

    def run(smooth):
        return _run(utts, np.full(n, 0.9), smooth + 0.01 * rng.normal(size=n), np.full(n, 10.0))
    gru = _model("gru", "gru", [run(0.45)])
    one = fnd.evaluate_claims([_model("lstm", "lstm", [run(0.1)]), gru], num_samples=500)
    three = fnd.evaluate_claims([_model("lstm", "lstm", [run(0.1), run(0.5), run(0.9)]), gru], num_samples=500)
    assert _holds(one)["lstm_smoother_than_gru"] is True
    assert _holds(three)["lstm_smoother_than_gru"] == "inconclusive"
    c = {x["id"]: x for x in three}["lstm_smoother_than_gru"]
    assert c["measured"]["lstm vs gru"]["seeds"] == [3, 1] and c["ci95"][0] < 0 < c["ci95"][1]
    from steps_py.nnet.runs import group_runs
    assert group_runs(["exp/nnet/lstm_2l", "exp/nnet/gru_2l", "exp/nnet/lstm_2l_seed2"]) == \
        {"lstm_2l": ["exp/nnet/lstm_2l", "exp/nnet/lstm_2l_seed2"], "gru_2l": ["exp/nnet/gru_2l"]}


def test_utterance_smoothness_against_known_traces():
    rng = np.random.default_rng(0)
    T, H = 300, 16
    iid = rng.normal(size=(T, H))
    line = np.arange(T)[:, None] * np.ones((1, H))
    values = np.concatenate([iid, line])
    offsets = np.array([0, T, 2 * T])
    s = stats.utterance_smoothness(values, offsets, num_pairs=20000)
    assert s[0] == pytest.approx(1.0, abs=0.03)               # independent frames: step = random pair distance
    assert s[1] == pytest.approx(3 / (T + 1), rel=0.03)       # constant speed: E|i - j| = (T + 1) / 3 steps
    # 8 slow large units beside 248 fast bounded ones: raw vectors see the slow units only, standardised see all
    slow = np.cumsum(rng.normal(size=(T, 8)), axis=0) * 50
    fast = np.tanh(rng.normal(size=(T, 248)))
    mixed = np.concatenate([slow, fast], axis=1)
    raw = stats.utterance_smoothness(mixed, [0, T])[0]
    std = stats.utterance_smoothness(mixed, [0, T], center=mixed.mean(0), scale=mixed.std(0))[0]
    fast_alone = stats.utterance_smoothness(fast, [0, T])[0]
    assert raw < 0.3 and std > 0.8 and std == pytest.approx(fast_alone, abs=0.1)
    shares = stats.utterance_range_shares(np.array([[0.5, 3.0], [1.0, 1.5], [9.0, 9.0]]), [0, 2, 3], "lstm")
    assert shares.tolist() == [0.75, 0.0]


# ---------------------------------------------------------------------------------------------------------------
# end to end: one run of each command

def run_main_in_process(module, argv, monkeypatch):
    """Runs ``module.main()`` with the command line ``argv`` in this process (saves the import time of a new
    interpreter; the argument parsing and all I/O are the command's own)."""
    monkeypatch.setattr("sys.argv", [module.__name__] + [str(a) for a in argv])
    assert module.main() == 0


def test_commands_end_to_end(extractions, tmp_path, monkeypatch):
    lstm_dir, gru_dir = extractions["lstm"].dir, extractions["gru"].dir
    ext_l = extractions["lstm"]
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

    # model dirs for findings: their extraction, noise numbers per utterance, a scored decode
    from steps_py.memvis.analysis import write_numbers
    for cell, ext, wrong in (("lstm", extractions["lstm"], 2), ("gru", extractions["gru"], 1)):
        m = exp / cell
        dec = m / "decode_tgpr_dev"
        (dec / "scoring_kaldi" / "penalty_0.0").mkdir(parents=True)
        (m / "nnet.conf").write_text(f"cell={cell}\nnum_layers=2\n")
        os.symlink(ext.dir, m / "extract_dev")
        (dec / "scoring_kaldi" / "test_filt.txt").write_text("".join(f"{u} a b c d\n" for u in ext.utts))
        (dec / "scoring_kaldi" / "penalty_0.0" / "10.txt").write_text(
            "".join(f"{u} {'x ' * wrong}{' '.join('abcd'[wrong:])}\n" for u in ext.utts))
        n_err, n_words = wrong * len(ext.utts), 4 * len(ext.utts)
        (dec / "wer_10_0.0").write_text(f"%WER {100 * n_err / n_words:.2f} [ {n_err} / {n_words}, 0 ins, 0 del, "
                                        f"{n_err} sub ]\n")
        write_numbers(str(m / "memvis_dev" / "distributions"), stats.distribution_numbers(ext))
        persist = 30 if cell == "lstm" else 5
        write_numbers(str(m / "memvis_dev" / "noise"), {
            "persistence_frames_mean": persist,
            "layers": {"1": {"persistence_frames_mean": 1.0}, "2": {"persistence_frames_mean": 2.0}},
            "utterances": {u: {"layers": {"1": {"persistence_frames": persist + i, "censored": False},
                                          "2": {"persistence_frames": persist - i, "censored": i == 0}}}
                           for i, u in enumerate(ext.utts)}})
    out_cmp = tmp_path / "compare"
    run_main_in_process(cmp, ["--names", "lstm,gru", "--noise", f"{exp}/lstm/memvis_dev/noise/numbers.json,-",
                              lstm_dir, gru_dir, out_cmp], monkeypatch)
    n = json.loads((out_cmp / "numbers.json").read_text())
    assert [(r["model"], r["layer"]) for r in n["rows"]] == [("lstm", 1), ("lstm", 2), ("gru", 1), ("gru", 2)]
    assert n["rows"][1]["noise_persistence_frames"] == 2.0 and n["rows"][2]["noise_persistence_frames"] is None
    for f in ("table.md", "heatmaps.png", "traces.svg", "histograms.png", "smoothness.svg"):
        assert (out_cmp / f).exists(), f

    out_f = tmp_path / "findings"   # as a separate process: the python -m entry point
    run_step(["-m", "steps_py.memvis.findings", "--num-samples", "300", str(exp / "lstm"), str(exp / "gru"),
              str(out_f)], ROOT)
    f = json.loads((out_f / "findings.json").read_text())
    claims = {c["id"]: c for c in f["claims"]}
    # 4 utterances, LSTM persistence 30 against 5 on every one: the interval excludes 0
    assert claims["noise_lingers_in_lstm"]["holds"] is True
    assert claims["noise_lingers_in_lstm"]["measured"]["lstm vs gru"]["lstm_censored_share"] == pytest.approx(1 / 8)
    assert claims["lazy_improves_wer"]["holds"] == "not measured" and claims["lazy_improves_wer"]["ci95"] is None
    smooth = claims["lstm_smoother_than_gru"]
    lo, hi = smooth["ci95"]
    assert lo <= smooth["measured"]["lstm vs gru"]["d"] <= hi
    assert smooth["holds"] == fnd.verdict(lo, hi)
    share = claims["lstm_values_in_range"]["measured"]["lstm"]["share_in_range"]
    v = np.abs(ext_l.values(1, "c")), np.abs(ext_l.values(2, "c"))
    per_utt = [np.mean([np.mean(x[a:b] < 2) for x in v]) for a, b in zip(ext_l.offsets[:-1], ext_l.offsets[1:])]
    assert share == pytest.approx(np.mean(per_utt))
    assert f["models"]["gru"]["wer"] == 25.0 and f["models"]["gru"]["wer_ci95"] == [25.0, 25.0]
    assert f["models"]["lstm"]["analyses"] == ["distributions", "noise"] and f["models"]["lstm"]["seeds"] == 1
    assert "| noise_lingers_in_lstm |" in (out_f / "findings.md").read_text()
