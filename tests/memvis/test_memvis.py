"""Tests of the extraction format (steps_py.memvis.data) and the memvis analyses (distributions, responsibility,
t-SNE, saturation, units): files written, and numbers checked against direct numpy computations on the same data,
with planted units that each analysis must find."""
import json
import os
import sys

import numpy as np
import pytest

from steps_py.common import InputError, NoSpaceError
from steps_py.kaldi.io import read_alignments
from steps_py.kaldi.symbols import read_symbol_table
from steps_py.memvis import data as md
from steps_py.memvis.phones import strip_position
from steps_py.memvis.stats import smoothness

from conftest import run_step
from fakes import fake_extraction, fake_phone_table
from full_disk import full_disk_open


# ---------------------------------------------------------------------------------------------------------------
# helpers

def copy_with(ext, out_dir, modify=None, dtype="float32"):
    """Rewrites extraction ``ext`` (made with fake_phone_table) into out_dir after ``modify(layers)`` changed the
    full arrays in place (layers: list over layers of {name: [N, H] float32})."""
    layers = [{q: ext.values(k, q).copy() for q in ext.quantities} for k in range(1, ext.num_layers + 1)]
    if modify:
        modify(layers)
    with md.ExtractionWriter(out_dir, ext.cell, ext.num_layers, ext.cell_dim, ext.quantities, dtype=dtype,
                             meta=ext.meta, phones=fake_phone_table()) as w:
        for utt in ext.utts:
            sl = ext.utt_slice(utt)
            w.add(utt, [{q: a[sl] for q, a in layer.items()} for layer in layers], ext.kaldi_phone_ids[sl],
                  ext.words(utt), ext.feats[sl])
    return md.Extraction.load(out_dir)


def run_analysis(module, monkeypatch, *argv):
    """Runs ``module.main()`` in this process with the command line argv; returns numbers.json."""
    monkeypatch.setattr(sys, "argv", [module.__name__, *argv])
    module.main()
    out_dir = argv[-1]
    return json.load(open(os.path.join(out_dir, "numbers.json")))


def assert_figures(out_dir, *names):
    for name in names:
        for ext in ("png", "svg"):
            path = os.path.join(out_dir, f"{name}.{ext}")
            assert os.path.getsize(path) > 1000, path
    assert open(os.path.join(out_dir, f"{names[0]}.png"), "rb").read(4) == b"\x89PNG"


@pytest.fixture(scope="module")
def lstm_ext(tmp_path_factory):
    """A random-init 2-layer LSTM (24 units) on 5 synthetic utterances (<= 160 frames) with fake alignments."""
    return fake_extraction(str(tmp_path_factory.mktemp("memvis") / "lstm"), "lstm", num_layers=2, cell_dim=24,
                              num_utts=5, seed=3, max_frames=160)


@pytest.fixture(scope="module")
def gru_ext(tmp_path_factory):
    return fake_extraction(str(tmp_path_factory.mktemp("memvis") / "gru"), "gru", num_layers=2, cell_dim=24,
                              num_utts=5, seed=4, max_frames=160)


# ---------------------------------------------------------------------------------------------------------------
# extraction format

