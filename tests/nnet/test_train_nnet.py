"""steps_py.nnet.train and decode_nnet on the tiny corpus with a small LSTM: resume after a kill gives the same
model, parallel jobs (torch.distributed) train and average, divergence stops with an error, the log-likelihoods
written for Kaldi's latgen-faster-mapped are those the decoder used."""
import json
import os
import re
import shutil

import kaldiio
import numpy as np
import pytest
import torch

from conftest import FIXTURES, ROOT, run_step

NNET_CONF = os.path.join(FIXTURES, "nnet_tiny.conf")


def write_conf(path, **settings):
    base = {"num_epochs": 2, "frames_per_iter": 4000, "minibatch_size": 16, "num_valid_utts": 4,
            "initial_lr": 4.0, "final_lr": 0.4, "momentum": 0.5, "num_threads": 1, "device": "cpu"}
    base.update(settings)
    with open(path, "w") as f:
        f.write("".join(f"{k}={v}\n" for k, v in base.items()))
    return path


def train(s5, exp_dir, conf, *extra):
    return run_step(["-m", "steps_py.nnet.train", "--nnet-conf", NNET_CONF, "--train-conf", conf, *extra,
                     "data/train_fbank", "exp/tri2b_ali_train", exp_dir], s5)


def state(path):
    return torch.load(path, weights_only=False)["model"]


@pytest.fixture(scope="module")
def trained(tiny_gmm, tmp_path_factory):
    conf = write_conf(str(tmp_path_factory.mktemp("conf") / "train.conf"))
    exp = os.path.join(tiny_gmm, "exp", "nnet_test", "a")
    log = train(tiny_gmm, exp, conf)
    return tiny_gmm, exp, conf, log


def test_killed_run_resumes_to_the_same_model(trained):
    s5, exp, conf, _ = trained
    summary = json.load(open(os.path.join(exp, "train_summary.json")))
    n = summary["num_iters"]
    assert n >= 3
    # a run killed after iteration n-1: the last checkpoint and the final model are not there yet
    killed = os.path.join(s5, "exp", "nnet_test", "killed")
    shutil.copytree(exp, killed)
    for f in ("final.pt", f"{n}.pt", "train_summary.json"):
        os.unlink(os.path.join(killed, f))
    log = train(s5, killed, conf)
    assert f"resuming from {killed}/{n - 1}.pt" in log
    a, b = state(os.path.join(exp, "final.pt")), state(os.path.join(killed, "final.pt"))
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0)
    resumed = json.load(open(os.path.join(killed, "train_summary.json")))
    assert [h["iter"] for h in resumed["history"]] == list(range(1, n + 1))
    # a finished dir is left alone; a changed conf is refused
    assert "nothing to do" in train(s5, exp, conf)


def test_changed_model_conf_is_refused(trained, tmp_path):
    s5, exp, conf, _ = trained
    other = tmp_path / "other.conf"
    other.write_text(open(NNET_CONF).read().replace("cell_dim=32", "cell_dim=48"))
    import subprocess
    import sys
    res = subprocess.run([sys.executable, "-m", "steps_py.nnet.train", "--nnet-conf", str(other), "--train-conf",
                          conf, "data/train_fbank", "exp/tri2b_ali_train", exp], cwd=s5, capture_output=True,
                         text=True, env=dict(os.environ, PYTHONPATH=ROOT))
    assert res.returncode == 1 and "differs from" in res.stderr and "Traceback" not in res.stderr
    # the same settings with other comments (a grid's copy of the conf) are the same model: nothing to do
    same = tmp_path / "same.conf"
    same.write_text("# a grid line's copy\n" + open(NNET_CONF).read() + "cell_dim=32   # again\n")
    res = subprocess.run([sys.executable, "-m", "steps_py.nnet.train", "--nnet-conf", str(same), "--train-conf",
                          conf, "data/train_fbank", "exp/tri2b_ali_train", exp], cwd=s5, capture_output=True,
                         text=True, env=dict(os.environ, PYTHONPATH=ROOT))
    assert res.returncode == 0 and "nothing to do" in res.stdout + res.stderr


def test_changed_train_settings_are_refused(trained, tmp_path):
    """A dir trained (or half trained) with other training settings is not resumed or reused silently."""
    s5, exp, conf, _ = trained
    import subprocess
    import sys
    other = write_conf(str(tmp_path / "other.conf"), initial_lr=2.0)
    for extra in ([], ["--set", "initial_lr=2.0"]):
        res = subprocess.run([sys.executable, "-m", "steps_py.nnet.train", "--nnet-conf", NNET_CONF, "--train-conf",
                              other if not extra else conf, *extra, "data/train_fbank", "exp/tri2b_ali_train", exp],
                             cwd=s5, capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=ROOT))
        assert res.returncode == 1 and "Traceback" not in res.stderr
        assert "was trained with other settings" in res.stderr and "initial_lr 4.0 -> 2.0" in res.stderr
    from steps_py.nnet.train import changed_settings
    assert changed_settings({"num_threads": 1, "seed": 1}, {"num_threads": 2, "seed": 1}) == ""


