"""Shorten (Tony Robinson's lossless audio coder) decoding, stream versions 0-2, as in the LDC's WSJ discs.

The WSJ ``.wv1``/``.wv2`` files are NIST SPHERE files whose samples are an embedded shorten stream
(``sample_coding -s26 pcm,embedded-shorten-v1.1``, stream version 1); ``decode`` turns such a stream into its integer
samples. The format (shorten 1.x/2.x and ffmpeg's libavcodec/shorten.c agree on it):

- ``ajkg`` and a version byte, then a bit stream read most significant bit first;
- unsigned Rice code of width k, ``u(k)``: n zero bits, a one bit, then k bits; the value is ``n << k | bits``;
  signed ``s(k)`` is ``u(k + 1)`` folded (even 2m -> m, odd 2m + 1 -> -m - 1); ``ulong`` is ``u(u(2))``
  (version >= 1; version 0 reads its fields as ``u(field width)``);
- header: file type, channels, then (version >= 1) block size, maximum LPC order, number of block means, and a
  number of bytes to skip;
- commands ``u(2)``: DIFF0-3 (fixed polynomial predictors of order 0-3) and QLPC (quantised LPC, order ``u(2)``,
  coefficients ``s(5)``) each followed by the residual width ``u(3)`` and one residual ``s(width)`` per sample;
  ZERO (a block of zeros), BLOCKSIZE, BITSHIFT (samples are shifted left by it on output), VERBATIM (bytes of the
  original file header, skipped), QUIT.
- DIFF0 and QLPC predict around the mean of the last ``nmean`` blocks of the channel; version 2 rounds those means
  and keeps them shifted, version 0-1 truncates (C integer division).
"""
import numpy as np

MAGIC = b"ajkg"
FN_DIFF0, FN_DIFF1, FN_DIFF2, FN_DIFF3, FN_QUIT, FN_BLOCKSIZE, FN_BITSHIFT, FN_QLPC, FN_ZERO, FN_VERBATIM = range(10)
FIXED_COEFFS = ((), (1,), (2, -1), (3, -3, 1))
TYPE_NAMES = {1: "s8", 2: "u8", 3: "s16hl", 4: "u16hl", 5: "s16lh", 6: "u16lh", 7: "ulaw", 8: "au_ulaw"}
UNSIGNED_OFFSET = {2: 128, 4: 32768, 6: 32768}   # unsigned types are stored as samples - offset
LPCQUANT = 5                                     # fraction bits of the QLPC coefficients
NWRAP = 3                                        # samples of history kept across blocks (at least)
DEFAULT_BLOCKSIZE = 256


class ShortenError(ValueError):
    """A stream that is not shorten, or is truncated or corrupt (the message says where)."""


