"""Shared helpers and session fixtures. Each expensive thing is built once per test session:

  tiny_corpus  the tiny synthetic corpus (local/synth, seed 1) in <tmp>/s5/{corpus,data}      ~10 s
  tiny_recipe  ./run.sh --corpus-size tiny --stop-stage 1 in that same s5 dir (stage 0 finds the corpus done
               and skips it): data/{train,dev,eval}[_fbank] with features + CMVN, data/lang, lang_test_{tg,tgpr}
  mono         a short monophone run on tiny_recipe's data/train              -> <s5>/exp/short/mono
  mono_ali     its alignments of data/train                                   -> <s5>/exp/short/mono_ali
  tri1         a small deltas triphone system from mono_ali                   -> <s5>/exp/short/tri1
  tiny_gmm     ./run.sh stages 2-4 in tiny_recipe's dir: exp/{mono,tri1,tri2b}, exp/tri2b_ali_{train,dev,eval}
  tiny_nnet    ./run.sh stages 5-7 there (default grid, tests/fixtures/train_tiny.conf): exp/nnet/{lstm_2l,gru_2l}

The short GMM systems of the tests live in <s5>/exp/short/, apart from what ./run.sh stages 2-4 write into
<s5>/exp/{mono,tri1,tri2b,...} when a test runs them in the same recipe dir.
"""
import os
import subprocess
import sys
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(ROOT, "tests", "fixtures")
sys.path.insert(0, ROOT)


def make_recipe_dir(parent, corpus):
    """A recipe dir under ``parent`` whose files link to egs/<corpus>/s5 (data/, exp/ stay out of the repo)."""
    s5 = os.path.join(str(parent), "s5")
    os.makedirs(s5)
    for f in ["run.sh", "path.sh", "cmd.sh", "conf", "local", "utils"]:
        os.symlink(os.path.realpath(os.path.join(ROOT, "egs", corpus, "s5", f)), os.path.join(s5, f))
    return s5


def run_recipe(s5, *args):
    """Runs ./run.sh in s5 with the given options; returns (stdout+stderr, seconds); fails the test on error."""
    t = time.time()
    r = subprocess.run(["./run.sh", *args], cwd=s5, capture_output=True, text=True,
                       env=dict(os.environ, KALDI_PY_PROGRESS="0"))
    out = r.stdout + r.stderr
    assert r.returncode == 0, f"run.sh {' '.join(args)} failed:\n{out[-6000:]}"
    return out, time.time() - t


def run_stages(s5, first, last, *extra):
    """./run.sh with the tiny options from stage ``first`` to ``last``; the output goes to <s5>/stage<first>-<last>.log.
    Returns s5."""
    out, seconds = run_recipe(s5, *TINY_OPTS, "--stage", str(first), "--stop-stage", str(last), *extra)
    with open(os.path.join(s5, f"stage{first}-{last}.log"), "w") as f:
        f.write(out + f"\n# {seconds:.1f} s\n")
    return s5


def kill_when(cmd, cwd, pattern, env=None, timeout=900):
    """Starts ``cmd`` in its own process group and kills the whole group with SIGKILL (kill -9, its jobs included)
    as soon as a file matching the glob ``pattern`` (relative to cwd) exists; returns the files seen then. Fails
    the test when the command ends or ``timeout`` seconds pass first."""
    import glob
    import signal
    env = dict(os.environ, KALDI_PY_PROGRESS="0") if env is None else env
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    t0, seen = time.time(), []
    try:
        while not seen and proc.poll() is None and time.time() - t0 < timeout:
            seen = glob.glob(os.path.join(cwd, pattern))
            time.sleep(0.005)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert seen, f"{' '.join(cmd)}: no {pattern} before it ended (exit code {proc.returncode})"
    return seen


def step_env():
    """The environment of run_step: the repo on PYTHONPATH, utils/ on PATH (for run.py), no progress bars."""
    env = dict(os.environ, PYTHONPATH=ROOT, KALDI_PY_PROGRESS="0")
    env["PATH"] = os.path.join(ROOT, "utils") + os.pathsep + env.get("PATH", "")
    return env


def run_step(argv, cwd):
    """Runs ``python <argv>`` (e.g. ["-m", "steps_py.gmm.train_mono", ...]) in cwd with the repo on PYTHONPATH and
    utils/ on PATH (for run.py); returns its stderr (the log); fails the test on a non-zero exit."""
    res = subprocess.run([sys.executable] + argv, cwd=cwd, env=step_env(), capture_output=True, text=True)
    assert res.returncode == 0, f"{' '.join(argv)} failed:\n{res.stderr[-3000:]}"
    return res.stderr


def recount_wer(wer_file):
    """(errors, reference words) of a wer_<LMWT>_<WIP> file counted again from its decode dir's filtered references
    and hypotheses (scoring_kaldi/test_filt.txt, scoring_kaldi/penalty_<WIP>/<LMWT>.txt) with kaldialign, over the
    utterances with a hypothesis (compute-wer --mode=present)."""
    import re

    import kaldialign
    decode_dir = os.path.dirname(wer_file)
    lmwt, wip = re.fullmatch(r"wer_(\d+)_([\d.]+)", os.path.basename(wer_file)).groups()

    def table(path):
        return {f[0]: f[1:] for f in (line.split() for line in open(path, encoding="utf-8")) if f}
    refs = table(os.path.join(decode_dir, "scoring_kaldi", "test_filt.txt"))
    hyps = table(os.path.join(decode_dir, "scoring_kaldi", f"penalty_{wip}", f"{lmwt}.txt"))
    errors = sum(kaldialign.edit_distance(refs[u], h)["total"] for u, h in hyps.items())
    return errors, sum(len(refs[u]) for u in hyps)


