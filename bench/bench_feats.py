"""Feature extraction speed: frames per second of MFCC and Fbank (one process), and the wall time of the parallel
driver with --nj 2 against --nj 1, measured in one run.

Usage: python bench/bench_feats.py [--minutes 3] [--speakers 4] [--work-dir DIR] [--data-dir DIR]

Without --data-dir, about --minutes of speech is synthesised with espeak-ng into a temporary data dir (--speakers
voices, utterances of ~20 s, resampled to 16 kHz with sox). With --data-dir, that data dir is used (its wav.scp is
read; nothing in it is changed: the driver runs on a copy).

Reports: audio minutes, utterances; frames/s and real-time factor of reading + MFCC (conf/mfcc.conf) and
Fbank (conf/fbank.conf) in one process; reading-only time; make_feats wall time with nj=1 and nj=2 and their ratio.
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from steps_py.feats.features import compute_features, load_feature_config  # noqa: E402
from steps_py.data.datadir import read_map, write_data_dir  # noqa: E402
from steps_py.feats.make_feats import make_feats  # noqa: E402
from steps_py.data.audio import read_wav_scp_value  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VOICES = ["en-us+m3", "en-us+f3", "en-gb+m1", "en-us+f2", "en-gb-x-rp+m2", "en-us+m7"]
TEXT = ("the quick brown fox jumps over the lazy dog while seven tired engineers measure how fast the features of "
        "a recognizer can be computed on two small cores and a few minutes of synthetic read speech ")


def synth_data_dir(root, minutes, speakers):
    """Writes ~``minutes`` of espeak-ng speech as a data dir under ``root``; returns its path."""
    wav_scp, utt2spk, total, i = {}, {}, 0.0, 0
    os.makedirs(os.path.join(root, "wav"), exist_ok=True)
    while total < minutes * 60:
        spk = f"spk{i % speakers}"
        utt = f"{spk}-{i:04d}"
        raw, wav = os.path.join(root, "wav", utt + ".raw.wav"), os.path.join(root, "wav", utt + ".wav")
        subprocess.run(["espeak-ng", "-v", VOICES[i % len(VOICES)], "-s", str(150 + 7 * (i % 5)), "-w", raw,
                        TEXT * 2], check=True)
        subprocess.run(["sox", raw, "-r", "16000", "-b", "16", wav], check=True)
        os.unlink(raw)
        total += read_wav_scp_value(wav).duration
        wav_scp[utt], utt2spk[utt] = wav, spk
        i += 1
    d = os.path.join(root, "data")
    write_data_dir(d, wav_scp, None, utt2spk)
    return d


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", type=float, default=3.0)
    p.add_argument("--speakers", type=int, default=4)
    p.add_argument("--work-dir")
    p.add_argument("--data-dir")
    args = p.parse_args()
    work = args.work_dir or tempfile.mkdtemp(prefix="bench_feats.")
    os.environ["PATH"] = os.path.join(ROOT, "utils") + os.pathsep + os.environ["PATH"]
    t0 = time.time()
    data = args.data_dir or synth_data_dir(work, args.minutes, args.speakers)
    if not args.data_dir:
        print(f"synthesised {data} in {time.time() - t0:.1f} s")
    wav_scp = read_map(os.path.join(data, "wav.scp"))

    t0 = time.time()
    audio = {u: read_wav_scp_value(v).samples[0] for u, v in wav_scp.items()}
    read_s = time.time() - t0
    seconds = sum(len(x) for x in audio.values()) / 16000
    print(f"audio: {seconds / 60:.2f} min in {len(audio)} utterances; reading: {read_s:.2f} s")
    for feature_type in ("mfcc", "fbank"):
        config = load_feature_config(feature_type, os.path.join(ROOT, "conf", f"{feature_type}.conf"))
        opts = config.knf_options()
        t0 = time.time()
        frames = sum(compute_features(x, config, opts).shape[0] for x in audio.values())
        el = time.time() - t0
        print(f"{feature_type}: {frames} frames in {el:.2f} s = {frames / el:,.0f} frames/s "
              f"(real-time factor {el / seconds:.4f}, without reading the audio)")

    walls = {}
    for nj in (1, 2):
        d = os.path.join(work, f"data_nj{nj}")
        shutil.rmtree(d, ignore_errors=True)
        shutil.copytree(data, d, ignore=shutil.ignore_patterns("split*", "feats.scp", "cmvn.scp", "conf"))
        t0 = time.time()
        make_feats(d, os.path.join(work, f"log{nj}"), os.path.join(work, "mfcc"), "mfcc",
                   os.path.join(ROOT, "conf", "mfcc.conf"), nj=nj, cmd="run.py", overwrite=True)
        walls[nj] = time.time() - t0
        print(f"make_feats --type mfcc --nj {nj}: {walls[nj]:.2f} s wall")
    print(f"nj=2 / nj=1 wall time: {walls[2] / walls[1]:.2f}")
    if not args.work_dir:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