@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_extraction_round_trip(tmp_path, dtype):
    rng = np.random.default_rng(0)
    table = fake_phone_table()
    ids = {s: k for k, s in table.items()}
    lengths = {"uttA": 7, "uttB": 12, "uttC": 5}
    written = {}
    out = str(tmp_path / "ext")
    with md.ExtractionWriter(out, "lstm", 2, 6, ["c", "i"], dtype=dtype, meta={"model_dir": "exp/nnet/x"},
                             phones=table) as w:
        for utt, n in lengths.items():
            internals = [{"c": rng.normal(0, 5, (n, 6)), "i": rng.random((n, 6)), "h": np.zeros((n, 6))}
                         for _ in range(2)]
            ali = np.array([ids["SIL"]] * 2 + [ids["AA_B"], ids["AA_E"]] + [ids["T_S"]] * (n - 5) + [ids["SIL_E"]],
                           dtype=np.int32)
            feats = rng.normal(size=(n, 40))
            w.add(utt, internals, ali if utt != "uttC" else None, ["HELLO", utt], feats)
            written[utt] = (internals, ali, feats)
    ext = md.Extraction.load(out)
    assert ext.utts == list(lengths) and ext.total_frames == 24 and ext.model_dir == "exp/nnet/x"
    assert ext.offsets.tolist() == [0, 7, 19, 24] and ext.num_frames.tolist() == [7, 12, 5]
    assert (ext.cell, ext.num_layers, ext.cell_dim, ext.quantities, ext.dtype) == ("lstm", 2, 6, ["c", "i"], dtype)
    assert set(ext.layer(1)) == {"c", "i"}  # only the quantities asked for
    assert isinstance(ext.layer(2)["c"], np.memmap) and ext.layer(2)["c"].dtype == np.dtype(dtype)
    tol = 1e-2 if dtype == "float16" else 0
    names = ext.phone_names
    assert names[:2] == ["SIL", "SPN"] and "AA" in names and not any("_" in n for n in names)
    assert ext.is_silence.tolist() == [n in ("SIL", "SPN") for n in names]
    for utt, (internals, ali, feats) in written.items():
        sl = ext.utt_slice(utt)
        for k in (1, 2):
            for q in ("c", "i"):
                expect = internals[k - 1][q].astype(dtype)  # stored exactly in the chosen precision
                np.testing.assert_array_equal(ext.layer(k)[q][sl], expect)
                np.testing.assert_allclose(ext.layer(k)[q][sl], internals[k - 1][q], rtol=tol + 1e-6, atol=tol)
        np.testing.assert_array_equal(ext.feats[sl], feats.astype(np.float32))
        assert ext.words(utt) == ["HELLO", utt]
        if utt == "uttC":
            assert (ext.phone_ids[sl] == -1).all() and (ext.kaldi_phone_ids[sl] == -1).all()
            continue
        assert ext.kaldi_phone_ids[sl].tolist() == ali.tolist()
        phones = [names[p] for p in ext.phone_ids[sl]]
        assert phones == ["SIL", "SIL", "AA", "AA"] + ["T"] * (len(ali) - 5) + ["SIL"]
        assert ext.phone_segments(utt) == [(0, 2, "SIL"), (2, 4, "AA"), (4, len(ali) - 1, "T"),
                                           (len(ali) - 1, len(ali), "SIL")]
    assert ext.silence_frames.sum() == 3 * 2 and ext.aligned_frames.sum() == 19
    assert ext.phone_of_id[ids["AA_I"]] == names.index("AA") and ext.phone_of_id[ids["#0"]] == -1
    assert ext.utt_index.tolist() == [0] * 7 + [1] * 12 + [2] * 5
    np.testing.assert_allclose(ext.relative_position[7:19], np.arange(12) / 11, rtol=1e-6)
    # no temp files left behind
    assert sorted(os.listdir(out)) == ["feats.npz", "index.json", "layer1.npz", "layer2.npz", "phones.npz"]


def test_interrupted_or_damaged_extraction_is_not_readable(tmp_path, lstm_ext):
    out = str(tmp_path / "ext")
    copy_with(lstm_ext, out)
    w = md.ExtractionWriter(out, "lstm", 2, lstm_ext.cell_dim, lstm_ext.quantities, phones=fake_phone_table())
    sl = lstm_ext.utt_slice(lstm_ext.utts[0])
    w.add("u", [{q: lstm_ext.values(k, q, sl) for q in lstm_ext.quantities} for k in (1, 2)],
          None, [], lstm_ext.feats[sl])
    # a killed run: the writer never finished -> the old extraction is gone, nothing half-new is readable
    with pytest.raises(InputError, match="index.json"):
        md.Extraction.load(out)
    w.abort()
    assert not [f for f in os.listdir(out) if f.endswith(".tmp")]
    copy_with(lstm_ext, out)
    with open(os.path.join(out, "layer2.npz"), "ab") as f:
        f.write(b"x")
    with pytest.raises(InputError, match="incomplete"):
        md.Extraction.load(out)


