"""Tests of steps_py/nnet/model.py: hand-written recurrent layers against plain autograd references, torch.nn.LSTM,
the lazy cell update, internals, NSGD affine records, residual/dropout, conf parsing, splicing, a toy task."""
import math
import os

import pytest
import torch

from steps_py.common import InputError
from steps_py.nnet.config import NnetConfig
from steps_py.nnet.model import AcousticModel, cell_dim_for_params, count_params, LstmLayer, splice_frames
from steps_py.nnet import recurrent
from steps_py.nnet.recurrent import GruFunction, LstmFunction, RnnFunction

from conftest import ROOT

F64 = torch.float64


# ---------------------------------------------------------------------------------------------------------------
# plain autograd references, written from the equations (time-major x [T, B, D], weights over [x_t, h_{t-1}])

def ref_lstm(x, weight, bias, peep, lazy, scale=1.0):
    """Returns (h, c) [T, B, H]; the cell, its peepholes and a lazy output see scale * c_{t-1} (Kaldi's recurrence
    scale)."""
    cell_dim = weight.shape[0] // 4
    h = x.new_zeros(x.shape[1], cell_dim)
    c = torch.zeros_like(h)
    hs, cs = [], []
    p_i, p_f, p_o = peep if peep is not None else (0.0, 0.0, 0.0)
    for x_t in x:
        c = scale * c
        pre_i, pre_f, pre_g, pre_o = (torch.cat([x_t, h], 1) @ weight.t() + bias).split(cell_dim, 1)
        i = torch.sigmoid(pre_i + p_i * c)
        f = torch.sigmoid(pre_f + p_f * c)
        g = torch.tanh(pre_g)
        c_new = f * c + i * g
        if lazy:
            h = torch.sigmoid(pre_o + p_o * c) * torch.tanh(c)
        else:
            h = torch.sigmoid(pre_o + p_o * c_new) * torch.tanh(c_new)
        c = c_new
        hs.append(h)
        cs.append(c)
    return torch.stack(hs), torch.stack(cs)


def ref_gru(x, w_zr, b_zr, w_n, b_n):
    cell_dim = w_n.shape[0]
    h = x.new_zeros(x.shape[1], cell_dim)
    hs = []
    for x_t in x:
        z, r = torch.sigmoid(torch.cat([x_t, h], 1) @ w_zr.t() + b_zr).split(cell_dim, 1)
        n = torch.tanh(torch.cat([x_t, r * h], 1) @ w_n.t() + b_n)
        h = z * h + (1 - z) * n
        hs.append(h)
    return torch.stack(hs)


def ref_rnn(x, weight, bias):
    h = x.new_zeros(x.shape[1], weight.shape[0])
    hs = []
    for x_t in x:
        h = torch.tanh(torch.cat([x_t, h], 1) @ weight.t() + bias)
        hs.append(h)
    return torch.stack(hs)


def rand(*shape, scale=1.0):
    return (torch.randn(*shape, dtype=F64) * scale).requires_grad_()


def grads(out, inputs, out_weights):
    return torch.autograd.grad((out * out_weights).sum(), [t for t in inputs if t is not None])


def assert_close_all(got, want, tol=1e-10):
    assert len(got) == len(want)
    for a, b in zip(got, want):
        assert torch.allclose(a, b, atol=tol, rtol=tol), (a - b).abs().max()


# ---------------------------------------------------------------------------------------------------------------
# hand-written cells against the references

@pytest.mark.parametrize("lazy", [False, True])
@pytest.mark.parametrize("peephole", [False, True])
@pytest.mark.parametrize("scale", [1.0, 0.8])
def test_lstm_matches_autograd_reference(lazy, peephole, scale):
    torch.manual_seed(1)
    frames, seqs, in_dim, cell_dim = 7, 3, 5, 4
    x = rand(frames, seqs, in_dim)
    weight, bias = rand(4 * cell_dim, in_dim + cell_dim), rand(4 * cell_dim)
    peep = rand(3, cell_dim) if peephole else None
    out_weights = torch.randn(frames, seqs, cell_dim, dtype=F64)
    h, c, _ = LstmFunction.apply(x, weight, bias, peep, lazy, None, scale)
    h_ref, c_ref = ref_lstm(x, weight, bias, peep, lazy, scale)
    assert_close_all([h, c], [h_ref, c_ref])
    params = [x, weight, bias, peep]
    assert_close_all(grads(h, params, out_weights), grads(h_ref, params, out_weights))


