"""The model dir a training writes and everything that reads it (exp/nnet/<name>/):

  <iter>.pt, final.pt   checkpoints: {"model": state dict, "nnet_config": NnetConfig as a dict, "input_dim",
                        "num_pdfs", "iter", "history": per-iteration training numbers} (no optimizer state: each
                        iteration starts a fresh optimizer, as Kaldi's)
  prior.vec             pdf priors [P] (Kaldi text vector)
  cmvn_opts             the CMVN of the features (Kaldi's --norm-means/--norm-vars)
  final.mdl, tree       the transition model and tree of the alignments trained on (decoding needs them)
A model trained with several seeds has one dir per seed: exp/nnet/<name> and exp/nnet/<name>_seed<k> (steps_py.nnet.runs).

load_acoustic_model(dir) gives an AcousticModelBundle that turns features into pdf log-likelihoods
(log posterior - log prior) and internals.
"""
import dataclasses
import os

import numpy as np

from steps_py.common import InputError, atomic_path
from steps_py.feats.cmvn import read_cmvn_opts
from steps_py.feats.pipeline import CmvnPipeline, iter_features
from steps_py.kaldi.io import read_kaldi_vector
from steps_py.kaldi.model_io import read_transition_model
from steps_py.nnet.config import NnetConfig
from steps_py.nnet.device import resolve_device
from steps_py.nnet.model import AcousticModel, forward_utterances


def checkpoint_path(exp_dir, it):
    """<exp_dir>/<it>.pt."""
    return os.path.join(exp_dir, f"{it}.pt")


def latest_checkpoint(exp_dir):
    """Largest n with <exp_dir>/n.pt, or 0."""
    its = [int(f[:-3]) for f in os.listdir(exp_dir) if f.endswith(".pt") and f[:-3].isdigit()]
    return max(its, default=0)


def save_checkpoint(path, model, cfg, input_dim, num_pdfs, it, history):
    """Writes a checkpoint (see the module docstring) atomically."""
    import torch
    weights = model.state_dict()
    for k in weights:                       # CPU tensors (a model on a GPU loads on either device)
        weights[k] = weights[k].detach().cpu()
    state = {"model": weights, "nnet_config": cfg.to_dict(),
             "input_dim": input_dim, "num_pdfs": num_pdfs, "iter": it, "history": history}
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


@dataclasses.dataclass
class AcousticModelBundle:
    """A trained model ready to score frames: model (eval mode), log_priors [P], cfg (NnetConfig), cmvn pipeline,
    transition model and tree of its targets."""
    model: object
    log_priors: np.ndarray
    cfg: object
    pipeline: object
    trans_model: object
    model_dir: str

    @property
    def label_delay(self):
        return self.cfg.label_delay

    def iter_features(self, data_dir, utts=None):
        """(utt, CMVN'd features [T, D]) of a data dir (feats.scp + cmvn.scp of the model's feature type)."""
        return iter_features(data_dir, utts=utts, pipeline=self.pipeline)

    def loglikes(self, feats):
        """feats [T, D] (CMVN'd) -> pdf log-likelihoods [T, P] float32 (log posterior - log prior)."""
        return self.loglikes_batch([feats])[0]

    def loglikes_batch(self, feats_list):
        """[feats [T_i, D]] -> [pdf log-likelihoods [T_i, P] float32], one batched forward."""
        out = forward_utterances(self.model, feats_list, self.label_delay)
        return [(logp - self.log_priors).astype(np.float32) for logp, _ in out]

    def internals(self, feats):
        """feats [T, D] -> (loglikes [T, P], internals: list over layers of dict name -> [T, H] float32)."""
        (logp, layers), = forward_utterances(self.model, [feats], self.label_delay, return_internals=True)
        return (logp - self.log_priors).astype(np.float32), layers


def read_checkpoint(path):
    """The dict of a checkpoint file (on the CPU); InputError naming the file when it cannot be read."""
    import torch
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except (OSError, RuntimeError, EOFError) as e:
        raise InputError(f"cannot read model {path}: {e}") from None


def load_checkpoint_model(path, device="cpu"):
    """A checkpoint -> (AcousticModel in eval mode on ``device`` (a torch.device or its name), NnetConfig,
    checkpoint dict)."""
    ckpt = read_checkpoint(path)
    cfg = NnetConfig.from_dict(ckpt["nnet_config"])
    model = AcousticModel(cfg, ckpt["input_dim"], ckpt["num_pdfs"])
    model.load_state_dict(ckpt["model"])
    model.to(device)
    model.eval()
    return model, cfg, ckpt


def load_acoustic_model(model_dir, iter_name="final", num_threads=None, device="cpu"):
    """exp/nnet/<name> -> AcousticModelBundle (model <iter>.pt, prior.vec, cmvn_opts, final.mdl + tree); the
    network on ``device``, a setting of steps_py.nnet.device (auto, cpu, cuda, cuda:N)."""
    import torch
    if num_threads:
        torch.set_num_threads(num_threads)
    path = os.path.join(model_dir, f"{iter_name}.pt")
    if not os.path.exists(path):
        raise InputError(f"no such file {path} (train the model first: steps_py.nnet.train)")
    model, cfg, ckpt = load_checkpoint_model(path, resolve_device(device))
    priors = read_kaldi_vector(os.path.join(model_dir, "prior.vec"))
    if priors.size != ckpt["num_pdfs"]:
        raise InputError(f"{model_dir}/prior.vec has {priors.size} pdfs, the model {ckpt['num_pdfs']}")
    tm, _, _ = read_transition_model(model_dir)
    if tm.num_pdfs != ckpt["num_pdfs"]:
        raise InputError(f"{model_dir}/final.mdl has {tm.num_pdfs} pdfs, the network {ckpt['num_pdfs']}")
    pipeline = CmvnPipeline(read_cmvn_opts(os.path.join(model_dir, "cmvn_opts")))
    return AcousticModelBundle(model, np.log(priors).astype(np.float32), cfg, pipeline, tm, model_dir)
