"""Feature pipelines: the features a model sees, made from a data dir's feats.scp and cmvn.scp.

- CmvnPipeline: per-speaker CMVN only (the networks' 40-dim Fbank).
- FeaturePipeline: per-speaker CMVN, then deltas or splicing + a linear transform (final.mat), as Kaldi's GMM steps
  read them from the system dir: cmvn_opts, delta_opts, splice_opts, final.mat (an LDA/MLLT system has final.mat).

A pipeline is called as ``pipeline(feats [T, d], cmvn_stats [2, d+1] or None) -> float32 [T, D]``;
iter_features(data_dir, ...) runs it over the utterances of a data dir. Frames are 10 ms.
"""
import os

import numpy as np

from steps_py.common import InputError, get_logger, require_files
from steps_py.data.datadir import read_map
from steps_py.feats.cmvn import normalise, read_cmvn_opts
from steps_py.kaldi.options import parse_option_string, read_option_file

log = get_logger("feats.pipeline")

DELTA_DEFAULTS = {"delta_order": 2, "delta_window": 2}      # add-deltas
SPLICE_DEFAULTS = {"left_context": 4, "right_context": 4}   # splice-feats


def parse_splice_opts(text, what="splice options"):
    """'--left-context=3 --right-context=3' -> (3, 3); Kaldi's splice-feats defaults are 4 and 4."""
    opts = parse_option_string(text, SPLICE_DEFAULTS, what)
    if opts["left_context"] < 0 or opts["right_context"] < 0:
        raise InputError(f"{what}: negative context in {text!r}")
    return opts["left_context"], opts["right_context"]


def apply_transform(feats, mat):
    """Kaldi's transform-feats: [T, D] features times a d x D (linear) or d x (D+1) (affine) matrix -> [T, d]."""
    feats = np.asarray(feats)
    in_dim = feats.shape[1]
    if mat.shape[1] == in_dim:
        return feats @ mat.T
    if mat.shape[1] == in_dim + 1:
        return feats @ mat[:, :in_dim].T + mat[:, in_dim]
    raise ValueError(f"transform of shape {mat.shape} does not fit features of dim {in_dim}")


def feature_type(exp_dir):
    """"lda" when exp_dir has final.mat (splice + transform, as align_si.sh decides), else "delta"."""
    return "lda" if exp_dir and os.path.exists(os.path.join(exp_dir, "final.mat")) else "delta"


# The files of a system dir that FeaturePipeline reads: a change to any of them changes the features.
PIPELINE_FILES = ("cmvn_opts", "delta_opts", "splice_opts", "final.mat")


def pipeline_inputs(exp_dir):
    """The paths of the PIPELINE_FILES that ``exp_dir`` has (inputs of a step that reads its features)."""
    return [os.path.join(exp_dir, n) for n in PIPELINE_FILES if os.path.isfile(os.path.join(exp_dir, n))]


class CmvnPipeline:
    """Per-speaker CMVN only. ``cmvn_opts``: {"norm_means": bool, "norm_vars": bool} (feats.cmvn.read_cmvn_opts)."""

    def __init__(self, cmvn_opts=None):
        self.cmvn = dict(cmvn_opts or read_cmvn_opts(None))

    def describe(self):
        return f"cmvn {self.cmvn}"

    def __call__(self, feats, cmvn_stats):
        """feats [T, d], cmvn_stats [2, d+1] (or None) -> float32 [T, d]."""
        return normalise(feats, cmvn_stats, self.cmvn)