def test_gru_and_rnn_match_autograd_reference():
    torch.manual_seed(2)
    frames, seqs, in_dim, cell_dim = 6, 2, 3, 5
    x = rand(frames, seqs, in_dim)
    out_weights = torch.randn(frames, seqs, cell_dim, dtype=F64)
    gru_params = [rand(2 * cell_dim, in_dim + cell_dim), rand(2 * cell_dim), rand(cell_dim, in_dim + cell_dim),
                  rand(cell_dim)]
    h, _, _ = GruFunction.apply(x, *gru_params, None, None)
    h_ref = ref_gru(x, *gru_params)
    assert_close_all([h], [h_ref])
    assert_close_all(grads(h, [x] + gru_params, out_weights), grads(h_ref, [x] + gru_params, out_weights))
    rnn_params = [rand(cell_dim, in_dim + cell_dim), rand(cell_dim)]
    h = RnnFunction.apply(x, *rnn_params, None)
    h_ref = ref_rnn(x, *rnn_params)
    assert_close_all([h], [h_ref])
    assert_close_all(grads(h, [x] + rnn_params, out_weights), grads(h_ref, [x] + rnn_params, out_weights))


@pytest.mark.skipif(not recurrent._MKL_PACKED, reason="this torch has no MKL packed sgemm")
def test_mkl_packed_recurrent_products_match_the_references(monkeypatch):
    """The float32 loops with every recurrent product packed (recurrent.FrameProduct, forced by PACK_MIN_SIZE 0)
    give the float64 references' outputs and gradients up to float32 rounding."""
    monkeypatch.setattr(recurrent, "PACK_MIN_SIZE", 0)
    assert recurrent.FrameProduct(torch.zeros(3, 4), 2).packed is not None
    torch.manual_seed(4)
    frames, seqs, in_dim, cell_dim = 9, 3, 5, 6
    x = rand(frames, seqs, in_dim)
    out_weights = torch.randn(frames, seqs, cell_dim, dtype=F64)
    cases = [(lambda x, *p: LstmFunction.apply(x, *p, False, None, 0.9)[0],
              lambda x, *p: ref_lstm(x, *p, False, 0.9)[0],
              [rand(4 * cell_dim, in_dim + cell_dim, scale=0.5), rand(4 * cell_dim), rand(3, cell_dim)]),
             (lambda x, *p: GruFunction.apply(x, *p, None, None)[0], ref_gru,
              [rand(2 * cell_dim, in_dim + cell_dim), rand(2 * cell_dim), rand(cell_dim, in_dim + cell_dim),
               rand(cell_dim)]),
             (lambda x, *p: RnnFunction.apply(x, *p, None), ref_rnn, [rand(cell_dim, in_dim + cell_dim, scale=0.5),
                                                                       rand(cell_dim)])]
    for ours, ref, params in cases:
        params32 = [p.detach().float().requires_grad_() for p in [x] + params]
        h = ours(*params32)
        got = [h] + list(grads(h, params32, out_weights.float()))
        h_ref = ref(x, *params)
        want = [h_ref] + list(grads(h_ref, [x] + params, out_weights))
        for a, b in zip(got, want):
            assert a.dtype == torch.float32
            assert torch.allclose(a.double(), b, atol=1e-5, rtol=1e-4), (a.double() - b).abs().max()


def test_gradcheck_tiny():
    torch.manual_seed(3)
    x = rand(3, 2, 2)
    for lazy in (False, True):
        for scale in (1.0, 0.9):
            assert torch.autograd.gradcheck(lambda *a: LstmFunction.apply(*a, lazy, None, scale)[0],
                                            (x, rand(12, 5), rand(12), rand(3, 3)))
    assert torch.autograd.gradcheck(lambda *a: GruFunction.apply(*a, None, None)[0],
                                    (x, rand(6, 5), rand(6), rand(3, 5), rand(3)))
    assert torch.autograd.gradcheck(lambda *a: RnnFunction.apply(*a, None), (x, rand(3, 5), rand(3)))


