"""Reading audio of Kaldi data dirs: wav.scp entries (paths or ``cmd |`` pipes), segments, resampling.

A wav.scp value is either a file name (WAV/FLAC/anything libsndfile reads; NIST SPHERE ``.sph``/``.wv1``/``.wv2``:
shorten-compressed ones, as on the WSJ discs, decoded in-process by ``steps_py.data.shorten``, others by
``desphere``), or a shell pipeline ending in ``|`` whose standard output is a WAV stream (``sph2pipe -f wav x.wv1
|``, ``sox x.flac -t wav - |``), run with bash (``set -o pipefail``). If ``sph2pipe`` is not installed, a plain
``sph2pipe [-f wav|rif] [-p] [-c N] FILE |`` entry is decoded in-process instead, so WSJ data dirs made for Kaldi work unchanged.

Scaling: samples are float32 on the int16 scale (-32768..32767), as Kaldi's WaveData holds them. kaldi-native-fbank
(knf) is a port of Kaldi's feature code that does not rescale its input; its own default ``dither=0.00003`` assumes
samples in [-1, 1]. Fed int16-scale samples with Kaldi's option values (``--dither=1.0``, ``--energy-floor``), it
gives Kaldi's numbers. Files stored with other sample formats (8/24/32-bit, float) are brought to the same scale
(full scale = 32768); Kaldi itself would keep 32-bit integers unscaled, which only shifts log energies.
"""
import io
import os
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from math import gcd

import numpy as np
import soundfile

from steps_py.common import InputError

INT16_SCALE = 32768.0
SPHERE_EXTENSIONS = (".sph", ".wv1", ".wv2", ".nist")
# Data-chunk sizes of a WAV written to a pipe, whose length was not known: 0 and 0xFFFFFFFF, and 0x7FFFF000, the
# size sox writes (Kaldi's WaveInfo takes all three as "streamed": read to the end, no length promised).
STREAMED_WAV_SIZES = (0, 0xFFFFFFFF, 0x7FFFF000)


class AudioError(InputError):
    """Audio of one utterance cannot be had (missing, unreadable or truncated file, failed pipe, empty audio).

    Feature extraction counts these per utterance as skips; ``kind`` names the reason for the summary.
    """

    def __init__(self, message, kind="unreadable"):
        super().__init__(message)
        self.kind = kind


@dataclass
class Audio:
    """Samples of a recording: ``samples`` float32 [num_channels, num_samples] on the int16 scale; ``rate`` in Hz."""
    samples: np.ndarray
    rate: int

    @property
    def duration(self):
        """Length in seconds."""
        return self.samples.shape[1] / self.rate


def is_pipe(spec):
    """True for a wav.scp value of the form ``command args |``."""
    return spec.rstrip().endswith("|")


def _decode_bytes(data, what):
    """Decodes an in-memory audio file (WAV/FLAC/SPHERE...) into Audio; ``what`` names it in errors."""
    if data[:7] == b"NIST_1A":
        fields, size = sphere_header(data, what)
        if "shorten" in str(fields.get("sample_coding", "")):
            return _sphere_shorten(data[size:], fields, what)
        data = _sphere_to_wav_bytes(data, what)
    try:
        samples, rate = soundfile.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except (soundfile.LibsndfileError, RuntimeError, TypeError) as e:
        fixed = _fix_streamed_wav_header(data)
        if fixed is None:
            raise AudioError(f"{what}: cannot decode audio ({e})") from None
        try:
            samples, rate = soundfile.read(io.BytesIO(fixed), dtype="float32", always_2d=True)
        except (soundfile.LibsndfileError, RuntimeError, TypeError) as e2:
            raise AudioError(f"{what}: cannot decode audio ({e2})") from None
    check_wav_length(io.BytesIO(data), len(samples), int(rate), what)
    return Audio(np.ascontiguousarray(samples.T) * np.float32(INT16_SCALE), int(rate))


