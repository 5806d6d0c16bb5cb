"""Acoustic models of the RNN systems: LSTM (optionally with lazy cell update), GRU, vanilla RNN and DNN.

Usage: python -m steps_py.nnet_model <nnet.conf> [--input-dim 40] [--num-pdfs 2000] [--target-params N]
  prints the model built from a conf file (conf/nnet/*.conf) and its parameter count; with --target-params, the
  cell_dim whose parameter count is closest to N (for baselines at matched parameter counts).

Model: input splicing (frames t-splice..t+splice, edge frames replicated) -> num_layers recurrent layers (or ReLU
layers for dnn) of cell_dim units -> a linear output layer over pdfs (raw logits, pre-softmax). All frames are
10 ms; feats [B, T, input_dim] -> logits [B, T, num_pdfs]; output frame t has seen input frames <= t + splice.

Recurrent layers (x: the layer's input at frame t, h/c: previous output/cell, all gates over [x, h_{t-1}]):
  lstm  i = s(W_i [x,h] + b_i + p_i*c_{t-1}), f = s(W_f [x,h] + b_f + p_f*c_{t-1}), g = tanh(W_g [x,h] + b_g),
        c_t = f*c_{t-1} + i*g, o = s(W_o [x,h] + b_o + p_o*c_t), h_t = o*tanh(c_t)    (p: diagonal peepholes)
  lazy  (Tang et al. 2017, lazy cell update) o = s(W_o [x,h] + b_o + p_o*c_{t-1}), h_t = o*tanh(c_{t-1}), and only
        then c_t = f*c_{t-1} + i*g: the output is read from the memory before the memory is written, as in a GRU.
  gru   z = s(W_z [x,h] + b_z), r = s(W_r [x,h] + b_r), n = tanh(W_n [x, r*h_{t-1}] + b_n), h_t = z*h_{t-1} + (1-z)*n
  rnn   h_t = tanh(W [x,h] + b)
Each recurrent layer is one torch.autograd.Function with a hand-written time loop forward and backward: the input
projection of all frames is one matrix product, the time loop only does h @ W_h and elementwise work, and the
weight gradient is one matrix product over all frames after the backward loop (as Kaldi's W_all over [x_t, h_t-1]).
The same product gives the per-frame output derivatives that natural-gradient SGD (steps_py.nsgd) needs.

Inside the model the recurrent layers run time-major ([T, B, dim]); forward() takes and returns batch-major tensors.
"""
import argparse
import dataclasses
import math

import torch
import torch.nn.functional as F
from torch import nn

from steps_py.common import InputError, read_shell_conf, run_main

CELL_TYPES = ("lstm", "gru", "rnn", "dnn")


# ----------------------------------------------------------------------------------------------------------------
# configuration

