"""A second ./run.sh on a finished recipe (issue 12): every step finds its outputs made from the same inputs with
the same settings (its stamp .done.<step>, steps_py.completion.Completion) and skips it, and RESULTS stays byte for
byte; a changed input or setting redoes the steps that depend on it and those only.

The changes are made in copies of the tiny recipe dir (time stamps kept, so the copies are as finished as the
original), so that the session's other recipe tests find the original as they left it."""
import os
import re
import shutil

import pytest

from conftest import TINY_OPTS, TINY_TRAIN_CONF, run_recipe, run_stages

# The lines of steps_py.completion.skip_if_done: "skipped: <what> is up to date" and "making <what>: <why>".
SKIPPED = re.compile(r"\) skipped: (\S+) is up to date$", re.M)
MADE = re.compile(r"\) making (\S+): (.*)$", re.M)

SETS = ("dev", "eval")
GMM_GRAPHS = [f"exp/{s}/graph_tgpr" for s in ("mono", "tri1", "tri2b")]
GMM_DECODES = [f"exp/{s}/decode_tgpr_{t}" for s in ("mono", "tri1", "tri2b") for t in SETS]
GMM_STEPS = ["exp/mono", "exp/tri1", "exp/tri2b", "exp/mono_ali", "exp/tri1_ali"] + \
    [f"exp/tri2b_ali_{s}" for s in ("train",) + SETS] + GMM_GRAPHS + GMM_DECODES
STAGE0_STEPS = ["data/local/lm_text_vocab.txt", "data/local/dict", "data/lang", "data/local/lm",
                "data/lang_test_tg", "data/lang_test_tgpr"]
MODELS = ("lstm_2l", "gru_2l")
ANALYSES = ("distributions", "responsibility", "tsne", "saturation", "units", "cocluster", "trajectories",
            "horizon", "noise", "noise_late")
NNET_STEPS = [f"exp/nnet/{m}/decode_tgpr_{s}" for m in MODELS for s in SETS] + \
    [f"exp/nnet/{m}/memvis_dev/{a}" for m in MODELS for a in ANALYSES] + \
    [f"exp/nnet/{m}/memvis_dev/report.html" for m in MODELS] + \
    ["exp/nnet/memvis_dev/compare", "exp/nnet/memvis_dev/findings"]


@pytest.fixture(scope="module")
def finished_recipe(tiny_nnet):
    """The tiny recipe with every stage run (stages 8-9 on top of tiny_nnet)."""
    return run_stages(tiny_nnet, 8, 9)


def copy_recipe(s5, parent):
    """A copy of the recipe dir ``s5`` under ``parent`` with the same time stamps (its stamps stay valid): its
    links to the repository, data/, exp/ without the networks, RESULTS. The feature arks are the original's (the
    scp files name them by absolute path)."""
    dst = os.path.join(str(parent), "s5")
    os.makedirs(dst)
    for name in sorted(os.listdir(s5)):
        src = os.path.join(s5, name)
        if os.path.islink(src):
            os.symlink(os.readlink(src), os.path.join(dst, name))
        elif name in ("data", "exp"):
            shutil.copytree(src, os.path.join(dst, name), symlinks=True,
                            ignore=lambda d, names: ["nnet"] if os.path.basename(d) == "exp" else [])
        elif name == "RESULTS":
            shutil.copy2(src, dst)
    return dst


def results_of(s5):
    with open(os.path.join(s5, "RESULTS"), "rb") as f:
        return f.read()


def test_second_run_skips_every_finished_step_and_keeps_results(finished_recipe):
    before = results_of(finished_recipe)
    out, seconds = run_recipe(finished_recipe, *TINY_OPTS, "--train-conf", TINY_TRAIN_CONF)
    with open(os.path.join(finished_recipe, "rerun.log"), "w") as f:
        f.write(out + f"\n# {seconds:.1f} s\n")
    print(f"\n[rerun] second run of stages 0-9: {seconds:.1f} s")
    assert MADE.findall(out) == []
    skipped = SKIPPED.findall(out)
    missing = [w for w in STAGE0_STEPS + GMM_STEPS + NNET_STEPS if w not in skipped]
    assert missing == [], f"not skipped: {missing}"
    assert "corpus already complete" in out and out.count("final.pt exists; nothing to do") == len(MODELS)
    assert results_of(finished_recipe) == before


