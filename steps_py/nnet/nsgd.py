"""Natural-gradient SGD for affine transforms, in the manner of Kaldi nnet3 (Povey, Zhang, Khudanpur 2014).

Usage (library module, no command line):
    from steps_py.nnet.nsgd import NSGD, OnlineNaturalGradient
    model.record_affine = True
    opt = NSGD(model.affine_records(), other_params, lr=1e-3, momentum=0.5, max_change=2.0)
    loss.backward(); opt.step(); opt.zero_grad()

Two levels:
- ``OnlineNaturalGradient``: pure tensor maths. Keeps a low-rank-plus-diagonal estimate of the Fisher matrix
  (uncentred covariance) of the rows it is given, F = R^T diag(d) R + rho I, and multiplies each new matrix of rows
  by the inverse of the smoothed estimate F + (alpha / dim) tr(F) I, keeping the matrix's Frobenius norm. The
  estimate follows the data: every call for the first ``num_initial_updates`` calls, then every ``update_period``
  calls, it is mixed with the current rows' scatter and its top ``rank`` eigenspace is re-found by one step of
  subspace iteration done in rank space (Kaldi's OnlineNaturalGradient::PreconditionDirections). Cost per call
  O(N dim rank); no dim x dim matrix is ever formed.
- ``NSGD``: an optimizer over "affine records" (``.weight`` [out, in], ``.bias`` [out] or None, and after a
  backward pass ``.inputs`` [N, in] and ``.out_grads`` [N, out]). Each record's gradient is replaced by
  precondition_out(out_grads)^T @ precondition_in([inputs, 1]); the remaining parameters use their plain
  gradients. Then Kaldi's momentum and max-change (per record and for the whole model) are applied.

Momentum follows Kaldi's convention (nnet-training.cc): delta = momentum * delta + lr * grad and the applied
change is -(1 - momentum) * delta (after max-change), so the effective learning rate does not depend on momentum.
"""
import math

import torch

__all__ = ["OnlineNaturalGradient", "NSGD"]


def _special_orthonormal(rank, dim, dtype, device=None):
    """A [rank, dim] matrix with orthonormal rows and no zero row or column (row r has equal entries at columns
    r, r + rank, r + 2 rank, ...), the deterministic start Kaldi uses."""
    R = torch.zeros(rank, dim, dtype=dtype, device=device)
    for r in range(rank):
        cols = torch.arange(r, dim, rank, device=device)
        R[r, cols] = 1.0 / math.sqrt(len(cols))
    return R