@dataclasses.dataclass
class NnetConfig:
    """Model settings, as in conf/nnet/<name>.conf (shell-variable syntax)."""
    cell: str = "lstm"          # lstm | gru | rnn (vanilla tanh) | dnn (feed-forward over spliced frames)
    num_layers: int = 2         # recurrent layers (dnn: hidden layers)
    cell_dim: int = 256         # units per layer
    lazy: str = "none"          # lazy cell update (lstm only): none | last | all | comma list of 1-based layers
    residual: bool = False      # layer k >= 2 passes on its output + what layer k-1 passed on
    peephole: bool = True       # diagonal peepholes (lstm)
    dropout: float = 0.0        # dropout on what each layer passes on, training only
    splice: int = 1             # frames t-splice..t+splice are concatenated at the input
    label_delay: int = 5        # output frame t predicts the label of frame t-label_delay (used by training)

    def lazy_layers(self):
        """The set of 1-based layer indices with lazy cell update (assumes a valid config)."""
        if self.lazy == "none":
            return set()
        if self.lazy == "last":
            return {self.num_layers}
        if self.lazy == "all":
            return set(range(1, self.num_layers + 1))
        return {int(k) for k in self.lazy.split(",")}

    def problems(self):
        """List of (field, message) for invalid settings; empty if the config is valid."""
        out = []
        if self.cell not in CELL_TYPES:
            out.append(("cell", f"cell={self.cell!r}: expected one of {', '.join(CELL_TYPES)}"))
        for name, low in (("num_layers", 1), ("cell_dim", 1), ("splice", 0), ("label_delay", 0)):
            if getattr(self, name) < low:
                out.append((name, f"{name}={getattr(self, name)}: must be >= {low}"))
        if not 0.0 <= self.dropout < 1.0:
            out.append(("dropout", f"dropout={self.dropout}: must be in [0, 1)"))
        if self.lazy not in ("none", "last", "all"):
            words = self.lazy.split(",")
            if not all(w.isdigit() for w in words):
                out.append(("lazy", f"lazy={self.lazy!r}: expected none, last, all or a comma list of layers"))
            elif any(not 1 <= int(w) <= self.num_layers for w in words):
                out.append(("lazy", f"lazy={self.lazy}: layers must be in 1..num_layers={self.num_layers}"))
        if self.lazy != "none" and self.cell != "lstm":
            out.append(("lazy", f"lazy={self.lazy}: lazy cell update needs cell=lstm, not {self.cell}"))
        return out

    @classmethod
    def from_file(cls, path):
        """Reads a conf file; an unknown name or a bad value is an InputError naming the file and line."""
        defaults = {f.name: None for f in dataclasses.fields(cls)}
        values = read_shell_conf(path, defaults)
        kwargs = {}
        for f in dataclasses.fields(cls):
            text = values[f.name]
            if text is None:
                continue
            try:
                kwargs[f.name] = _convert(text, f.type)
            except ValueError as e:
                raise InputError(f"{path}:{_conf_line(path, f.name)}: {f.name}={text!r}: {e}") from None
        cfg = cls(**kwargs)
        for name, message in cfg.problems():
            raise InputError(f"{path}:{_conf_line(path, name)}: {message}")
        return cfg

    def to_dict(self):
        """Plain dict of the fields (for checkpoints)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d):
        """Inverse of to_dict; unknown keys or invalid values raise InputError."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise InputError(f"model config: unknown settings {unknown}")
        cfg = cls(**d)
        if cfg.problems():
            raise InputError(f"model config: {cfg.problems()[0][1]}")
        return cfg


def _convert(text, type_name):
    """Converts a conf value to the dataclass field type ('int', 'float', 'bool' or 'str')."""
    if type_name in ("bool", bool):
        if text.lower() in ("true", "1", "yes"):
            return True
        if text.lower() in ("false", "0", "no"):
            return False
        raise ValueError("expected true or false")
    if type_name in ("int", int):
        try:
            return int(text)
        except ValueError:
            raise ValueError("expected an integer") from None
    if type_name in ("float", float):
        try:
            return float(text)
        except ValueError:
            raise ValueError("expected a number") from None
    return text


def _conf_line(path, name):
    """1-based number of the last line of a conf file that sets ``name`` (the one that counts), or '?'."""
    line_no = "?"
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if line.strip().startswith(name + "="):
                line_no = n
    return line_no


# ----------------------------------------------------------------------------------------------------------------
# input splicing

def splice_frames(feats, splice):
    """Concatenates frames t-splice..t+splice (edge frames replicated): [B, T, D] -> [B, T, (2*splice+1)*D].

    The output's last axis holds frame t-splice first, then t-splice+1, ..., t+splice.
    """
    if splice == 0:
        return feats
    num_seqs, num_frames, dim = feats.shape
    padded = torch.cat([feats[:, :1].expand(num_seqs, splice, dim), feats,
                        feats[:, -1:].expand(num_seqs, splice, dim)], dim=1)
    windows = padded.unfold(1, 2 * splice + 1, 1)  # [B, T, D, 2s+1]
    return windows.transpose(2, 3).reshape(num_seqs, num_frames, (2 * splice + 1) * dim)


# ----------------------------------------------------------------------------------------------------------------
# NSGD records

