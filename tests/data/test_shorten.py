"""Shorten decoding (steps_py/data/shorten.py) on streams of known content, cross-checked with desphere's decoder and
FFmpeg's."""
import io
import shutil
import struct
import subprocess

import numpy as np
import pytest
import soundfile

from shorten_encoder import FN_DIFF0, FN_DIFF1, FN_DIFF2, FN_DIFF3, FN_QLPC, FN_ZERO, encode, sphere_shorten
from steps_py.data import audio as wav
from steps_py.data.shorten import ShortenError, decode

BLOCK = 256
# every audio command; then a bit shift of 2 with LPC, a change of block size, and back
PLAN = [FN_DIFF0, FN_DIFF1, FN_DIFF2, FN_DIFF3, FN_QLPC, FN_ZERO, (FN_QLPC, 2, BLOCK), (FN_DIFF1, 2, BLOCK // 2),
        (FN_DIFF2, 0, BLOCK // 2), (FN_DIFF0, 0, BLOCK), (FN_QLPC, 0, BLOCK), FN_DIFF3, FN_DIFF1]


def signal(num_blocks=12, extra=0):
    """Two channels of a sine with noise: block 5 silent, blocks 6-7 with their two low bits zero. int64 [2, n]."""
    rng = np.random.default_rng(0)
    n = num_blocks * BLOCK + extra
    x = (8000 * np.sin(np.arange(n) * 0.03) + rng.normal(0, 300, n)).astype(np.int64)
    x[5 * BLOCK:6 * BLOCK] = 0
    x[6 * BLOCK:8 * BLOCK] &= ~3
    return np.stack([x, -2 * x])


@pytest.mark.parametrize("version", [1, 2])
@pytest.mark.parametrize("nmean", [0, 4])
def test_every_command_decodes_to_the_samples(version, nmean):
    x = signal(extra=100)                    # and a last partial block of 100 samples
    data = encode(x, version=version, nmean=nmean, plan=PLAN, skip=b"\x05\x7f")
    np.testing.assert_array_equal(decode(data), x)


def test_version_0():
    x = signal()
    plan = [FN_DIFF0, FN_DIFF1, FN_DIFF2, FN_DIFF3, FN_QLPC, FN_ZERO] + [FN_DIFF2] * 6
    np.testing.assert_array_equal(decode(encode(x, version=0, plan=plan)), x)


def test_means_differ_between_versions():
    """Versions 1 and 2 predict DIFF0 blocks around differently rounded means: a v1 stream read as v2 is wrong."""
    x = signal()[:1] + 3
    data = encode(x, version=1, nmean=4, plan=[FN_DIFF0] * 12)
    assert not np.array_equal(decode(data[:4] + b"\x02" + data[5:]), x)
    np.testing.assert_array_equal(decode(data), x)


@pytest.mark.parametrize("nmean,plan", [(4, [p if not isinstance(p, tuple) else (p[0], 0, p[2]) for p in PLAN]),
                                        (0, PLAN)])
def test_same_samples_as_desphere(nmean, plan):
    """desphere 0.1.1 (an independent decoder, verified against ffmpeg and sph2pipe) reads version-2 streams; it
    keeps the block means unshifted, so the bit shift is checked with nmean=0."""
    import desphere
    x = signal(extra=100)
    sph = sphere_shorten(x, version=2, nmean=nmean, plan=plan)
    ref, rate = soundfile.read(io.BytesIO(desphere.transcode_bytes(sph)), dtype="int16", always_2d=True)
    np.testing.assert_array_equal(ref.T, x)
    np.testing.assert_array_equal(decode(sph[1024:]), x)
    assert rate == 16000


def test_wv1_file_is_read_exactly(tmp_path):
    """A SPHERE file as on the WSJ discs (pcm,embedded-shorten-v1.1) through the audio reader and wav.scp."""
    x = signal(extra=37)[:1]
    (tmp_path / "a.wv1").write_bytes(sphere_shorten(x, rate=16000, version=1))
    audio = wav.read_wav_scp_value(str(tmp_path / "a.wv1"))
    assert audio.rate == 16000 and audio.samples.dtype == np.float32
    np.testing.assert_array_equal(audio.samples, x)
    audio = wav.read_wav_scp_value(f"sph2pipe -f wav {tmp_path / 'a.wv1'} |")   # Kaldi's line, without sph2pipe
    np.testing.assert_array_equal(audio.samples, x)


def test_bad_streams_are_named(tmp_path):
    x = signal()[:1]
    data = encode(x, version=1)
    with pytest.raises(ShortenError, match="truncated stream"):
        decode(data[:len(data) // 2])
    with pytest.raises(ShortenError, match="not a shorten stream"):
        decode(b"RIFF....")
    with pytest.raises(ShortenError, match="version 7"):
        decode(b"ajkg\x07" + data[5:])
    sph = sphere_shorten(x, version=1).replace(b"sample_count -i 3072", b"sample_count -i 4000")
    (tmp_path / "b.wv1").write_bytes(sph)
    with pytest.raises(wav.AudioError, match=r"b.wv1: the shorten stream holds 1 channel\(s\) x 3072 samples, "
                                             r"the SPHERE header says 1 x 4000"):
        wav.read_audio_file(str(tmp_path / "b.wv1"))


def wav_header(channels, rate, num_samples):
    """The 44-byte header of a 16-bit PCM WAV file: what a .shn file keeps in its first VERBATIM chunk."""
    data = num_samples * channels * 2
    return (b"RIFF" + struct.pack("<I", 36 + data) + b"WAVEfmt " +
            struct.pack("<IHHIIHH", 16, 1, channels, rate, rate * channels * 2, channels * 2, 16) + b"data" +
            struct.pack("<I", data))


# FFmpeg's shorten decoder refuses a block size that grows again, so this plan keeps it (but the last block)
FFMPEG_PLAN = [FN_DIFF0, FN_DIFF1, FN_DIFF2, FN_DIFF3, FN_QLPC, FN_ZERO, (FN_QLPC, 2, BLOCK), (FN_DIFF1, 2, BLOCK),
               (FN_DIFF2, 0, BLOCK), FN_DIFF0, FN_QLPC, FN_DIFF3, FN_DIFF1]


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="no ffmpeg (tools/install.sh installs it)")
@pytest.mark.parametrize("version", [1, 2])
@pytest.mark.parametrize("nmean", [0, 4])
def test_ffmpeg_decodes_the_same_samples(version, nmean):
    """An independent decoder (FFmpeg's) reads the test encoder's streams, with skip bytes, bit shifts, QLPC and a
    last partial block, to exactly the samples; and so does ours."""
    x = signal(extra=100)
    data = encode(x, version=version, nmean=nmean, plan=FFMPEG_PLAN, skip=b"\x05\x7f",
                  verbatim=wav_header(2, 16000, x.shape[1]))
    res = subprocess.run(["ffmpeg", "-v", "error", "-f", "shn", "-i", "pipe:0", "-f", "s16le", "-"], input=data,
                         capture_output=True)
    assert res.returncode == 0, res.stderr.decode()
    np.testing.assert_array_equal(np.frombuffer(res.stdout, "<i2").reshape(-1, 2).T, x)
    np.testing.assert_array_equal(decode(data), x)