def test_extraction_on_a_full_disk_names_the_dir_and_leaves_no_temp_files(tmp_path, lstm_ext, monkeypatch):
    """The temp files take 1000 bytes each before the disk is full. Utterances of 160 frames fail as they are
    added; utterances of 5 frames stay in the write buffers and fail when the writer closes the files. Both times:
    one NoSpaceError naming the extraction, and no temp file left."""
    out = str(tmp_path / "ext")
    monkeypatch.setattr(md, "open", full_disk_open(room=1000), raising=False)
    for num_frames in (160, 5):
        with pytest.raises(NoSpaceError) as e:
            with md.ExtractionWriter(out, "lstm", 2, lstm_ext.cell_dim, lstm_ext.quantities,
                                     phones=fake_phone_table()) as w:
                for utt in lstm_ext.utts:
                    start = lstm_ext.utt_slice(utt).start
                    sl = slice(start, start + num_frames)
                    w.add(utt, [{q: lstm_ext.values(k, q, sl) for q in lstm_ext.quantities} for k in (1, 2)],
                          None, [], lstm_ext.feats[sl])
        assert str(e.value) == f"cannot write the extraction in {out}: No space left on device"
        assert os.listdir(out) == []


def test_writer_rejects_mismatched_input(tmp_path):
    w = md.ExtractionWriter(str(tmp_path / "e"), "gru", 1, 4, ["h"], phones=fake_phone_table())
    with pytest.raises(InputError, match="alignment has 3 frames"):
        w.add("u1", [{"h": np.zeros((5, 4))}], np.ones(3, dtype=np.int32), [], np.zeros((5, 40)))
    with pytest.raises(InputError, match="shape"):
        w.add("u1", [{"h": np.zeros((5, 3))}], None, [], np.zeros((5, 40)))
    with pytest.raises(InputError, match="not in"):
        w.add("u1", [{"h": np.zeros((5, 4))}], np.full(5, 999, dtype=np.int32), [], np.zeros((5, 40)))
    w.abort()


def test_fake_extraction_value_ranges(lstm_ext, gru_ext):
    assert lstm_ext.meta["internals"] == gru_ext.meta["internals"] == "random-init AcousticModel"
    for ext, quantities in ((lstm_ext, ["c", "h", "i", "f", "o"]), (gru_ext, ["h", "z", "r", "n"])):
        assert ext.quantities == quantities and ext.has_phones and 0 < ext.silence_frames.mean() < 0.8
        assert ext.num_layers == 2 and ext.layer(2)[quantities[0]].shape == (ext.total_frames, 24)
    assert np.abs(gru_ext.values(1, "h")).max() <= 1
    gates = lstm_ext.values(1, "f")
    assert gates.min() >= 0 and gates.max() <= 1 and gates.std() > 0


# ---------------------------------------------------------------------------------------------------------------
# analyses

def test_distributions(tmp_path, lstm_ext, gru_ext, monkeypatch):
    from steps_py.memvis import distributions as mod
    out = str(tmp_path / "dist_lstm")
    run_step(["-m", "steps_py.memvis.distributions", "--num-units", "10", lstm_ext.dir, out], os.getcwd())
    n = json.load(open(os.path.join(out, "numbers.json")))
    assert_figures(out, "distributions")
    assert n["quantity"] == "c" and n["frames_used"] == lstm_ext.total_frames and len(n["layers"]) == 2
    for k, layer in enumerate(n["layers"], 1):
        values = lstm_ext.values(k, "c")[:, n["units"][k - 1]]
        assert len(n["units"][k - 1]) == 10
        assert layer["share_in_range"] == pytest.approx(np.mean(np.abs(values) < 2))
        density = np.asarray(layer["histogram"]["density"])
        assert (density * np.diff(layer["histogram"]["edges"])).sum() == pytest.approx(1)
    # GRU, with planted values: unit 0 of layer 1 at +0.9 everywhere (in the high edge range)
    def plant(layers):
        layers[0]["h"][:, :] = 0.0
        layers[0]["h"][:, 0] = 0.9
    ext = copy_with(gru_ext, str(tmp_path / "gru_planted"), plant)
    out = str(tmp_path / "dist_gru")
    n = run_analysis(mod, monkeypatch, "--num-units", "24", "--max-frames", "0", ext.dir, out)
    assert n["layers"][0]["share_high_edge"] == pytest.approx(1 / 24)
    assert n["layers"][0]["share_low_edge"] == 0
    values = gru_ext.values(2, "h")
    expect = np.mean((np.abs(values) >= 0.7) & (np.abs(values) <= 1))
    assert n["layers"][1]["share_in_range"] == pytest.approx(expect)


