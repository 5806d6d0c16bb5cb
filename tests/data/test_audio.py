"""Audio reading (steps_py.data.audio): files, pipes, SPHERE, segments, sample rates, and the errors for bad entries."""
import shutil
import struct
import subprocess
import sys

import numpy as np
import pytest
import soundfile

from steps_py.common import InputError
from steps_py.data.audio import (AudioError, UtteranceAudio, conform_rate, read_wav_scp_value,
                          _decode_bytes)

from conftest import ROOT


@pytest.fixture(scope="module")
def speech(tmp_path_factory):
    """A short 16 kHz 16-bit utterance spoken by espeak-ng, and its int16 samples."""
    d = tmp_path_factory.mktemp("wav")
    raw = d / "raw.wav"
    subprocess.run(["espeak-ng", "-w", str(raw), "seven three nine"], check=True)
    path = d / "utt.wav"
    subprocess.run(["sox", str(raw), "-r", "16000", "-b", "16", str(path)], check=True)
    samples, rate = soundfile.read(path, dtype="int16")
    assert rate == 16000 and len(samples) > 8000
    return d, str(path), samples


def test_file_is_read_on_the_int16_scale(speech):
    _, path, int16 = speech
    audio = read_wav_scp_value(path)
    assert audio.rate == 16000 and audio.samples.dtype == np.float32
    assert audio.samples.shape == (1, len(int16))
    np.testing.assert_array_equal(audio.samples[0], int16.astype(np.float32))


def test_pipe_entry_gives_the_same_samples(speech):
    d, path, int16 = speech
    audio = read_wav_scp_value(f"sox {path} -t wav - |")
    np.testing.assert_array_equal(audio.samples[0], int16.astype(np.float32))
    # flac through a pipe, as in many Kaldi recipes
    flac = d / "utt.flac"
    subprocess.run(["sox", path, str(flac)], check=True)
    audio = read_wav_scp_value(f"sox {flac} -t wav - |")
    np.testing.assert_array_equal(audio.samples[0], int16.astype(np.float32))


def test_failed_pipe_reports_the_command_and_its_stderr(speech):
    d, _, _ = speech
    with pytest.raises(AudioError) as e:
        read_wav_scp_value(f"sox {d}/nope.wav -t wav - |")
    assert "sox" in str(e.value) and "nope.wav" in str(e.value) and "can't open input file" in str(e.value)
    with pytest.raises(AudioError) as e:
        read_wav_scp_value(f"cat {d}/utt.wav | false |")   # pipefail: a failure anywhere counts
    assert "exit status 1" in str(e.value)


def test_missing_and_empty_files(speech):
    d, _, _ = speech
    with pytest.raises(AudioError) as e:
        read_wav_scp_value(str(d / "missing.wav"))
    assert e.value.kind == "missing" and "no such file" in str(e.value) and "missing.wav" in str(e.value)
    (d / "empty.wav").write_bytes(b"")
    with pytest.raises(AudioError) as e:
        read_wav_scp_value(str(d / "empty.wav"))
    assert e.value.kind == "empty"
    (d / "junk.wav").write_bytes(b"this is not audio at all" * 10)
    with pytest.raises(AudioError) as e:
        read_wav_scp_value(str(d / "junk.wav"))
    assert e.value.kind == "unreadable" and "junk.wav" in str(e.value)
    soundfile.write(d / "zero.wav", np.zeros(0, dtype=np.int16), 16000, subtype="PCM_16")
    assert read_wav_scp_value(str(d / "zero.wav")).samples.shape == (1, 0)


def test_sphere_file_and_sph2pipe_entry(speech, monkeypatch):
    d, path, int16 = speech
    sph = d / "utt.wv1"
    subprocess.run(["sox", path, "-t", "sph", str(sph)], check=True)
    assert sph.read_bytes()[:7] == b"NIST_1A"
    audio = read_wav_scp_value(str(sph))
    np.testing.assert_array_equal(audio.samples[0], int16.astype(np.float32))
    if shutil.which("sph2pipe") is None:   # WSJ's wav.scp form, decoded in-process when sph2pipe is absent
        audio = read_wav_scp_value(f"sph2pipe -f wav {sph} |")
        np.testing.assert_array_equal(audio.samples[0], int16.astype(np.float32))


def test_wav_stream_with_placeholder_sizes(speech):
    _, path, int16 = speech
    data = bytearray(open(path, "rb").read())
    pos = data.index(b"data")
    data[4:8] = struct.pack("<I", 0xFFFFFFFF)
    data[pos + 4:pos + 8] = struct.pack("<I", 0xFFFFFFFF)
    audio = _decode_bytes(bytes(data), "stream")
    np.testing.assert_array_equal(audio.samples[0], int16.astype(np.float32))