def touch(path, seconds=1):
    """Makes ``path`` ``seconds`` newer, its content unchanged."""
    st = os.stat(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + seconds * 10**9))


def test_a_touched_input_remakes_the_steps_made_from_it(tiny_gmm, tmp_path):
    """A touched G.fst remakes the three graphs, which come out the same and keep their time stamps, so no decode
    is redone; a touched HCLG.fst redoes the decodes made with it."""
    s5 = copy_recipe(tiny_gmm, tmp_path)
    before = results_of(s5)
    touch(os.path.join(s5, "data", "lang_test_tgpr", "G.fst"))
    out, _ = run_recipe(s5, *TINY_OPTS, "--stage", "2", "--stop-stage", "4")
    assert dict(MADE.findall(out)) == {g: "data/lang_test_tgpr/G.fst changed since it was made" for g in GMM_GRAPHS}
    assert out.count("HCLG.fst is the same as before (its time stamp kept)") == len(GMM_GRAPHS)
    skipped = SKIPPED.findall(out)
    assert [w for w in GMM_STEPS if w not in GMM_GRAPHS and w not in skipped] == []

    touch(os.path.join(s5, "exp", "mono", "graph_tgpr", "HCLG.fst"))
    out, _ = run_recipe(s5, *TINY_OPTS, "--stage", "2", "--stop-stage", "2")
    assert dict(MADE.findall(out)) == {f"exp/mono/decode_tgpr_{s}": "exp/mono/graph_tgpr/HCLG.fst changed since it "
                                       "was made" for s in SETS}
    assert {"exp/mono", "exp/mono/graph_tgpr", "exp/mono_ali"} <= set(SKIPPED.findall(out))
    assert results_of(s5) == before   # the same graph: the same decodes


def test_a_changed_decoding_setting_in_the_conf_redoes_those_decodes(tiny_gmm, tmp_path):
    s5 = copy_recipe(tiny_gmm, tmp_path)
    conf = os.path.join(s5, "conf")
    repo_conf = os.readlink(conf)
    os.unlink(conf)
    shutil.copytree(repo_conf, conf)
    path = os.path.join(conf, "decode.conf")
    text = open(path).read()
    assert "--beam=11.0\n" in text
    with open(path, "w") as f:
        f.write(text.replace("--beam=11.0\n", "--beam=12.0\n"))
    out, _ = run_recipe(s5, *TINY_OPTS, "--stage", "2", "--stop-stage", "2")
    made = dict(MADE.findall(out))
    assert made == {f"exp/mono/decode_tgpr_{s}": "settings changed: beam 11.0 -> 12.0" for s in SETS}
    assert {"exp/mono", "exp/mono/graph_tgpr", "exp/mono_ali"} <= set(SKIPPED.findall(out))


def test_a_changed_lm_setting_redoes_the_lm_and_its_grammars_only(tiny_gmm, tmp_path):
    s5 = copy_recipe(tiny_gmm, tmp_path)
    out, _ = run_recipe(s5, *TINY_OPTS, "--stop-stage", "0", "--lm-prune-threshold", "1e-5")
    made = dict(MADE.findall(out))
    assert sorted(made) == ["data/lang_test_tg", "data/lang_test_tgpr", "data/local/lm"]
    assert made["data/local/lm"] == "settings changed: prune_threshold 1e-07 -> 1e-05"
    assert set(SKIPPED.findall(out)) == {"data/local/lm_text_vocab.txt", "data/local/dict", "data/lang"}
