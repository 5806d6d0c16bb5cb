"""Usage: python -m steps_py.compute_cmvn_stats [--overwrite] <data-dir> <log-dir> <feat-dir>

Per-speaker cepstral mean and variance statistics, like Kaldi's steps/compute_cmvn_stats.sh (compute-cmvn-stats
--spk2utt): for each speaker of spk2utt, a 2 x (D+1) float64 matrix
    row 0: sum over the speaker's frames of each feature dim, then the frame count;
    row 1: sum of squares of each dim, then 0,
written as <feat-dir>/cmvn_<name>.{ark,scp} (binary Kaldi double matrices) and copied to <data-dir>/cmvn.scp.
<name> is the data dir's base name; the log also goes to <log-dir>/cmvn_<name>.log.

Utterances of spk2utt without features are logged and counted; a speaker left with no frame at all is an error.
Idempotent: nothing is done if cmvn.scp is newer than feats.scp and covers every speaker (--overwrite forces it).

Later stages use the pure functions here: cmvn_stats(feats), apply_cmvn(feats, stats, norm_vars) (Kaldi's
apply-cmvn semantics).
"""
import argparse
import logging
import os

import numpy as np

from steps_py.common import LOG_FORMAT, InputError, atomic_path, get_logger, run_main
from steps_py.datadir import read_map, write_map

log = get_logger("compute_cmvn_stats")

VARIANCE_FLOOR = 1.0e-20   # Kaldi's apply-cmvn floors variances here (with a warning)


def cmvn_stats(feats):
    """CMVN statistics of a feature matrix: float64 [2, D+1] from float [num_frames, D] (see module doc)."""
    feats = np.asarray(feats, dtype=np.float64)
    if feats.ndim != 2:
        raise ValueError(f"features must be a matrix [num_frames, dim], got shape {feats.shape}")
    stats = np.zeros((2, feats.shape[1] + 1), dtype=np.float64)
    stats[0, :-1] = feats.sum(axis=0)
    stats[1, :-1] = np.square(feats).sum(axis=0)
    stats[0, -1] = feats.shape[0]
    return stats


def apply_cmvn(feats, stats, norm_vars=False):
    """Normalised features float32 [num_frames, D], as Kaldi's apply-cmvn (ApplyCmvn in transform/cmvn.cc).

    ``stats``: [2, D+1] from cmvn_stats (summed over a speaker's utterances). Subtracts the mean; with
    ``norm_vars`` also divides by the standard deviation (variances floored at 1e-20). Raises ValueError if the
    stats hold less than one frame or their dimension does not match.
    """
    feats = np.asarray(feats)
    stats = np.asarray(stats, dtype=np.float64)
    dim = feats.shape[1]
    if stats.shape != (2, dim + 1):
        raise ValueError(f"CMVN stats of shape {stats.shape} do not fit features of dim {dim}")
    count = stats[0, dim]
    if count < 1.0:
        raise ValueError(f"insufficient CMVN stats (frame count {count})")
    mean = stats[0, :dim] / count
    if not norm_vars:
        return (feats.astype(np.float64) - mean).astype(np.float32)
    var = stats[1, :dim] / count - mean * mean
    if (var < VARIANCE_FLOOR).any():
        logging.getLogger("compute_cmvn_stats").warning(
            f"flooring {int((var < VARIANCE_FLOOR).sum())} CMVN variance(s) to {VARIANCE_FLOOR}")
        var = np.maximum(var, VARIANCE_FLOOR)
    scale = 1.0 / np.sqrt(var)
    return (feats.astype(np.float64) * scale - mean * scale).astype(np.float32)


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


def write_matrices(items, ark_path, scp_path):
    """Writes {key: matrix} (in the given order) as a binary ark and an scp naming ``ark_path`` (absolute).

    Both are written under temporary names; the ark is renamed into place first, then the scp.
    """
    import kaldiio
    ark_path, scp_path = os.path.abspath(ark_path), os.path.abspath(scp_path)
    os.makedirs(os.path.dirname(ark_path), exist_ok=True)
    tmp_ark, tmp_scp = ark_path + f".tmp{os.getpid()}", scp_path + f".tmp{os.getpid()}"
    try:
        with kaldiio.WriteHelper(f"ark,scp:{tmp_ark},{tmp_scp}") as writer:
            for key, mat in items.items():
                writer(key, mat)
        with open(tmp_scp) as f:
            lines = [line.split(" ", 1) for line in f.read().splitlines()]
        os.replace(tmp_ark, ark_path)
        with atomic_path(scp_path) as tmp, open(tmp, "w") as f:
            for key, location in lines:
                f.write(f"{key} {ark_path}:{location.rsplit(':', 1)[1]}\n")
    finally:
        for p in (tmp_ark, tmp_scp):
            if os.path.exists(p):
                os.unlink(p)


