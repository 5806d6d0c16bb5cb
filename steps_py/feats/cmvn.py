"""Cepstral mean and variance normalisation (Kaldi's compute-cmvn-stats / apply-cmvn), the one CMVN of the
recipe: per-speaker statistics for training and decoding, per-utterance statistics where no speaker has any.

Statistics of features [T, D] are a float64 [2, D+1] matrix: row 0 the sum of each dim and then the frame count,
row 1 the sum of squares of each dim and then 0. ``cmvn_opts`` files (exp/<system>/cmvn_opts, Kaldi's
``--norm-means=true --norm-vars=false``) say what is normalised: read_cmvn_opts.
"""
import numpy as np

from steps_py.kaldi.options import read_option_file


CMVN_DEFAULTS = {"norm_means": True, "norm_vars": False}


def read_cmvn_opts(path):
    """A Kaldi cmvn_opts file (``--norm-means=true --norm-vars=false``) -> {"norm_means": bool, "norm_vars": bool};
    a missing file or option takes these defaults."""
    return read_option_file(path, CMVN_DEFAULTS)


def normalise(feats, stats, opts):
    """feats [T, D] with the CMVN of ``opts`` (read_cmvn_opts) from ``stats`` [2, D+1] (None: unchanged) ->
    float32 [T, D]."""
    if stats is None or not opts["norm_means"]:
        return np.ascontiguousarray(feats, dtype=np.float32)
    return apply_cmvn(feats, stats, norm_vars=opts["norm_vars"])


def cmvn_stats(feats):
    """CMVN statistics of a feature matrix float [num_frames, D] -> float64 [2, D+1] (see module doc)."""
    import kaldi_native_fbank as knf
    feats = np.asarray(feats, dtype=np.float32)
    if feats.ndim != 2:
        raise ValueError(f"features must be a matrix [num_frames, dim], got shape {feats.shape}")
    return np.asarray(knf.compute_cmvn_stats(np.ascontiguousarray(feats)), dtype=np.float64)


def apply_cmvn(feats, stats, norm_vars=False):
    """Normalised features float32 [num_frames, D], as Kaldi's apply-cmvn (ApplyCmvn in transform/cmvn.cc, through
    kaldi-native-fbank): subtracts the mean of ``stats`` [2, D+1] (cmvn_stats, summed over a speaker's
    utterances); with ``norm_vars`` also divides by the standard deviation. Raises ValueError if the stats hold
    less than one frame or do not fit the features."""
    import kaldi_native_fbank as knf
    feats = np.ascontiguousarray(feats, dtype=np.float32)
    stats = np.asarray(stats, dtype=np.float64)
    dim = feats.shape[1]
    if stats.shape != (2, dim + 1):
        raise ValueError(f"CMVN stats of shape {stats.shape} do not fit features of dim {dim}")
    if stats[0, dim] < 1.0:
        raise ValueError(f"insufficient CMVN stats (frame count {stats[0, dim]})")
    opts = knf.CmvnOptions()
    opts.norm_vars = bool(norm_vars)
    return knf.apply_cmvn(stats, opts, feats)


def speaker_stats(spk2utt, get_feats):
    """{speaker: stats [2, D+1]} summed over each speaker's utterances.

    ``spk2utt``: {spk: [utt, ...]}; ``get_feats(utt)`` returns float [num_frames, D] or None if the utterance has
    no features. Returns (stats by speaker, list of utterances without features, list of speakers without frames).
    """
    out, missing_utts, empty_spks = {}, [], []
    for spk, utts in spk2utt.items():
        total = None
        for utt in utts:
            feats = get_feats(utt)
            if feats is None:
                missing_utts.append(utt)
                continue
            s = cmvn_stats(feats)
            total = s if total is None else total + s
        if total is None or total[0, -1] == 0:
            empty_spks.append(spk)
        else:
            out[spk] = total
    return out, missing_utts, empty_spks
