"""Cost of natural-gradient SGD (steps_py.nnet.nsgd.NSGD) against plain torch SGD in one training step of the real model.

Usage: python bench/bench_nsgd.py [--conf conf/nnet/X.conf] [--cell lstm] [--num-layers 2] [--cell-dim 256]
       [--input-dim 40] [--splice 1] [--num-pdfs 2000] [--batch 64] [--frames 60] [--threads 2] [--repeats 5]
       [--momentum 0.5] [--rank-in 20] [--rank-out 80] [--update-period 4]

The same steps_py.nnet.model.AcousticModel (default: 2-layer LSTM, cell 256, 40-dim feats spliced +-1 = 120 inputs,
2000 pdfs) is trained on the same random chunks [batch, frames, input_dim] with random pdf targets (cross-entropy)
by two optimizers, each on its own copy of the model:
  sgd    torch.optim.SGD(lr, momentum), model.record_affine = False
  nsgd   NSGD(model.affine_records(), other params, lr, momentum, max_change=2.0), model.record_affine = True
One step = forward + backward + optimizer step (+ zero_grad). Both first run 12 warm-up steps (NSGD updates its
Fisher estimates on every one of its first 10 steps, afterwards every --update-period steps); then, --repeats
times, each runs one update period of steps in turn. The machine is shared, so the median over repeats of the
mean step time is reported, split into forward+backward and optimizer time, with the ratio nsgd / sgd.
"""
import argparse
import copy
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from steps_py.nnet.config import NnetConfig  # noqa: E402
from steps_py.nnet.model import AcousticModel  # noqa: E402
from steps_py.nnet.nsgd import NSGD  # noqa: E402


def timed_steps(model, opt, chunks, num_steps):
    """Runs num_steps training steps over ``chunks`` (list of (feats, pdf_ids)); returns (fwd+bwd s, opt s)."""
    fwd_bwd = opt_time = 0.0
    for step in range(num_steps):
        feats, pdf_ids = chunks[step % len(chunks)]
        t0 = time.perf_counter()
        logits = model(feats)
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), pdf_ids.reshape(-1))
        loss.backward()
        t1 = time.perf_counter()
        opt.step()
        opt.zero_grad()
        t2 = time.perf_counter()
        fwd_bwd += t1 - t0
        opt_time += t2 - t1
    return fwd_bwd, opt_time


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--conf", help="conf/nnet/*.conf; overrides --cell/--num-layers/--cell-dim/--splice")
    parser.add_argument("--cell", default="lstm")
    parser.add_argument("--num-layers", type=int, default=2)
    parser.add_argument("--cell-dim", type=int, default=256)
    parser.add_argument("--input-dim", type=int, default=40, help="feature dim before splicing")
    parser.add_argument("--splice", type=int, default=1)
    parser.add_argument("--num-pdfs", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=64, help="chunks per minibatch")
    parser.add_argument("--frames", type=int, default=60, help="frames per chunk")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--momentum", type=float, default=0.5)
    parser.add_argument("--rank-in", type=int, default=20)
    parser.add_argument("--rank-out", type=int, default=80)
    parser.add_argument("--update-period", type=int, default=4)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    if args.conf:
        cfg = NnetConfig.from_file(args.conf)
    else:
        cfg = NnetConfig(cell=args.cell, num_layers=args.num_layers, cell_dim=args.cell_dim, splice=args.splice)
    model_sgd = AcousticModel(cfg, args.input_dim, args.num_pdfs)
    model_nsgd = copy.deepcopy(model_sgd)
    model_nsgd.record_affine = True
    records = model_nsgd.affine_records()
    in_records = {id(p) for r in records for p in (r.weight, r.bias) if p is not None}
    others = [p for p in model_nsgd.parameters() if id(p) not in in_records]
    opt_sgd = torch.optim.SGD(model_sgd.parameters(), lr=args.lr, momentum=args.momentum)
    opt_nsgd = NSGD(records, others, lr=args.lr, momentum=args.momentum, max_change=2.0, rank_in=args.rank_in,
                    rank_out=args.rank_out, update_period=args.update_period)
    chunks = [(torch.randn(args.batch, args.frames, args.input_dim),
               torch.randint(0, args.num_pdfs, (args.batch, args.frames))) for _ in range(4)]

    print(f"model: {cfg.cell} {cfg.num_layers} layers x {cfg.cell_dim}, input {args.input_dim} x "
          f"{2 * cfg.splice + 1} spliced, {args.num_pdfs} pdfs, {model_sgd.num_params()} params; minibatch "
          f"{args.batch} chunks x {args.frames} frames; {args.threads} threads")
    print("affine records (in x out -> rank_in, rank_out): " + ", ".join(
        f"{r.weight.shape[1]}x{r.weight.shape[0]}->{a.rank},{b.rank}"
        for r, (a, b) in zip(records, opt_nsgd.preconditioners)))
    timed_steps(model_sgd, opt_sgd, chunks, 12)
    timed_steps(model_nsgd, opt_nsgd, chunks, 12)
    period = args.update_period
    results = {"sgd": [], "nsgd": []}
    for _ in range(args.repeats):
        for name, model, opt in (("sgd", model_sgd, opt_sgd), ("nsgd", model_nsgd, opt_nsgd)):
            fwd_bwd, opt_time = timed_steps(model, opt, chunks, period)
            results[name].append((fwd_bwd / period, opt_time / period))
    medians = {}
    for name, rows in results.items():
        total = statistics.median(f + o for f, o in rows)
        medians[name] = total
        fwd_bwd = statistics.median(f for f, _ in rows)
        opt_time = statistics.median(o for _, o in rows)
        print(f"{name:5s} step {1000 * total:8.1f} ms  (forward+backward {1000 * fwd_bwd:8.1f} ms, "
              f"optimizer {1000 * opt_time:7.1f} ms)")
    print(f"ratio nsgd / sgd: {medians['nsgd'] / medians['sgd']:.3f}  (target <= 1.2); NSGD max-change applied "
          f"{opt_nsgd.num_max_change_applied} / {opt_nsgd.num_steps} steps")
    return 0


if __name__ == "__main__":
    sys.exit(main())
