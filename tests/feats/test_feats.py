"""Feature extraction: config parsing, frame counts, ark/scp output, parallel jobs, CMVN, bad input, split_data."""
import logging
import os
import shutil
import subprocess
import sys

import kaldiio
import numpy as np
import pytest

from steps_py.common import InputError
from steps_py.feats.cmvn import apply_cmvn, cmvn_stats
from steps_py.feats.compute_cmvn_stats import compute_cmvn_stats
from steps_py.feats.features import compute_features, load_feature_config, num_frames
from steps_py.data.copy_data_dir import copy_data_dir
from steps_py.data.datadir import read_map, validate_data_dir, write_data_dir
from steps_py.feats.make_feats import make_feats
from steps_py.data.datadir import split_data
from steps_py.data.audio import read_wav_scp_value

from conftest import ROOT

MFCC_CONF = os.path.join(ROOT, "conf", "mfcc.conf")
FBANK_CONF = os.path.join(ROOT, "conf", "fbank.conf")
SPEAKERS = {"f1": "en-us+f3", "m1": "en-us+m3", "m2": "en-gb+m1"}
SENTENCES = ["one two three", "the cat sat on the mat", "four five"]


@pytest.fixture(scope="session")
def corpus(tmp_path_factory):
    """A data dir of 3 speakers x 3 espeak-ng utterances at 16 kHz (one of them read through a sox pipe)."""
    d = tmp_path_factory.mktemp("feats_corpus")
    wav_scp, text, utt2spk = {}, {}, {}
    for spk, voice in SPEAKERS.items():
        for i, sentence in enumerate(SENTENCES):
            utt = f"{spk}-u{i}"
            raw, wav = d / f"{utt}.raw.wav", d / f"{utt}.wav"
            subprocess.run(["espeak-ng", "-v", voice, "-w", str(raw), sentence], check=True)
            subprocess.run(["sox", str(raw), "-r", "16000", "-b", "16", str(wav)], check=True)
            wav_scp[utt] = f"sox {wav} -t wav - |" if utt == "m1-u2" else str(wav)
            text[utt], utt2spk[utt] = sentence.upper(), spk
    write_data_dir(str(d / "data"), wav_scp, text, utt2spk, spk2gender={"f1": "f", "m1": "m", "m2": "m"})
    return d


def fresh_copy(corpus, tmp_path, name="train"):
    dst = tmp_path / name
    shutil.copytree(corpus / "data", dst)
    return str(dst)


def load_scp(path):
    return {k: v for k, v in kaldiio.load_scp(str(path)).items()}


@pytest.fixture(scope="session")
def mfcc_nj1_nj2(corpus, tmp_path_factory):
    """MFCC of the corpus with --nj 1 and with --nj 2: (data dir nj1, data dir nj2, work dir)."""
    w = tmp_path_factory.mktemp("mfcc")
    dirs = []
    for nj in (1, 2):
        d = str(w / f"train_nj{nj}")
        shutil.copytree(corpus / "data", d)
        make_feats(d, str(w / f"log{nj}"), str(w / "mfcc"), "mfcc", MFCC_CONF, nj=nj, cmd="run.py")
        dirs.append(d)
    return dirs[0], dirs[1], w


def test_conf_files_parse_to_the_intended_options():
    mfcc = load_feature_config("mfcc", MFCC_CONF)
    assert mfcc.values["use-energy"] is False and mfcc.values["dither"] == 0.0 and mfcc.dim() == 13
    assert mfcc.values["sample-frequency"] == 16000 and mfcc.values["num-mel-bins"] == 23   # Kaldi default kept
    fbank = load_feature_config("fbank", FBANK_CONF)
    assert fbank.dim() == 40 and fbank.values["dither"] == 0.0
    opts = fbank.knf_options()
    assert opts.mel_opts.num_bins == 40 and opts.frame_opts.dither == 0.0 and opts.frame_opts.snip_edges
    # unset options take Kaldi's defaults, not knf's (knf's dither default is 0.00003)
    assert load_feature_config("fbank").knf_options().frame_opts.dither == 1.0


