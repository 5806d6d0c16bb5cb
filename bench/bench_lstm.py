"""Training speed of our LSTM and GRU layers (steps_py.nnet.model, hand-written forward/backward) against
torch.nn.LSTM and torch.nn.GRU.

Usage: python bench/bench_lstm.py [--cell lstm|gru] [--cell-dims 256,512] [--num-layers 2] [--batch 64]
       [--frames 60] [--input-dim 120] [--threads 2] [--iters 1] [--repeats 15] [--lazy] [--device cpu|cuda]

For each cell_dim, the same random chunks [frames, batch, input_dim] go through a stack of --num-layers layers of
  ours      LstmLayer with diagonal peepholes (the recipe's default cell)
  ours-np   LstmLayer without peepholes (the same equations as torch.nn.LSTM)
  torch     torch.nn.LSTM(input_dim, cell_dim, num_layers)
or, with --cell gru,
  ours      GruLayer (the candidate reads r * h_{t-1} before its affine transform, as Cho et al. 2014)
  torch     torch.nn.GRU (r applied after the recurrent affine transform: one product fewer to wait for per frame)
and a loss sum(h * fixed random weights) is back-propagated (gradients of all weights and of the input).
After two warm-up steps the contenders take turns (--iters steps each) for --repeats rounds, the first one rotating.
Reported: median training frames per second (forward + backward), median inference frames per second (forward
under no_grad), and the ratios ours / torch as the median of the per-round ratios (the machine is shared: a load
change hits the contenders of one round alike). --device cuda times them on a GPU (torch.nn.LSTM is then cuDNN's;
each timing waits for the GPU to finish).
"""
import argparse
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from steps_py.nnet.model import GruLayer, LstmLayer  # noqa: E402


class OurStack(torch.nn.Module):
    """num_layers LstmLayers (or GruLayers with cell="gru"), time-major [T, B, D] -> [T, B, H]."""

    def __init__(self, input_dim, cell_dim, num_layers, peephole, lazy, cell="lstm"):
        super().__init__()
        dims = [input_dim] + [cell_dim] * num_layers
        if cell == "gru":
            self.layers = torch.nn.ModuleList(GruLayer(dims[k], cell_dim) for k in range(num_layers))
            return
        self.layers = torch.nn.ModuleList(LstmLayer(dims[k], cell_dim, peephole, lazy and k == num_layers - 1)
                                          for k in range(num_layers))

    def forward(self, x):
        for layer in self.layers:
            x, _ = layer(x)
        return x


class TorchStack(torch.nn.Module):
    def __init__(self, input_dim, cell_dim, num_layers, cell="lstm"):
        super().__init__()
        self.rnn = (torch.nn.GRU if cell == "gru" else torch.nn.LSTM)(input_dim, cell_dim, num_layers)

    def forward(self, x):
        return self.rnn(x)[0]


def synchronize(x):
    """Waits for the work queued on x's device (a GPU runs asynchronously; the CPU needs nothing)."""
    if x.device.type == "cuda":
        torch.cuda.synchronize(x.device)


def train_steps(model, x, out_weights, iters):
    """Seconds for ``iters`` forward + backward passes (gradients of the weights and of x)."""
    synchronize(x)
    start = time.perf_counter()
    for _ in range(iters):
        model.zero_grad(set_to_none=True)
        x.grad = None
        (model(x) * out_weights).sum().backward()
    synchronize(x)
    return time.perf_counter() - start


def infer_steps(model, x, iters):
    synchronize(x)
    start = time.perf_counter()
    with torch.no_grad():
        for _ in range(iters):
            model(x)
    synchronize(x)
    return time.perf_counter() - start


def bench_cell_dim(args, cell_dim):
    """Returns {contender: (train frames/s, train ratio, inference frames/s, inference ratio)}: medians over the
    rounds; the ratios are medians of the per-round ratios to torch (robust to load changes between rounds)."""
    torch.manual_seed(0)
    x = torch.randn(args.frames, args.batch, args.input_dim).to(args.device).requires_grad_()
    out_weights = torch.randn(args.frames, args.batch, cell_dim).to(args.device)
    if args.cell == "gru":
        models = {"ours": OurStack(args.input_dim, cell_dim, args.num_layers, False, False, "gru"),
                  "torch": TorchStack(args.input_dim, cell_dim, args.num_layers, "gru")}
    else:
        models = {"ours": OurStack(args.input_dim, cell_dim, args.num_layers, True, args.lazy),
                  "ours-np": OurStack(args.input_dim, cell_dim, args.num_layers, False, args.lazy),
                  "torch": TorchStack(args.input_dim, cell_dim, args.num_layers)}
    models = {name: model.to(args.device) for name, model in models.items()}
    for model in models.values():  # warm-up
        train_steps(model, x, out_weights, 2)
        infer_steps(model, x, 2)
    train_times = {name: [] for name in models}
    infer_times = {name: [] for name in models}
    names = list(models)
    for round_no in range(args.repeats):
        order = names[round_no % len(names):] + names[:round_no % len(names)]  # rotate who goes first
        for name in order:
            train_times[name].append(train_steps(models[name], x, out_weights, args.iters))
            infer_times[name].append(infer_steps(models[name], x, args.iters))
    frames = args.frames * args.batch * args.iters
    result = {}
    for name in models:
        train_ratio = statistics.median(t / o for t, o in zip(train_times["torch"], train_times[name]))
        infer_ratio = statistics.median(t / o for t, o in zip(infer_times["torch"], infer_times[name]))
        result[name] = (frames / statistics.median(train_times[name]), train_ratio,
                        frames / statistics.median(infer_times[name]), infer_ratio)
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cell", choices=("lstm", "gru"), default="lstm")
    parser.add_argument("--cell-dims", default="256,512")
    parser.add_argument("--num-layers", type=int, default=2)
    parser.add_argument("--batch", type=int, default=64, help="chunks per minibatch")
    parser.add_argument("--frames", type=int, default=60, help="frames per chunk")
    parser.add_argument("--input-dim", type=int, default=120, help="40 Fbank x 3 spliced frames")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--iters", type=int, default=1, help="steps per contender and round")
    parser.add_argument("--repeats", type=int, default=15, help="rounds (contenders take turns in each)")
    parser.add_argument("--lazy", action="store_true", help="our last layer with lazy cell update")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"# {args.cell}: torch {torch.__version__} on {args.device}, {args.threads} threads, "
          f"batch {args.batch} x {args.frames} frames, "
          f"input {args.input_dim}, {args.num_layers} layers, median of {args.repeats} x {args.iters} steps")
    print(f"{'cell_dim':>8} {'contender':>9} {'train fr/s':>11} {'ratio':>6} {'infer fr/s':>11} {'ratio':>6}")
    for cell_dim in (int(d) for d in args.cell_dims.split(",")):
        for name, (train, train_ratio, infer, infer_ratio) in bench_cell_dim(args, cell_dim).items():
            print(f"{cell_dim:>8} {name:>9} {train:>11.0f} {train_ratio:>6.2f} {infer:>11.0f} {infer_ratio:>6.2f}",
                  flush=True)


if __name__ == "__main__":
    main()
