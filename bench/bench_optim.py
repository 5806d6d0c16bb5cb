"""NSGD against SGD and Adam at equal epochs and at equal wall time, each with its learning rate tuned first.

Usage: python bench/bench_optim.py [--nnet-conf conf/nnet/lstm_2l.conf] [--train-conf conf/nnet/train.conf]
           [--num-epochs 1] [--tune-epochs 0.25] [--lr-factors 0.25,1,4,16] [--optimizers nsgd,sgd,adam]
           [--keep DIR] <data-dir> <ali-dir>
  e.g. (in egs/synth/s5) python ../../../bench/bench_optim.py data/train_fbank exp/tri2b_ali_train

1. Tuning: each optimizer trains --tune-epochs with its learning rates (initial_lr and final_lr of the train conf,
   for Adam times adam_lr_scale) multiplied by each of --lr-factors; the factor with the lowest validation CE is
   kept (an untuned baseline proves nothing, so NSGD gets the same grid).
2. Comparison: each optimizer trains --num-epochs with its tuned factor, from the same initialisation on the same
   minibatches with the same schedule otherwise, through steps_py.nnet.train.
Prints the tuning grid, the validation CE per iteration, and per optimizer the final validation CE and frame
accuracy, training seconds, the ratio of its final CE to NSGD's (equal epochs), and its validation CE at the wall
time NSGD took for the whole run (equal wall time: the last iteration finished by then, "-" if none) with the
ratio to NSGD's. Timings are of the same run; run nothing else on the machine meanwhile.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from steps_py.nnet.config import NnetConfig, read_train_conf  # noqa: E402  (after the path set-up, as a script)


def train(a, opt, factor, epochs, out, env):
    """steps_py.nnet.train with the train conf's initial_lr and final_lr multiplied by factor."""
    tc = read_train_conf(a.train_conf)
    cmd = [sys.executable, "-m", "steps_py.nnet.train", "--nnet-conf", a.nnet_conf, "--train-conf", a.train_conf,
           "--optimizer", opt, "--num-epochs", str(epochs), "--force",
           "--set", f"initial_lr={tc['initial_lr'] * factor:g}", "--set", f"final_lr={tc['final_lr'] * factor:g}",
           a.data_dir, a.ali_dir, out]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if res.returncode != 0:
        print(f"{opt} x{factor:g}: training failed:\n{res.stderr[-1500:]}")
        return None
    return json.load(open(os.path.join(out, "train_summary.json")))


def ce_at_time(summary, seconds):
    """Validation CE of the last iteration finished within ``seconds`` of training, or None."""
    t, ce = 0.0, None
    for h in summary["history"]:
        t += h["seconds"]
        if t > seconds * 1.0001:
            break
        ce = h["valid_ce"]
    return ce


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--nnet-conf", default="conf/nnet/lstm_2l.conf")
    p.add_argument("--train-conf", default="conf/nnet/train.conf")
    p.add_argument("--num-epochs", type=float, default=1.0)
    p.add_argument("--tune-epochs", type=float, default=0.25)
    p.add_argument("--lr-factors", default="0.25,1,4,16")
    p.add_argument("--optimizers", default="nsgd,sgd,adam")
    p.add_argument("--keep", help="keep the trained dirs under this dir")
    p.add_argument("data_dir")
    p.add_argument("ali_dir")
    a = p.parse_args()
    NnetConfig.from_file(a.nnet_conf)          # a bad conf fails here, not in every training
    work = a.keep or tempfile.mkdtemp(prefix="bench_optim.")
    os.makedirs(work, exist_ok=True)
    env = dict(os.environ, PYTHONPATH=ROOT, KALDI_PY_PROGRESS="0")
    factors = [float(f) for f in a.lr_factors.split(",")]
    tuned, results = {}, {}
    try:
        print(f"tuning: {a.tune_epochs} epoch(s) per point, lr factors {factors}")
        for opt in a.optimizers.split(","):
            grid = {}
            for f in factors:
                s = train(a, opt, f, a.tune_epochs, os.path.join(work, f"tune_{opt}_{f:g}"), env)
                if s is not None:
                    grid[f] = s["final_valid_ce"]
            if not grid:
                continue
            tuned[opt] = min(grid, key=grid.get)
            print(f"  {opt:5s} " + "  ".join(f"x{f:g}: {ce:.4f}" for f, ce in grid.items()) +
                  f"  -> x{tuned[opt]:g}" + ("  (best at the grid's edge)" if tuned[opt] in
                                             (min(factors), max(factors)) and len(factors) > 1 else ""))
        for opt, f in tuned.items():
            s = train(a, opt, f, a.num_epochs, os.path.join(work, opt), env)
            if s is not None:
                results[opt] = s
        if not results:
            sys.exit(1)
        first = next(iter(results.values()))
        print(f"{a.nnet_conf}: {first['num_params']} parameters, {a.num_epochs} epoch(s), "
              f"{first['num_iters']} iterations, train conf {a.train_conf}")
        print("valid CE per iteration:")
        for opt, s in results.items():
            print(f"  {opt:5s} " + " ".join(f"{h['valid_ce']:.3f}" for h in s["history"]))
        ref = results.get("nsgd", first)
        budget = ref["train_seconds"]
        print(f"{'optimizer':10s} {'lr x':>5s} {'valid CE':>9s} {'valid acc':>9s} {'seconds':>8s} "
              f"{'CE / NSGD':>10s} {'CE at NSGD time':>16s} {'/ NSGD':>7s}")
        for opt, s in results.items():
            at = ce_at_time(s, budget)
            at_text = "-" if at is None else f"{at:.4f}"
            at_ratio = "-" if at is None else f"{at / ref['final_valid_ce']:.3f}"
            print(f"{opt:10s} {tuned[opt]:5g} {s['final_valid_ce']:9.4f} {s['final_valid_acc']:9.4f} "
                  f"{s['train_seconds']:8.1f} {s['final_valid_ce'] / ref['final_valid_ce']:10.3f} "
                  f"{at_text:>16s} {at_ratio:>7s}")
    finally:
        if not a.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