def test_conf_errors_name_file_and_line(tmp_path):
    conf = tmp_path / "bad.conf"
    conf.write_text("# comment\n--num-mel-bins=40  # ok\n--num-ceps=13\n")
    with pytest.raises(InputError) as e:
        load_feature_config("fbank", str(conf))
    assert f"{conf}:3" in str(e.value) and "--num-ceps" in str(e.value) and "mfcc" in str(e.value)
    conf.write_text("--use-energy=maybe\n")
    with pytest.raises(InputError) as e:
        load_feature_config("mfcc", str(conf))
    assert f"{conf}:1" in str(e.value) and "true or false" in str(e.value)
    conf.write_text("--frame-length 25\n")
    with pytest.raises(InputError) as e:
        load_feature_config("mfcc", str(conf))
    assert f"{conf}:1" in str(e.value)
    conf.write_text("\n--num-mel-bins=10\n--num-ceps=20\n")
    with pytest.raises(InputError) as e:
        load_feature_config("mfcc", str(conf))
    assert f"{conf}:3" in str(e.value) and "num-ceps" in str(e.value)
    conf.write_text("--vtln-warp=0.9\n")
    with pytest.raises(InputError) as e:
        load_feature_config("fbank", str(conf))
    assert "not supported" in str(e.value)
    conf.write_text("--use_energy\n--snip-edges=F\n")   # bare boolean = true; underscores; Kaldi's t/f forms
    c = load_feature_config("fbank", str(conf))
    assert c.values["use-energy"] is True and c.values["snip-edges"] is False and c.dim() == 24


@pytest.mark.parametrize("feature_type,conf,dim", [("mfcc", MFCC_CONF, 13), ("fbank", FBANK_CONF, 40)])
def test_frame_counts_follow_kaldi_formula(corpus, feature_type, conf, dim):
    config = load_feature_config(feature_type, conf)
    samples = read_wav_scp_value(str(corpus / "f1-u0.wav")).samples[0]
    for n in (len(samples), 400, 399, 559, 560, 16000):
        feats = compute_features(samples[:n], config)
        expect = 0 if n < 400 else 1 + (n - 400) // 160       # 25 ms window, 10 ms shift at 16 kHz
        assert feats.shape == (expect, dim) and num_frames(n, config) == expect
        assert feats.dtype == np.float32
    no_snip = load_feature_config(feature_type, conf, overrides={"snip-edges": "false"})
    assert compute_features(samples[:16000], no_snip).shape[0] == (16000 + 80) // 160 == num_frames(16000, no_snip)


def test_ark_reads_back_bit_exact_and_nj_does_not_matter(corpus, mfcc_nj1_nj2):
    d1, d2, _ = mfcc_nj1_nj2
    feats1, feats2 = load_scp(os.path.join(d1, "feats.scp")), load_scp(os.path.join(d2, "feats.scp"))
    assert sorted(feats1) == sorted(feats2) and len(feats1) == 9
    config = load_feature_config("mfcc", MFCC_CONF)
    wav_scp = read_map(os.path.join(d1, "wav.scp"))
    frames = read_map(os.path.join(d2, "utt2num_frames"))
    for utt in feats1:
        expect = compute_features(read_wav_scp_value(wav_scp[utt]).samples[0], config)
        np.testing.assert_array_equal(feats1[utt], expect)
        np.testing.assert_array_equal(feats2[utt], expect)
        assert int(frames[utt]) == expect.shape[0]
    # two jobs wrote two arks, named as Kaldi's make_mfcc.sh names them, with absolute paths in the scp
    arks = {v.rsplit(":", 1)[0] for v in read_map(os.path.join(d2, "feats.scp")).values()}
    assert {os.path.basename(a) for a in arks} == {"raw_mfcc_train_nj2.1.ark", "raw_mfcc_train_nj2.2.ark"}
    assert all(os.path.isabs(a) for a in arks)
    validate_data_dir(d2)


