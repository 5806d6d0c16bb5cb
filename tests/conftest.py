"""Shared fixtures: a recipe dir outside the repo and one run of the synth recipe on the tiny corpus."""
import os
import subprocess
import sys
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
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


@pytest.fixture(scope="session")
def tiny_recipe(tmp_path_factory):
    """egs/synth/s5 stages 0-1 on the tiny corpus, run once per test session. Returns the recipe dir."""
    s5 = make_recipe_dir(tmp_path_factory.mktemp("synth_tiny"), "synth")
    out, seconds = run_recipe(s5, "--corpus-size", "tiny", "--stop-stage", "1", "--nj", "2")
    with open(os.path.join(s5, "stage0-1.log"), "w") as f:
        f.write(out + f"\n# {seconds:.1f} s\n")
    return s5
