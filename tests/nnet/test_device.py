"""steps_py.nnet.device: the device settings, and the networks on a GPU (tests marked gpu: skipped where torch sees
no CUDA device; bench/gpu_check.sh runs them on a GPU machine).

On a GPU the checks compare with the CPU on the same data and weights: one NSGD training step of a small LSTM and a
GRU (float64, so that the comparison sees the code and not float32 rounding), and the whole-utterance forward with
every internal that extraction keeps (float32, as decoding runs)."""
import argparse
import os
import re

import numpy as np
import pytest
import torch

from steps_py.common import InputError
from steps_py.nnet.checkpoint import load_checkpoint_model, save_checkpoint
from steps_py.nnet.config import NnetConfig, read_train_conf
from steps_py.nnet.device import add_device_option, check_device_setting, dist_backend, resolve_device
from steps_py.nnet.model import AcousticModel, forward_utterances
from steps_py.nnet.nsgd import NSGD

CUDA = torch.cuda.is_available()
gpu = pytest.mark.gpu
needs_cuda = pytest.mark.skipif(not CUDA, reason="torch sees no CUDA device")


@pytest.mark.parametrize("name", ["auto", "cpu", "cuda", "cuda:0", "cuda:3"])
def test_device_settings_are_accepted(name):
    assert check_device_setting(name) == name


@pytest.mark.parametrize("name", ["gpu", "CUDA", "cuda:", "cuda:x", "cpu:0", ""])
def test_bad_device_settings_are_refused(name):
    with pytest.raises(ValueError, match="auto, cpu, cuda or cuda:N"):
        check_device_setting(name)


def test_auto_is_the_gpu_when_there_is_one_else_the_cpu():
    assert resolve_device("auto").type == ("cuda" if CUDA else "cpu")
    assert resolve_device("cpu") == torch.device("cpu")
    assert dist_backend(torch.device("cpu")) == "gloo"
    assert dist_backend(torch.device("cuda", 0)) == "nccl"


@pytest.mark.skipif(CUDA, reason="needs a machine without a CUDA device")
def test_a_gpu_that_is_not_there_is_an_input_error():
    with pytest.raises(InputError, match=r"conf/x.conf: device=cuda:1, but torch .* sees no CUDA device"):
        resolve_device("cuda:1", what="conf/x.conf: device")


def test_train_conf_device_is_checked_and_not_a_result_setting(tmp_path):
    conf = tmp_path / "train.conf"
    conf.write_text("device=gpu\n")
    with pytest.raises(InputError, match=r"train.conf: bad value device='gpu'"):
        read_train_conf(str(conf))
    conf.write_text("device=cuda:1\n")
    assert read_train_conf(str(conf))["device"] == "cuda:1"
    assert read_train_conf(None)["device"] == "auto"
    from steps_py.nnet.config import changed_settings
    assert changed_settings(read_train_conf(None), read_train_conf(str(conf))) == ""


def test_device_option_of_the_decoders():
    p = argparse.ArgumentParser()
    add_device_option(p)
    assert p.parse_args([]).device == "auto"
    assert p.parse_args(["--device", "cuda:1"]).device == "cuda:1"
    with pytest.raises(SystemExit):
        p.parse_args(["--device", "gpu"])


def small_model(cell, dtype=torch.float32):
    torch.manual_seed(3)
    cfg = NnetConfig(cell=cell, num_layers=2, cell_dim=24, splice=1, label_delay=2)
    return AcousticModel(cfg, 8, 11).to(dtype), cfg


def test_checkpoints_hold_cpu_tensors_and_load_on_the_cpu(tmp_path):
    model, cfg = small_model("lstm")
    path = str(tmp_path / "1.pt")
    save_checkpoint(path, model.to(resolve_device("auto")), cfg, 8, 11, 1, [])
    assert all(v.device.type == "cpu" for v in torch.load(path, weights_only=False)["model"].values())
    loaded, _, _ = load_checkpoint_model(path, "cpu")
    assert all(torch.equal(a.cpu(), b) for a, b in zip(model.state_dict().values(), loaded.state_dict().values()))


def training_step(model, device, x, y):
    """One NSGD step of ``model`` (moved to ``device``) on x [B, T, D], y [B, T]; returns the new parameters (CPU)."""
    model = model.to(device)
    model.train()
    model.record_affine = True
    records = model.affine_records()
    in_records = {id(p) for r in records for p in (r.weight, r.bias) if p is not None}
    opt = NSGD(records, [p for p in model.parameters() if id(p) not in in_records], lr=0.5, momentum=0.5,
               max_change=2.0, max_change_per_record=0.75, num_initial_updates=2)
    for _ in range(3):   # the Fisher estimates' initialisation, an update and a step between updates
        logits = model(x.to(device))
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.to(device).reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}   # not the live CPU parameters


@gpu
@needs_cuda
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_a_training_step_on_cuda_equals_the_cpu_step(cell):
    model, _ = small_model(cell, torch.float64)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(4, 30, 8, generator=gen, dtype=torch.float64)
    y = torch.randint(0, 11, (4, 30), generator=gen)
    start = {k: v.clone() for k, v in model.state_dict().items()}
    on_cpu = training_step(model, "cpu", x, y)
    model.load_state_dict(start)
    on_cuda = training_step(model, "cuda", x, y)
    for k in on_cpu:
        change = (on_cpu[k] - start[k]).norm()
        assert (on_cuda[k] - on_cpu[k]).norm() <= 1e-6 * max(change, 1e-12), k


@gpu
@needs_cuda
def test_decoding_and_extraction_forward_on_cuda_equal_the_cpu():
    model, cfg = small_model("lstm")
    rng = np.random.default_rng(0)
    feats = [rng.standard_normal((n, 8)).astype(np.float32) for n in (50, 173, 7)]
    model.eval()
    on_cpu = forward_utterances(model, feats, cfg.label_delay, return_internals=True)
    on_cuda = forward_utterances(model.to("cuda"), feats, cfg.label_delay, return_internals=True)
    for (lp_a, layers_a), (lp_b, layers_b) in zip(on_cpu, on_cuda):
        assert np.allclose(lp_a, lp_b, atol=1e-4)
        for la, lb in zip(layers_a, layers_b):
            assert set(la) == set(lb) == {"i", "f", "o", "c", "h"}
            for name in la:
                assert isinstance(lb[name], np.ndarray) and np.allclose(la[name], lb[name], atol=1e-4), name



@pytest.mark.skipif(CUDA, reason="the GPU run is bench/gpu_check.sh's own job")
def test_gpu_check_passes_on_a_machine_without_a_gpu():
    import subprocess
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    res = subprocess.run(["bash", "bench/gpu_check.sh", "--repeats", "1"], cwd=root, capture_output=True, text=True,
                         env=dict(os.environ, PYTHONPATH=root))
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    assert "no CUDA device: the gpu checks are skipped" in res.stdout
    assert re.search(r"^\s+256\s+ours\s+\d+", res.stdout, re.M), res.stdout
