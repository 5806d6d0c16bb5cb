"""The GMM ladder is reproducible end to end (issue 12): ./run.sh stages 0-4 in two fresh recipe dirs on the tiny
corpus, and once more killed with kill -9 in the middle of tri1's training and run again, give byte-identical
models, trees, alignments and GMM lines of RESULTS. Three runs of stages 0-4 (about 5 minutes each on 2 cores):
behind the slow marker (pytest -m slow)."""
import os

import pytest

from conftest import TINY_OPTS, kill_when, make_recipe_dir, run_recipe

pytestmark = pytest.mark.slow

SYSTEMS = ("mono", "tri1", "tri2b")
FILES = [f"exp/{s}/{f}" for s in SYSTEMS for f in ("final.mdl", "tree", "ali.1.gz", "ali.2.gz")] + \
    ["exp/tri2b/final.mat"] + [f"exp/tri2b_ali_train/ali.{j}.gz" for j in (1, 2)]


def fresh_recipe(parent):
    """A recipe dir under ``parent`` holding the tiny corpus (stage 0 then skips its synthesis)."""
    from local.synth import make_corpus
    s5 = make_recipe_dir(parent, "synth")
    make_corpus.make_tiny_corpus(s5)
    return s5


def gmm_results(s5):
    """The RESULTS lines of the GMM systems (a session's tiny recipe may hold the networks' lines too)."""
    with open(os.path.join(s5, "RESULTS")) as f:
        lines = [line for line in f if "%WER" in line and "exp/nnet" not in line]
    assert len(lines) == 2 * len(SYSTEMS), lines
    return lines


def differing(a, b):
    return [f for f in FILES if open(os.path.join(a, f), "rb").read() != open(os.path.join(b, f), "rb").read()]


def test_gmm_ladder_is_byte_identical_twice_and_after_kill_9(tiny_gmm, tmp_path):
    again = fresh_recipe(tmp_path / "again")
    run_recipe(again, *TINY_OPTS, "--stop-stage", "4")
    assert differing(tiny_gmm, again) == []
    assert gmm_results(again) == gmm_results(tiny_gmm)

    killed = fresh_recipe(tmp_path / "killed")
    kill_when(["./run.sh", *TINY_OPTS, "--stop-stage", "4"], killed, "exp/tri1/5.*.acc*")
    assert not os.path.exists(os.path.join(killed, "exp", "tri1", "final.mdl"))
    out, _ = run_recipe(killed, *TINY_OPTS, "--stop-stage", "4")
    assert "skipped: exp/mono is up to date" in out          # mono was finished before the kill: not redone
    assert differing(tiny_gmm, killed) == []
    assert gmm_results(killed) == gmm_results(tiny_gmm)