def num_frames(data_dir):
    """{utt: number of feature frames} of a data dir's feats.scp."""
    import kaldiio
    return {u: m.shape[0] for u, m in kaldiio.load_scp(os.path.join(data_dir, "feats.scp")).items()}


def read_job_vectors(exp_dir, prefix="ali"):
    """The union of <exp_dir>/<prefix>.JOB.gz over JOB = 1..num_jobs: {utt: int32 vector}."""
    from steps_py.kaldi.io import read_int_vectors
    nj = int(open(os.path.join(exp_dir, "num_jobs")).read())
    out = {}
    for j in range(1, nj + 1):
        out.update(read_int_vectors(os.path.join(exp_dir, f"{prefix}.{j}.gz")))
    return out


# Options of every run.sh call on the tiny corpus. A 1000-word LM keeps the three HCLGs of stages 2-4 small.
TINY_GMM_CONF = os.path.join(FIXTURES, "gmm_tiny.conf")   # about two thirds of conf/gmm.conf's EM passes
TINY_OPTS = ("--corpus-size", "tiny", "--nj", "2", "--lm-vocab-size", "1000", "--nnet-seeds", "1",
             "--gmm-conf", TINY_GMM_CONF)


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory):
    """The tiny synthetic corpus (make_corpus.make_tiny_corpus, seed 1) written into a fresh recipe dir:
    {"s5": recipe dir, "corpus": <s5>/corpus, "data": <s5>/data, "seconds": time to make it}."""
    from local.synth import make_corpus
    s5 = make_recipe_dir(tmp_path_factory.mktemp("synth_tiny"), "synth")
    start = time.time()
    paths = make_corpus.make_tiny_corpus(s5)
    return dict(paths, s5=s5, seconds=time.time() - start)


@pytest.fixture(scope="session")
def tiny_recipe(tiny_corpus):
    """egs/synth/s5 stages 0-1 on the tiny corpus, run once per test session. Returns the recipe dir.

    Stage 0 finds tiny_corpus complete (same size, seed and conf) and skips the synthesis; everything after it
    (dict, lang, LMs, features, CMVN) is made by run.sh here. The run's output is kept in <s5>/stage0-1.log."""
    s5 = tiny_corpus["s5"]
    out, seconds = run_recipe(s5, *TINY_OPTS, "--stop-stage", "1")
    with open(os.path.join(s5, "stage0-1.log"), "w") as f:
        f.write(out + f"\n# {seconds:.1f} s\n")
    return s5


# The arguments of the short GMM systems below that come before their directories.
MONO_ARGS = ["--nj", "2", "--cmd", "run.py", "--num-iters", "10", "--max-iter-inc", "6", "--totgauss", "300",
             "--realign-iters", "1 2 3 5 7 9", "--boost-silence", "1.25"]
TRI1_ARGS = ["--num-iters", "6", "--realign-iters", "3 5", "--max-iter-inc", "4", "150", "600"]


@pytest.fixture(scope="session")
def mono(tiny_recipe):
    """A monophone system on the tiny recipe's data/train -> <s5>/exp/short/mono.

    Shorter than conf/gmm.conf (10 passes, 300 Gaussians instead of 40 and 1000) to take ~15 s: the tests check
    that training raises the likelihood and writes consistent models and alignments, not its accuracy."""
    run_step(["-m", "steps_py.gmm.train_mono", *MONO_ARGS, "data/train", "data/lang", "exp/short/mono"], tiny_recipe)
    return os.path.join(tiny_recipe, "exp", "short", "mono")


@pytest.fixture(scope="session")
def mono_ali(tiny_recipe, mono):
    """align_si of data/train with exp/short/mono -> <s5>/exp/short/mono_ali. Returns (dir, log)."""
    log = run_step(["-m", "steps_py.gmm.align_si", "--nj", "2", "data/train", "data/lang", "exp/short/mono",
                    "exp/short/mono_ali"], tiny_recipe)
    return os.path.join(tiny_recipe, "exp", "short", "mono_ali"), log


@pytest.fixture(scope="session")
def tri1(tiny_recipe, mono_ali):
    """A small deltas triphone system from exp/short/mono_ali -> <s5>/exp/short/tri1. Returns (dir, log).

    150 leaves / 600 Gaussians and 6 passes instead of conf/gmm.conf's 800 / 5000 and 35: the 40 training
    utterances support no more, and the tests check the tree, the model and the alignments, not accuracy."""
    log = run_step(["-m", "steps_py.gmm.train_deltas", *TRI1_ARGS, "data/train", "data/lang", "exp/short/mono_ali",
                    "exp/short/tri1"], tiny_recipe)
    return os.path.join(tiny_recipe, "exp", "short", "tri1"), log


@pytest.fixture(scope="session")
def tiny_gmm(tiny_recipe):
    """./run.sh stages 2-4 (mono, tri1, tri2b with graphs, decodes and tri2b alignments) in tiny_recipe's dir."""
    return run_stages(tiny_recipe, 2, 4)


TINY_TRAIN_CONF = os.path.join(FIXTURES, "train_tiny.conf")


@pytest.fixture(scope="session")
def tiny_nnet(tiny_gmm):
    """./run.sh stages 5-7 (LSTM and GRU of the default grid, decodes, tables) in the tiny recipe dir, with the
    short training schedule of tests/fixtures/train_tiny.conf."""
    return run_stages(tiny_gmm, 5, 7, "--train-conf", TINY_TRAIN_CONF)