def test_responsibility_finds_planted_unit(tmp_path, lstm_ext, gru_ext, monkeypatch):
    from steps_py.memvis import responsibility as mod
    names = lstm_ext.phone_names
    s_frames = lstm_ext.phone_ids == names.index("S")

    def plant_lstm(layers):  # layer 2 unit 5: |c| >= 10 on 90% of the S frames, small elsewhere
        c = layers[1]["c"]
        c[:, 5] = 0.1
        idx = np.flatnonzero(s_frames)
        c[idx[: int(0.9 * len(idx)) + 1], 5] = -15.0
    ext = copy_with(lstm_ext, str(tmp_path / "lstm_planted"), plant_lstm)
    out = str(tmp_path / "resp_lstm")
    n = run_analysis(mod, monkeypatch, "--min-phone-frames", "1", ext.dir, out)
    assert_figures(out, "responsibility")
    assert n["top_units"]["S"][0][:2] == [2, 5] and n["top_units"]["S"][0][2] >= 0.9
    # counts checked against a direct computation
    aligned = ext.phone_ids >= 0
    for k in (1, 2):
        irregular = np.abs(ext.values(k, "c")) >= 10
        base = irregular[aligned].mean(0)
        cond = [irregular[ext.phone_ids == names.index(p)].mean(0) for p in n["phones"]]
        assert n["counts_absolute"][k - 1] == [int((c >= 0.8).sum()) for c in cond]
        assert n["counts"][k - 1] == [int(((c >= 0.8) & (c >= 1.5 * base)).sum()) for c in cond]
        np.testing.assert_allclose(n["base_rate"][k - 1], base, atol=1e-4)
    assert n["counts"][1][n["phones"].index("S")] >= 1

    def plant_everywhere(layers):  # layer 2 unit 5 irregular on every frame: P(irregular | p) = 1 for all phones
        layers[1]["c"][:, 5] = 15.0
    ext = copy_with(lstm_ext, str(tmp_path / "lstm_everywhere"), plant_everywhere)
    n = run_analysis(mod, monkeypatch, "--min-phone-frames", "1", ext.dir, str(tmp_path / "resp_everywhere"))
    # without the base rate the unit is "responsible" for every phone; against its base rate (1.0) for none
    assert min(n["counts_absolute"][1]) >= 1 and n["irregular_everywhere_per_layer"][1] >= 1
    assert n["base_rate"][1][5] == 1.0
    assert all(a - b >= 1 for a, b in zip(n["counts_absolute"][1], n["counts"][1]))
    responsible, _ = mod.responsibility_counts(np.ones((3, 1)), 0.8, base_rate=[1.0])
    assert not responsible.any()

    def plant_gru(layers):  # layer 1 unit 2: |h| < 0.5 exactly on the silence frames
        h = layers[0]["h"]
        h[:, 2] = 0.95
        h[gru_ext.silence_frames, 2] = 0.1
    ext = copy_with(gru_ext, str(tmp_path / "gru_planted"), plant_gru)
    n = run_analysis(mod, monkeypatch, "--min-phone-frames", "1", ext.dir, str(tmp_path / "resp_gru"))
    assert n["share_threshold"] == 0.5 and [1, 2, 1.0] in n["top_units"]["SIL"]
    for p in n["phones"]:
        shares = {tuple(t[:2]): t[2] for t in n["top_units"][p]}
        assert shares.get((1, 2), 0.0) == (1.0 if p == "SIL" else 0.0)


def test_tsne_smoothness(tmp_path, lstm_ext, monkeypatch):
    from steps_py.memvis import tsne as mod
    rng = np.random.default_rng(0)
    t = np.linspace(0, 4 * np.pi, 300)
    smooth = np.stack([np.sin(t + phase) for phase in rng.uniform(0, 6, 16)], axis=1)
    shuffled = smooth[rng.permutation(len(smooth))]
    assert smoothness(smooth) < 0.05
    assert 0.8 < smoothness(shuffled) < 1.2
    out = str(tmp_path / "tsne")
    utt = lstm_ext.utts[1]
    n = run_analysis(mod, monkeypatch, "--utts", utt, "--max-frames", "80", "--max-iter", "250",
                     "--perplexity", "10", "--save-embeddings", lstm_ext.dir, out)
    assert_figures(out, "tsne")
    d = n["per_utt"][utt]
    assert n["utts"] == [utt] and d["frames_used"] <= 80 and d["stride"] == 2
    sl = lstm_ext.utt_slice(utt)
    for k in (1, 2):
        x = lstm_ext.values(k, "c", sl)[::2]
        assert d["layers"][k - 1]["smoothness_original"] == pytest.approx(smoothness(x), rel=1e-5)
        emb = np.asarray(n["embeddings"][f"{utt}/layer{k}"]["points"])
        assert emb.shape == (len(x), 2)
        assert d["layers"][k - 1]["smoothness_embedding"] == pytest.approx(smoothness(emb), abs=1e-2)
    assert n["mean_smoothness_original"] == [d["layers"][k]["smoothness_original"] for k in (0, 1)]


