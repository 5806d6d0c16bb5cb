"""Tests of steps_py.nnet.nsgd: the online natural-gradient preconditioner against dense maths, and the NSGD optimizer
(convergence against SGD, agreement with SGD when the preconditioner is the identity, max-change, checkpoints)."""
import io
import math

import pytest
import torch

from steps_py.nnet.nsgd import NSGD, OnlineNaturalGradient


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Small matrices: one thread is faster, and the machine's 2 cores are shared."""
    num_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(num_threads)


class RecordedLinear(torch.nn.Module):
    """y = x W^T + b keeping what NSGD needs: .inputs [N, in] and, after backward, .out_grads [N, out]."""

    def __init__(self, in_dim, out_dim, init_scale=0.0):
        super().__init__()
        self.weight = torch.nn.Parameter(init_scale * torch.randn(out_dim, in_dim))
        self.bias = torch.nn.Parameter(init_scale * torch.randn(out_dim))
        self.inputs = self.out_grads = None

    def forward(self, x):
        y = torch.nn.functional.linear(x, self.weight, self.bias)
        if y.requires_grad:
            self.inputs = x.detach().reshape(-1, x.shape[-1])
            y.register_hook(lambda g: setattr(self, "out_grads", g.reshape(-1, g.shape[-1])))
        return y


def dense_precondition(state, rows):
    """rows @ inverse(R^T diag(d) R + rho I + alpha/D tr(.) I), rescaled to the norm of rows; float64, dense."""
    R, d, rho, alpha = state["R"].double(), state["d"].double(), state["rho"], state["alpha"]
    dim = R.shape[1]
    fisher = R.T @ torch.diag(d) @ R + rho * torch.eye(dim, dtype=torch.float64)
    smoothed = fisher + alpha / dim * torch.trace(fisher) * torch.eye(dim, dtype=torch.float64)
    out = rows.double() @ torch.linalg.inv(smoothed)
    return out * rows.double().norm() / out.norm()


def principal_cosines(basis_a, basis_b):
    """Cosines of the principal angles between the row spaces of two [k, dim] matrices with orthonormal rows."""
    return torch.linalg.svdvals(basis_a.double() @ basis_b.double().T)


def test_precondition_equals_dense_inverse():
    torch.manual_seed(0)
    ong = OnlineNaturalGradient(10, 3, update_period=2, num_samples_history=200.0, num_initial_updates=3)
    col_scales = torch.logspace(-1, 1, 10)
    worst = 0.0
    for call in range(30):
        rows = torch.randn(40, 10) * col_scales + 0.3
        before = ong.state_dict() if ong.R is not None else None
        out = ong.precondition(rows)
        if before is None:   # first call: initialised from these rows, then applied
            before = ong.state_dict()
            if ong.num_updates > 0:
                continue
        ref = dense_precondition(before, rows)
        worst = max(worst, float((out.double() - ref).abs().max() / ref.abs().max()))
    assert worst < 1e-5
    assert ong.num_updates == 3 + (30 - 3) // 2   # every call at first, then every update_period calls


def test_update_step_is_one_subspace_iteration():
    """One update from a known state equals the dense computation: F_new = eta X^T X/N + (1-eta) F, Y = R F_new,
    Y Y^T = U C U^T, R_new = C^-1/2 U^T Y, d_new + rho_new = sqrt(C), rho_new = (tr F_new - sum sqrt C)/(D-K)."""
    torch.manual_seed(1)
    dim, rank, num_rows = 12, 4, 60
    ong = OnlineNaturalGradient(dim, rank, update_period=1, num_samples_history=100.0)
    col_scales = torch.linspace(0.5, 3.0, dim)
    ong.precondition(torch.randn(num_rows, dim, dtype=torch.float64) * col_scales)
    state = ong.state_dict()
    rows = torch.randn(num_rows, dim, dtype=torch.float64) * col_scales
    ong.precondition(rows)
    eta = 1.0 - math.exp(-num_rows / 100.0)
    R = state["R"].double()
    fisher_old = R.T @ torch.diag(state["d"]) @ R + state["rho"] * torch.eye(dim, dtype=torch.float64)
    fisher_new = eta * rows.T @ rows / num_rows + (1.0 - eta) * fisher_old
    Y = R @ fisher_new
    c, U = torch.linalg.eigh(Y @ Y.T)
    c, U = c.flip(0), U.flip(1)
    R_ref = (U.T / c.sqrt().unsqueeze(1)) @ Y
    rho_ref = (torch.trace(fisher_new) - c.sqrt().sum()) / (dim - rank)
    assert ong.rho == pytest.approx(float(rho_ref), rel=1e-6)
    torch.testing.assert_close(ong.d + ong.rho, c.sqrt(), rtol=1e-6, atol=0.0)
    torch.testing.assert_close(ong.R.double().abs(), R_ref.abs(), rtol=1e-5, atol=1e-6)