def test_decay_time_bounds_the_cell():
    """Kaldi's decay-time: with input and forget gates held open and a constant candidate, the plain cell counts
    frames (c_t = t after t frames) while decay_time=20 bounds it by 20 (c_t -> 1 / (1 - 0.95)); the layer's
    internals show the same cell."""
    torch.manual_seed(6)
    frames, cell_dim = 400, 3
    x = torch.zeros(frames, 1, 2)
    with torch.no_grad():
        plain, decayed = LstmLayer(2, cell_dim, peephole=False), LstmLayer(2, cell_dim, peephole=False, decay_time=20)
        for layer in (plain, decayed):
            layer.weight.zero_()
            layer.bias.copy_(torch.tensor([30.0] * cell_dim * 3 + [0.0] * cell_dim))   # i = f = g = 1
        c_plain = plain(x, internals=True)[1]["c"][:, 0]
        c_decay = decayed(x, internals=True)[1]["c"][:, 0]
    assert torch.allclose(c_plain[-1], torch.full((cell_dim,), float(frames)), rtol=1e-4)
    assert c_decay.max() <= 20.0 and torch.allclose(c_decay[-1], torch.full((cell_dim,), 20.0), rtol=1e-4)
    assert torch.allclose(c_decay[1], torch.full((cell_dim,), 1.95), rtol=1e-4)     # 0.95 * 1 + 1


def test_lstm_without_peepholes_matches_torch_lstm():
    torch.manual_seed(4)
    in_dim, cell_dim = 6, 8
    ref = torch.nn.LSTM(in_dim, cell_dim)
    layer = LstmLayer(in_dim, cell_dim, peephole=False)
    with torch.no_grad():  # torch's gate order is also i, f, g, o
        layer.weight.copy_(torch.cat([ref.weight_ih_l0, ref.weight_hh_l0], 1))
        layer.bias.copy_(ref.bias_ih_l0 + ref.bias_hh_l0)
    x = torch.randn(9, 4, in_dim)
    h, _ = layer(x)
    assert torch.allclose(h, ref(x)[0], atol=1e-5)


def lstm_internals(lazy, seed=5):
    torch.manual_seed(seed)
    cfg = NnetConfig(cell="lstm", num_layers=1, cell_dim=6, lazy="all" if lazy else "none", splice=0)
    model = AcousticModel(cfg, 3, 4)
    with torch.no_grad():
        return model(torch.randn(2, 8, 3) * 2, return_internals=True)[1][0]


def test_lazy_lstm_output_reads_previous_cell():
    lazy, std = lstm_internals(True), lstm_internals(False)
    for ints, use_prev in ((lazy, True), (std, False)):
        c_prev = torch.cat([torch.zeros_like(ints["c"][:, :1]), ints["c"][:, :-1]], 1)
        from_prev = ints["o"] * torch.tanh(c_prev)
        from_cur = ints["o"] * torch.tanh(ints["c"])
        assert torch.allclose(ints["h"], from_prev if use_prev else from_cur, atol=1e-6)
        assert not torch.allclose(ints["h"], from_cur if use_prev else from_prev, atol=1e-3)
    assert lazy["h"][:, 0].abs().max() == 0  # c_0 = 0: nothing in memory yet
    # and the peephole of o sees c_{t-1}: with the same weights the gates differ from the standard cell only there
    assert not torch.allclose(lazy["o"], std["o"], atol=1e-4)


# ---------------------------------------------------------------------------------------------------------------
# the model: internals, causality, records, residual, dropout

CELL_CONFIGS = {
    "lstm": dict(cell="lstm"),
    "lstm_lazy_np": dict(cell="lstm", lazy="last", peephole=False),
    "gru": dict(cell="gru"),
    "rnn": dict(cell="rnn"),
    "dnn": dict(cell="dnn", splice=2),
}
INTERNAL_NAMES = {"lstm": {"c", "h", "i", "f", "o"}, "gru": {"h", "z", "r", "n"}, "rnn": {"h"}, "dnn": {"h"}}


def small_model(name, **kwargs):
    torch.manual_seed(6)
    settings = dict(num_layers=2, cell_dim=7, splice=1)
    settings.update(CELL_CONFIGS[name], **kwargs)
    return AcousticModel(NnetConfig(**settings), 4, 5)


