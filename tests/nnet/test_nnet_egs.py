"""Chunking of utterances into training examples, priors, and the train-conf reader (pure parts)."""
import numpy as np
import pytest

from steps_py.nnet import egs as nnet_egs
from steps_py.nnet import train as train_nnet
from steps_py.common import InputError


def frames_of(lengths, dim=3):
    """Frames whose feature value = global frame index and whose target = 1000 * utt + frame-in-utt."""
    n = sum(lengths)
    feats = np.repeat(np.arange(n, dtype=np.float32)[:, None], dim, 1)
    targets = np.concatenate([1000 * u + np.arange(T) for u, T in enumerate(lengths)]).astype(np.int64)
    lengths = np.asarray(lengths, np.int64)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    return nnet_egs.Frames(feats, targets, starts, lengths, [f"u{i}" for i in range(len(lengths))])


@pytest.mark.parametrize("seed", [None, 0, 1, 2])
def test_chunks_cover_every_labelled_frame_and_line_up_with_the_delay(seed):
    fr = frames_of([95, 40, 7, 121])
    geom = nnet_egs.ChunkGeometry(width=20, left_context=6, label_delay=3)
    rng = None if seed is None else np.random.default_rng(seed)
    inputs, targets, weights = nnet_egs.make_chunks(fr, geom, rng)
    assert inputs.shape[1] == 6 + 20 + 3 and targets.shape == weights.shape == (len(inputs), 20)
    # every frame of every utterance is labelled at least once (chunks moved inside the utterance may overlap)
    seen = set(targets[targets != nnet_egs.IGNORE].tolist())
    assert seen == set(fr.targets.tolist())
    # ... and counts once: the weights of each labelled frame sum to 1 over its chunks; padding weighs nothing
    total = {}
    for y, w in zip(targets.ravel().tolist(), weights.ravel().tolist()):
        total[y] = total.get(y, 0.0) + w
    assert total.pop(nnet_egs.IGNORE, 0.0) == 0.0
    assert np.allclose(sorted(total.values()), 1.0) and len(total) == fr.num_frames
    assert weights.sum() == pytest.approx(fr.num_frames)
    # the fewest chunks that cover each utterance: ceil(T / W), overlapping by less than W in all
    assert len(inputs) == sum(-(-T // 20) for T in (95, 40, 7, 121))
    # the output position left_context + label_delay + k has input frame (label frame + label_delay)
    for c in range(len(inputs)):
        for k in range(20):
            y = targets[c, k]
            if y == nnet_egs.IGNORE:
                continue
            u, t = divmod(int(y), 1000)
            want = fr.starts[u] + min(t + 3, fr.lengths[u] - 1)
            assert inputs[c, 6 + 3 + k] == want
    # inputs never leave their utterance
    for c in range(len(inputs)):
        u = int(targets[c][targets[c] != nnet_egs.IGNORE][0]) // 1000
        assert inputs[c].min() >= fr.starts[u] and inputs[c].max() < fr.starts[u] + fr.lengths[u]


def test_short_utterance_gives_one_padded_chunk():
    fr = frames_of([7])
    inputs, targets, weights = nnet_egs.make_chunks(fr, nnet_egs.ChunkGeometry(20, 4, 2))
    assert inputs.shape == (1, 26)
    assert (targets[0, :7] == np.arange(7)).all() and (targets[0, 7:] == nnet_egs.IGNORE).all()
    assert (weights[0, :7] == 1.0).all() and (weights[0, 7:] == 0.0).all()
    assert inputs[0, :4].tolist() == [0, 0, 0, 0] and inputs[0, -1] == 6


def test_random_offsets_change_the_tiling_between_epochs():
    fr = frames_of([415])
    geom = nnet_egs.ChunkGeometry(40, 10, 5)
    a = nnet_egs.make_chunks(fr, geom, np.random.default_rng(1))[0]
    b = nnet_egs.make_chunks(fr, geom, np.random.default_rng(2))[0]
    assert a.shape[1] == b.shape[1]
    assert set(a[:, 15].tolist()) != set(b[:, 15].tolist())


def test_load_frames_skips_and_counts_bad_utterances(caplog):
    feats = [("a", np.zeros((10, 2), np.float32)), ("b", np.zeros((10, 2), np.float32)),
             ("c", np.zeros((10, 2), np.float32)), ("d", np.ones((5, 2), np.float32))]
    targets = {"a": np.arange(10), "b": np.arange(30), "d": np.arange(4)}
    fr = nnet_egs.load_frames(iter(feats), targets, max_length_mismatch=2)
    assert fr.utts == ["a", "d"]
    assert fr.lengths.tolist() == [10, 5]
    assert fr.targets[-1] == nnet_egs.IGNORE     # d: 5 frames, 4 labels
    assert "skipped 1 utterances with no alignment: c" in caplog.text
    assert "skipped 1 utterances with alignment length mismatch: b" in caplog.text
    with pytest.raises(InputError):
        nnet_egs.load_frames(iter(feats[2:3]), targets)


def test_priors_are_smoothed_counts():
    counts = nnet_egs.pdf_counts({"a": np.array([0, 0, 2]), "b": np.array([2, 2])}, 4)
    assert counts.tolist() == [2, 0, 3, 0]
    p = nnet_egs.priors_from_counts(counts)
    assert np.isclose(p.sum(), 1) and (p > 0).all() and p[2] > p[0] > p[1]


def test_lr_schedule_and_train_conf(tmp_path):
    assert train_nnet.lr_at(0, 10, 1.0, 0.01) == 1.0
    assert np.isclose(train_nnet.lr_at(9, 10, 1.0, 0.01), 0.01)
    assert np.isclose(train_nnet.lr_at(5, 11, 1.0, 0.01), 0.1)
    conf = tmp_path / "t.conf"
    conf.write_text("num_epochs=2.5\noptimizer=adam\n")
    tc = train_nnet.read_train_conf(str(conf))
    assert tc["num_epochs"] == 2.5 and tc["optimizer"] == "adam" and tc["minibatch_size"] == 64
    conf.write_text("num_epocs=2\n")
    with pytest.raises(InputError, match="t.conf:1: unknown setting 'num_epocs'"):
        train_nnet.read_train_conf(str(conf))
    conf.write_text("optimizer=rmsprop\n")
    with pytest.raises(InputError, match="optimizer"):
        train_nnet.read_train_conf(str(conf))
    # the command line's --set wins over the file and is checked as strictly
    conf.write_text("initial_lr=8.0\nnum_jobs=1\n")
    tc = train_nnet.read_train_conf(str(conf), [train_nnet.parse_setting("initial_lr=2"), ("num_jobs", "2")])
    assert tc["initial_lr"] == 2.0 and tc["num_jobs"] == 2 and tc["final_lr"] == 0.8
    with pytest.raises(InputError, match="--set initial_rl=2: unknown setting"):
        train_nnet.read_train_conf(str(conf), [("initial_rl", "2")])
    with pytest.raises(InputError, match="--set: bad value num_jobs='two'"):
        train_nnet.read_train_conf(str(conf), [("num_jobs", "two")])
    with pytest.raises(InputError, match="expected NAME=VALUE"):
        train_nnet.parse_setting("initial_lr")


def test_valid_split_is_disjoint_and_seeded():
    utts = [f"u{i:03d}" for i in range(200)]
    tr, va = train_nnet.split_valid(utts, 20, 1)
    assert len(va) == 20 and not set(tr) & set(va) and len(tr) + len(va) == 200
    assert train_nnet.split_valid(utts, 20, 1) == (tr, va)
    assert len(train_nnet.split_valid(utts[:30], 20, 1)[1]) == 3     # at most a tenth is held out


def test_chunk_width_schedule_keeps_the_frames_per_minibatch(tmp_path):
    conf = tmp_path / "t.conf"
    conf.write_text("chunk_width=40,160\nminibatch_size=8\n")
    tc = train_nnet.read_train_conf(str(conf))
    assert tc["chunk_width"] == [40, 160]
    conf.write_text("chunk_width=40,0\n")
    with pytest.raises(InputError, match="chunk_width"):
        train_nnet.read_train_conf(str(conf))
    fr = frames_of([700, 900, 820, 640])
    epoch_of_first = {}
    stream = train_nnet.minibatch_stream(fr, [40, 160], 6, 3, 8, seed=1, rank=0)
    labelled = {40: 0.0, 160: 0.0}
    for _ in range(40):
        inputs, targets, weights = next(stream)
        width = targets.shape[1]
        assert inputs.shape[1] == 6 + width + 3
        epoch_of_first.setdefault(width, len(epoch_of_first))
        labelled[width] += weights.sum()
        # 8 chunks of 40 or 2 of 160: the same frames per minibatch
        assert len(targets) * width <= 8 * 40
    # the first pass over the data is in chunks of 40, later ones in chunks of 160; each pass counts every frame once
    assert epoch_of_first == {40: 0, 160: 1}
    assert labelled[40] == pytest.approx(fr.num_frames)


def test_per_component_max_change_reaches_the_optimizer(tmp_path):
    from steps_py.nnet.config import NnetConfig
    from steps_py.nnet.model import AcousticModel
    conf = tmp_path / "t.conf"
    conf.write_text("max_change_per_component=0.5\nmax_change_output=1.25\n")
    tc = train_nnet.read_train_conf(str(conf))
    model = AcousticModel(NnetConfig(cell="lstm", num_layers=2, cell_dim=8), 5, 7)
    opt, _ = train_nnet.make_optimizer(model, tc, 1)
    assert opt.max_change_per_record == [0.5] * (len(model.affine_records()) - 1) + [1.25]