class AffineRecord:
    """One affine transform y = W x + b of the model, for natural-gradient SGD.

    ``weight`` [out, in] and ``bias`` [out] (or None) are the parameters. After a forward pass with
    ``model.record_affine = True`` and ``loss.backward()``: ``inputs`` [N, in] (detached) and ``out_grads``
    [N, out] with weight.grad == out_grads.T @ inputs and bias.grad == out_grads.sum(0), N = frames of the batch.
    """

    def __init__(self, name, weight, bias):
        self.name, self.weight, self.bias = name, weight, bias
        self.inputs = None
        self.out_grads = None

    def __repr__(self):
        return f"AffineRecord({self.name}, weight {tuple(self.weight.shape)})"


def _record_linear(x, weight, bias, record):
    """F.linear(x, weight, bias) that fills ``record`` (inputs now, out_grads at backward) when record is given."""
    y = F.linear(x, weight, bias)
    if record is not None and y.requires_grad:
        record.inputs = x.detach().reshape(-1, x.shape[-1])

        def keep_out_grads(grad):
            record.out_grads = grad.reshape(-1, grad.shape[-1])
        y.register_hook(keep_out_grads)
    return y


# ----------------------------------------------------------------------------------------------------------------
# time loops. Shapes: T frames, B sequences, H = cell_dim, D = layer input dim; LSTM gate order i, f, g, o.

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


def lstm_forward_loop(gates, hs, cs, tanh_cs, w_h_t, peep, lazy):
    """Runs the LSTM over time, in place.

    gates [T, B, 4H]: on entry x-projection + bias of each frame, on exit the gate activations i, f, g, o.
    hs, cs [T+1, B, H]: zero at index 0 on entry (h_0, c_0); on exit hs[t+1] = h_t and cs[t+1] = c_t.
    tanh_cs [T, B, H]: on exit the tanh of the cell each output read (c_t; c_{t-1} when lazy).
    w_h_t [H, 4H]: transposed recurrent weights. peep [3, H] (p_i, p_f, p_o) or None.
    """
    cell_dim = hs.shape[2]
    for t in range(gates.shape[0]):
        a = gates[t].addmm_(hs[t], w_h_t)
        c_prev = cs[t]
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


def lstm_backward_factors(gates, cs, tanh_cs):
    """Local derivatives of one LSTM frame, from the forward's gates [T, B, 4H], cs [T+1, B, H], tanh_cs [T, B, H]:
    (d h/d pre_o [T, B, H], d h/d c_seen [T, B, H], d c_t/d pre_{i,f,g} [T, B, 3, H])."""
    num_frames, num_seqs, cell_dim = tanh_cs.shape
    i, f, g, o = gates.unflatten(2, (4, cell_dim)).unbind(2)
    grad_o_factor = torch.mul(o, 1 - o).mul_(tanh_cs)
    grad_c_factor = torch.mul(tanh_cs, tanh_cs).neg_().add_(1).mul_(o)
    grad_ifg_factor = gates.new_empty(num_frames, num_seqs, 3, cell_dim)
    torch.mul(g, i, out=grad_ifg_factor[:, :, 0]).mul_(1 - i)
    torch.mul(cs[:-1], f, out=grad_ifg_factor[:, :, 1]).mul_(1 - f)
    torch.mul(g, g, out=grad_ifg_factor[:, :, 2]).neg_().add_(1).mul_(i)
    return grad_o_factor, grad_c_factor, grad_ifg_factor


