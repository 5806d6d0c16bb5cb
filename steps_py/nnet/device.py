"""Where the networks run: a device setting (``device=`` of conf/nnet/train.conf, ``--device`` of the hybrid decoders,
the extraction, recognize and the noise-insertion analysis) -> a torch.device, and the collective backend of
parallel training on it.

Settings: ``auto`` (the default: the first CUDA device when torch sees one, else the CPU), ``cpu``, ``cuda`` (the
job's own GPU: LOCAL_RANK modulo the GPUs, so that torchrun's ranks on one node take one GPU each) or ``cuda:N``.
Checkpoints are written from and read to the CPU, so a model trained on either device loads on the other.
"""
import argparse
import re

from steps_py.common import InputError

DEVICE_CHOICES = "auto, cpu, cuda or cuda:N"
_DEVICE_RE = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")


def check_device_setting(name):
    """``name`` if it is a device setting (DEVICE_CHOICES), else ValueError."""
    if not _DEVICE_RE.match(name):
        raise ValueError(f"expected {DEVICE_CHOICES}, not {name!r}")
    return name


def resolve_device(name, local_rank=0, what="device"):
    """A device setting -> torch.device. ``local_rank``: which GPU ``cuda`` means (modulo the GPUs present).
    InputError, naming ``what`` (e.g. "conf/nnet/train.conf: device"), for a bad setting or a GPU that is not
    there; ``auto`` never fails."""
    import torch
    try:
        check_device_setting(name)
    except ValueError as e:
        raise InputError(f"{what}: {e}") from None
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise InputError(f"{what}={name}, but torch {torch.__version__} sees no CUDA device (built for CUDA "
                         f"{torch.version.cuda or 'none'}): use cpu or auto")
    count = torch.cuda.device_count()
    index = int(name.split(":")[1]) if ":" in name else local_rank % count
    if index >= count:
        raise InputError(f"{what}={name}, but torch sees {count} CUDA device(s) (cuda:0..cuda:{count - 1})")
    return torch.device("cuda", index)


def dist_backend(device):
    """The torch.distributed backend of parallel training on ``device``: NCCL on CUDA, gloo on the CPU."""
    return "nccl" if device.type == "cuda" else "gloo"


def _device_argument(text):
    try:
        return check_device_setting(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def add_device_option(parser):
    """--device on an argparse parser of a step that runs a network."""
    parser.add_argument("--device", default="auto", type=_device_argument,
                        help=f"where the network runs: {DEVICE_CHOICES} (default: auto, the GPU when there is one)")