@pytest.mark.parametrize("name", sorted(CELL_CONFIGS))
def test_internals_are_what_forward_used(name):
    model = small_model(name).eval()
    feats = torch.randn(3, 10, 4)
    with torch.no_grad():
        logits, internals = model(feats, return_internals=True)
        assert torch.equal(logits, model(feats))
    assert logits.shape == (3, 10, 5)
    assert len(internals) == 2
    for layer in internals:
        assert set(layer) == INTERNAL_NAMES[model.cfg.cell]
        assert all(v.shape == (3, 10, 7) for v in layer.values())
    with torch.no_grad():
        assert torch.allclose(logits, model.output(internals[-1]["h"]), atol=1e-6)
        if model.cfg.cell == "lstm" and not model.cfg.lazy_layers():
            assert torch.allclose(internals[0]["h"], internals[0]["o"] * torch.tanh(internals[0]["c"]), atol=1e-6)
        if model.cfg.cell == "gru":
            h, z, n = internals[1]["h"], internals[1]["z"], internals[1]["n"]
            h_prev = torch.cat([torch.zeros_like(h[:, :1]), h[:, :-1]], 1)
            assert torch.allclose(h, z * h_prev + (1 - z) * n, atol=1e-6)


@pytest.mark.parametrize("name", sorted(CELL_CONFIGS))
def test_output_sees_inputs_up_to_t_plus_splice(name):
    model = small_model(name).eval()
    feats = torch.randn(2, 12, 4)
    changed = feats.clone()
    changed[:, 6] += 1.0
    with torch.no_grad():
        diff = (model(feats) - model(changed)).abs().amax((0, 2))
    splice = model.cfg.splice
    assert diff[:6 - splice].max() == 0
    assert diff[6 - splice] > 1e-4


@pytest.mark.parametrize("name", sorted(CELL_CONFIGS))
def test_affine_records_give_the_weight_gradients(name):
    model = small_model(name)
    records = model.affine_records()
    model.record_affine = True
    feats = torch.randn(3, 9, 4)
    model(feats).logsumexp(2).sum().backward()
    num_frames = 3 * 9
    for rec in records:
        assert rec.inputs.shape == (num_frames, rec.weight.shape[1]) and not rec.inputs.requires_grad
        assert rec.out_grads.shape == (num_frames, rec.weight.shape[0])
        assert torch.allclose(rec.weight.grad, rec.out_grads.t() @ rec.inputs, atol=1e-5), rec
        assert torch.allclose(rec.bias.grad, rec.out_grads.sum(0), atol=1e-5), rec
    in_records = {id(p) for rec in records for p in (rec.weight, rec.bias)}
    others = [n for n, p in model.named_parameters() if id(p) not in in_records]
    assert all(n.endswith("peep") for n in others), others
    assert len(records) == {"gru": 2}.get(model.cfg.cell, 1) * 2 + 1
    # without record_affine nothing is kept
    fresh = small_model(name)
    fresh(feats).sum().backward()
    assert all(rec.inputs is None and rec.out_grads is None for rec in fresh.affine_records())


def test_residual_adds_previous_outputs():
    for residual in (False, True):
        model = small_model("rnn", num_layers=3, residual=residual).eval()
        with torch.no_grad():
            logits, internals = model(torch.randn(2, 6, 4), return_internals=True)
            hs = [layer["h"] for layer in internals]
            passed = hs[0] + hs[1] + hs[2] if residual else hs[2]
            assert torch.allclose(logits, model.output(passed), atol=1e-6)
            assert not torch.allclose(logits, model.output(hs[2] if residual else hs[0] + hs[1] + hs[2]), atol=1e-3)


def test_dropout_only_in_training():
    model = small_model("lstm", dropout=0.4)
    h = torch.ones(50, 40, 30)
    model.train()
    out = model.pass_on(1, h, None)
    kept = out != 0
    assert abs(kept.float().mean().item() - 0.6) < 0.02
    assert torch.allclose(out[kept], torch.full_like(out[kept], 1 / 0.6))
    feats = torch.randn(2, 8, 4)
    assert not torch.equal(model(feats), model(feats))
    model.eval()
    assert torch.equal(model.pass_on(1, h, None), h)
    assert torch.equal(model(feats), model(feats))


# ---------------------------------------------------------------------------------------------------------------
# config, splicing, sizes, checkpoints