def lstm_backward_loop(grad_hs, gates, cs, tanh_cs, w_h, peep, lazy):
    """Derivatives of the pre-activations of all gates, given the derivatives of the layer outputs.

    grad_hs [T, B, H]: d loss / d h_t from above; gates, cs, tanh_cs as lstm_forward_loop left them;
    w_h [4H, H] recurrent weights; peep [3, H] or None. Returns d_pre [T, B, 4H] = d loss / d (W [x, h] + b),
    including the recurrence through h and c.
    """
    num_frames, num_seqs, cell_dim = tanh_cs.shape
    forget = gates[:, :, cell_dim:2 * cell_dim]
    grad_o_factor, grad_c_factor, grad_ifg_factor = lstm_backward_factors(gates, cs, tanh_cs)
    d_pre = torch.empty_like(gates)
    grad_c = torch.zeros_like(cs[0])            # d loss / d c_t flowing back from frame t+1
    for t in range(num_frames - 1, -1, -1):
        grad_h = grad_hs[t] if t == num_frames - 1 else torch.addmm(grad_hs[t], d_pre[t + 1], w_h)
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
    return d_pre


def gru_forward_loop(gates_zr, cand, hs, rhs, w_h_zr_t, w_h_n_t):
    """Runs the GRU over time, in place.

    gates_zr [T, B, 2H]: on entry x-projection + bias of z and r, on exit their activations.
    cand [T, B, H]: on entry x-projection + bias of the candidate, on exit n. hs [T+1, B, H]: hs[0] = h_0 = 0 on
    entry, hs[t+1] = h_t on exit. rhs [T, B, H]: on exit r_t * h_{t-1}. w_h_zr_t [H, 2H], w_h_n_t [H, H].
    """
    cell_dim = hs.shape[2]
    for t in range(gates_zr.shape[0]):
        h_prev = hs[t]
        zr = gates_zr[t].addmm_(h_prev, w_h_zr_t).sigmoid_()
        rh = torch.mul(zr[:, cell_dim:], h_prev, out=rhs[t])
        n = tanh_(cand[t].addmm_(rh, w_h_n_t))
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
    for t in range(num_frames - 1, -1, -1):
        grad_h = grad_hs[t] if grad_h is None else grad_h.add_(grad_hs[t])
        d_n = torch.mul(grad_h, grad_n_factor[t], out=d_pre_n[t])
        torch.mul(grad_h, grad_z_factor[t], out=d_pre_zr[t, :, :cell_dim])
        grad_rh = torch.mm(d_n, w_h_n)
        torch.mul(grad_rh, grad_r_factor[t], out=d_pre_zr[t, :, cell_dim:])
        grad_h = torch.addmm(grad_h * z[t], d_pre_zr[t], w_h_zr).addcmul_(grad_rh, r[t])
    return d_pre_zr, d_pre_n


def rnn_forward_loop(pre, hs, w_h_t):
    """Vanilla tanh RNN, in place: pre [T, B, H] x-projections + bias; hs [T+1, B, H] (hs[0] = 0) gets h_t."""
    for t in range(pre.shape[0]):
        hs[t + 1] = tanh_(pre[t].addmm_(hs[t], w_h_t))


def rnn_backward_loop(grad_hs, hs, w_h):
    """Derivatives of the RNN pre-activations [T, B, H], given grad_hs [T, B, H], hs [T+1, B, H], w_h [H, H]."""
    num_frames = grad_hs.shape[0]
    h = hs[1:]
    factor = torch.mul(h, h).neg_().add_(1)
    d_pre = torch.empty_like(grad_hs)
    for t in range(num_frames - 1, -1, -1):
        grad_h = grad_hs[t] if t == num_frames - 1 else torch.addmm(grad_hs[t], d_pre[t + 1], w_h)
        torch.mul(grad_h, factor[t], out=d_pre[t])
    return d_pre


# ----------------------------------------------------------------------------------------------------------------
# autograd Functions: x [T, B, D] time-major (may be a strided view); weight [G*H, D+H] over [x_t, h_{t-1}].
# Each layer keeps its affine's input rows [x_t, h_{t-1}] in one buffer xh [T+1, B, D+H] whose h part the time
# loop writes directly: the weight gradient is then one product d_pre^T @ xh, and NSGD's inputs are a view of it.

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


