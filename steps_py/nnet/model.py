"""Acoustic models of the RNN systems: LSTM (optionally with lazy cell update), GRU, vanilla RNN and DNN, built
from an NnetConfig (steps_py.nnet.config), and their application to whole utterances.

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
Each recurrent layer is one torch.autograd.Function with a hand-written time loop forward and backward
(steps_py.nnet.recurrent); its affine records give natural-gradient SGD (steps_py.nnet.nsgd) the inputs and output
derivatives of every affine transform.

Inside the model the recurrent layers run time-major ([T, B, dim]); forward() takes and returns batch-major tensors.
"""
import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from steps_py.common import InputError
from steps_py.nnet.recurrent import GruFunction, LstmFunction, RnnFunction


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
# layers (time-major: x [T, B, D] -> (h [T, B, H], internals dict or None))

def _uniform(shape, scale):
    return nn.Parameter(torch.empty(shape).uniform_(-scale, scale))


class LstmLayer(nn.Module):
    """LSTM layer, standard or lazy cell update, with or without diagonal peepholes; decay_time > 0 scales the
    recurrence c_{t-1} by 1 - 1/decay_time (Kaldi's decay-time), which bounds |c_t| by decay_time."""

    def __init__(self, in_dim, cell_dim, peephole=True, lazy=False, decay_time=0.0):
        super().__init__()
        scale = 1.0 / math.sqrt(cell_dim)
        self.weight = _uniform((4 * cell_dim, in_dim + cell_dim), scale)
        self.bias = _uniform((4 * cell_dim,), scale)
        self.peep = _uniform((3, cell_dim), scale) if peephole else None
        self.lazy = lazy
        self.scale = 1.0 - 1.0 / decay_time if decay_time > 0 else 1.0
        self.records = [AffineRecord("lstm", self.weight, self.bias)]

    def forward(self, x, record=False, internals=False):
        rec = self.records[0] if record and torch.is_grad_enabled() else None
        h, c, gates = LstmFunction.apply(x, self.weight, self.bias, self.peep, self.lazy, rec, self.scale)
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
                layers.append(LstmLayer(in_dim, cfg.cell_dim, cfg.peephole, k in lazy, cfg.decay_time))
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


# ----------------------------------------------------------------------------------------------------------------
# whole utterances

def _pad_batch(feats_list, extra_frames):
    """[T_i, D] arrays -> padded float32 batch [B, max T_i + extra_frames, D]; each utterance's last frame repeated
    over its padding (the label-delay frames after the end see a steady input, as Kaldi's nnet3-compute pads)."""
    T = max(len(x) for x in feats_list) + extra_frames
    out = np.empty((len(feats_list), T, feats_list[0].shape[1]), np.float32)
    for b, x in enumerate(feats_list):
        out[b, :len(x)] = x
        out[b, len(x):] = x[-1]
    return out


def forward_utterances(model, feats_list, label_delay, return_internals=False, batch_frames=20000):
    """Applies ``model`` to whole utterances -> list of (log_posteriors [T_i, P] float32, internals or None).

    The output at position t predicts the label of frame t - label_delay, so each utterance is padded with
    label_delay frames and its outputs are shifted back: row t of the result belongs to frame t. Internals (per
    layer dict name -> [T_i, H] float32) get the same shift. Utterances are batched by length, at most
    ``batch_frames`` padded frames per forward.
    """
    import torch
    order = np.argsort([-len(x) for x in feats_list], kind="stable")
    results = [None] * len(feats_list)
    device = next(model.parameters()).device     # the model's: the CPU or a GPU; the results are numpy
    i = 0
    with torch.no_grad():
        while i < len(order):
            T0 = len(feats_list[order[i]]) + label_delay
            n = max(1, min(len(order) - i, batch_frames // max(T0, 1)))
            idx = order[i:i + n]
            batch = torch.from_numpy(_pad_batch([feats_list[j] for j in idx], label_delay)).to(device)
            if return_internals:
                logits, internals = model(batch, return_internals=True)
                internals = [{name: v.cpu() for name, v in layer.items()} for layer in internals]
            else:
                logits, internals = model(batch), None
            logp = torch.log_softmax(logits, dim=-1).cpu().numpy()
            for b, j in enumerate(idx):
                T = len(feats_list[j])
                sl = slice(label_delay, label_delay + T)
                layers = None
                if internals is not None:
                    layers = [{name: v[b, sl].numpy() for name, v in layer.items()} for layer in internals]
                results[j] = (logp[b, sl], layers)
            i += n
    return results