def test_segments(speech, tmp_path):
    _, path, int16 = speech
    dur = len(int16) / 16000
    (tmp_path / "wav.scp").write_text(f"rec1 {path}\n")
    (tmp_path / "segments").write_text(f"rec1-a rec1 0.10 0.35\nrec1-b rec1 0.20 {dur + 0.3:.2f}\n"
                                       f"rec1-c rec1 0.0 {dur + 2:.2f}\n")
    src = UtteranceAudio.from_data_dir(str(tmp_path))
    assert src.utterances() == ["rec1-a", "rec1-b", "rec1-c"]
    np.testing.assert_array_equal(src.get("rec1-a").samples[0], int16[1600:5600].astype(np.float32))
    assert src.get("rec1-b").samples.shape[1] == len(int16) - 3200   # end clipped (within 0.5 s)
    with pytest.raises(AudioError) as e:
        src.get("rec1-c")
    assert "past the end" in str(e.value) and "rec1-c" in str(e.value)
    (tmp_path / "segments").write_text("rec1-a rec1 0.1\n")
    with pytest.raises(InputError) as e:
        UtteranceAudio.from_data_dir(str(tmp_path))
    assert "segments:1" in str(e.value)


def test_sample_rate_mismatch_refused_or_resampled(speech):
    _, path, int16 = speech
    x = int16.astype(np.float32)
    with pytest.raises(InputError) as e:
        conform_rate(x, 16000, 8000, "utterance u1")
    msg = str(e.value)
    assert "u1" in msg and "16000 Hz" in msg and "8000 Hz" in msg and "--allow-downsample" in msg
    y = conform_rate(x, 16000, 8000, "utterance u1", allow_downsample=True)
    assert y.dtype == np.float32 and len(y) == (len(x) + 1) // 2
    with pytest.raises(InputError):
        conform_rate(x, 16000, 22050, "utterance u1", allow_downsample=True)   # upsampling not allowed
    assert len(conform_rate(x, 16000, 22050, "u", allow_upsample=True)) == int(np.ceil(len(x) * 22050 / 16000))


def test_command_line_inspection(speech):
    _, path, int16 = speech
    r = subprocess.run([sys.executable, "-m", "steps_py.data.audio_info", f"sox {path} -t wav - |"],
                       capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0 and f"{len(int16)} samples, 16000 Hz" in r.stdout


def write_cut_wav(path, int16, rate, promised_seconds):
    """A 16-bit WAV of ``int16`` whose RIFF and data sizes promise ``promised_seconds`` of audio (a copy cut short)."""
    soundfile.write(path, int16, rate, subtype="PCM_16")
    data = bytearray(open(path, "rb").read())
    pos = data.index(b"data")
    promised_bytes = int(promised_seconds * rate) * 2
    data[4:8] = struct.pack("<I", pos + 8 + promised_bytes - 8)
    data[pos + 4:pos + 8] = struct.pack("<I", promised_bytes)
    path.write_bytes(bytes(data))
    return path


def test_truncated_wav_is_an_audio_error_naming_the_file(speech, tmp_path):
    """A header that promises 7.2 s over 1.5 s of data: kind "truncated" (a counted skip of the feature jobs), for
    a file and for a pipe; audio_info says it in one line. sox's size for a stream of unknown length is no promise."""
    _, _, int16 = speech
    path = write_cut_wav(tmp_path / "cut.wav", np.resize(int16, 24000), 16000, promised_seconds=7.2)
    lengths = "truncated WAV (the header promises 115200 samples, 7.200 s; the file holds 24000, 1.500 s)"
    for spec, what in [(str(path), str(path)), (f"cat {path} |", f"output of 'cat {path}'")]:
        with pytest.raises(AudioError) as e:
            read_wav_scp_value(spec)
        assert e.value.kind == "truncated" and str(e.value) == f"{what}: {lengths}"
    r = subprocess.run([sys.executable, "-m", "steps_py.data.audio_info", str(path)], capture_output=True, text=True,
                       cwd=ROOT)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert r.stderr == f"ERROR (audio_info.py): {path}: {lengths}\n"
    raw = tmp_path / "cut.raw"
    raw.write_bytes(np.resize(int16, 24000).astype("<i2").tobytes())
    audio = read_wav_scp_value(f"cat {raw} | sox -t raw -r 16000 -e signed -b 16 -c 1 - -t wav - |")
    assert audio.samples.shape == (1, 24000)
