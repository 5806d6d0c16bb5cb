"""The recurrent layers' time loops and autograd Functions: LSTM (with peepholes and lazy cell update), GRU and
vanilla tanh RNN, forward and backward written by hand (equations: steps_py.nnet.model).

Shapes: T frames (10 ms), B sequences, H = cell_dim, D = layer input dim; LSTM gate order i, f, g, o. The Functions
take x [T, B, D] time-major (may be a strided view) and weight [G*H, D+H] over [x_t, h_{t-1}]: the input projection
of all frames is one matrix product, the time loop only does h @ W_h and elementwise work. Each layer keeps its
affine's input rows [x_t, h_{t-1}] in one buffer xh [T+1, B, D+H] whose h part the time loop writes directly: the
weight gradient is then one product d_pre^T @ xh after the backward loop (as Kaldi's W_all over [x_t, h_{t-1}]),
and NSGD's inputs are a view of it. A record (steps_py.nnet.model.AffineRecord) given to a Function gets
``inputs`` at forward and ``out_grads`` at backward.
"""
import torch


# ----------------------------------------------------------------------------------------------------------------
# time loops

_MKL_PACKED = torch.backends.mkl.is_available() and hasattr(torch.ops.mkl, "_mkl_linear")
PACK_MIN_SIZE = 512 * 1024  # elements of w; a speed threshold, not a setting (results equal up to float32 rounding)


class FrameProduct:
    """x @ w for the rows x [B, K] of each frame of a time loop, w [K, N] fixed for the loop.

    On the CPU in float32 with MKL, a w of at least PACK_MIN_SIZE elements is packed once for the loop (MKL's
    packed sgemm, torch.ops.mkl) instead of at every frame's product: at B = 64 and 512 LSTM cells (w 512 x 2048)
    the product of one frame took 0.39-0.42 ms against 0.52-0.57 ms unpacked (2 threads), and bench/bench_lstm.py's
    inference went from 0.60 to 0.67 of torch.nn.LSTM; at 256 cells packing gained nothing (0.10 ms either way; the
    whole loops were not faster, within the run-to-run spread). Elsewhere (smaller w, CUDA, float64, no MKL) it is
    addmm.
    """

    def __init__(self, w, rows):
        self.w, self.rows, self.packed = w, rows, None
        if (w.device.type == "cpu" and w.dtype == torch.float32 and w.numel() >= PACK_MIN_SIZE
                and _MKL_PACKED):
            self.w_rows = w.t().contiguous()                 # [N, K]: the layout of a linear's weight
            self.packed = torch.ops.mkl._mkl_reorder_linear_weight(self.w_rows, rows)

    def __call__(self, x):
        if self.packed is None:
            return torch.mm(x, self.w)
        return torch.ops.mkl._mkl_linear(x, self.packed, self.w_rows, None, self.rows)

    def add_to(self, acc, x):
        """acc += x @ w, in place; returns acc."""
        if self.packed is None:
            return acc.addmm_(x, self.w)
        return acc.add_(self(x))

    def plus(self, base, x):
        """base + x @ w (a new tensor)."""
        if self.packed is None:
            return torch.addmm(base, x, self.w)
        return self(x).add_(base)


def tanh_(x):
    """In-place tanh as 2 sigmoid(2x) - 1: on CPU, torch.tanh is several times slower than torch.sigmoid and
    also slows down the matrix products that follow it in the time loop (measured: 64 -> 39 ms per LSTM layer)."""
    return x.mul_(2.0).sigmoid_().mul_(2.0).sub_(1.0)


def tanh(x):
    """tanh(x) as 2 sigmoid(2x) - 1, out of place (see tanh_)."""
    return torch.sigmoid(x * 2.0).mul_(2.0).sub_(1.0)


def tanh_into(x, out):
    """Writes tanh(x) into ``out`` (as 2 sigmoid(2x) - 1, see tanh_) and returns it."""
    return torch.sigmoid(x * 2.0, out=out).mul_(2.0).sub_(1.0)