class LstmFunction(torch.autograd.Function):
    """One LSTM layer: (x [T, B, D], weight [4H, D+H], bias [4H], peep [3, H] or None) ->
    (h [T, B, H], c [T, B, H], gates [T, B, 4H] = i, f, g, o); only h is differentiable."""

    @staticmethod
    def forward(ctx, x, weight, bias, peep, lazy, record):
        num_frames, _, in_dim = x.shape
        cell_dim = weight.shape[1] - in_dim
        gates = _project_inputs(x, weight, bias)
        xh = _xh_buffer(x, cell_dim)
        hs = xh[:, :, in_dim:]
        cs = x.new_zeros(num_frames + 1, x.shape[1], cell_dim)
        tanh_cs = x.new_empty(num_frames, x.shape[1], cell_dim)
        lstm_forward_loop(gates, hs, cs, tanh_cs, weight[:, in_dim:].t(), peep, lazy)
        if record is not None:
            record.inputs = _flat(xh, num_frames)
        ctx.save_for_backward(weight, peep, gates, xh, cs, tanh_cs)
        ctx.lazy, ctx.record = lazy, record
        ctx.mark_non_differentiable(cs, gates)
        ctx.set_materialize_grads(False)  # no zero tensors for the gradients of cs and gates
        return hs[1:], cs[1:], gates

    @staticmethod
    def backward(ctx, grad_h, _grad_c, _grad_gates):
        if grad_h is None:  # h not used by the loss
            return None, None, None, None, None, None
        weight, peep, gates, xh, cs, tanh_cs = ctx.saved_tensors
        num_frames, num_seqs, cell_dim = tanh_cs.shape
        in_dim = weight.shape[1] - cell_dim
        d_pre = lstm_backward_loop(grad_h.contiguous(), gates, cs, tanh_cs, weight[:, in_dim:], peep, ctx.lazy)
        d_flat, d_weight, d_bias = _affine_grads(d_pre, xh, ctx.record)
        d_x = torch.mm(d_flat, weight[:, :in_dim]).view(num_frames, num_seqs, in_dim)
        d_peep = None
        if peep is not None:
            c_prev = cs[:-1]
            c_out = c_prev if ctx.lazy else cs[1:]
            d_peep = torch.stack([torch.mul(d_pre[..., :cell_dim], c_prev).sum((0, 1)),
                                  torch.mul(d_pre[..., cell_dim:2 * cell_dim], c_prev).sum((0, 1)),
                                  torch.mul(d_pre[..., 3 * cell_dim:], c_out).sum((0, 1))])
        return d_x, d_weight, d_bias, d_peep, None, None


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


# ----------------------------------------------------------------------------------------------------------------
# layers (time-major: x [T, B, D] -> (h [T, B, H], internals dict or None))

def _uniform(shape, scale):
    return nn.Parameter(torch.empty(shape).uniform_(-scale, scale))


class LstmLayer(nn.Module):
    """LSTM layer, standard or lazy cell update, with or without diagonal peepholes."""

    def __init__(self, in_dim, cell_dim, peephole=True, lazy=False):
        super().__init__()
        scale = 1.0 / math.sqrt(cell_dim)
        self.weight = _uniform((4 * cell_dim, in_dim + cell_dim), scale)
        self.bias = _uniform((4 * cell_dim,), scale)
        self.peep = _uniform((3, cell_dim), scale) if peephole else None
        self.lazy = lazy
        self.records = [AffineRecord("lstm", self.weight, self.bias)]

    def forward(self, x, record=False, internals=False):
        rec = self.records[0] if record and torch.is_grad_enabled() else None
        h, c, gates = LstmFunction.apply(x, self.weight, self.bias, self.peep, self.lazy, rec)
        if not internals:
            return h, None
        i, f, _, o = gates.unflatten(2, (4, -1)).unbind(2)
        return h, {"c": c, "h": h, "i": i, "f": f, "o": o}