def test_saturation_finds_planted_gate(tmp_path, lstm_ext, gru_ext, monkeypatch):
    from steps_py.memvis import saturation as mod

    def plant(layers):  # layer 2 forget-gate unit 4 always open, unit 6 always closed
        layers[1]["f"][:, 4] = 0.97
        layers[1]["f"][:, 6] = 0.02
    ext = copy_with(lstm_ext, str(tmp_path / "planted"), plant)
    out = str(tmp_path / "sat")
    n = run_analysis(mod, monkeypatch, ext.dir, out)
    assert_figures(out, "saturation")
    assert n["gates"] == ["i", "f", "o"] and n["frames_used"] == ext.total_frames
    f2 = n["per_gate"]["f"][1]
    assert f2["right"][4] == 1.0 and f2["left"][4] == 0.0 and f2["left"][6] == 1.0
    assert f2["units_mostly_right"] >= 1 and f2["units_mostly_left"] >= 1
    for g in ("i", "f", "o"):
        for k in (1, 2):
            v = ext.values(k, g)
            assert n["per_gate"][g][k - 1]["mean_left"] == pytest.approx(np.mean(v < 0.1))
            assert n["per_gate"][g][k - 1]["mean_right"] == pytest.approx(np.mean(v > 0.9))
    n = run_analysis(mod, monkeypatch, gru_ext.dir, str(tmp_path / "sat_gru"))
    assert n["gates"] == ["z", "r"]
    # GRU z in Karpathy's convention: 1 - ours (ours keeps h_prev; theirs writes the candidate); r as it is.
    # A unit whose z (ours) is 0.98 keeps its memory: Karpathy's z is 0.02, left-saturated like a closed LSTM i.
    def keep(layers):
        layers[0]["z"][:, 2] = 0.98
    planted = copy_with(gru_ext, str(tmp_path / "planted_gru"), keep)
    n = run_analysis(mod, monkeypatch, planted.dir, str(tmp_path / "sat_gru_planted"))
    assert n["per_gate"]["z"][0]["left"][2] == 1.0 and n["per_gate"]["z"][0]["right"][2] == 0.0
    z, r = planted.values(1, "z"), planted.values(1, "r")
    assert n["per_gate"]["z"][0]["mean_left"] == pytest.approx(np.mean(1 - z < 0.1))
    assert n["per_gate"]["z"][0]["mean_right"] == pytest.approx(np.mean(1 - z > 0.9))
    assert n["per_gate"]["r"][0]["mean_left"] == pytest.approx(np.mean(r < 0.1))


def test_units_rank_planted_units_first(tmp_path, lstm_ext, monkeypatch):
    from sklearn.metrics import roc_auc_score

    from steps_py.memvis import units as mod
    rng = np.random.default_rng(1)
    silence = lstm_ext.silence_frames
    position = lstm_ext.relative_position

    def plant(layers):  # layer 2 unit 7: silence detector; layer 1 unit 3: a clock
        layers[1]["c"][:, 7] = silence + rng.normal(0, 0.05, len(silence))
        layers[0]["c"][:, 3] = position * 4 + rng.normal(0, 0.05, len(silence))
    ext = copy_with(lstm_ext, str(tmp_path / "planted"), plant)
    out = str(tmp_path / "units")
    n = run_analysis(mod, monkeypatch, "--min-phone-frames", "5", ext.dir, out)
    assert_figures(out, f"units_{ext.utts[0]}", "units_summary")
    assert n["top_silence_units"][0][:2] == [2, 7] and n["top_silence_units"][0][2] > 0.99
    assert n["top_position_units"][0][:2] == [1, 3] and n["top_position_units"][0][2] > 0.99
    # AUCs against sklearn on the same frames (all aligned frames: the extraction is small)
    assert n["frames_used"] == int(ext.aligned_frames.sum())
    aligned = ext.aligned_frames
    phone = "AA"
    k, unit, auc = n["top_units_per_phone"][phone][0]
    values = ext.values(k, "c")[aligned, unit]
    labels = ext.phone_ids[aligned] == ext.phone_names.index(phone)
    assert auc == pytest.approx(roc_auc_score(labels, values))
    x = ext.values(2, "c")[aligned]
    best = max(max(a, 1 - a) for a in (roc_auc_score(ext.silence_frames[aligned], x[:, u]) for u in range(24)))
    assert n["per_layer"][1]["best_silence_auc"] == pytest.approx(best)
    assert {t["label"].split()[0] for t in n["traces"]} >= {"silence", "position"}