def test_full_rank_estimate_reproduces_scatter():
    """rank dim-1 and eta = 1: repeated updates on the same rows converge to exactly X^T X / N."""
    torch.manual_seed(2)
    dim, num_rows = 8, 64
    Q, _ = torch.linalg.qr(torch.randn(dim, dim, dtype=torch.float64))
    rows = torch.randn(num_rows, dim, dtype=torch.float64)
    rows = torch.linalg.qr(rows).Q * math.sqrt(num_rows) * torch.arange(dim, 0, -1).double().sqrt() @ Q.T
    scatter = rows.T @ rows / num_rows          # eigenvalues 8, 7, ..., 1
    ong = OnlineNaturalGradient(dim, dim - 1, update_period=1, num_samples_history=1e-3)
    assert ong.eta(num_rows) == 1.0
    for _ in range(60):
        ong.precondition(rows)
    torch.testing.assert_close(ong.fisher(), scatter, rtol=0.0, atol=1e-5 * float(scatter.abs().max()))
    torch.testing.assert_close(ong.d + ong.rho, torch.arange(dim, 1, -1).double(), rtol=1e-6, atol=0.0)
    assert ong.rho == pytest.approx(1.0, rel=1e-6)


def test_finds_low_rank_part_and_noise_floor():
    torch.manual_seed(3)
    dim, rank = 60, 5
    top_dirs = torch.linalg.qr(torch.randn(dim, rank)).Q.T            # [rank, dim]
    top_vars = torch.tensor([50.0, 30.0, 20.0, 10.0, 5.0])
    noise_var = 1.0
    ong = OnlineNaturalGradient(dim, rank)
    for _ in range(300):
        rows = (torch.randn(100, rank) * top_vars.sqrt()) @ top_dirs + math.sqrt(noise_var) * torch.randn(100, dim)
        ong.precondition(rows)
    cosines = principal_cosines(ong.R, top_dirs)
    assert float(cosines.min()) > 0.98          # largest principal angle < ~11 degrees
    assert ong.rho == pytest.approx(noise_var, rel=0.1)
    # d estimates the excess over the floor (the top variances)
    torch.testing.assert_close(ong.d.float(), top_vars, rtol=0.25, atol=0.0)


def test_norm_kept_and_rows_stay_orthonormal():
    torch.manual_seed(4)
    dim, rank = 40, 10
    ong = OnlineNaturalGradient(dim, rank, update_period=1)
    col_scales = torch.logspace(-2, 2, dim)
    worst_norm, worst_orth = 0.0, 0.0
    for call in range(500):
        scale = 10.0 ** float(torch.empty(1).uniform_(-3, 3))   # the scale changes wildly between calls
        rows = torch.randn(int(torch.randint(1, 200, (1,))), dim) * col_scales * scale
        out = ong.precondition(rows)
        worst_norm = max(worst_norm, abs(float(out.norm() / rows.norm()) - 1.0))
        gram = ong.R.double() @ ong.R.double().T
        worst_orth = max(worst_orth, float((gram - torch.eye(rank, dtype=torch.float64)).abs().max()))
        assert bool((ong.d > 0).all()) and ong.rho > 0
    assert ong.num_updates == 500
    # rows inside the estimated space, little smoothing: e close to 1, the cheap norm formula would cancel
    ong = OnlineNaturalGradient(dim, rank, update_period=1, alpha=0.01)
    direction = torch.randn(1, dim)
    for call in range(30):
        rows = torch.randn(100, 1) * direction + 1e-4 * torch.randn(100, dim)
        out = ong.precondition(rows)
        worst_norm = max(worst_norm, abs(float(out.norm() / rows.norm()) - 1.0))
    assert float(ong.d.max() / (ong.d.max() + ong.beta())) > 0.999
    assert worst_norm < 1e-5
    assert worst_orth < 1e-4