def lstm_forward_loop(gates, hs, cs, tanh_cs, w_h_t, peep, lazy, scale=1.0):
    """Runs the LSTM over time, in place.

    gates [T, B, 4H]: on entry x-projection + bias of each frame, on exit the gate activations i, f, g, o.
    hs, cs [T+1, B, H]: zero at index 0 on entry (h_0, c_0); on exit hs[t+1] = h_t and cs[t+1] = c_t.
    tanh_cs [T, B, H]: on exit the tanh of the cell each output read (c_t; scale * c_{t-1} when lazy).
    w_h_t [H, 4H]: transposed recurrent weights. peep [3, H] (p_i, p_f, p_o) or None.
    scale: Kaldi's recurrence scale (1 - 1/decay_time): the cell, its peepholes and a lazy output see
    scale * c_{t-1} instead of c_{t-1}, so that |c_t| <= 1 / (1 - scale) = decay_time; 1.0 is the plain LSTM.
    """
    cell_dim = hs.shape[2]
    recurrent = FrameProduct(w_h_t, hs.shape[1])
    for t in range(gates.shape[0]):
        a = recurrent.add_to(gates[t], hs[t])
        c_prev = cs[t] if scale == 1.0 else cs[t] * scale
        in_forget = a[:, :2 * cell_dim]
        if peep is not None:
            in_forget.unflatten(1, (2, cell_dim)).addcmul_(c_prev.unsqueeze(1), peep[:2])
        in_forget.sigmoid_()
        cand = tanh_(a[:, 2 * cell_dim:3 * cell_dim])
        c = torch.mul(a[:, cell_dim:2 * cell_dim], c_prev, out=cs[t + 1]).addcmul_(a[:, :cell_dim], cand)
        out_gate = a[:, 3 * cell_dim:]
        c_seen = c_prev if lazy else c
        if peep is not None:
            out_gate.addcmul_(c_seen, peep[2])
        torch.mul(out_gate.sigmoid_(), tanh_into(c_seen, tanh_cs[t]), out=hs[t + 1])


def lstm_backward_factors(gates, c_prev, tanh_cs):
    """Local derivatives of one LSTM frame, from the forward's gates [T, B, 4H], the previous cells it saw c_prev
    [T, B, H] (scale * c_{t-1}) and tanh_cs [T, B, H]:
    (d h/d pre_o [T, B, H], d h/d c_seen [T, B, H], d c_t/d pre_{i,f,g} [T, B, 3, H])."""
    num_frames, num_seqs, cell_dim = tanh_cs.shape
    i, f, g, o = gates.unflatten(2, (4, cell_dim)).unbind(2)
    grad_o_factor = torch.mul(o, 1 - o).mul_(tanh_cs)
    grad_c_factor = torch.mul(tanh_cs, tanh_cs).neg_().add_(1).mul_(o)
    grad_ifg_factor = gates.new_empty(num_frames, num_seqs, 3, cell_dim)
    torch.mul(g, i, out=grad_ifg_factor[:, :, 0]).mul_(1 - i)
    torch.mul(c_prev, f, out=grad_ifg_factor[:, :, 1]).mul_(1 - f)
    torch.mul(g, g, out=grad_ifg_factor[:, :, 2]).neg_().add_(1).mul_(i)
    return grad_o_factor, grad_c_factor, grad_ifg_factor


def lstm_backward_loop(grad_hs, gates, c_prev, tanh_cs, w_h, peep, lazy, scale=1.0):
    """Derivatives of the pre-activations of all gates, given the derivatives of the layer outputs.

    grad_hs [T, B, H]: d loss / d h_t from above; gates, tanh_cs as lstm_forward_loop left them, c_prev [T, B, H]
    the previous cells the forward saw (scale * c_{t-1}); w_h [4H, H] recurrent weights; peep [3, H] or None;
    scale as lstm_forward_loop. Returns d_pre [T, B, 4H] = d loss / d (W [x, h] + b), including the recurrence
    through h and c.
    """
    num_frames, num_seqs, cell_dim = tanh_cs.shape
    forget = gates[:, :, cell_dim:2 * cell_dim]
    grad_o_factor, grad_c_factor, grad_ifg_factor = lstm_backward_factors(gates, c_prev, tanh_cs)
    d_pre = torch.empty_like(gates)
    grad_c = torch.zeros_like(c_prev[0])        # d loss / d c_t flowing back from frame t+1
    recurrent = FrameProduct(w_h, num_seqs)
    for t in range(num_frames - 1, -1, -1):
        grad_h = grad_hs[t] if t == num_frames - 1 else recurrent.plus(grad_hs[t], d_pre[t + 1])
        d_o = torch.mul(grad_h, grad_o_factor[t], out=d_pre[t, :, 3 * cell_dim:])
        if not lazy:
            grad_c.addcmul_(grad_h, grad_c_factor[t])
            if peep is not None:
                grad_c.addcmul_(d_o, peep[2])
        d_ifg = d_pre[t, :, :3 * cell_dim].unflatten(1, (3, cell_dim))
        torch.mul(grad_c.unsqueeze(1), grad_ifg_factor[t], out=d_ifg)
        grad_c = grad_c.mul_(forget[t])
        if lazy:
            grad_c.addcmul_(grad_h, grad_c_factor[t])
        if peep is not None:
            grad_c.addcmul_(d_ifg[:, 0], peep[0]).addcmul_(d_ifg[:, 1], peep[1])
            if lazy:
                grad_c.addcmul_(d_o, peep[2])
        if scale != 1.0:                        # d loss / d c_{t-1} = scale * d loss / d (scale * c_{t-1})
            grad_c.mul_(scale)
    return d_pre


