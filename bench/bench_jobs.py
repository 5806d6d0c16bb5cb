"""Parallel training (num_jobs N, models averaged every iteration) against one job, at equal epochs.

Usage: python bench/bench_jobs.py [--nnet-conf conf/nnet/lstm_2l.conf] [--train-conf conf/nnet/train.conf]
           [--jobs 2] [--seeds 1,2,3] [--job-seeds 1] [--variants kaldi,lr1,iters,lr1_iters] [--set NAME=VALUE ...] [--keep DIR]
           <data-dir> <ali-dir>
  e.g. (in egs/fsdd/s5) python ../../../bench/bench_jobs.py --train-conf conf/nnet/train_fsdd.conf \\
           data/train_fbank exp/tri2b_ali_train

Trains the model with one job once per seed (the spread of the reference), then with N jobs in each variant
(once per --job-seeds), all through steps_py.nnet.train with the same train conf otherwise:
  kaldi      Kaldi's rule: each job's lr is N times the conf's, each job trains frames_per_iter per iteration
             (so N times fewer iterations, i.e. model averages, than one job)
  lr1        the conf's lr unscaled (each job at one job's lr), N times fewer iterations
  iters      lr times N, frames_per_iter / N per job: as many iterations (and fresh optimizers) as one job
  lr1_iters  both
Prints per run the validation CE, its ratio to the mean of the one-job runs, the iterations, the training seconds
and frames per second. "Within 2%" means a ratio <= 1.02. Run nothing else on the machine meanwhile. With --keep
DIR the runs are kept there and a second call resumes or reuses them (remove DIR to train afresh).
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

from steps_py.nnet.config import parse_setting, read_train_conf  # noqa: E402  (after the path set-up, as a script)

VARIANTS = ("kaldi", "lr1", "iters", "lr1_iters")


def variant_settings(variant, tc, jobs):
    """--set arguments for an N-job variant (train.py multiplies the conf's lr by num_jobs)."""
    out = [f"num_jobs={jobs}"]
    if variant.startswith("lr1"):
        out += [f"initial_lr={tc['initial_lr'] / jobs:g}", f"final_lr={tc['final_lr'] / jobs:g}"]
    if variant.endswith("iters"):
        out.append(f"frames_per_iter={tc['frames_per_iter'] // jobs}")
    return out


def train(a, settings, out, env):
    cmd = [sys.executable, "-m", "steps_py.nnet.train", "--nnet-conf", a.nnet_conf, "--train-conf", a.train_conf]
    if not a.keep:
        cmd.append("--force")
    for s in list(a.set or ()) + settings:
        cmd += ["--set", s]
    res = subprocess.run(cmd + [a.data_dir, a.ali_dir, out], env=env, capture_output=True, text=True)
    if res.returncode != 0:
        sys.exit(f"training {out} failed:\n{res.stderr[-1500:]}")
    return json.load(open(os.path.join(out, "train_summary.json")))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--nnet-conf", default="conf/nnet/lstm_2l.conf")
    p.add_argument("--train-conf", default="conf/nnet/train.conf")
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--seeds", default="1,2,3", help="seeds of the one-job reference")
    p.add_argument("--job-seeds", default="1", help="seeds of each N-job variant")
    p.add_argument("--variants", default=",".join(VARIANTS))
    p.add_argument("--set", action="append", metavar="NAME=VALUE", help="a train-conf setting for every run")
    p.add_argument("--keep", help="keep the trained dirs under this dir (and resume or reuse them)")
    p.add_argument("data_dir")
    p.add_argument("ali_dir")
    a = p.parse_args()
    tc = read_train_conf(a.train_conf, [parse_setting(s) for s in a.set or ()])
    variants = a.variants.split(",")
    for v in variants:
        if v not in VARIANTS:
            sys.exit(f"--variants: unknown variant {v!r} (known: {', '.join(VARIANTS)})")
    work = a.keep or tempfile.mkdtemp(prefix="bench_jobs.")
    os.makedirs(work, exist_ok=True)
    env = dict(os.environ, PYTHONPATH=ROOT, KALDI_PY_PROGRESS="0")
    runs = []
    try:
        for seed in a.seeds.split(","):
            runs.append((f"1 job, seed {seed}", train(a, ["num_jobs=1", f"seed={seed}"],
                                                       os.path.join(work, f"one_seed{seed}"), env)))
        ref = sum(s["final_valid_ce"] for _, s in runs) / len(runs)
        for v in variants:
            for seed in a.job_seeds.split(","):
                name, out = f"{a.jobs} jobs, {v}", os.path.join(work, v)
                if seed != "1":
                    name, out = f"{name}, seed {seed}", f"{out}_seed{seed}"
                runs.append((name, train(a, variant_settings(v, tc, a.jobs) + [f"seed={seed}"], out, env)))
        print(f"{a.nnet_conf}, {a.train_conf}: {tc['num_epochs']:g} epochs; reference: the mean valid CE of the "
              f"one-job runs, {ref:.4f}")
        print(f"{'run':24s} {'valid CE':>9s} {'/ 1 job':>8s} {'iters':>6s} {'lr first':>9s} {'seconds':>8s} "
              f"{'frames/s':>9s}")
        for name, s in runs:
            frames = sum(h["frames"] for h in s["history"])
            print(f"{name:24s} {s['final_valid_ce']:9.4f} {s['final_valid_ce'] / ref:8.3f} {s['num_iters']:6d} "
                  f"{s['history'][0]['lr']:9.3g} {s['train_seconds']:8.1f} {frames / s['train_seconds']:9.0f}")
    finally:
        if not a.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