class GruLayer(nn.Module):
    """GRU layer: gates z, r over [x, h_{t-1}]; candidate over [x, r*h_{t-1}] (two affine records)."""

    def __init__(self, in_dim, cell_dim):
        super().__init__()
        scale = 1.0 / math.sqrt(cell_dim)
        self.weight_zr = _uniform((2 * cell_dim, in_dim + cell_dim), scale)
        self.bias_zr = _uniform((2 * cell_dim,), scale)
        self.weight_n = _uniform((cell_dim, in_dim + cell_dim), scale)
        self.bias_n = _uniform((cell_dim,), scale)
        self.records = [AffineRecord("gru_zr", self.weight_zr, self.bias_zr),
                        AffineRecord("gru_n", self.weight_n, self.bias_n)]

    def forward(self, x, record=False, internals=False):
        recs = self.records if record and torch.is_grad_enabled() else (None, None)
        h, gates_zr, n = GruFunction.apply(x, self.weight_zr, self.bias_zr, self.weight_n, self.bias_n, *recs)
        if not internals:
            return h, None
        z, r = gates_zr.unflatten(2, (2, -1)).unbind(2)
        return h, {"h": h, "z": z, "r": r, "n": n}


class RnnLayer(nn.Module):
    """Vanilla tanh RNN layer."""

    def __init__(self, in_dim, cell_dim):
        super().__init__()
        scale = 1.0 / math.sqrt(cell_dim)
        self.weight = _uniform((cell_dim, in_dim + cell_dim), scale)
        self.bias = _uniform((cell_dim,), scale)
        self.records = [AffineRecord("rnn", self.weight, self.bias)]

    def forward(self, x, record=False, internals=False):
        rec = self.records[0] if record and torch.is_grad_enabled() else None
        h = RnnFunction.apply(x, self.weight, self.bias, rec)
        return h, ({"h": h} if internals else None)


class DnnLayer(nn.Module):
    """Feed-forward ReLU layer (affine + ReLU), frame by frame."""

    def __init__(self, in_dim, cell_dim):
        super().__init__()
        self.affine = nn.Linear(in_dim, cell_dim)
        self.records = [AffineRecord("dnn", self.affine.weight, self.affine.bias)]

    def forward(self, x, record=False, internals=False):
        h = torch.relu(_record_linear(x, self.affine.weight, self.affine.bias, self.records[0] if record else None))
        return h, ({"h": h} if internals else None)


# ----------------------------------------------------------------------------------------------------------------
# the model

class AcousticModel(nn.Module):
    """Splicing -> cfg.num_layers layers of cfg.cell -> linear output over num_pdfs.

    forward(feats [B, T, input_dim]) -> logits [B, T, num_pdfs]; with return_internals=True also a list over
    layers 1..L of dict name -> [B, T, cell_dim] (lstm: c, h, i, f, o; gru: h, z, r, n; rnn, dnn: h).
    Set ``record_affine = True`` to fill the AffineRecords of affine_records() at the next forward/backward.
    """

    def __init__(self, cfg, input_dim, num_pdfs):
        super().__init__()
        if cfg.problems():
            raise InputError(f"model config: {cfg.problems()[0][1]}")
        self.cfg, self.input_dim, self.num_pdfs = cfg, input_dim, num_pdfs
        self.record_affine = False
        lazy = cfg.lazy_layers()
        layers = []
        in_dim = input_dim * (2 * cfg.splice + 1)
        for k in range(1, cfg.num_layers + 1):
            if cfg.cell == "lstm":
                layers.append(LstmLayer(in_dim, cfg.cell_dim, cfg.peephole, k in lazy))
            elif cfg.cell == "gru":
                layers.append(GruLayer(in_dim, cfg.cell_dim))
            elif cfg.cell == "rnn":
                layers.append(RnnLayer(in_dim, cfg.cell_dim))
            else:
                layers.append(DnnLayer(in_dim, cfg.cell_dim))
            in_dim = cfg.cell_dim
        self.layers = nn.ModuleList(layers)
        self.output = nn.Linear(cfg.cell_dim, num_pdfs)
        self.output_record = AffineRecord("output", self.output.weight, self.output.bias)

    def affine_records(self):
        """Every affine transform of the model (layers in order, then the output layer)."""
        return [r for layer in self.layers for r in layer.records] + [self.output_record]

    def num_params(self):
        return sum(p.numel() for p in self.parameters())

    def pass_on(self, k, h, previous):
        """What layer k (1-based) gives the next layer: h (+ previous if residual and k >= 2), then dropout."""
        out = h + previous if self.cfg.residual and k >= 2 else h
        return F.dropout(out, self.cfg.dropout, self.training) if self.cfg.dropout > 0 else out

    def forward(self, feats, return_internals=False):
        if feats.dim() != 3 or feats.shape[2] != self.input_dim:
            raise ValueError(f"expected feats [B, T, {self.input_dim}], got {tuple(feats.shape)}")
        record = self.record_affine and torch.is_grad_enabled()
        x = splice_frames(feats, self.cfg.splice).transpose(0, 1).contiguous()  # [T, B, D]
        internals = []
        for k, layer in enumerate(self.layers, 1):
            h, layer_internals = layer(x, record=record, internals=return_internals)
            x = self.pass_on(k, h, x)
            if return_internals:
                internals.append({name: v.transpose(0, 1) for name, v in layer_internals.items()})
        logits = _record_linear(x, self.output.weight, self.output.bias, self.output_record if record else None)
        logits = logits.transpose(0, 1)
        return (logits, internals) if return_internals else logits