def test_changed_alignments_are_refused(trained, tmp_path):
    """A model trained (or half trained) on alignments that have been rewritten since is neither reused nor
    resumed: the step names the changed file."""
    s5, exp, conf, _ = trained
    import subprocess
    import sys
    record = json.load(open(os.path.join(exp, "train_inputs.json")))
    ali = "exp/tri2b_ali_train/ali.1.gz"
    assert ali in record and "data/train_fbank/feats.scp" in record
    half = os.path.join(s5, "exp", "nnet_test", "half")
    shutil.copytree(exp, half)
    os.unlink(os.path.join(half, "final.pt"))
    path = os.path.join(s5, ali)
    st = os.stat(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))   # rewritten by a GMM stage run again
    try:
        for d in (exp, half):
            res = subprocess.run([sys.executable, "-m", "steps_py.nnet.train", "--nnet-conf", NNET_CONF,
                                  "--train-conf", conf, "data/train_fbank", "exp/tri2b_ali_train", d], cwd=s5,
                                 capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=ROOT))
            assert res.returncode == 1 and "Traceback" not in res.stderr, res.stderr
            assert "was trained on other inputs" in res.stderr and f"{ali} changed since" in res.stderr
    finally:
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert "nothing to do" in train(s5, exp, conf)


def test_two_parallel_jobs_average_their_models(trained, tmp_path):
    s5, _, _, _ = trained
    conf = write_conf(str(tmp_path / "par.conf"))
    exp = os.path.join(s5, "exp", "nnet_test", "par")
    log = train(s5, exp, conf, "--set", "num_jobs=2")
    assert "2 job(s) x 1 thread(s)" in log
    # the copied conf says what was trained: the command line's setting last
    assert open(os.path.join(exp, "train.conf")).read().rstrip().endswith("num_jobs=2")
    summary = json.load(open(os.path.join(exp, "train_summary.json")))
    assert summary["num_jobs"] == 2
    # the lr is scaled by the number of jobs, as Kaldi does
    assert np.isclose(summary["history"][0]["lr"], 2 * 4.0)
    assert summary["history"][-1]["valid_ce"] < summary["history"][0]["valid_ce"]


def test_divergence_stops_with_a_clear_error(trained, tmp_path):
    s5, _, _, _ = trained
    conf = write_conf(str(tmp_path / "bad.conf"), initial_lr=1e37, final_lr=1e37, max_change=0,
                      max_change_per_component=0, max_change_output=0, optimizer="sgd")
    import subprocess
    import sys
    res = subprocess.run([sys.executable, "-m", "steps_py.nnet.train", "--nnet-conf", NNET_CONF, "--train-conf",
                          conf, "data/train_fbank", "exp/tri2b_ali_train", str(tmp_path / "bad")], cwd=s5,
                         capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=ROOT))
    assert res.returncode == 1
    assert "training diverged at iteration" in res.stderr and "Traceback" not in res.stderr


def test_huge_learning_rate_is_reported_and_stopped(trained, tmp_path):
    """lr 1e6: max-change limits every step; the log says so per iteration and warns, and a validation CE no
    better than predicting the priors after the first epoch stops training with a clear error (before: a finished,
    useless model)."""
    s5, _, _, _ = trained
    conf = write_conf(str(tmp_path / "huge.conf"), initial_lr=1e6, final_lr=1e6)
    import subprocess
    import sys
    res = subprocess.run([sys.executable, "-m", "steps_py.nnet.train", "--nnet-conf", NNET_CONF, "--train-conf",
                          conf, "data/train_fbank", "exp/tri2b_ali_train", str(tmp_path / "huge")], cwd=s5,
                         capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=ROOT))
    assert res.returncode == 1 and "Traceback" not in res.stderr
    assert re.search(r"max-change active for the whole model in (\d+) of \1 minibatches \(100%\)", res.stderr)
    assert "limited the whole model in 100% of the minibatches" in res.stderr
    assert re.search(r"training diverged at iteration [2-9]: valid CE [\d.]+ is no better than predicting the pdf "
                     r"priors", res.stderr)
    assert not os.path.exists(tmp_path / "huge" / "final.pt")


def test_divergence_is_judged_against_the_priors():
    from steps_py.nnet.egs import IGNORE
    from steps_py.nnet.train import diverged, max_change_shares, prior_ce
    priors = np.array([0.5, 0.25, 0.25])
    targets = np.array([0, 1, 2, 0, IGNORE])
    assert np.isclose(prior_ce(priors, targets), np.log(2) * 0.5 + np.log(4) * 0.5)   # known by hand
    assert diverged(1.0, 1.0) and not diverged(0.99, 1.0) and diverged(float("nan"), 1.0)
    assert max_change_shares(78, 39, 78, 5) == (1.0, 0.1)