def _cdiv(a, b):
    """C's integer division (truncates toward zero), as the reference decoder computes block means."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


class _Bits:
    """Most-significant-bit-first reader of Rice codes over a byte string."""

    def __init__(self, data):
        self.bits = "".join(f"{b:08b}" for b in data)
        self.pos = 0

    def u(self, k):
        one = self.bits.find("1", self.pos)
        end = one + 1 + k
        if one < 0 or end > len(self.bits):
            raise ShortenError(f"truncated stream at bit {self.pos} of {len(self.bits)}")
        value = (one - self.pos) << k
        if k:
            value |= int(self.bits[one + 1:end], 2)
        self.pos = end
        return value

    def s(self, k):
        v = self.u(k + 1)
        return ~(v >> 1) if v & 1 else v >> 1


def decode(data):
    """Samples of a shorten stream: int32 [channels, samples] (unsigned types shifted to signed; the file type, e.g.
    s16lh, only says the byte order of the original file). Raises ShortenError on a bad or truncated stream."""
    data = bytes(data)
    if data[:4] != MAGIC or len(data) < 5:
        raise ShortenError(f"not a shorten stream (starts {data[:5]!r}, not {MAGIC!r} + version)")
    version = data[4]
    if version > 2:
        raise ShortenError(f"shorten stream version {version}: only versions 0-2 exist")
    bits = _Bits(data[5:])
    uint = (lambda k: bits.u(bits.u(2))) if version > 0 else bits.u
    ftype = uint(4)
    channels = uint(0)
    blocksize, maxnlpc, nmean = DEFAULT_BLOCKSIZE, 0, 0 if version < 2 else 4
    if version > 0:
        blocksize, maxnlpc, nmean = uint(8), uint(2), uint(0)
        for _ in range(uint(1)):                     # bytes to skip, each written as u(7) (shorten's XBYTESIZE)
            bits.u(7)
    if ftype not in TYPE_NAMES or ftype in (7, 8):
        raise ShortenError(f"shorten file type {ftype} ({TYPE_NAMES.get(ftype, 'unknown')}) is not linear PCM")
    if not 1 <= channels <= 8 or not 0 < blocksize <= 65535 or maxnlpc > 1024 or nmean > 32768:
        raise ShortenError(f"implausible shorten header: {channels} channels, block size {blocksize}, "
                           f"LPC order {maxnlpc}, {nmean} means")
    nwrap = max(NWRAP, maxnlpc)
    lpcqoffset = 1 << LPCQUANT if version > 1 else 0
    history = [[0] * nwrap for _ in range(channels)]   # the last nwrap samples of each channel (shifted domain)
    means = [[0] * nmean for _ in range(channels)]
    out = [[] for _ in range(channels)]
    bitshift, chan = 0, 0
    while True:
        cmd = bits.u(2)
        if cmd == FN_QUIT:
            break
        if cmd == FN_BLOCKSIZE:
            blocksize = uint(int(np.log2(blocksize)) if blocksize > 0 else 0)
            if not 0 < blocksize <= 65535:
                raise ShortenError(f"block size {blocksize} at bit {bits.pos}")
            continue
        if cmd == FN_BITSHIFT:
            bitshift = bits.u(2)
            if bitshift > 31:
                raise ShortenError(f"bit shift {bitshift} at bit {bits.pos}")
            continue
        if cmd == FN_VERBATIM:
            for _ in range(bits.u(5)):
                bits.u(8)
            continue
        if cmd > FN_VERBATIM:
            raise ShortenError(f"unknown command {cmd} at bit {bits.pos}")
        # an audio block of channel chan
        if nmean == 0:
            coffset = means[chan][0] if means[chan] else 0
        else:
            total = sum(means[chan]) + (nmean // 2 if version >= 2 else 0)
            coffset = _cdiv(total, nmean)
            if version >= 2 and bitshift:
                coffset = (coffset >> (bitshift - 1)) >> 1
        hist = history[chan]
        if cmd == FN_ZERO:
            block = [0] * blocksize
        else:
            width = bits.u(3) - (1 if version == 0 else 0)
            if cmd == FN_QLPC:
                order = bits.u(2)
                if order > nwrap:
                    raise ShortenError(f"LPC order {order} above the maximum {nwrap} at bit {bits.pos}")
                coefs, qshift, init = [bits.s(LPCQUANT) for _ in range(order)], LPCQUANT, lpcqoffset if order else coffset
            else:
                coefs, qshift, order = FIXED_COEFFS[cmd], 0, cmd
                init = 0 if order else coffset
            past = hist[len(hist) - order:] if order else []
            if cmd == FN_QLPC and coffset:
                past = [x - coffset for x in past]
            block, s = [], bits.s
            for _ in range(blocksize):
                acc = init
                for j in range(order):
                    acc += coefs[j] * past[-1 - j]
                x = s(width) + (acc >> qshift)
                block.append(x)
                if order:
                    past.append(x)
                    del past[0]
            if cmd == FN_QLPC and coffset:
                block = [x + coffset for x in block]
        if nmean > 0:
            total = sum(block) + (blocksize // 2 if version >= 2 else 0)
            mean = _cdiv(total, blocksize)
            if version >= 2:
                mean = 0 if bitshift == 32 else mean << bitshift
            means[chan] = means[chan][1:] + [mean]
        history[chan] = (hist + block)[-nwrap:]
        out[chan].append(np.asarray(block, dtype=np.int64) << bitshift)
        chan = (chan + 1) % channels
    if chan != 0:
        raise ShortenError(f"stream ends inside a block group (after channel {chan} of {channels})")
    samples = np.stack([np.concatenate(c) if c else np.zeros(0, np.int64) for c in out])
    samples -= UNSIGNED_OFFSET.get(ftype, 0)
    return samples.astype(np.int32)