# ----------------------------------------------------------------------------------------------------------------
# parameter counts

def count_params(cfg, input_dim, num_pdfs, cell_dim=None):
    """Number of parameters of AcousticModel(cfg, input_dim, num_pdfs), with cell_dim overriding cfg.cell_dim."""
    h = cfg.cell_dim if cell_dim is None else cell_dim
    total = 0
    in_dim = input_dim * (2 * cfg.splice + 1)
    per_unit = {"lstm": 4, "gru": 3, "rnn": 1}
    for _ in range(cfg.num_layers):
        if cfg.cell == "dnn":
            total += h * in_dim + h
        else:
            g = per_unit[cfg.cell]
            total += g * h * (in_dim + h) + g * h + (3 * h if cfg.cell == "lstm" and cfg.peephole else 0)
        in_dim = h
    return total + num_pdfs * h + num_pdfs


def cell_dim_for_params(cfg, input_dim, num_pdfs, target_params):
    """The cell_dim whose model parameter count is closest to target_params (ties: the smaller cell_dim)."""
    low, high = 1, 1
    while count_params(cfg, input_dim, num_pdfs, high) < target_params:
        high *= 2
    while high - low > 1:  # count_params increases with cell_dim; invariant: count(low) < target <= count(high)
        mid = (low + high) // 2
        if count_params(cfg, input_dim, num_pdfs, mid) < target_params:
            low = mid
        else:
            high = mid
    if count_params(cfg, input_dim, num_pdfs, low) >= target_params:
        return low
    dist = [abs(count_params(cfg, input_dim, num_pdfs, d) - target_params) for d in (low, high)]
    return low if dist[0] <= dist[1] else high


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("conf", help="model conf file, e.g. conf/nnet/lstm_2l.conf")
    parser.add_argument("--input-dim", type=int, default=40, help="feature dim (40 Fbank)")
    parser.add_argument("--num-pdfs", type=int, default=2000, help="output dim (pdfs of the GMM tree)")
    parser.add_argument("--target-params", type=int, default=None,
                        help="also print the cell_dim whose parameter count is closest to this")
    args = parser.parse_args()
    cfg = NnetConfig.from_file(args.conf)
    model = AcousticModel(cfg, args.input_dim, args.num_pdfs)
    print(model)
    print(f"{args.conf}: {model.num_params()} parameters ({cfg})")
    if args.target_params:
        dim = cell_dim_for_params(cfg, args.input_dim, args.num_pdfs, args.target_params)
        print(f"cell_dim={dim} gives {count_params(cfg, args.input_dim, args.num_pdfs, dim)} parameters "
              f"(target {args.target_params})")


if __name__ == "__main__":
    run_main(main)