def wav_promised_frames(f):
    """Sample frames that the data chunk of a RIFF/WAVE stream (binary file object ``f``) promises: its size over
    the fmt chunk's block align. None when ``f`` is not RIFF/WAVE, its data size is a streamed placeholder
    (STREAMED_WAV_SIZES) or no fmt chunk comes before the data chunk."""
    f.seek(0)
    head = f.read(12)
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return None
    block_align = None
    while True:
        chunk = f.read(8)
        if len(chunk) < 8:
            return None
        chunk_id, size = chunk[:4], int.from_bytes(chunk[4:], "little")
        if chunk_id == b"data":
            if size in STREAMED_WAV_SIZES or not block_align:
                return None
            return size // block_align
        if chunk_id == b"fmt ":
            block_align = int.from_bytes(f.read(size)[12:14], "little")
            f.seek(size % 2, os.SEEK_CUR)
        else:
            f.seek(size + size % 2, os.SEEK_CUR)


def check_wav_length(f, num_frames, rate, what):
    """Raises AudioError (kind "truncated") when the WAV header of ``f`` promises more sample frames than the
    ``num_frames`` decoded: a truncated file, whose transcript covers audio that is not there (Kaldi's WaveData
    warns "Truncated file?")."""
    promised = wav_promised_frames(f)
    if promised is not None and promised > num_frames:
        raise AudioError(f"{what}: truncated WAV (the header promises {promised} samples, {promised / rate:.3f} s; "
                         f"the file holds {num_frames}, {num_frames / rate:.3f} s)", kind="truncated")


def _fix_streamed_wav_header(data):
    """A WAV stream written to a pipe may carry placeholder sizes (0 or 0xFFFFFFFF) in its RIFF and data chunks.

    Returns a copy whose sizes match the bytes present, or None if ``data`` is not a RIFF/WAVE stream.
    """
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return None
    buf = bytearray(data)
    pos = 12
    while pos + 8 <= len(buf):
        chunk_id, size = bytes(buf[pos:pos + 4]), int.from_bytes(buf[pos + 4:pos + 8], "little")
        if chunk_id == b"data":
            size = len(buf) - pos - 8
            buf[pos + 4:pos + 8] = size.to_bytes(4, "little")
            del buf[pos + 8 + size:]
            buf[4:8] = (len(buf) - 8).to_bytes(4, "little")
            return bytes(buf)
        pos += 8 + size + (size % 2)
    return None


def sphere_header(data, what):
    """({field: value}, header size in bytes) of a NIST SPHERE file's header (``NIST_1A``, the size, then
    ``name -type value`` lines up to ``end_head``); -i values are ints, -r floats, -sN strings."""
    lines = data[:min(len(data), 65536)].split(b"\n")
    try:
        size = int(lines[1])
    except (IndexError, ValueError):
        raise AudioError(f"{what}: not a NIST SPHERE header (no header size on line 2)") from None
    fields = {}
    for line in data[:size].decode("latin-1").split("\n")[2:]:
        if line.strip() == "end_head":
            return fields, size
        words = line.split(None, 2)
        if len(words) == 3:
            kind, value = words[1], words[2].rstrip()
            fields[words[0]] = int(value) if kind == "-i" else float(value) if kind == "-r" else value
    raise AudioError(f"{what}: NIST SPHERE header has no end_head within its {size} bytes")


def _sphere_shorten(stream, fields, what):
    """Audio of a SPHERE file's embedded shorten stream (the WSJ discs' ``.wv1``), decoded in-process."""
    from steps_py.data import shorten
    try:
        samples = shorten.decode(stream)
    except shorten.ShortenError as e:
        raise AudioError(f"{what}: cannot decode the embedded shorten stream ({e})") from None
    channels, count = fields.get("channel_count", samples.shape[0]), fields.get("sample_count", samples.shape[1])
    if samples.shape != (channels, count):
        raise AudioError(f"{what}: the shorten stream holds {samples.shape[0]} channel(s) x {samples.shape[1]} "
                         f"samples, the SPHERE header says {channels} x {count}")
    if "sample_rate" not in fields:
        raise AudioError(f"{what}: NIST SPHERE header has no sample_rate")
    return Audio(samples.astype(np.float32), int(fields["sample_rate"]))


def _sphere_to_wav_bytes(data, what):
    import desphere
    try:
        return desphere.transcode_bytes(data)
    except desphere.DesphereError as e:
        raise AudioError(f"{what}: cannot decode NIST SPHERE audio ({e})") from None