def test_rerun_is_skipped_and_changed_conf_recomputes(mfcc_nj1_nj2, tmp_path, caplog):
    d1, _, w = mfcc_nj1_nj2
    ark = os.path.join(w, "mfcc", "raw_mfcc_train_nj1.1.ark")
    mtime = os.stat(ark).st_mtime_ns
    with caplog.at_level(logging.INFO):
        make_feats(d1, str(w / "log1"), str(w / "mfcc"), "mfcc", MFCC_CONF, nj=1, cmd="run.py")
    assert "nothing to do" in caplog.text and os.stat(ark).st_mtime_ns == mtime
    d = str(tmp_path / "copy")
    shutil.copytree(d1, d)
    conf = tmp_path / "mfcc20.conf"
    conf.write_text(open(MFCC_CONF).read() + "--num-ceps=20\n")
    make_feats(d, str(tmp_path / "log"), str(tmp_path / "mfcc"), "mfcc", str(conf), nj=1, cmd="run.py")
    assert next(iter(load_scp(os.path.join(d, "feats.scp")).values())).shape[1] == 20


def test_cmvn_stats_and_apply(mfcc_nj1_nj2):
    d1, _, w = mfcc_nj1_nj2
    compute_cmvn_stats(d1, str(w / "log1"), str(w / "mfcc"))
    validate_data_dir(d1)
    cmvn = load_scp(os.path.join(d1, "cmvn.scp"))
    feats = load_scp(os.path.join(d1, "feats.scp"))
    spk2utt = {s: v.split() for s, v in read_map(os.path.join(d1, "spk2utt")).items()}
    assert sorted(cmvn) == sorted(SPEAKERS)
    for spk, utts in spk2utt.items():
        x = np.concatenate([feats[u] for u in utts]).astype(np.float64)
        stats = cmvn[spk]
        assert stats.dtype == np.float64 and stats.shape == (2, 14)
        np.testing.assert_allclose(stats[0, :13], x.sum(0), rtol=1e-9)
        np.testing.assert_allclose(stats[1, :13], (x ** 2).sum(0), rtol=1e-9)
        assert stats[0, 13] == len(x) and stats[1, 13] == 0
        normed = np.concatenate([apply_cmvn(feats[u], stats) for u in utts])
        assert normed.dtype == np.float32
        np.testing.assert_allclose(normed.mean(0), 0, atol=1e-3)
        scaled = np.concatenate([apply_cmvn(feats[u], stats, norm_vars=True) for u in utts])
        np.testing.assert_allclose(scaled.std(0), 1, atol=1e-3)
    assert os.path.isfile(w / "log1" / "cmvn_train_nj1.log")


def test_cmvn_pure_functions():
    x = np.arange(12, dtype=np.float32).reshape(4, 3)
    s = cmvn_stats(x)
    np.testing.assert_array_equal(s, [[18, 22, 26, 4], [126, 166, 214, 0]])
    np.testing.assert_allclose(apply_cmvn(x, s), x - x.mean(0))
    with pytest.raises(ValueError):
        apply_cmvn(x, np.zeros((2, 4)))
    with pytest.raises(ValueError):
        apply_cmvn(x, s[:, 1:])


def test_fbank_copy_of_the_data_dir(mfcc_nj1_nj2, tmp_path):
    d1, _, _ = mfcc_nj1_nj2
    dst = str(tmp_path / "train_fbank")
    assert "wav.scp" in copy_data_dir(d1, dst)
    assert not os.path.exists(os.path.join(dst, "feats.scp")) and not os.path.exists(os.path.join(dst, "cmvn.scp"))
    assert copy_data_dir(d1, dst) == []
    make_feats(dst, str(tmp_path / "log"), str(tmp_path / "fbank"), "fbank", FBANK_CONF, nj=2, cmd="run.py",
               write_utt2dur=True)
    feats = load_scp(os.path.join(dst, "feats.scp"))
    assert {f.shape[1] for f in feats.values()} == {40} and len(feats) == 9
    dur = read_map(os.path.join(dst, "utt2dur"))
    wav_scp = read_map(os.path.join(dst, "wav.scp"))
    assert sorted(dur) == sorted(feats)
    for utt in ("f1-u0", "m1-u2"):
        assert abs(float(dur[utt]) - read_wav_scp_value(wav_scp[utt]).duration) < 0.001