def test_extraction_of_real_features_and_alignments(tmp_path, tiny_recipe, mono_ali, monkeypatch):
    """fake_extraction on the tiny corpus: CMVN'd Fbank of data/train_fbank, the transcripts, and the monophone
    phone alignments mapped to position-independent phones; the units analysis runs on it."""
    import kaldiio

    from steps_py.data.datadir import read_map
    ali_dir = mono_ali[0]
    data = os.path.join(tiny_recipe, "data", "train_fbank")
    ext = fake_extraction(str(tmp_path / "real"), "lstm", num_layers=1, cell_dim=8, num_utts=3, seed=0,
                          data_dir=data, ali_dir=ali_dir, lang_dir=os.path.join(tiny_recipe, "data", "lang"))
    scp, text = read_map(os.path.join(data, "feats.scp")), read_map(os.path.join(data, "text"))
    utt2spk, cmvn = read_map(os.path.join(data, "utt2spk")), read_map(os.path.join(data, "cmvn.scp"))
    alis = read_alignments(ali_dir, "phone_ali")
    table = read_symbol_table(os.path.join(ali_dir, "phones.txt"), by_id=True)
    assert ext.utts == list(scp)[:3] and ext.feat_dim == 40
    for utt in ext.utts:
        stats = kaldiio.load_mat(cmvn[utt2spk[utt]])
        expect = kaldiio.load_mat(scp[utt]) - stats[0, :-1] / stats[0, -1]
        np.testing.assert_allclose(ext.feats[ext.utt_slice(utt)], expect, rtol=1e-5, atol=1e-4)
        assert ext.words(utt) == text[utt].split()
        names = [ext.phone_names[p] for p in ext.phone_ids[ext.utt_slice(utt)]]
        assert names == [strip_position(table[k]) for k in alis[utt]]
    assert ext.phone_names[0] in ("NSN", "SIL", "SPN") and ext.is_silence.sum() >= 1
    assert 0.02 < ext.silence_frames.mean() < 0.7  # leading/trailing silence in every utterance
    assert ext.meta["internals"] == "random-init AcousticModel"


def test_horizon_sees_a_planted_drift(tmp_path, lstm_ext, monkeypatch):
    from steps_py.memvis import horizon as mod
    offsets = lstm_ext.offsets
    pos = mod.positions(offsets)
    assert pos[offsets[1]] == 0 and pos[offsets[1] - 1] == offsets[1] - 1 and len(pos) == lstm_ext.total_frames

    def drift(layers):  # layer 1: |c| grows by 1 per frame after frame 40 of each utterance; layer 2 as it was
        c = layers[0]["c"]
        c[:] = np.clip(c, -1, 1) + np.maximum(pos - 40, 0)[:, None]
    ext = copy_with(lstm_ext, str(tmp_path / "drift"), drift)
    out = str(tmp_path / "horizon")
    n = run_analysis(mod, monkeypatch, "--horizon-frames", "40", "--bin", "20", ext.dir, out)
    assert_figures(out, "horizon")
    lay1, lay2 = n["layers"]["1"], n["layers"]["2"]
    assert lay1["within"]["p999"] <= 1.0 < lay1["beyond"]["p99"] and lay1["p99_ratio"] > 10
    assert lay1["within"]["share_in_range"] == 1.0 and lay1["beyond"]["share_in_range"] < 0.2
    assert lay1["within"]["frames"] == int((pos < 40).sum())
    assert lay2["p99_ratio"] < 3
    # the bins cover every frame once
    assert sum(b["frames"] for b in lay1["bins"]) == lstm_ext.total_frames