class FeaturePipeline(CmvnPipeline):
    """CMVN (per speaker, from cmvn.scp) then either deltas or splicing + a linear transform (final.mat).

    exp_dir options, as Kaldi's scripts keep them: cmvn_opts (--norm-means, --norm-vars), delta_opts
    (--delta-order, --delta-window; default 2 and 2), splice_opts (--left-context, --right-context), final.mat
    (Kaldi matrix [out_dim, in_dim] or [out_dim, in_dim + 1] for an affine transform). ``transform`` overrides
    final.mat (LDA/MLLT training passes the current matrix here).
    """

    def __init__(self, exp_dir=None, transform=None):
        d = exp_dir or ""
        super().__init__(read_cmvn_opts(os.path.join(d, "cmvn_opts")))
        self.delta = read_option_file(os.path.join(d, "delta_opts"), DELTA_DEFAULTS)
        splice_path = os.path.join(d, "splice_opts")
        self.splice = parse_splice_opts(open(splice_path).read() if os.path.exists(splice_path) else "",
                                        splice_path)
        self.transform = transform
        if transform is None and feature_type(exp_dir) == "lda":
            import kaldiio
            self.transform = np.asarray(kaldiio.load_mat(os.path.join(exp_dir, "final.mat")), dtype=np.float32)
        self.type = "lda" if self.transform is not None else "delta"

    def describe(self):
        if self.type == "lda":
            return (f"cmvn {self.cmvn} + splice +-{self.splice[0]}/{self.splice[1]} + "
                    f"transform {self.transform.shape[0]}x{self.transform.shape[1]}")
        return f"cmvn {self.cmvn} + deltas order {self.delta['delta_order']} window {self.delta['delta_window']}"

    def __call__(self, feats, cmvn_stats):
        """feats [T, d] raw features, cmvn_stats [2, d+1] (or None) -> processed features [T, D] float32."""
        import kaldi_native_fbank as knf
        x = super().__call__(feats, cmvn_stats)
        if self.type == "lda":
            sopts = knf.SpliceOptions()
            sopts.left_context, sopts.right_context = self.splice
            x = knf.splice_frames(x, sopts)
            try:
                return np.ascontiguousarray(apply_transform(x, self.transform), dtype=np.float32)
            except ValueError as e:
                raise InputError(f"{self.describe()}: {e}") from None
        dopts = knf.DeltaOptions()
        dopts.order = self.delta["delta_order"]
        dopts.window = self.delta["delta_window"]
        return knf.compute_deltas(dopts, x)


def iter_features(data_dir, exp_dir=None, utts=None, pipeline=None):
    """Yields (utt, features [T, D] float32) for the utterances of data_dir (all, or ``utts`` in that order),
    through ``pipeline`` (default: FeaturePipeline(exp_dir), as the GMM in exp_dir expects). Utterances without
    features are logged and skipped."""
    import kaldiio
    pipeline = pipeline or FeaturePipeline(exp_dir)
    feats_scp = os.path.join(data_dir, "feats.scp")
    require_files(feats_scp)
    scp = read_map(feats_scp)
    utt2spk = read_map(os.path.join(data_dir, "utt2spk"))
    cmvn_path = os.path.join(data_dir, "cmvn.scp")
    cmvn = read_map(cmvn_path) if os.path.exists(cmvn_path) else None
    if cmvn is None and pipeline.cmvn["norm_means"]:
        raise InputError(f"no such file {cmvn_path} (run compute_cmvn_stats first)")
    cache = {}
    for utt in (utts if utts is not None else scp):
        if utt not in scp:
            log.warning(f"no features for utterance {utt} in {feats_scp}")
            continue
        stats = None
        if cmvn is not None:
            spk = utt2spk.get(utt)
            if spk not in cmvn:
                raise InputError(f"{cmvn_path}: no CMVN stats for speaker {spk} of utterance {utt}")
            if spk not in cache:
                cache.clear()
                cache[spk] = kaldiio.load_mat(cmvn[spk])
            stats = cache[spk]
        yield utt, pipeline(kaldiio.load_mat(scp[utt]), stats)


def load_features(data_dir, exp_dir=None, utts=None, pipeline=None):
    """{utt: features [T, D] float32} (see iter_features)."""
    return dict(iter_features(data_dir, exp_dir, utts, pipeline))