def test_bad_utterances_are_counted_and_removed(corpus, tmp_path, caplog):
    d = fresh_copy(corpus, tmp_path)
    wav_scp = read_map(os.path.join(d, "wav.scp"))
    import soundfile
    soundfile.write(tmp_path / "zero.wav", np.zeros(0, dtype=np.int16), 16000, subtype="PCM_16")
    soundfile.write(tmp_path / "short.wav", np.ones(300, dtype=np.int16), 16000, subtype="PCM_16")
    wav_scp["f1-u1"] = str(tmp_path / "missing.wav")
    wav_scp["m1-u1"] = str(tmp_path / "zero.wav")
    wav_scp["m2-u1"] = str(tmp_path / "short.wav")
    wav_scp["m2-u2"] = f"sox {tmp_path}/gone.wav -t wav - |"
    with open(os.path.join(d, "wav.scp"), "w") as f:
        f.writelines(f"{u} {v}\n" for u, v in sorted(wav_scp.items()))
    with pytest.raises(InputError) as e:   # 4 of 9 lost: below Kaldi's 95% the step fails
        make_feats(d, str(tmp_path / "log"), str(tmp_path / "mfcc"), "mfcc", MFCC_CONF, nj=2, cmd="run.py")
    assert "only 5 of 9 utterances" in str(e.value)
    with caplog.at_level(logging.INFO):
        make_feats(d, str(tmp_path / "log"), str(tmp_path / "mfcc"), "mfcc", MFCC_CONF, nj=2, cmd="run.py",
                   min_success=0.5)
    logs = "".join(open(tmp_path / "log" / f"make_mfcc_train.{j}.log").read() for j in (1, 2))
    assert "utterance f1-u1: skipped (missing): no such file" in logs
    assert "utterance m1-u1: skipped (zero-length)" in logs
    assert "utterance m2-u1: skipped (too short): too short for one frame (300 samples < 400)" in logs
    assert "utterance m2-u2: skipped (pipe failed)" in logs and "can't open input file" in logs
    assert "Done 4 out of 6 utterances; skipped 2 (missing: 1, zero-length: 1)" in logs   # job 1: f1, m1
    assert "Done 1 out of 3 utterances; skipped 2 (pipe failed: 1, too short: 1)" in logs  # job 2: m2
    assert "4 of 9 utterances of" in caplog.text and "5 utterances kept, 4 removed" in caplog.text
    assert len(read_map(os.path.join(d, "utt2spk"))) == 5 == len(read_map(os.path.join(d, "feats.scp")))
    assert validate_data_dir(d) == 5