def gru_forward_loop(gates_zr, cand, hs, rhs, w_h_zr_t, w_h_n_t):
    """Runs the GRU over time, in place.

    gates_zr [T, B, 2H]: on entry x-projection + bias of z and r, on exit their activations.
    cand [T, B, H]: on entry x-projection + bias of the candidate, on exit n. hs [T+1, B, H]: hs[0] = h_0 = 0 on
    entry, hs[t+1] = h_t on exit. rhs [T, B, H]: on exit r_t * h_{t-1}. w_h_zr_t [H, 2H], w_h_n_t [H, H].
    """
    cell_dim = hs.shape[2]
    recurrent_zr, recurrent_n = FrameProduct(w_h_zr_t, hs.shape[1]), FrameProduct(w_h_n_t, hs.shape[1])
    for t in range(gates_zr.shape[0]):
        h_prev = hs[t]
        zr = recurrent_zr.add_to(gates_zr[t], h_prev).sigmoid_()
        rh = torch.mul(zr[:, cell_dim:], h_prev, out=rhs[t])
        n = tanh_(recurrent_n.add_to(cand[t], rh))
        torch.sub(h_prev, n, out=hs[t + 1]).mul_(zr[:, :cell_dim]).add_(n)


def gru_backward_loop(grad_hs, gates_zr, cand, hs, w_h_zr, w_h_n):
    """Derivatives of the GRU pre-activations. grad_hs [T, B, H] from above; gates_zr [T, B, 2H], cand [T, B, H]
    activations; hs [T+1, B, H]; w_h_zr [2H, H], w_h_n [H, H]. Returns (d_pre_zr [T, B, 2H], d_pre_n [T, B, H])."""
    num_frames = gates_zr.shape[0]
    cell_dim = hs.shape[2]
    z, r = gates_zr[..., :cell_dim], gates_zr[..., cell_dim:]
    h_prev = hs[:-1]
    grad_n_factor = torch.mul(cand, cand).neg_().add_(1).mul_(1 - z)
    grad_z_factor = torch.sub(h_prev, cand).mul_(z).mul_(1 - z)
    grad_r_factor = torch.mul(h_prev, r).mul_(1 - r)
    d_pre_zr = torch.empty_like(gates_zr)
    d_pre_n = torch.empty_like(cand)
    grad_h = None
    recurrent_zr, recurrent_n = FrameProduct(w_h_zr, hs.shape[1]), FrameProduct(w_h_n, hs.shape[1])
    for t in range(num_frames - 1, -1, -1):
        grad_h = grad_hs[t] if grad_h is None else grad_h.add_(grad_hs[t])
        d_n = torch.mul(grad_h, grad_n_factor[t], out=d_pre_n[t])
        torch.mul(grad_h, grad_z_factor[t], out=d_pre_zr[t, :, :cell_dim])
        grad_rh = recurrent_n(d_n)
        torch.mul(grad_rh, grad_r_factor[t], out=d_pre_zr[t, :, cell_dim:])
        grad_h = recurrent_zr.plus(grad_h * z[t], d_pre_zr[t]).addcmul_(grad_rh, r[t])
    return d_pre_zr, d_pre_n


def rnn_forward_loop(pre, hs, w_h_t):
    """Vanilla tanh RNN, in place: pre [T, B, H] x-projections + bias; hs [T+1, B, H] (hs[0] = 0) gets h_t."""
    recurrent = FrameProduct(w_h_t, hs.shape[1])
    for t in range(pre.shape[0]):
        hs[t + 1] = tanh_(recurrent.add_to(pre[t], hs[t]))


