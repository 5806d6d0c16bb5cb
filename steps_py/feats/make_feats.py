"""Usage: python -m steps_py.feats.make_feats --type {mfcc,fbank} [--nj 4] [--cmd run.py] [--config conf/<type>.conf] [--write-utt2dur] [--overwrite] [--min-success 0.95] <data-dir> <log-dir> <feat-dir>

Feature extraction for a data dir, like Kaldi's steps/make_mfcc.sh and make_fbank.sh: splits the data dir by
speaker (steps_py.data.split_data; by utterance when it has fewer speakers than jobs), runs
    $cmd JOB=1:nj <log-dir>/make_<type>_<name>.JOB.log python -m steps_py.feats.compute_feats ...
(one job per part; $cmd is a Kaldi-style runner command such as "run.py" or "slurm.py --mem 2G", found on PATH),
which write <feat-dir>/raw_<type>_<name>.JOB.{ark,scp}, then merges them into <data-dir>/feats.scp and
<data-dir>/utt2num_frames (and utt2dur with --write-utt2dur). <name> is the data dir's base name. The config used is
copied to <data-dir>/conf/<type>.conf.

Utterances without features (skipped by a job: missing, unreadable or truncated audio, too short...) are logged per utterance
in the job logs; the driver counts them and removes them from the data dir with fix_data_dir semantics (each drop
counted in the log, originals in <data-dir>/.backup); if fewer than --min-success (0.95) of them got features,
the step fails instead, as make_mfcc.sh does. Old feats.scp/cmvn.scp/utt2num_frames are moved there too
before features are recomputed.

Idempotent: if feats.scp already covers every utterance and was made with the same config, nothing is done
(--overwrite forces a new run); extra entries of feats.scp for utterances no longer in the data dir are dropped.
"""
import argparse
import glob
import os
import shutil

from steps_py.common import InputError, get_logger, run_main
from steps_py.data.datadir import fix_data_dir, read_map, split_data, validate_data_dir, write_map
from steps_py.feats.features import load_feature_config
from steps_py.jobs import module_argv, run_jobs

log = get_logger("feats.make_feats")


def _conf_copy_path(data_dir, feature_type):
    return os.path.join(data_dir, "conf", f"{feature_type}.conf")


def features_up_to_date(data_dir, feature_type, config_text):
    """True if feats.scp covers every utterance of utt2spk and was made with ``config_text``.

    Entries of feats.scp (and utt2num_frames) for utterances no longer in utt2spk are dropped, with a log line.
    """
    feats_scp = os.path.join(data_dir, "feats.scp")
    if not os.path.isfile(feats_scp):
        return False
    copy = _conf_copy_path(data_dir, feature_type)
    if not os.path.isfile(copy) or open(copy).read() != config_text:
        log.info(f"{feats_scp} exists but was made with another config (or no record of it in {copy}); recomputing")
        return False
    utts = read_map(os.path.join(data_dir, "utt2spk"))
    feats = read_map(feats_scp)
    missing = [u for u in utts if u not in feats]
    if missing:
        log.info(f"{feats_scp} lacks {len(missing)} of {len(utts)} utterances (first: {missing[0]}); recomputing")
        return False
    arks = {v.rsplit(":", 1)[0] for v in feats.values()}
    absent = [a for a in arks if not os.path.isfile(a)]
    if absent:
        log.info(f"{feats_scp} points to missing file {absent[0]}; recomputing")
        return False
    extra = [u for u in feats if u not in utts]
    if extra:
        log.info(f"{feats_scp}: dropping {len(extra)} entries for utterances no longer in utt2spk "
                 f"(first: {extra[0]})")
        write_map(feats_scp, {u: v for u, v in feats.items() if u in utts})
        u2nf = os.path.join(data_dir, "utt2num_frames")
        if os.path.isfile(u2nf):
            write_map(u2nf, {u: v for u, v in read_map(u2nf).items() if u in utts})
    return True