class OnlineNaturalGradient:
    """Online estimate of the Fisher matrix of a stream of row matrices, used to precondition them.

    State: ``R`` [rank, dim] with orthonormal rows, ``d`` [rank] (> 0, float64), both on the rows' device, ``rho``
    (> 0, a float): the estimate is
    F = R^T diag(d) R + rho I. ``rank`` is capped at dim - 1 (Kaldi's class does the same; the cap at
    (dim + 1) // 2 that Kaldi's components apply to their default ranks is done by ``NSGD``); dim 1 is a no-op.

    ``num_samples_history``: the decay time of the estimate, in rows (eta = 1 - exp(-N / num_samples_history) is the
    weight of a call with N rows). ``alpha``: smoothing, the inverse is of F + (alpha / dim) tr(F) I.
    ``epsilon``, ``delta``: floors (rho, d >= epsilon * tr(F) / dim; rho >= delta * largest eigenvalue estimate).
    Kaldi's epsilon (1e-10) is absolute, on a sum-over-frames objective whose derivatives are O(1); here it is
    relative to the mean eigenvalue, so the preconditioner does not depend on the units of the loss (scaling every
    row by s scales the estimate by s^2 and leaves the preconditioned directions as they are: a mean-over-frames
    CE, whose output derivatives are 1e-3 to 1e-6 of Kaldi's, gets the same natural gradient).
    """

    def __init__(self, dim, rank, update_period=4, num_samples_history=2000.0, alpha=4.0,
                 num_initial_updates=10, epsilon=1e-10, delta=5e-4):
        if dim < 1 or rank < 1:
            raise ValueError(f"OnlineNaturalGradient: need dim >= 1 and rank >= 1, got dim={dim} rank={rank}")
        if not 0.0 < num_samples_history <= 1e6 or alpha < 0.0 or update_period < 1:
            raise ValueError("OnlineNaturalGradient: need 0 < num_samples_history <= 1e6, alpha >= 0, "
                             "update_period >= 1")
        self.dim = int(dim)
        self.rank = min(int(rank), self.dim - 1)
        self.update_period = int(update_period)
        self.num_samples_history = float(num_samples_history)
        self.alpha = float(alpha)
        self.num_initial_updates = int(num_initial_updates)
        self.epsilon = float(epsilon)
        self.delta = float(delta)
        self.R = None          # [rank, dim], dtype of the rows; None until the first call
        self.d = None          # [rank] float64
        self.rho = None        # float
        self.num_updates = 0   # updates of the estimate since initialisation
        self.num_updates_skipped = 0
        self.num_reorthogonalized = 0

    # ---- maths ----
    def eta(self, num_rows):
        """Weight of a call with ``num_rows`` rows in the running estimate."""
        return 1.0 - math.exp(-num_rows / self.num_samples_history)

    def beta(self):
        """rho + (alpha / dim) tr(F): the diagonal of the smoothed estimate outside the rank-space."""
        return self.rho * (1.0 + self.alpha) + self.alpha * float(self.d.sum()) / self.dim

    def smoothed_fisher(self, dtype=torch.float64):
        """The dense smoothed estimate F + (alpha / dim) tr(F) I [dim, dim] (for tests and inspection only)."""
        R = self.R.to(dtype)
        return R.T @ torch.diag(self.d.to(dtype)) @ R + self.beta() * torch.eye(self.dim, dtype=dtype,
                                                                                device=R.device)

    def fisher(self, dtype=torch.float64):
        """The dense unsmoothed estimate R^T diag(d) R + rho I [dim, dim] (for tests and inspection only)."""
        R = self.R.to(dtype)
        return R.T @ torch.diag(self.d.to(dtype)) @ R + self.rho * torch.eye(self.dim, dtype=dtype, device=R.device)

    def precondition(self, rows):
        """rows [N, dim] -> [N, dim]: rows @ inverse(smoothed F), scaled to the Frobenius norm of ``rows``.

        Updates the estimate from ``rows`` (after using the old one) when due. ``rows`` is not modified.
        """
        if self.rank < 1 or rows.shape[0] == 0:
            self._check(rows)
            return rows.clone()
        R, e, scale, proj = self.factors(rows, return_proj=True)
        out = torch.addmm(rows, proj * e, R, alpha=-1.0)       # X - X R^T diag(e) R
        return out.mul_(scale)

    def factors(self, rows, return_proj=False):
        """The preconditioner of this call as factors, without forming it: returns (R [rank, dim], e [rank],
        scale) with precondition(rows) == scale * (rows - rows R^T diag(e) R), e = d / (d + beta) (Woodbury:
        inverse(R^T diag(d) R + beta I) = (I - R^T diag(e) R) / beta, and 1/beta is absorbed by the rescaling).
        Updates the estimate from ``rows`` when due (R, e are those from before the update). Cost: one
        [N, dim] x [dim, rank] product (two on update calls). With return_proj, also rows R^T [N, rank].
        ``rank == 0`` (dim 1) gives R [0, dim], e [0], scale 1.
        """
        self._check(rows)
        if self.rank < 1 or rows.shape[0] == 0:
            R = rows.new_zeros(0, self.dim)
            return (R, rows.new_zeros(0), 1.0, rows.new_zeros(rows.shape[0], 0)) if return_proj else \
                (R, rows.new_zeros(0), 1.0)
        with torch.no_grad():
            if self.R is None:
                self._initialize(rows)
            elif self.R.device != rows.device:         # a state loaded on another device
                self.R, self.d = self.R.to(rows.device), self.d.to(rows.device)
            do_update = (self.num_updates < self.num_initial_updates
                         or self.num_updates_skipped >= self.update_period - 1)
            R = self.R if self.R.dtype == rows.dtype else self.R.to(rows.dtype)
            e64 = self.d / (self.d + self.beta())
            e = e64.to(rows.dtype)
            proj = rows @ R.T                                  # [N, rank] = X R^T
            tr_in = float(torch.linalg.vector_norm(rows)) ** 2
            # ||X - X R^T E R||^2 = ||X||^2 - sum_i (2 e_i - e_i^2) ||(X R^T)_i||^2  (R has orthonormal rows)
            proj_sq = torch.linalg.vector_norm(proj, dim=0).double() ** 2
            tr_out = tr_in - float(((2.0 - e64) * e64 * proj_sq).sum())
            if tr_out < 1e-3 * tr_in:      # cancellation: measure the preconditioned rows directly
                tr_out = float(torch.linalg.vector_norm(torch.addmm(rows, proj * e, R, alpha=-1.0))) ** 2
            scale = math.sqrt(tr_in / tr_out) if tr_out > 0.0 else 1.0
            if do_update:
                self._update(rows, proj, tr_in)
                self.num_updates_skipped = 0
            else:
                self.num_updates_skipped += 1
        return (R, e, scale, proj) if return_proj else (R, e, scale)

    def _check(self, rows):
        if rows.dim() != 2 or rows.shape[1] != self.dim:
            raise ValueError(f"OnlineNaturalGradient: expected rows [N, {self.dim}], got {list(rows.shape)}")

    def _update(self, rows, proj, tr_rows):
        """One step: F_new = eta X^T X / N + (1 - eta) F, top-rank eigenspace of F_new by one subspace iteration
        from R (Y = R F_new [rank, dim], Z = Y Y^T = U diag(c) U^T, R_new = diag(c^-1/2) U^T Y, d_i + rho =
        sqrt(c_i)), rho_new from the trace of F_new left outside the rank-space."""
        N, D, K = rows.shape[0], self.dim, self.rank
        eta = self.eta(N)
        d, rho = self.d, self.rho
        J = (proj.T @ rows).double()                            # [rank, dim] = R X^T X
        Y = J.mul_(eta / N).add_(self.R.double() * ((1.0 - eta) * (d + rho)).unsqueeze(1))
        Z = Y @ Y.T                                             # [rank, rank] = R F_new^2 R^T
        Z = 0.5 * (Z + Z.T)
        z_scale = float(Z.trace()) if float(Z.trace()) > 0.0 else 1.0
        c, U = torch.linalg.eigh(Z / z_scale)
        c, U = c.flip(0) * z_scale, U.flip(1)                   # descending
        c_floor = (rho * (1.0 - eta)) ** 2
        num_floored = int((c < c_floor).sum())
        c = c.clamp(min=max(c_floor, 1e-300))
        sqrt_c = c.sqrt()
        tr_F_new = eta / N * tr_rows + (1.0 - eta) * (D * rho + float(d.sum()))
        floor = self._floor(tr_F_new / D)
        rho_new = (tr_F_new - float(sqrt_c.sum())) / (D - K)
        d_new = sqrt_c - rho_new
        rho_new = max(rho_new, floor, self.delta * float(sqrt_c.max()))
        d_new = d_new.clamp(min=floor)
        R_new = (U.T / sqrt_c.unsqueeze(1)) @ Y                 # [rank, dim]
        gram = R_new @ R_new.T
        if num_floored > 0 or not bool((gram - torch.eye(K, dtype=gram.dtype, device=gram.device)).abs().max() < 1e-3):
            R_new = self._reorthogonalize(R_new, gram)
        self.R = R_new.to(self.R.dtype)
        self.d = d_new
        self.rho = float(rho_new)
        self.num_updates += 1

    def _floor(self, mean_eigenvalue):
        """The floor of rho and d: epsilon times the mean eigenvalue of the estimate (an all-zero stream: 1e-300)."""
        return max(self.epsilon * mean_eigenvalue, 1e-300)

    def _reorthogonalize(self, R, gram):
        """Rows of R made orthonormal by the inverse Cholesky factor of R R^T (Gram-Schmidt in rank space)."""
        self.num_reorthogonalized += 1
        L, info = torch.linalg.cholesky_ex(gram)
        if int(info) != 0 or float(L.diagonal().min()) < 1e-3 * float(L.diagonal().max()):
            return _special_orthonormal(self.rank, self.dim, R.dtype, R.device)
        return torch.linalg.solve_triangular(L, R, upper=False)

    def _initialize(self, rows):
        """Start from a fixed orthonormal R with tiny d and rho (epsilon times the rows' mean eigenvalue), then three
        updates on the first rows (as Kaldi)."""
        self.R = _special_orthonormal(self.rank, self.dim, rows.dtype, rows.device)
        tr_rows = float(torch.linalg.vector_norm(rows)) ** 2
        floor = self._floor(tr_rows / (rows.shape[0] * self.dim))
        self.d = torch.full((self.rank,), floor, dtype=torch.float64, device=rows.device)
        self.rho = floor
        for _ in range(3):
            self._update(rows, rows @ self.R.T, tr_rows)
        self.num_updates = 0
        self.num_updates_skipped = 0

    # ---- checkpoints ----
    def state_dict(self):
        return {"dim": self.dim, "rank": self.rank, "update_period": self.update_period,
                "num_samples_history": self.num_samples_history, "alpha": self.alpha,
                "num_initial_updates": self.num_initial_updates, "epsilon": self.epsilon, "delta": self.delta,
                "R": None if self.R is None else self.R.clone(), "d": None if self.d is None else self.d.clone(),
                "rho": self.rho, "num_updates": self.num_updates, "num_updates_skipped": self.num_updates_skipped,
                "num_reorthogonalized": self.num_reorthogonalized}

    def load_state_dict(self, state):
        if state["dim"] != self.dim or state["rank"] != self.rank:
            raise ValueError(f"OnlineNaturalGradient.load_state_dict: state has dim {state['dim']} rank "
                             f"{state['rank']}, this object dim {self.dim} rank {self.rank}")
        for key in ("update_period", "num_samples_history", "alpha", "num_initial_updates", "epsilon", "delta",
                    "rho", "num_updates", "num_updates_skipped", "num_reorthogonalized"):
            setattr(self, key, state[key])
        self.R = None if state["R"] is None else state["R"].clone()
        self.d = None if state["d"] is None else state["d"].clone()