def test_dim_one_and_rank_caps():
    ong = OnlineNaturalGradient(1, 5)
    rows = torch.randn(7, 1)
    assert torch.equal(ong.precondition(rows), rows)
    assert OnlineNaturalGradient(10, 20).rank == 9
    rec = RecordedLinear(6, 3)
    opt = NSGD([rec], lr=0.1, rank_in=20, rank_out=80)
    assert [p.rank for p in opt.preconditioners[0]] == [4, 2]   # (7 + 1) // 2, (3 + 1) // 2 as Kaldi


def least_squares_problem(seed=0, in_dim=50, out_dim=5, num_rows=4000):
    """Inputs with 3 directions of variance 100, the rest 1, mean 0.5: badly conditioned. Returns inputs,
    targets, and the optimal loss."""
    gen = torch.Generator().manual_seed(seed)
    Q, _ = torch.linalg.qr(torch.randn(in_dim, in_dim, generator=gen))
    scales = torch.ones(in_dim)
    scales[:3] = 10.0
    inputs = (torch.randn(num_rows, in_dim, generator=gen) * scales) @ Q.T + 0.5
    weight = torch.randn(out_dim, in_dim, generator=gen)
    targets = inputs @ weight.T + torch.randn(out_dim, generator=gen) + 0.1 * torch.randn(num_rows, out_dim,
                                                                                          generator=gen)
    augmented = torch.cat([inputs, torch.ones(num_rows, 1)], 1).double()
    solution = torch.linalg.lstsq(augmented, targets.double()).solution
    best = 0.5 * ((augmented @ solution - targets.double()) ** 2).sum(1).mean()
    return inputs, targets, float(best)


def steps_to_converge(kind, lr0, max_steps=600, excess=0.1):
    """Minibatch (200 rows) training with lr decaying exponentially lr0 -> lr0/10 over max_steps; the number of
    steps until the full-data loss is within ``excess`` of the optimum (None if never)."""
    inputs, targets, best = least_squares_problem()
    torch.manual_seed(1)
    model = RecordedLinear(inputs.shape[1], targets.shape[1])
    if kind == "sgd":
        opt = torch.optim.SGD(model.parameters(), lr=lr0)
    else:
        opt = NSGD([model], [], lr=lr0, max_change=0.0)
    for step in range(max_steps):
        for group in opt.param_groups:
            group["lr"] = lr0 * 0.1 ** (step / max_steps)
        batch = torch.randint(0, inputs.shape[0], (200,))
        loss = 0.5 * ((model(inputs[batch]) - targets[batch]) ** 2).sum(1).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        with torch.no_grad():
            if float(0.5 * ((model(inputs) - targets) ** 2).sum(1).mean()) < best + excess:
                return step + 1
    return None


def test_nsgd_converges_much_faster_than_sgd():
    # lr 0.02 is about the largest stable SGD rate here (0.03 diverges); measured: SGD 502 steps, NSGD 125.
    sgd_steps = steps_to_converge("sgd", 0.02)
    nsgd_steps = steps_to_converge("nsgd", 0.02)
    assert sgd_steps is not None and nsgd_steps is not None
    assert nsgd_steps * 3 < sgd_steps, (nsgd_steps, sgd_steps)