def make_feats(data_dir, log_dir, feat_dir, feature_type, config_path=None, nj=4, cmd="run.py",
               write_utt2dur=False, overwrite=False, min_success=0.95):
    """Computes features of ``data_dir`` (see module doc). Returns the number of utterances with features."""
    if nj < 1:
        raise InputError(f"--nj {nj}: the number of parallel jobs must be at least 1")
    data_dir = data_dir.rstrip("/")
    name = os.path.basename(os.path.abspath(data_dir))
    for f in ("wav.scp", "utt2spk"):
        if not os.path.isfile(os.path.join(data_dir, f)):
            raise InputError(f"{data_dir}: no such file {f}")
    if config_path and not os.path.isfile(config_path):
        raise InputError(f"no such config file {config_path}")
    load_feature_config(feature_type, config_path)   # fails early, before any job starts
    config_text = open(config_path).read() if config_path else ""
    if not overwrite and features_up_to_date(data_dir, feature_type, config_text):
        log.info(f"{data_dir}/feats.scp is complete ({feature_type}, same config); nothing to do "
                 f"(--overwrite to recompute)")
        return len(read_map(os.path.join(data_dir, "feats.scp")))

    conf_copy = _conf_copy_path(data_dir, feature_type)
    if os.path.exists(conf_copy):
        os.unlink(conf_copy)
    backup = os.path.join(data_dir, ".backup")
    for old in ("feats.scp", "cmvn.scp", "utt2num_frames"):
        path = os.path.join(data_dir, old)
        if os.path.exists(path):
            os.makedirs(backup, exist_ok=True)
            shutil.move(path, os.path.join(backup, old))
            log.info(f"moved old {path} to {backup}/")
    validate_data_dir(data_dir, no_feats=True, no_text=True)   # as make_mfcc.sh: sorted tables, consistent spk2utt
    num_utts = len(read_map(os.path.join(data_dir, "utt2spk")))
    # make_mfcc.sh splits wav.scp by utterance, so it runs more jobs than a set has speakers (WSJ's test sets have
    # 8-10); features need no speaker grouping, so such a data dir is split by utterance here.
    num_spks = len(set(read_map(os.path.join(data_dir, "utt2spk")).values()))
    split_dir = split_data(data_dir, nj, per_utt=num_spks < nj)
    os.makedirs(log_dir, exist_ok=True)
    os.makedirs(feat_dir, exist_ok=True)
    feat_dir_abs = os.path.abspath(feat_dir)
    ark_base = os.path.join(feat_dir_abs, f"raw_{feature_type}_{name}.JOB")
    stale = glob.glob(os.path.join(feat_dir_abs, f"raw_{feature_type}_{name}.*.ark.tmp*")) + \
        glob.glob(os.path.join(feat_dir_abs, f"raw_{feature_type}_{name}.*.scp.tmp*"))
    for j in range(1, nj + 1):   # outputs of an earlier run would count as finished jobs
        stale += [ark_base.replace("JOB", str(j)) + ext for ext in (".scp", ".ark")]
    for p in stale:   # including temporary files of a killed run
        if os.path.exists(p):
            os.unlink(p)
    side = os.path.join(os.path.abspath(log_dir), f"{{}}.{feature_type}_{name}.JOB")
    argv = module_argv("steps_py.feats.compute_feats", os.path.join(os.path.abspath(split_dir), "JOB"), ark_base,
                       type=feature_type, config=config_path and os.path.abspath(config_path),
                       write_utt2dur=side.format("utt2dur") if write_utt2dur else None,
                       utt2num_frames=side.format("utt2num_frames"))
    log_pattern = os.path.join(log_dir, f"make_{feature_type}_{name}.JOB.log")
    seconds = run_jobs(cmd, nj, log_pattern, argv, what="feature jobs", done_pattern=ark_base + ".scp")

    feats, utt2num_frames, utt2dur = {}, {}, {}
    for j in range(1, nj + 1):
        scp = ark_base.replace("JOB", str(j)) + ".scp"
        if not os.path.isfile(scp):
            raise InputError(f"job {j} finished without writing {scp}; see "
                             f"{log_pattern.replace('JOB', str(j))}")
        feats.update(read_map(scp))
        utt2num_frames.update(read_map(side.format("utt2num_frames").replace("JOB", str(j))))
        if write_utt2dur:
            utt2dur.update(read_map(side.format("utt2dur").replace("JOB", str(j))))
    write_map(os.path.join(data_dir, "utt2num_frames"), utt2num_frames)
    if write_utt2dur:
        write_map(os.path.join(data_dir, "utt2dur"), utt2dur)
    write_map(os.path.join(data_dir, "feats.scp"), feats)
    os.makedirs(os.path.dirname(_conf_copy_path(data_dir, feature_type)), exist_ok=True)
    with open(_conf_copy_path(data_dir, feature_type), "w") as f:
        f.write(config_text)
    frames = sum(int(v) for v in utt2num_frames.values())
    log.info(f"{feature_type} for {len(feats)} of {num_utts} utterances of {data_dir} ({frames} frames, "
             f"{frames / max(seconds, 1e-9):.0f} frames/s over {nj} jobs in {seconds:.1f} s); "
             f"arks in {feat_dir_abs}")
    skipped = num_utts - len(feats)
    if len(feats) < min_success * num_utts:
        raise InputError(f"only {len(feats)} of {num_utts} utterances of {data_dir} got features (less than "
                         f"--min-success={min_success:g}); probably a serious error: see {log_pattern}. "
                         f"feats.scp is written; the data dir is left unrepaired")
    if skipped:
        log.warning(f"{skipped} of {num_utts} utterances of {data_dir} got no features (reasons per utterance in "
                    f"{log_pattern}); removing them from the data dir")
        kept = fix_data_dir(data_dir)
        log.warning(f"{data_dir}: {kept} utterances kept, {num_utts - kept} removed")
    return len(feats)


def main():
    parser = argparse.ArgumentParser(usage=__doc__.split("\n")[0][len("Usage: "):], description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--type", required=True, choices=("mfcc", "fbank"))
    parser.add_argument("--nj", type=int, default=4, help="number of parallel jobs")
    parser.add_argument("--cmd", default="run.py", help="job runner command, e.g. 'run.py' or 'slurm.py --mem 2G'")
    parser.add_argument("--config", help="Kaldi-style option file (default: Kaldi's defaults)")
    parser.add_argument("--write-utt2dur", action="store_true", help="also write <data-dir>/utt2dur")
    parser.add_argument("--overwrite", action="store_true", help="recompute even if feats.scp is complete")
    parser.add_argument("--min-success", type=float, default=0.95,
                        help="fail if a smaller fraction of the utterances gets features (Kaldi: 95%%)")
    parser.add_argument("data_dir")
    parser.add_argument("log_dir")
    parser.add_argument("feat_dir")
    args = parser.parse_args()
    make_feats(args.data_dir, args.log_dir, args.feat_dir, args.type, args.config, args.nj, args.cmd,
               args.write_utt2dur, args.overwrite, args.min_success)
    return 0


if __name__ == "__main__":
    run_main(main)