class NSGD:
    """Natural-gradient SGD over affine records plus plain SGD for other parameters (torch.optim-like).

    affine_records: objects with ``.weight`` [out, in] and ``.bias`` [out] or None (Parameters) and, after the
        backward pass, ``.inputs`` [N, in] and ``.out_grads`` [N, out] with weight.grad == out_grads^T inputs.
        A record without inputs/out_grads at step time falls back to its plain ``.grad`` (counted in
        ``num_plain_fallbacks``).
    other_params: parameters in no record (e.g. LSTM peepholes): plain gradients, same lr, momentum, max-change.
    lr: learning rate; change it any time through ``opt.lr`` or ``opt.param_groups[0]["lr"]``.
    momentum: Kaldi convention (see the module docstring); 0 disables.
    max_change: limit on the L2 norm of the whole model's change in one step (Kaldi max-param-change); 0 = none.
    max_change_per_record: limit per record (weight and bias together), Kaldi's per-component max-change; a float
        for all records, a list with one value per record, or 0/None = none. Applied before the global limit.
    rank_in, rank_out: preconditioner ranks, capped at (dim + 1) // 2 as Kaldi's components do.
    update_period, num_samples_history, alpha, num_initial_updates: see OnlineNaturalGradient.

    Counters: ``num_steps``, ``num_max_change_applied`` (global limit), ``num_max_change_per_record_applied``
    (list), ``num_plain_fallbacks``; ``last_step`` holds the last step's change norm and scale factors.
    """

    def __init__(self, affine_records, other_params=(), lr=1e-3, momentum=0.0, max_change=2.0,
                 max_change_per_record=0.0, rank_in=20, rank_out=80, update_period=4, num_samples_history=2000.0,
                 alpha=4.0, num_initial_updates=10):
        self.records = list(affine_records)
        self.other_params = [p for p in other_params if p.requires_grad]
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"NSGD: momentum must be in [0, 1), got {momentum}")
        if isinstance(max_change_per_record, (list, tuple)):
            if len(max_change_per_record) != len(self.records):
                raise ValueError("NSGD: max_change_per_record list must have one value per record")
            self.max_change_per_record = [float(x or 0.0) for x in max_change_per_record]
        else:
            self.max_change_per_record = [float(max_change_per_record or 0.0)] * len(self.records)
        self.max_change = float(max_change or 0.0)
        self.momentum = float(momentum)
        opts = dict(update_period=update_period, num_samples_history=num_samples_history, alpha=alpha,
                    num_initial_updates=num_initial_updates)
        self.preconditioners = []
        seen = set()
        for rec in self.records:
            out_dim, in_dim = rec.weight.shape
            in_dim_aug = in_dim + (1 if rec.bias is not None else 0)
            self.preconditioners.append(
                (OnlineNaturalGradient(in_dim_aug, min(rank_in, (in_dim_aug + 1) // 2), **opts),
                 OnlineNaturalGradient(out_dim, min(rank_out, (out_dim + 1) // 2), **opts)))
            seen.update(id(p) for p in self._record_params(rec))
        overlap = [p for p in self.other_params if id(p) in seen]
        if overlap:
            raise ValueError("NSGD: other_params contains parameters of affine records")
        self.params = [p for rec in self.records for p in self._record_params(rec)] + self.other_params
        self.param_groups = [{"params": self.params, "lr": float(lr), "momentum": self.momentum}]
        self.deltas = [None] * len(self.params)
        self.num_steps = 0
        self.num_max_change_applied = 0
        self.num_max_change_per_record_applied = [0] * len(self.records)
        self.num_plain_fallbacks = 0
        self.last_step = {}

    @staticmethod
    def _record_params(rec):
        return [rec.weight] if rec.bias is None else [rec.weight, rec.bias]

    @property
    def lr(self):
        return self.param_groups[0]["lr"]

    @lr.setter
    def lr(self, value):
        self.param_groups[0]["lr"] = float(value)

    def zero_grad(self, set_to_none=True):
        for p in self.params:
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                p.grad.zero_()

    def natural_gradients(self):
        """Replaces ``.grad`` of every record's weight and bias by the natural gradient (see the class doc).

        With P_in = s_in (I - R_in^T E_in R_in) and P_out likewise (OnlineNaturalGradient.factors),
        precondition(out_grads)^T precondition([inputs, 1]) == P_out^T M P_in where M = out_grads^T [inputs, 1]
        = [weight.grad, bias.grad] is the plain gradient: the plain gradient is taken from ``.grad`` when present
        (it must be this minibatch's only) and computed from inputs/out_grads otherwise, and the N-frame matrices
        are only multiplied by the low-rank factors.
        """
        with torch.no_grad():
            for rec, (pre_in, pre_out) in zip(self.records, self.preconditioners):
                inputs, out_grads = getattr(rec, "inputs", None), getattr(rec, "out_grads", None)
                if inputs is None or out_grads is None:
                    if any(p.grad is not None for p in self._record_params(rec)):
                        self.num_plain_fallbacks += 1
                    continue
                out_dim, in_dim = rec.weight.shape
                dtype = rec.weight.dtype
                inputs = inputs.detach().reshape(-1, in_dim).to(dtype)
                out_grads = out_grads.detach().reshape(-1, out_dim).to(dtype)
                has_bias = rec.bias is not None
                if has_bias:
                    inputs = torch.cat([inputs, inputs.new_ones(inputs.shape[0], 1)], dim=1)
                if rec.weight.grad is not None and (not has_bias or rec.bias.grad is not None):
                    grad = rec.weight.grad if not has_bias else torch.cat([rec.weight.grad,
                                                                           rec.bias.grad.unsqueeze(1)], dim=1)
                else:
                    grad = out_grads.T @ inputs                                     # [out, in(+1)]
                R_in, e_in, scale_in = pre_in.factors(inputs)
                R_out, e_out, scale_out = pre_out.factors(out_grads)
                grad = torch.addmm(grad, (grad @ R_in.T) * e_in, R_in, alpha=-1.0)          # M (I - P_in)
                grad = torch.addmm(grad, R_out.T, (R_out @ grad) * e_out.unsqueeze(1), alpha=-1.0)
                grad.mul_(scale_in * scale_out)
                rec.weight.grad = grad[:, :in_dim].contiguous() if has_bias else grad
                if has_bias:
                    rec.bias.grad = grad[:, in_dim].contiguous()

    def step(self, closure=None):
        """Natural gradients, momentum, max-change, parameter update. Returns closure() if given (torch-like)."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        self.natural_gradients()
        lr, mom = self.lr, self.momentum
        with torch.no_grad():
            for i, p in enumerate(self.params):
                if p.grad is None:
                    continue
                if mom > 0.0 and self.deltas[i] is not None:
                    self.deltas[i].mul_(mom).add_(p.grad, alpha=lr)
                else:
                    self.deltas[i] = p.grad.detach() * lr
            # proposed change of parameter i is -(1 - mom) * deltas[i] * scale(i)
            scales = {}
            sq_norms = {i: float(torch.linalg.vector_norm(self.deltas[i])) ** 2 * (1.0 - mom) ** 2
                        for i, p in enumerate(self.params) if p.grad is not None}
            k = 0
            min_record_scale = 1.0
            for r, rec in enumerate(self.records):
                idx = list(range(k, k + len(self._record_params(rec))))
                k += len(idx)
                norm = math.sqrt(sum(sq_norms.get(i, 0.0) for i in idx))
                limit = self.max_change_per_record[r]
                scale = 1.0
                if limit > 0.0 and norm > limit:
                    scale = limit / norm
                    self.num_max_change_per_record_applied[r] += 1
                    min_record_scale = min(min_record_scale, scale)
                for i in idx:
                    scales[i] = scale
            total = math.sqrt(sum(sq * scales.get(i, 1.0) ** 2 for i, sq in sq_norms.items()))
            global_scale = 1.0
            if not math.isfinite(total):
                raise FloatingPointError(f"NSGD: non-finite parameter change (norm {total}) at step "
                                         f"{self.num_steps}")
            if self.max_change > 0.0 and total > self.max_change:
                global_scale = self.max_change / total
                self.num_max_change_applied += 1
            for i, p in enumerate(self.params):
                if p.grad is None:
                    continue
                p.add_(self.deltas[i], alpha=-(1.0 - mom) * scales.get(i, 1.0) * global_scale)
                if mom == 0.0:
                    self.deltas[i] = None
        self.num_steps += 1
        self.last_step = {"change_norm": total * global_scale, "proposed_norm": total,
                          "global_scale": global_scale, "min_record_scale": min_record_scale}
        return loss

    # ---- checkpoints ----
    def state_dict(self):
        return {"lr": self.lr, "momentum": self.momentum, "max_change": self.max_change,
                "max_change_per_record": list(self.max_change_per_record),
                "preconditioners": [(a.state_dict(), b.state_dict()) for a, b in self.preconditioners],
                "deltas": [None if t is None else t.clone() for t in self.deltas],
                "num_steps": self.num_steps, "num_max_change_applied": self.num_max_change_applied,
                "num_max_change_per_record_applied": list(self.num_max_change_per_record_applied),
                "num_plain_fallbacks": self.num_plain_fallbacks}

    def load_state_dict(self, state):
        if len(state["preconditioners"]) != len(self.records) or len(state["deltas"]) != len(self.params):
            raise ValueError(f"NSGD.load_state_dict: state is for {len(state['preconditioners'])} records and "
                             f"{len(state['deltas'])} parameters, this optimizer has {len(self.records)} and "
                             f"{len(self.params)}")
        for (a, b), (sa, sb) in zip(self.preconditioners, state["preconditioners"]):
            a.load_state_dict(sa)
            b.load_state_dict(sb)
        for i, (p, t) in enumerate(zip(self.params, state["deltas"])):
            if t is not None and t.shape != p.shape:
                raise ValueError(f"NSGD.load_state_dict: momentum buffer {i} has shape {list(t.shape)}, "
                                 f"parameter {list(p.shape)}")
            self.deltas[i] = None if t is None else t.clone().to(p.device)
        self.lr = state["lr"]
        self.momentum = state["momentum"]
        self.param_groups[0]["momentum"] = self.momentum
        self.max_change = state["max_change"]
        self.max_change_per_record = list(state["max_change_per_record"])
        self.num_steps = state["num_steps"]
        self.num_max_change_applied = state["num_max_change_applied"]
        self.num_max_change_per_record_applied = list(state["num_max_change_per_record_applied"])
        self.num_plain_fallbacks = state["num_plain_fallbacks"]