def write_conf(tmp_path, text):
    path = tmp_path / "nnet.conf"
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize("text,line,words", [
    ("cell=lstm\nnum_layers=2\ncell_dim=25x\n", 3, "integer"),
    ("# model\ncell=foo\n", 2, "cell"),
    ("cell=lstm\nnum_layers=2\nlazy=7\n", 3, "1..num_layers"),
    ("cell=gru\n\nlazy=last\n", 3, "lazy"),
    ("residual=maybe\n", 1, "true or false"),
    ("dropout=1.5\n", 1, "dropout"),
    ("cell=lstm\ncelldim=256\n", 2, "unknown"),
    ("cell=lstm\ndecay_time=0.5\n", 2, "> 1"),
    ("cell=gru\ndecay_time=20\n", 2, "needs cell=lstm"),
])
def test_conf_errors_name_file_and_line(tmp_path, text, line, words):
    path = write_conf(tmp_path, text)
    with pytest.raises(InputError, match=f"{path}:{line}: .*{words}"):
        NnetConfig.from_file(path)


def test_conf_values_and_round_trip(tmp_path):
    cfg = NnetConfig.from_file(write_conf(tmp_path, "cell=lstm\nnum_layers=4\nlazy=2,4  # two lazy\n"
                                                    "residual=true\ndropout=0.1\n"))
    assert (cfg.num_layers, cfg.residual, cfg.dropout, cfg.lazy_layers()) == (4, True, 0.1, {2, 4})
    assert cfg.peephole and cfg.cell_dim == 256  # defaults
    assert NnetConfig.from_dict(cfg.to_dict()) == cfg
    assert NnetConfig(num_layers=3, lazy="last").lazy_layers() == {3}
    assert NnetConfig(num_layers=3, lazy="all").lazy_layers() == {1, 2, 3}
    with pytest.raises(InputError):
        NnetConfig.from_dict(dict(cfg.to_dict(), cell_size=3))
    example = NnetConfig.from_file(os.path.join(ROOT, "conf", "nnet", "lstm_2l.conf"))
    assert (example.cell, example.num_layers, example.cell_dim) == ("lstm", 2, 256)


def test_checkpoint_round_trip():
    model = small_model("gru")
    copy = AcousticModel(NnetConfig.from_dict(model.cfg.to_dict()), 4, 5)
    copy.load_state_dict(model.state_dict())
    feats = torch.randn(1, 5, 4)
    with torch.no_grad():
        assert torch.equal(model(feats), copy(feats))


def test_splicing_replicates_edge_frames():
    feats = torch.arange(2 * 5 * 3, dtype=torch.float32).view(2, 5, 3)
    spliced = splice_frames(feats, 2)
    assert spliced.shape == (2, 5, 15)
    for t in range(5):
        frames = [min(max(u, 0), 4) for u in range(t - 2, t + 3)]
        assert torch.equal(spliced[:, t], feats[:, frames].reshape(2, 15))
    assert torch.equal(splice_frames(feats, 0), feats)


@pytest.mark.parametrize("name", sorted(CELL_CONFIGS))
def test_parameter_counts(name):
    model = small_model(name)
    assert count_params(model.cfg, 4, 5) == model.num_params()
    target = 123456
    dim = cell_dim_for_params(model.cfg, 40, 300, target)
    distances = [abs(count_params(model.cfg, 40, 300, d) - target) for d in (dim - 1, dim, dim + 1)]
    assert distances[1] == min(distances)


# ---------------------------------------------------------------------------------------------------------------
# learning

def test_tiny_lstm_learns_a_memory_task():
    """Label of frame t = sign of input dim 0 at frame t-3 (needs memory across frames)."""
    torch.manual_seed(7)
    cfg = NnetConfig(cell="lstm", num_layers=2, cell_dim=16, lazy="last", splice=0)
    model = AcousticModel(cfg, 2, 2)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.02)

    def batch():
        feats = torch.randn(16, 20, 2)
        labels = (feats[:, :, 0] > 0).long().roll(3, dims=1)
        return feats, labels

    def loss_of(feats, labels):
        logits = model(feats)[:, 3:]
        return torch.nn.functional.cross_entropy(logits.reshape(-1, 2), labels[:, 3:].reshape(-1))

    feats, labels = batch()
    with torch.no_grad():
        initial = loss_of(feats, labels).item()
    for _ in range(150):
        optimizer.zero_grad()
        loss_of(*batch()).backward()
        optimizer.step()
    with torch.no_grad():
        final = loss_of(feats, labels).item()
    assert initial > 0.6 and final < 0.25 * initial, (initial, final)
    assert math.isfinite(final)
