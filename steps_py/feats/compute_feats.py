"""Usage: python -m steps_py.feats.compute_feats --type {mfcc,fbank} --config <conf> [--write-utt2dur <file>] [--utt2num-frames <file>] <data-dir> <ark-path-without-ext>

One feature-extraction job, the equivalent of Kaldi's compute-mfcc-feats / compute-fbank-feats on a (split) data
dir: reads each utterance's audio (wav.scp, segments), computes features with kaldi-native-fbank and writes
<ark-path>.ark and <ark-path>.scp (binary Kaldi matrices, float32, scp with the absolute ark path) plus
utt2num_frames (default <ark-path>.utt2num_frames). All outputs are written under temporary names and renamed when
the job finishes.

The config file has Kaldi's syntax and options (steps_py.feats.features): unset options take Kaldi's defaults,
unknown ones and those this code cannot honour are refused with the file and line.

Utterances whose audio is missing, unreadable, truncated (a WAV whose header promises more samples than the file
holds: its transcript covers audio that is not there), a failed pipe, empty, too short for one frame (or for
--min-duration), or that give non-finite features are skipped: each is logged by name, and a summary line counts
them by reason. A sample rate that differs from --sample-frequency is resampled if --allow-downsample /
--allow-upsample allow it; otherwise the job stops with an error naming the utterance and both rates. The job fails
if no utterance succeeds (as in Kaldi).
"""
import argparse
import collections
import os
import time

import numpy as np

from steps_py.common import InputError, atomic_path, get_logger, run_main
from steps_py.data.audio import AudioError, UtteranceAudio, conform_rate, select_channel
from steps_py.data.datadir import read_map
from steps_py.feats.features import FEATURE_TYPES, compute_features, load_feature_config
from steps_py.kaldi.io import ark_scp_writer

log = get_logger("feats.compute_feats")


def utterance_samples(audio_source, utt, config):
    """Samples [num_samples] of ``utt`` at the configured rate (channel chosen, resampled if allowed).

    Raises AudioError for a per-utterance problem and InputError for a rate mismatch the config does not allow.
    """
    job = config.job
    audio = audio_source.get(utt)
    samples = select_channel(audio, job["channel"], f"utterance {utt}")
    if audio.samples.shape[0] > 1 and job["channel"] < 0:
        log.warning(f"utterance {utt}: {audio.samples.shape[0]} channels and no --channel; using channel 0")
    samples = conform_rate(samples, audio.rate, config.sample_rate, f"utterance {utt}",
                           job["allow_downsample"], job["allow_upsample"])
    return samples, audio.rate


def compute_job(data_dir, ark_base, config, utt2num_frames_path=None, utt2dur_path=None):
    """Runs one job (see module doc). Returns (number written, Counter of skips by reason)."""
    if not os.path.isfile(os.path.join(data_dir, "wav.scp")):
        raise InputError(f"{data_dir}: no such file wav.scp")
    source = UtteranceAudio.from_data_dir(data_dir)
    utts = source.utterances()
    utt2spk_path = os.path.join(data_dir, "utt2spk")
    if os.path.isfile(utt2spk_path):
        wanted = list(read_map(utt2spk_path))
        ignored = sorted(set(utts) - set(wanted))
        if ignored:
            log.warning(f"{len(ignored)} utterance(s) of {'segments' if source.segments is not None else 'wav.scp'}"
                        f" are not in utt2spk and are ignored (first: {ignored[0]})")
        utts = wanted
    utt2num_frames_path = utt2num_frames_path or ark_base + ".utt2num_frames"
    knf_opts = config.knf_options()
    min_duration = config.job["min_duration"]
    skips = collections.Counter()
    frames_of, dur_of = {}, {}
    done_frames, t0 = 0, time.time()
    report_every = max(10, len(utts) // 10)
    log.info(f"{config.feature_type} of {len(utts)} utterances in {data_dir} -> {ark_base}.ark; options: "
             f"{config.command_line()}")
    # Side tables are written inside the block, so before the ark and its scp: an scp means a complete job.
    with ark_scp_writer(ark_base + ".ark", ark_base + ".scp") as writer:
        for i, utt in enumerate(utts, 1):
            try:
                if utt not in (source.segments if source.segments is not None else source.wav_scp):
                    raise AudioError("not in wav.scp/segments", kind="missing")
                samples, orig_rate = utterance_samples(source, utt, config)
                duration = len(samples) / config.sample_rate
                if len(samples) == 0:
                    raise AudioError("zero-length audio", kind="zero-length")
                if duration < min_duration:
                    raise AudioError(f"too short ({duration:.3f} s < --min-duration={min_duration:g})",
                                     kind="too short")
                feats = compute_features(samples, config, knf_opts)
                if feats.shape[0] == 0:
                    raise AudioError(f"too short for one frame ({len(samples)} samples < "
                                     f"{config.window_size()})", kind="too short")
                if not np.isfinite(feats).all():
                    raise AudioError("features contain NaN or infinity", kind="non-finite")
            except AudioError as e:
                skips[e.kind] += 1
                log.warning(f"utterance {utt}: skipped ({e.kind}): {e}")
                continue
            writer(utt, feats)
            frames_of[utt] = feats.shape[0]
            dur_of[utt] = duration
            done_frames += feats.shape[0]
            if i % report_every == 0:
                log.info(f"processed {i}/{len(utts)} utterances ({done_frames} frames, {time.time() - t0:.1f} s)")
        if not frames_of:
            raise InputError(f"no features computed for any of the {len(utts)} utterances of {data_dir} "
                             f"(see the warnings above)")
        with atomic_path(utt2num_frames_path) as tmp, open(tmp, "w") as f:
            for utt, n in frames_of.items():
                f.write(f"{utt} {n}\n")
        if utt2dur_path:
            with atomic_path(utt2dur_path) as tmp, open(tmp, "w") as f:
                for utt, d in dur_of.items():
                    f.write(f"{utt} {d:.3f}\n")
    summary = ", ".join(f"{kind}: {n}" for kind, n in sorted(skips.items())) or "none"
    log.info(f"Done {len(frames_of)} out of {len(utts)} utterances; skipped {sum(skips.values())} ({summary}); "
             f"{done_frames} frames of dim {config.dim()} in {time.time() - t0:.1f} s")
    return len(frames_of), skips


def main():
    parser = argparse.ArgumentParser(usage=__doc__.split("\n")[0][len("Usage: "):], description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--type", required=True, choices=FEATURE_TYPES, help="feature type")
    parser.add_argument("--config", help="Kaldi-style option file (e.g. conf/mfcc.conf)")
    parser.add_argument("--write-utt2dur", metavar="FILE", help="also write utterance durations (seconds) here")
    parser.add_argument("--utt2num-frames", metavar="FILE",
                        help="where to write frame counts (default <ark-path>.utt2num_frames)")
    parser.add_argument("data_dir")
    parser.add_argument("ark_base", metavar="ark_path_without_ext")
    args = parser.parse_args()
    config = load_feature_config(args.type, args.config)
    compute_job(args.data_dir, args.ark_base, config, args.utt2num_frames, args.write_utt2dur)
    return 0


if __name__ == "__main__":
    run_main(main)