def test_truncated_wav_is_a_counted_skip(corpus, tmp_path):
    """A WAV whose header promises 7.2 s over 1.5 s of data is skipped by name and counted, as unreadable audio is,
    and the driver removes it (with its transcript) from the data dir."""
    import struct
    import soundfile
    d = fresh_copy(corpus, tmp_path)
    cut = tmp_path / "cut.wav"
    soundfile.write(cut, np.resize(read_wav_scp_value(read_map(os.path.join(d, "wav.scp"))["f1-u1"]).samples[0],
                                   24000).astype(np.int16), 16000, subtype="PCM_16")
    data = bytearray(cut.read_bytes())
    pos = data.index(b"data")
    data[pos + 4:pos + 8] = struct.pack("<I", int(7.2 * 16000) * 2)
    cut.write_bytes(bytes(data))
    wav_scp = read_map(os.path.join(d, "wav.scp"))
    wav_scp["f1-u1"] = str(cut)
    with open(os.path.join(d, "wav.scp"), "w") as f:
        f.writelines(f"{u} {v}\n" for u, v in sorted(wav_scp.items()))
    env = dict(os.environ, PYTHONPATH=ROOT, PATH=os.path.join(ROOT, "utils") + os.pathsep + os.environ["PATH"])
    r = subprocess.run([sys.executable, "-m", "steps_py.feats.make_feats", "--type", "mfcc", "--nj", "1",
                        "--config", MFCC_CONF, "--min-success", "0.8", d, str(tmp_path / "log"),
                        str(tmp_path / "mfcc")], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    job_log = open(tmp_path / "log" / "make_mfcc_train.1.log").read()
    assert (f"utterance f1-u1: skipped (truncated): {cut}: truncated WAV (the header promises 115200 samples, "
            f"7.200 s; the file holds 24000, 1.500 s)") in job_log
    assert "Done 8 out of 9 utterances; skipped 1 (truncated: 1)" in job_log
    assert "1 of 9 utterances of" in r.stderr and "8 utterances kept, 1 removed" in r.stderr
    assert "Traceback" not in r.stderr + job_log
    assert "f1-u1" not in read_map(os.path.join(d, "text")) and validate_data_dir(d) == 8


def test_zero_jobs_is_an_error(corpus, tmp_path):
    """--nj 0 used to run one job without a word."""
    d = fresh_copy(corpus, tmp_path)
    env = dict(os.environ, PYTHONPATH=ROOT, PATH=os.path.join(ROOT, "utils") + os.pathsep + os.environ["PATH"])
    r = subprocess.run([sys.executable, "-m", "steps_py.feats.make_feats", "--type", "mfcc", "--nj", "0",
                        "--config", MFCC_CONF, d, str(tmp_path / "log"), str(tmp_path / "mfcc")],
                       capture_output=True, text=True, env=env)
    assert (r.returncode, r.stderr) == (1, "ERROR (make_feats.py): --nj 0: the number of parallel jobs must be at "
                                           "least 1\n")
    assert not os.path.exists(os.path.join(d, "feats.scp")) and not (tmp_path / "log").exists()


def test_wrong_sample_rate(corpus, tmp_path):
    d = fresh_copy(corpus, tmp_path)
    wav_scp = read_map(os.path.join(d, "wav.scp"))
    subprocess.run(["sox", wav_scp["f1-u0"], "-r", "22050", str(tmp_path / "hi.wav")], check=True)
    wav_scp["f1-u0"] = str(tmp_path / "hi.wav")
    with open(os.path.join(d, "wav.scp"), "w") as f:
        f.writelines(f"{u} {v}\n" for u, v in sorted(wav_scp.items()))
    with pytest.raises(InputError) as e:
        make_feats(d, str(tmp_path / "log"), str(tmp_path / "mfcc"), "mfcc", MFCC_CONF, nj=1, cmd="run.py")
    msg = str(e.value)
    assert "failed" in msg and "make_mfcc_train.1.log" in msg
    assert "utterance f1-u0: sample rate is 22050 Hz but the features are configured for 16000 Hz" in msg
    conf = tmp_path / "resample.conf"
    conf.write_text(open(MFCC_CONF).read() + "--allow-downsample=true\n")
    make_feats(d, str(tmp_path / "log"), str(tmp_path / "mfcc"), "mfcc", str(conf), nj=1, cmd="run.py")
    feats = load_scp(os.path.join(d, "feats.scp"))
    assert len(feats) == 9 and abs(feats["f1-u0"].shape[0] - len(read_wav_scp_value(str(tmp_path / "hi.wav"))
                                                                   .samples[0]) / 22050 * 100) < 3


def test_more_jobs_than_speakers(corpus, tmp_path):
    """As make_mfcc.sh (which splits wav.scp by utterance), --nj above the number of speakers works: 3 speakers,
    4 jobs, 4 arks; the features are the same as with one job."""
    d = fresh_copy(corpus, tmp_path)
    make_feats(d, str(tmp_path / "log"), str(tmp_path / "mfcc"), "mfcc", MFCC_CONF, nj=4, cmd="run.py")
    feats = load_scp(os.path.join(d, "feats.scp"))
    arks = {v.rsplit(":", 1)[0] for v in read_map(os.path.join(d, "feats.scp")).values()}
    assert len(feats) == 9 and len(arks) == 4 and validate_data_dir(d) == 9
    config = load_feature_config("mfcc", MFCC_CONF)
    wav_scp = read_map(os.path.join(d, "wav.scp"))
    np.testing.assert_array_equal(feats["m2-u1"], compute_features(read_wav_scp_value(wav_scp["m2-u1"]).samples[0],
                                                                   config))


def test_split_data_keeps_speakers_together(corpus, tmp_path, caplog):
    d = fresh_copy(corpus, tmp_path)
    split = split_data(d, 2)
    assert split == os.path.join(d, "split2")
    seen = {}
    for j in (1, 2):
        part = os.path.join(split, str(j))
        utt2spk = read_map(os.path.join(part, "utt2spk"))
        for utt, spk in utt2spk.items():
            assert seen.setdefault(spk, j) == j, f"speaker {spk} in two parts"
        assert set(read_map(os.path.join(part, "wav.scp"))) == set(utt2spk) == set(read_map(os.path.join(part, "text")))
        assert set(read_map(os.path.join(part, "spk2gender"))) == set(utt2spk.values())
        validate_data_dir(part, no_feats=True)
    assert sorted(seen) == sorted(SPEAKERS)
    with caplog.at_level(logging.INFO):
        split_data(d, 2)
    assert "reusing" in caplog.text
    with open(os.path.join(d, "text"), "a") as f:   # a changed data dir is split again
        f.write("")
    os.utime(os.path.join(d, "text"), ns=(1, 1))
    caplog.clear()
    with caplog.at_level(logging.INFO):
        split_data(d, 2)
    assert "reusing" not in caplog.text
    per_utt = split_data(d, 4, per_utt=True)
    assert per_utt.endswith("split4utt")
    counts = [len(read_map(os.path.join(per_utt, str(j), "utt2spk"))) for j in range(1, 5)]
    assert sum(counts) == 9 and max(counts) - min(counts) <= 1
    assert split_data(d, 4) == per_utt          # fewer speakers than jobs: by utterance, unless asked otherwise
    with pytest.raises(InputError) as e:
        split_data(d, 4, per_utt=False)
    assert "3 speaker(s) into 4 parts" in str(e.value)


def test_command_lines(corpus, tmp_path):
    d = fresh_copy(corpus, tmp_path)
    env = dict(os.environ, PYTHONPATH=ROOT, PATH=os.path.join(ROOT, "utils") + os.pathsep + os.environ["PATH"])
    r = subprocess.run([sys.executable, "-m", "steps_py.data.split_data", d, "3"], capture_output=True, text=True,
                       env=env)
    assert r.returncode == 0 and r.stdout.strip() == os.path.join(d, "split3")
    r = subprocess.run([sys.executable, "-m", "steps_py.feats.make_feats", "--type", "fbank", "--nj", "2", "--cmd",
                        "run.py --max-jobs-run 2", "--config", FBANK_CONF, d, str(tmp_path / "log"),
                        str(tmp_path / "fbank")], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    assert "2/2 feature jobs finished" in r.stderr and "fbank for 9 of 9 utterances" in r.stderr
    r = subprocess.run([sys.executable, "-m", "steps_py.feats.compute_cmvn_stats", d, str(tmp_path / "log"),
                        str(tmp_path / "fbank")], capture_output=True, text=True, env=env)
    assert r.returncode == 0 and len(read_map(os.path.join(d, "cmvn.scp"))) == 3
    r = subprocess.run([sys.executable, "-m", "steps_py.feats.compute_feats", "--type", "mfcc", "--config",
                        str(tmp_path / "nope.conf"), d, str(tmp_path / "x")], capture_output=True, text=True, env=env)
    assert r.returncode == 1 and "nope.conf" in r.stderr and "Traceback" not in r.stderr