def rnn_backward_loop(grad_hs, hs, w_h):
    """Derivatives of the RNN pre-activations [T, B, H], given grad_hs [T, B, H], hs [T+1, B, H], w_h [H, H]."""
    num_frames = grad_hs.shape[0]
    h = hs[1:]
    factor = torch.mul(h, h).neg_().add_(1)
    d_pre = torch.empty_like(grad_hs)
    recurrent = FrameProduct(w_h, grad_hs.shape[1])
    for t in range(num_frames - 1, -1, -1):
        grad_h = grad_hs[t] if t == num_frames - 1 else recurrent.plus(grad_hs[t], d_pre[t + 1])
        torch.mul(grad_h, factor[t], out=d_pre[t])
    return d_pre


def _xh_buffer(x, cell_dim, num_extra=1):
    """A buffer [T+num_extra, B, D+H] with x in [:T, :, :D] and zeros elsewhere."""
    num_frames, num_seqs, in_dim = x.shape
    xh = x.new_zeros(num_frames + num_extra, num_seqs, in_dim + cell_dim)
    xh[:num_frames, :, :in_dim] = x
    return xh


def _project_inputs(x, weight, bias):
    """x [T, B, D] @ W_x^T + b -> [T, B, rows of weight] (one matrix product for all frames)."""
    in_dim = x.shape[2]
    return torch.addmm(bias, x.reshape(-1, in_dim), weight[:, :in_dim].t()).view(x.shape[0], x.shape[1], -1)


def _flat(xh, num_frames):
    """The affine input rows [T*B, D+H] (a view) of an xh buffer."""
    return xh[:num_frames].reshape(-1, xh.shape[2])


def _affine_grads(d_pre, xh, record):
    """Gradients of an affine over the rows of xh from d_pre [T, B, R]: (d_pre as [T*B, R], d_weight [R, D+H],
    d_bias [R]).

    Also fills ``record.out_grads`` [T*B, R] (record.inputs was set in forward) when a record is given.
    """
    num_frames = d_pre.shape[0]
    d_flat = d_pre.reshape(-1, d_pre.shape[2])
    if record is not None:
        record.out_grads = d_flat
    return d_flat, torch.mm(d_flat.t(), _flat(xh, num_frames)), d_flat.sum(0)


# ----------------------------------------------------------------------------------------------------------------
# autograd Functions

class LstmFunction(torch.autograd.Function):
    """One LSTM layer: (x [T, B, D], weight [4H, D+H], bias [4H], peep [3, H] or None, lazy, record, scale) ->
    (h [T, B, H], c [T, B, H], gates [T, B, 4H] = i, f, g, o); only h is differentiable. scale: the recurrence
    scale of lstm_forward_loop (1.0: none)."""

    @staticmethod
    def forward(ctx, x, weight, bias, peep, lazy, record, scale):
        num_frames, _, in_dim = x.shape
        cell_dim = weight.shape[1] - in_dim
        gates = _project_inputs(x, weight, bias)
        xh = _xh_buffer(x, cell_dim)
        hs = xh[:, :, in_dim:]
        cs = x.new_zeros(num_frames + 1, x.shape[1], cell_dim)
        tanh_cs = x.new_empty(num_frames, x.shape[1], cell_dim)
        lstm_forward_loop(gates, hs, cs, tanh_cs, weight[:, in_dim:].t(), peep, lazy, scale)
        if record is not None:
            record.inputs = _flat(xh, num_frames)
        ctx.save_for_backward(weight, peep, gates, xh, cs, tanh_cs)
        ctx.lazy, ctx.record, ctx.scale = lazy, record, scale
        ctx.mark_non_differentiable(cs, gates)
        ctx.set_materialize_grads(False)  # no zero tensors for the gradients of cs and gates
        return hs[1:], cs[1:], gates

    @staticmethod
    def backward(ctx, grad_h, _grad_c, _grad_gates):
        if grad_h is None:  # h not used by the loss
            return None, None, None, None, None, None, None
        weight, peep, gates, xh, cs, tanh_cs = ctx.saved_tensors
        num_frames, num_seqs, cell_dim = tanh_cs.shape
        in_dim = weight.shape[1] - cell_dim
        c_prev = cs[:-1] if ctx.scale == 1.0 else cs[:-1] * ctx.scale     # the previous cells the forward saw
        d_pre = lstm_backward_loop(grad_h.contiguous(), gates, c_prev, tanh_cs, weight[:, in_dim:], peep, ctx.lazy,
                                   ctx.scale)
        d_flat, d_weight, d_bias = _affine_grads(d_pre, xh, ctx.record)
        d_x = torch.mm(d_flat, weight[:, :in_dim]).view(num_frames, num_seqs, in_dim)
        d_peep = None
        if peep is not None:
            c_out = c_prev if ctx.lazy else cs[1:]
            d_peep = torch.stack([torch.mul(d_pre[..., :cell_dim], c_prev).sum((0, 1)),
                                  torch.mul(d_pre[..., cell_dim:2 * cell_dim], c_prev).sum((0, 1)),
                                  torch.mul(d_pre[..., 3 * cell_dim:], c_out).sum((0, 1))])
        return d_x, d_weight, d_bias, d_peep, None, None, None