def test_loglikes_for_kaldi_are_what_the_decoder_used(trained):
    from steps_py.nnet.checkpoint import load_acoustic_model
    s5, exp, _, _ = trained
    dec = os.path.join(exp, "decode_tgpr_dev")
    run_step(["-m", "steps_py.nnet.decode", "--nj", "1", "--write-loglikes", "--config", "conf/decode_nnet.conf",
              "exp/tri2b/graph_tgpr", "data/dev_fbank", exp, dec], s5)
    loglikes = dict(kaldiio.load_scp(os.path.join(dec, "loglikes.1.scp")))
    bundle = load_acoustic_model(exp)
    feats = dict(bundle.iter_features(os.path.join(s5, "data", "dev_fbank")))
    assert set(loglikes) == set(feats)
    utt = sorted(feats)[0]
    np.testing.assert_allclose(loglikes[utt], bundle.loglikes(feats[utt]), rtol=1e-5, atol=1e-4)
    assert loglikes[utt].shape == (len(feats[utt]), bundle.trans_model.num_pdfs)
    assert any(f.startswith("wer_") for f in os.listdir(dec))


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a CUDA device")
def test_cuda_without_a_gpu_is_refused_before_any_work(trained, tmp_path):
    s5, _, conf, _ = trained
    import subprocess
    import sys
    exp = tmp_path / "cuda"
    res = subprocess.run([sys.executable, "-m", "steps_py.nnet.train", "--nnet-conf", NNET_CONF, "--train-conf",
                          conf, "--set", "device=cuda", "data/train_fbank", "exp/tri2b_ali_train", str(exp)],
                         cwd=s5, capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=ROOT))
    assert res.returncode == 1 and "Traceback" not in res.stderr
    assert "--set: device=cuda, but torch" in res.stderr and "sees no CUDA device" in res.stderr
    assert not exp.exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="auto picks the GPU here")
def test_device_auto_trains_the_cpu_model_here(trained, tmp_path):
    """device=auto on a machine without a GPU trains the device=cpu model, byte for byte (the setting is where the
    work runs, not what it makes)."""
    s5, exp, conf, log = trained
    assert "x 1 thread(s) on cpu" in log
    other = os.path.join(s5, "exp", "nnet_test", "auto")
    assert "x 1 thread(s) on cpu" in train(s5, other, conf, "--set", "device=auto")
    a, b = state(os.path.join(exp, "final.pt")), state(os.path.join(other, "final.pt"))
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="torch sees no CUDA device")
def test_training_and_decoding_on_cuda(trained, tmp_path):
    """device=cuda trains the model the CPU trains, up to rounding (final valid CE within 3%; no dropout, whose random
    streams differ between the devices), and a decode with --device cuda gives the CPU decode's log-likelihoods
    (within 1e-3) and its best WER."""
    s5, _, conf, _ = trained
    nnet_conf = tmp_path / "nnet.conf"
    nnet_conf.write_text(open(NNET_CONF).read() + "\ndropout=0\n")
    exp, on_gpu = (os.path.join(s5, "exp", "nnet_test", d) for d in ("on_cpu", "on_cuda"))
    for d, device in ((exp, "cpu"), (on_gpu, "cuda")):
        log = run_step(["-m", "steps_py.nnet.train", "--nnet-conf", str(nnet_conf), "--train-conf", conf, "--set",
                        f"device={device}", "data/train_fbank", "exp/tri2b_ali_train", d], s5)
        assert f"on {device}" in log
    ce = [json.load(open(os.path.join(d, "train_summary.json")))["final_valid_ce"] for d in (exp, on_gpu)]
    assert abs(ce[1] - ce[0]) <= 0.03 * ce[0], ce
    for device in ("cpu", "cuda"):
        dec = str(tmp_path / f"decode_{device}")
        run_step(["-m", "steps_py.nnet.decode", "--nj", "1", "--write-loglikes", "--config",
                  "conf/decode_nnet.conf", "--device", device, "exp/tri2b/graph_tgpr", "data/dev_fbank", exp, dec],
                 s5)
    a = dict(kaldiio.load_scp(str(tmp_path / "decode_cpu" / "loglikes.1.scp")))
    b = dict(kaldiio.load_scp(str(tmp_path / "decode_cuda" / "loglikes.1.scp")))
    assert set(a) == set(b) and all(np.abs(a[u] - b[u]).max() < 1e-3 for u in a)
    best = [open(tmp_path / f"decode_{d}" / "scoring_kaldi" / "best_wer").read().split()[:-1] for d in ("cpu", "cuda")]
    assert best[0] == best[1]          # the %WER line but its file name (the decode dirs differ)