def read_audio_file(path):
    """Reads a whole audio file (anything libsndfile reads, or NIST SPHERE) into Audio."""
    if not os.path.exists(path):
        raise AudioError(f"no such file {path}", kind="missing")
    if os.path.isfile(path) and os.path.getsize(path) == 0:
        raise AudioError(f"{path}: empty file (0 bytes)", kind="empty")
    try:
        with open(path, "rb") as f:
            head = f.read(8)
            if head[:7] == b"NIST_1A" or path.lower().endswith(SPHERE_EXTENSIONS):
                data = head + f.read()
                return _decode_bytes(data, path)
    except OSError as e:
        raise AudioError(f"cannot read {path}: {e.strerror}", kind="missing" if e.errno == 2 else "unreadable") \
            from None
    try:
        samples, rate = soundfile.read(path, dtype="float32", always_2d=True)
    except (soundfile.LibsndfileError, RuntimeError, TypeError) as e:
        raise AudioError(f"{path}: cannot decode audio ({e})") from None
    with open(path, "rb") as f:
        check_wav_length(f, len(samples), int(rate), path)
    return Audio(np.ascontiguousarray(samples.T) * np.float32(INT16_SCALE), int(rate))


def _sph2pipe_in_process(words):
    """Decodes ``sph2pipe [-f wav|rif] [-p] [-c N] FILE`` in-process (read_audio_file); None if the command is
    anything else."""
    if not words or os.path.basename(words[0]) != "sph2pipe":
        return None
    channel, path, i = None, None, 1
    while i < len(words):
        w = words[i]
        if w == "-f" and i + 1 < len(words) and words[i + 1] in ("wav", "rif"):
            i += 2
        elif w == "-p":
            i += 1
        elif w == "-c" and i + 1 < len(words) and words[i + 1] in ("1", "2"):
            channel, i = int(words[i + 1]) - 1, i + 2
        elif not w.startswith("-") and path is None:
            path, i = w, i + 1
        else:
            return None
    if path is None:
        return None
    audio = read_audio_file(path)
    if channel is not None:
        if channel >= audio.samples.shape[0]:
            raise AudioError(f"{path}: sph2pipe -c {channel + 1} but the file has {audio.samples.shape[0]} channel(s)")
        audio = Audio(audio.samples[channel:channel + 1], audio.rate)
    return audio