def two_layer_model(seed=0):
    torch.manual_seed(seed)
    layer1, layer2 = RecordedLinear(12, 9, 0.3), RecordedLinear(9, 4, 0.3)
    gain = torch.nn.Parameter(torch.ones(9))    # a parameter in no record

    def forward(x):
        return layer2(torch.tanh(layer1(x)) * gain)
    return forward, [layer1, layer2], [gain]


def batches(num, seed=5):
    gen = torch.Generator().manual_seed(seed)
    return [(torch.randn(3, 10, 12, generator=gen), torch.randn(3, 10, 4, generator=gen)) for _ in range(num)]


def train(forward, opt, data):
    for inputs, targets in data:
        loss = ((forward(inputs) - targets) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()


def test_record_gradient_equals_preconditioned_product():
    """NSGD's gradient (low-rank factors applied to the plain gradient) equals precondition(out_grads)^T @
    precondition([inputs, 1]) done explicitly with copies of the same preconditioner states."""
    data = batches(8)
    forward, records, others = two_layer_model()
    opt = NSGD(records, others, lr=0.05, max_change=0.0, rank_in=4, rank_out=3)
    train(forward, opt, data[:5])
    inputs, targets = data[5]
    opt.zero_grad()
    ((forward(inputs) - targets) ** 2).mean().backward()
    explicit = []
    for rec, (pre_in, pre_out) in zip(records, opt.preconditioners):
        copy_in, copy_out = (OnlineNaturalGradient(p.dim, p.rank) for p in (pre_in, pre_out))
        copy_in.load_state_dict(pre_in.state_dict())
        copy_out.load_state_dict(pre_out.state_dict())
        rows_in = torch.cat([rec.inputs, torch.ones(rec.inputs.shape[0], 1)], 1)
        explicit.append(copy_out.precondition(rec.out_grads).T @ copy_in.precondition(rows_in))
    opt.natural_gradients()
    for rec, grad in zip(records, explicit):
        torch.testing.assert_close(rec.weight.grad, grad[:, :-1], rtol=1e-5, atol=1e-7)
        torch.testing.assert_close(rec.bias.grad, grad[:, -1], rtol=1e-5, atol=1e-7)
    assert float((records[0].weight.grad - (records[0].out_grads.T @ records[0].inputs)).abs().max()) > 1e-4


def test_identity_preconditioner_equals_sgd():
    """With alpha huge the smoothed Fisher is a multiple of I: NSGD must then take exactly SGD's steps."""
    data = batches(6)
    forward, records, others = two_layer_model()
    opt = NSGD(records, others, lr=0.05, momentum=0.0, max_change=0.0, alpha=1e12)
    train(forward, opt, data)
    forward_ref, records_ref, others_ref = two_layer_model()
    params_ref = [p for r in records_ref for p in (r.weight, r.bias)] + others_ref
    train(forward_ref, torch.optim.SGD(params_ref, lr=0.05), data)
    for p, q in zip(opt.params, params_ref):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)


def test_max_change_caps_update_norm():
    data = batches(3)
    forward, records, others = two_layer_model()
    opt = NSGD(records, others, lr=100.0, max_change=0.5)
    for inputs, targets in data:
        before = [p.detach().clone() for p in opt.params]
        train(forward, opt, [(inputs, targets)])
        change = math.sqrt(sum(float((p.detach() - b).pow(2).sum()) for p, b in zip(opt.params, before)))
        assert change == pytest.approx(0.5, rel=1e-4)
    assert opt.num_max_change_applied == 3
    # per-record limit: the first record's change stays under 0.01
    forward, records, others = two_layer_model()
    opt = NSGD(records, others, lr=100.0, max_change=0.0, max_change_per_record=[0.01, 0.0])
    before = [records[0].weight.detach().clone(), records[0].bias.detach().clone()]
    train(forward, opt, data[:1])
    after = [records[0].weight.detach(), records[0].bias.detach()]
    change = math.sqrt(sum(float((a - b).pow(2).sum()) for a, b in zip(after, before)))
    assert change == pytest.approx(0.01, rel=1e-4)
    assert opt.num_max_change_per_record_applied == [1, 0]
    assert opt.num_max_change_applied == 0