def cmvn_up_to_date(data_dir):
    cmvn_scp, feats_scp = os.path.join(data_dir, "cmvn.scp"), os.path.join(data_dir, "feats.scp")
    if not os.path.isfile(cmvn_scp) or os.stat(cmvn_scp).st_mtime_ns < os.stat(feats_scp).st_mtime_ns:
        return False
    cmvn = read_map(cmvn_scp)
    if set(cmvn) != set(read_map(os.path.join(data_dir, "spk2utt"))):
        return False
    return all(os.path.isfile(v.rsplit(":", 1)[0]) for v in cmvn.values())


def compute_cmvn_stats(data_dir, log_dir, feat_dir, overwrite=False):
    """Computes and writes the per-speaker stats of ``data_dir`` (see module doc). Returns the number of speakers."""
    import kaldiio
    data_dir = data_dir.rstrip("/")
    name = os.path.basename(os.path.abspath(data_dir))
    for f in ("feats.scp", "spk2utt"):
        if not os.path.isfile(os.path.join(data_dir, f)):
            raise InputError(f"{data_dir}: no such file {f}")
    if not overwrite and cmvn_up_to_date(data_dir):
        log.info(f"{data_dir}/cmvn.scp is newer than feats.scp and covers every speaker; nothing to do "
                 f"(--overwrite to recompute)")
        return len(read_map(os.path.join(data_dir, "cmvn.scp")))
    os.makedirs(log_dir, exist_ok=True)
    handler = logging.FileHandler(os.path.join(log_dir, f"cmvn_{name}.log"), mode="w")
    handler.setFormatter(logging.Formatter(LOG_FORMAT, datefmt="%H:%M:%S"))
    log.addHandler(handler)
    try:
        spk2utt = {s: v.split() for s, v in read_map(os.path.join(data_dir, "spk2utt")).items()}
        feats_scp = read_map(os.path.join(data_dir, "feats.scp"))

        def get_feats(utt):
            if utt not in feats_scp:
                return None
            try:
                return kaldiio.load_mat(feats_scp[utt])
            except (OSError, ValueError) as e:
                raise InputError(f"{data_dir}/feats.scp: cannot read features of {utt} at {feats_scp[utt]}: "
                                 f"{e}") from None

        stats, missing_utts, empty_spks = speaker_stats(spk2utt, get_feats)
        for utt in missing_utts:
            log.warning(f"utterance {utt} of spk2utt has no features in {data_dir}/feats.scp")
        if empty_spks:
            raise InputError(f"{data_dir}: {len(empty_spks)} speaker(s) have no features at all "
                             f"(first: {empty_spks[0]}); run steps_py.fix_data_dir {data_dir}")
        base = os.path.join(os.path.abspath(feat_dir), f"cmvn_{name}")
        write_matrices(stats, base + ".ark", base + ".scp")
        write_map(os.path.join(data_dir, "cmvn.scp"), read_map(base + ".scp"))
        frames = sum(int(s[0, -1]) for s in stats.values())
        log.info(f"CMVN stats of {len(stats)} speakers ({frames} frames, dim {next(iter(stats.values())).shape[1] - 1})"
                 f" in {base}.ark; {len(missing_utts)} utterance(s) without features; wrote {data_dir}/cmvn.scp")
        return len(stats)
    finally:
        log.removeHandler(handler)
        handler.close()


def main():
    parser = argparse.ArgumentParser(usage=__doc__.split("\n")[0][len("Usage: "):], description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--overwrite", action="store_true", help="recompute even if cmvn.scp is up to date")
    parser.add_argument("data_dir")
    parser.add_argument("log_dir")
    parser.add_argument("feat_dir")
    args = parser.parse_args()
    compute_cmvn_stats(args.data_dir, args.log_dir, args.feat_dir, args.overwrite)
    return 0


if __name__ == "__main__":
    run_main(main)