def read_audio_pipe(spec):
    """Runs the pipeline of a ``cmd args |`` wav.scp value with bash and decodes the WAV on its standard output."""
    command = spec.rstrip()[:-1].strip()
    if not command:
        raise AudioError(f"empty command in pipe entry {spec!r}")
    if "|" not in command and shutil.which("sph2pipe") is None:
        try:
            words = shlex.split(command)
        except ValueError:
            words = None
        audio = _sph2pipe_in_process(words)
        if audio is not None:
            return audio
    try:
        proc = subprocess.run(["bash", "-c", "set -o pipefail; " + command], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    except OSError as e:
        raise AudioError(f"cannot run bash for {command!r}: {e}") from None
    if proc.returncode != 0:
        err = proc.stderr.decode("utf-8", "replace").strip().replace("\n", " / ")
        raise AudioError(f"command {command!r} failed with exit status {proc.returncode}: {err or '(no stderr)'}",
                         kind="missing" if proc.returncode == 127 else "pipe failed")
    if not proc.stdout:
        raise AudioError(f"command {command!r} wrote nothing", kind="empty")
    return _decode_bytes(proc.stdout, f"output of {command!r}")


def read_wav_scp_value(spec):
    """Audio of one wav.scp value (a path or a ``cmd |`` pipe). Raises AudioError (with a ``kind``) on failure."""
    return read_audio_pipe(spec) if is_pipe(spec) else read_audio_file(spec.strip())


def extract_segment(audio, start, end, what="segment", max_overshoot=0.5):
    """Samples of ``audio`` from ``start`` to ``end`` seconds (end <= 0 or -1: to the end), like extract-segments.

    An end past the end of the recording by at most ``max_overshoot`` seconds is clipped; more is an AudioError.
    """
    num = audio.samples.shape[1]
    first = int(start * audio.rate)
    last = num if end <= 0 else int(end * audio.rate)
    if start < 0 or (end > 0 and end <= start):
        raise AudioError(f"{what}: bad segment times {start} {end}", kind="bad segment")
    if last > num:
        if (last - num) / audio.rate > max_overshoot:
            raise AudioError(f"{what}: segment end {end:.3f} s is past the end of the recording "
                             f"({audio.duration:.3f} s)", kind="bad segment")
        last = num
    if first >= num:
        raise AudioError(f"{what}: segment start {start:.3f} s is past the end of the recording "
                         f"({audio.duration:.3f} s)", kind="bad segment")
    return Audio(audio.samples[:, first:last], audio.rate)


def resample(samples, from_rate, to_rate):
    """Resamples float32 samples [num_samples] with a polyphase filter (scipy.signal.resample_poly)."""
    from scipy.signal import resample_poly
    g = gcd(int(from_rate), int(to_rate))
    return resample_poly(samples, int(to_rate) // g, int(from_rate) // g).astype(np.float32)


def select_channel(audio, channel, what):
    """One channel [num_samples] of ``audio``: Kaldi's --channel (-1: expect mono, take channel 0 if not)."""
    num_channels = audio.samples.shape[0]
    if channel < 0:
        return audio.samples[0]
    if channel >= num_channels:
        raise AudioError(f"{what}: has {num_channels} channel(s) but --channel={channel} was asked for",
                         kind="bad channel")
    return audio.samples[channel]


def conform_rate(samples, rate, want_rate, what, allow_downsample=False, allow_upsample=False):
    """Returns samples at ``want_rate``: resampled if the options allow it, else an InputError naming both rates."""
    if rate == want_rate:
        return samples
    if (rate > want_rate and allow_downsample) or (rate < want_rate and allow_upsample):
        return resample(samples, rate, want_rate)
    raise InputError(f"{what}: sample rate is {rate} Hz but the features are configured for {want_rate:g} Hz; "
                     f"set --sample-frequency={rate} in the config, or allow resampling with "
                     f"--allow-{'downsample' if rate > want_rate else 'upsample'}=true")


class UtteranceAudio:
    """Gives each utterance's audio of a data dir (wav.scp, and segments if present).

    ``get(utt)`` returns Audio of the utterance. Recordings with several segments are read once while their
    segments come one after another (segments files are sorted by utterance, which usually groups recordings).
    """

    def __init__(self, wav_scp, segments=None):
        """``wav_scp``: {recording or utterance id: wav.scp value}; ``segments``: {utt: (rec, start, end)} or None."""
        self.wav_scp = wav_scp
        self.segments = segments
        self._cached = (None, None)

    @classmethod
    def from_data_dir(cls, data_dir):
        from steps_py.data.datadir import read_map
        wav_scp = read_map(os.path.join(data_dir, "wav.scp"))
        seg_path = os.path.join(data_dir, "segments")
        segments = None
        if os.path.isfile(seg_path):
            segments = {}
            for n, (utt, value) in enumerate(read_map(seg_path).items(), 1):
                fields = value.split()
                try:
                    if len(fields) != 3:
                        raise ValueError
                    segments[utt] = (fields[0], float(fields[1]), float(fields[2]))
                except ValueError:
                    raise InputError(f"{seg_path}:{n}: expected '<utt> <recording> <start> <end>', "
                                     f"got {utt} {value!r}") from None
        return cls(wav_scp, segments)

    def utterances(self):
        """Utterance ids in file order."""
        return list(self.segments if self.segments is not None else self.wav_scp)

    def get(self, utt):
        if self.segments is None:
            if utt not in self.wav_scp:
                raise AudioError(f"utterance {utt} is not in wav.scp", kind="missing")
            return read_wav_scp_value(self.wav_scp[utt])
        rec, start, end = self.segments[utt]
        if rec not in self.wav_scp:
            raise AudioError(f"recording {rec} of segment {utt} is not in wav.scp", kind="missing")
        if self._cached[0] != rec:
            self._cached = (None, None)
            self._cached = (rec, read_wav_scp_value(self.wav_scp[rec]))
        return extract_segment(self._cached[1], start, end, what=f"segment {utt} of {rec}")