def test_state_dict_round_trip_continues_identically():
    data = batches(14)
    kwargs = dict(lr=0.05, momentum=0.5, max_change=0.3, update_period=3, num_initial_updates=2)
    forward, records, others = two_layer_model()
    opt = NSGD(records, others, **kwargs)
    train(forward, opt, data[:7])
    buffer = io.BytesIO()
    torch.save({"params": [p.detach().clone() for p in opt.params], "opt": opt.state_dict()}, buffer)
    train(forward, opt, data[7:])
    expected = [p.detach().clone() for p in opt.params]

    buffer.seek(0)
    saved = torch.load(buffer)
    forward2, records2, others2 = two_layer_model(seed=9)
    opt2 = NSGD(records2, others2, **dict(kwargs, lr=1.0))
    with torch.no_grad():
        for p, q in zip(opt2.params, saved["params"]):
            p.copy_(q)
    opt2.load_state_dict(saved["opt"])
    train(forward2, opt2, data[7:])
    for p, q in zip(opt2.params, expected):
        assert torch.equal(p, q)
    assert opt2.num_steps == 14


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_acoustic_model_records_with_identity_preconditioner_equal_sgd(cell):
    """The real model's affine_records() drive NSGD; with alpha huge its steps are SGD's."""
    from steps_py.nnet.config import NnetConfig
    from steps_py.nnet.model import AcousticModel
    torch.manual_seed(0)
    model = AcousticModel(NnetConfig(cell=cell, num_layers=2, cell_dim=6, splice=1), 5, 7)
    reference = AcousticModel(NnetConfig(cell=cell, num_layers=2, cell_dim=6, splice=1), 5, 7)
    reference.load_state_dict(model.state_dict())
    model.record_affine = True
    records = model.affine_records()
    in_records = {id(p) for r in records for p in (r.weight, r.bias) if p is not None}
    opt = NSGD(records, [p for p in model.parameters() if id(p) not in in_records], lr=0.1, max_change=0.0,
               alpha=1e12)
    opt_ref = torch.optim.SGD(reference.parameters(), lr=0.1)
    gen = torch.Generator().manual_seed(1)
    for _ in range(3):
        feats, pdf_ids = torch.randn(2, 9, 5, generator=gen), torch.randint(0, 7, (2, 9), generator=gen)
        for net, optimizer in ((model, opt), (reference, opt_ref)):
            loss = torch.nn.functional.cross_entropy(net(feats).reshape(-1, 7), pdf_ids.reshape(-1))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    assert opt.num_plain_fallbacks == 0
    for (name, p), q in zip(model.named_parameters(), reference.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6, msg=name)


def recorded_minibatches(num_minibatches, cell="lstm"):
    """The affine records of a real acoustic model over ``num_minibatches`` backward passes of its per-frame mean CE
    (the loss nnet.train minimises), as the NSGD docstring defines them: per minibatch and record, (weight.grad,
    bias.grad, inputs [N, in], out_grads [N, out]) with weight.grad == out_grads^T inputs. The targets are drawn
    with Zipfian frequencies like real pdf priors (uniform ones make the output derivatives' scatter degenerate, and
    its top-rank subspace as sensitive to rounding as to anything else)."""
    from steps_py.nnet.config import NnetConfig
    from steps_py.nnet.model import AcousticModel
    torch.manual_seed(0)
    model = AcousticModel(NnetConfig(cell=cell, num_layers=2, cell_dim=32, splice=1), 13, 40)
    model.record_affine = True
    gen = torch.Generator().manual_seed(1)
    priors = 1.0 / torch.arange(1, 41)
    batches = []
    for _ in range(num_minibatches):
        feats = torch.randn(8, 30, 13, generator=gen)
        pdf_ids = torch.multinomial(priors, 8 * 30, replacement=True, generator=gen).reshape(8, 30)
        model.zero_grad()
        torch.nn.functional.cross_entropy(model(feats).reshape(-1, 40), pdf_ids.reshape(-1)).backward()
        batches.append([(r.weight.grad.clone(), r.bias.grad.clone(), r.inputs.detach().clone(),
                         r.out_grads.detach().reshape(-1, r.weight.shape[0]).clone())
                        for r in model.affine_records()])
    return batches


