"""Usage: python -m steps_py.feats.compute_cmvn_stats [--overwrite] <data-dir> <log-dir> <feat-dir>

Per-speaker cepstral mean and variance statistics, like Kaldi's steps/compute_cmvn_stats.sh (compute-cmvn-stats
--spk2utt): for each speaker of spk2utt, a 2 x (D+1) float64 matrix
    row 0: sum over the speaker's frames of each feature dim, then the frame count;
    row 1: sum of squares of each dim, then 0,
written as <feat-dir>/cmvn_<name>.{ark,scp} (binary Kaldi double matrices) and copied to <data-dir>/cmvn.scp.
<name> is the data dir's base name; the log also goes to <log-dir>/cmvn_<name>.log.

Utterances of spk2utt without features are logged and counted; a speaker left with no frame at all is an error.
Idempotent: nothing is done if cmvn.scp is newer than feats.scp and covers every speaker (--overwrite forces it).

The statistics and their use are steps_py.feats.cmvn's (cmvn_stats, apply_cmvn).
"""
import argparse
import logging
import os

from steps_py.common import LOG_FORMAT, InputError, get_logger, run_main
from steps_py.data.datadir import read_map, write_map
from steps_py.feats.cmvn import speaker_stats
from steps_py.kaldi.io import ark_scp_writer

log = get_logger("feats.compute_cmvn_stats")


def cmvn_up_to_date(data_dir):
    """True if cmvn.scp is newer than feats.scp, covers every speaker of spk2utt and its arks exist."""
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
                             f"(first: {empty_spks[0]}); run steps_py.data.fix_data_dir {data_dir}")
        base = os.path.join(os.path.abspath(feat_dir), f"cmvn_{name}")
        with ark_scp_writer(base + ".ark", base + ".scp") as writer:
            for spk, mat in stats.items():
                writer(spk, mat)
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
