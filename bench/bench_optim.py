"""Validation cross-entropy after equal training of one model with NSGD, plain SGD and Adam.

Usage: python bench/bench_optim.py [--nnet-conf conf/nnet/lstm_2l.conf] [--train-conf conf/nnet/train.conf]
           [--num-epochs 1] [--optimizers nsgd,sgd,adam] <data-dir> <ali-dir>
  e.g. (in egs/synth/s5) python ../../../bench/bench_optim.py data/train_fbank exp/tri2b_ali_train

Every optimizer trains the same model from the same initialisation on the same minibatches with the same
schedule (learning rates, momentum and max-change of the train conf; Adam's lr is the train conf's times
adam_lr_scale), through steps_py.nnet.train. Prints per optimizer the validation CE and frame accuracy after each
iteration and at the end, training seconds, and the ratios of final validation CE against NSGD's.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--nnet-conf", default="conf/nnet/lstm_2l.conf")
    p.add_argument("--train-conf", default="conf/nnet/train.conf")
    p.add_argument("--num-epochs", type=float, default=1.0)
    p.add_argument("--optimizers", default="nsgd,sgd,adam")
    p.add_argument("--keep", help="keep the trained dirs under this dir")
    p.add_argument("data_dir")
    p.add_argument("ali_dir")
    a = p.parse_args()
    work = a.keep or tempfile.mkdtemp(prefix="bench_optim.")
    env = dict(os.environ, PYTHONPATH=ROOT, KALDI_PY_PROGRESS="0")
    results = {}
    try:
        for opt in a.optimizers.split(","):
            out = os.path.join(work, opt)
            cmd = [sys.executable, "-m", "steps_py.nnet.train", "--nnet-conf", a.nnet_conf, "--train-conf",
                   a.train_conf, "--optimizer", opt, "--num-epochs", str(a.num_epochs), "--force",
                   a.data_dir, a.ali_dir, out]
            res = subprocess.run(cmd, env=env, capture_output=True, text=True)
            if res.returncode != 0:
                print(f"{opt}: training failed:\n{res.stderr[-2000:]}")
                continue
            results[opt] = json.load(open(os.path.join(out, "train_summary.json")))
        if not results:
            sys.exit(1)
        first = next(iter(results.values()))
        print(f"{a.nnet_conf}: {first['num_params']} parameters, {a.num_epochs} epoch(s), "
              f"{first['num_iters']} iterations, train conf {a.train_conf}")
        print("valid CE per iteration:")
        for opt, s in results.items():
            print(f"  {opt:5s} " + " ".join(f"{h['valid_ce']:.3f}" for h in s["history"]))
        print(f"{'optimizer':10s} {'valid CE':>9s} {'valid acc':>9s} {'train CE':>9s} {'seconds':>8s} "
              f"{'CE / NSGD CE':>13s}")
        ref = results.get("nsgd", first)["final_valid_ce"]
        for opt, s in results.items():
            print(f"{opt:10s} {s['final_valid_ce']:9.4f} {s['final_valid_acc']:9.4f} {s['final_train_ce']:9.4f} "
                  f"{s['train_seconds']:8.1f} {s['final_valid_ce'] / ref:13.3f}")
    finally:
        if not a.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