def natural_gradients_at_scale(batches, s, dtype=torch.float32):
    """Runs a fresh NSGD's natural_gradients() over ``batches`` (in ``dtype``) with every out_grads (and so every
    plain gradient) multiplied by s; returns the natural gradients [minibatch][record] (weight and bias
    concatenated, float64) and the optimizer."""
    from types import SimpleNamespace
    records = [SimpleNamespace(weight=torch.nn.Parameter(torch.zeros_like(w, dtype=dtype)), bias=torch.nn.Parameter(
        torch.zeros_like(b, dtype=dtype))) for w, b, _, _ in batches[0]]
    opt = NSGD(records, lr=1.0, max_change=0.0)
    out = []
    for batch in batches:
        for rec, (w_grad, b_grad, inputs, out_grads) in zip(records, batch):
            rec.weight.grad, rec.bias.grad = w_grad.to(dtype) * s, b_grad.to(dtype) * s
            rec.inputs, rec.out_grads = inputs.to(dtype), out_grads.to(dtype) * s
        opt.natural_gradients()
        out.append([torch.cat([r.weight.grad, r.bias.grad.unsqueeze(1)], 1).double() for r in records])
    return out, opt


def worst_relative_error(reference, scaled, s):
    return max(float((y / s - x).norm() / x.norm()) for a, b in zip(reference, scaled) for x, y in zip(a, b))


def test_natural_gradient_does_not_depend_on_the_units_of_the_loss():
    """Multiplying every record's out_grads by s multiplies each natural gradient by s and changes nothing else,
    for s in [1e-6, 1e3], through the initial updates and the periodic ones (14 minibatches). In float64 the maths
    is tested (relative error <= 1e-4); in float32, as training runs, scaling is rounding, and the error is that of
    a rounding-sized change of the derivatives (the first estimates of the output layer, on a minibatch where most
    pdfs do not occur, are that sensitive whatever the scale)."""
    batches = recorded_minibatches(14)
    # the mean CE's output derivatives are tiny (Kaldi's sum over frames would be N = 240 times larger)
    assert float(batches[0][-1][3].abs().max()) < 1e-2
    reference, ref_opt = natural_gradients_at_scale(batches, 1.0, torch.float64)
    for s in (1e-6, 1e-3, 1e3):
        scaled, opt = natural_gradients_at_scale(batches, s, torch.float64)
        assert worst_relative_error(reference, scaled, s) <= 1e-4, f"s={s}"
        for (ref_in, ref_out), (pre_in, pre_out) in zip(ref_opt.preconditioners, opt.preconditioners):
            assert pre_out.rho == pytest.approx(ref_out.rho * s * s, rel=1e-6)
            assert pre_in.rho == pytest.approx(ref_in.rho, rel=1e-9)
    reference32, _ = natural_gradients_at_scale(batches, 1.0)
    gen = torch.Generator().manual_seed(2)
    rounded = [[(w, b, x, g * (1 + 6e-8 * torch.randn(g.shape, generator=gen))) for w, b, x, g in batch]
               for batch in batches]
    rounding_error = worst_relative_error(reference32, natural_gradients_at_scale(rounded, 1.0)[0], 1.0)
    for s in (1e-6, 1e-3, 1e3):
        err = worst_relative_error(reference32, natural_gradients_at_scale(batches, s)[0], s)
        assert err <= max(1e-4, 5 * rounding_error), f"s={s}: {err:.2e} (rounding alone: {rounding_error:.2e})"