class GruFunction(torch.autograd.Function):
    """One GRU layer: (x [T, B, D], w_zr [2H, D+H], b_zr [2H], w_n [H, D+H], b_n [H]) ->
    (h [T, B, H], gates_zr [T, B, 2H] = z, r, n [T, B, H]); only h is differentiable."""

    @staticmethod
    def forward(ctx, x, w_zr, b_zr, w_n, b_n, record_zr, record_n):
        num_frames, _, in_dim = x.shape
        cell_dim = w_n.shape[0]
        gates_zr = _project_inputs(x, w_zr, b_zr)
        cand = _project_inputs(x, w_n, b_n)
        xh = _xh_buffer(x, cell_dim)
        xrh = _xh_buffer(x, cell_dim, num_extra=0)
        gru_forward_loop(gates_zr, cand, xh[:, :, in_dim:], xrh[:, :, in_dim:], w_zr[:, in_dim:].t(),
                         w_n[:, in_dim:].t())
        if record_zr is not None:
            record_zr.inputs = _flat(xh, num_frames)
            record_n.inputs = _flat(xrh, num_frames)
        ctx.save_for_backward(w_zr, w_n, gates_zr, cand, xh, xrh)
        ctx.records = record_zr, record_n
        ctx.mark_non_differentiable(gates_zr, cand)
        ctx.set_materialize_grads(False)
        return xh[1:, :, in_dim:], gates_zr, cand

    @staticmethod
    def backward(ctx, grad_h, _grad_zr, _grad_n):
        if grad_h is None:
            return None, None, None, None, None, None, None
        w_zr, w_n, gates_zr, cand, xh, xrh = ctx.saved_tensors
        num_frames, num_seqs, cell_dim = cand.shape
        in_dim = w_n.shape[1] - cell_dim
        d_zr, d_n = gru_backward_loop(grad_h.contiguous(), gates_zr, cand, xh[:, :, in_dim:], w_zr[:, in_dim:],
                                      w_n[:, in_dim:])
        d_flat_zr, d_w_zr, d_b_zr = _affine_grads(d_zr, xh, ctx.records[0])
        d_flat_n, d_w_n, d_b_n = _affine_grads(d_n, xrh, ctx.records[1])
        d_x = torch.mm(d_flat_zr, w_zr[:, :in_dim]).addmm_(d_flat_n, w_n[:, :in_dim])
        return d_x.view(num_frames, num_seqs, in_dim), d_w_zr, d_b_zr, d_w_n, d_b_n, None, None


class RnnFunction(torch.autograd.Function):
    """One vanilla RNN layer: (x [T, B, D], weight [H, D+H], bias [H]) -> h [T, B, H]."""

    @staticmethod
    def forward(ctx, x, weight, bias, record):
        num_frames, _, in_dim = x.shape
        pre = _project_inputs(x, weight, bias)
        xh = _xh_buffer(x, weight.shape[0])
        rnn_forward_loop(pre, xh[:, :, in_dim:], weight[:, in_dim:].t())
        if record is not None:
            record.inputs = _flat(xh, num_frames)
        ctx.save_for_backward(weight, xh)
        ctx.record = record
        return xh[1:, :, in_dim:]

    @staticmethod
    def backward(ctx, grad_h):
        weight, xh = ctx.saved_tensors
        num_frames, num_seqs, cell_dim = grad_h.shape
        in_dim = weight.shape[1] - cell_dim
        d_pre = rnn_backward_loop(grad_h.contiguous(), xh[:, :, in_dim:], weight[:, in_dim:])
        d_flat, d_weight, d_bias = _affine_grads(d_pre, xh, ctx.record)
        d_x = torch.mm(d_flat, weight[:, :in_dim]).view(num_frames, num_seqs, in_dim)
        return d_x, d_weight, d_bias, None
