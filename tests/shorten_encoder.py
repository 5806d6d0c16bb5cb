"""A small shorten encoder for test fixtures (versions 0-2), and NIST SPHERE files that embed its streams as the
LDC's WSJ discs do. It writes every command kind so a decoder is exercised on all of them; it does not try to
compress well."""
import numpy as np

from steps_py.data.shorten import (FIXED_COEFFS as FIXED, FN_BITSHIFT, FN_BLOCKSIZE, FN_DIFF0, FN_DIFF1,  # noqa: F401
                                   FN_DIFF2, FN_DIFF3, FN_QLPC, FN_QUIT, FN_VERBATIM, FN_ZERO, _cdiv)

QLPC_COEFS = (54, -24)          # ~ 1.69, -0.75 with 5 fraction bits


class _Writer:
    def __init__(self):
        self.out = []

    def u(self, value, k):
        assert value >= 0
        self.out.append("0" * (value >> k) + "1" + (format(value & ((1 << k) - 1), f"0{k}b") if k else ""))

    def s(self, value, k):
        self.u(2 * value if value >= 0 else 2 * ~value + 1, k + 1)

    def ulong(self, value):
        k = max(value.bit_length(), 0)
        self.u(k, 2)
        self.u(value, k)

    def data(self):
        bits = "".join(self.out)
        bits += "0" * (-len(bits) % 8)
        return bytes(int(bits[i:i + 8], 2) for i in range(0, len(bits), 8))


def encode(samples, version=1, blocksize=256, nmean=4, ftype=5, plan=None, skip=b"", verbatim=b"RIF"):
    """Shorten stream of int samples [channels, n] (a last partial block gets its own BLOCKSIZE). ``plan``: one entry per
    block group, a command (FN_DIFF0-3, FN_QLPC, FN_ZERO) or a tuple (command, bitshift, blocksize) that first sets
    the bit shift and block size (DIFF2 after its end); default: cycles through DIFF0-3 and QLPC. ``skip``: header bytes to be skipped.
    ``verbatim``: the bytes of the first VERBATIM chunk (a .shn file keeps its WAV header there; ffmpeg needs one)."""
    samples = np.asarray(samples, dtype=np.int64)
    channels, n = samples.shape
    w = _Writer()
    uint = (lambda v, k: w.ulong(v)) if version > 0 else w.u
    if version == 0:
        blocksize, nmean = 256, 0
    uint(ftype, 4)
    uint(channels, 0)
    if version > 0:
        uint(blocksize, 8)
        uint(len(QLPC_COEFS), 2)
        uint(nmean, 0)
        uint(len(skip), 1)
        for b in skip:                                       # bytes the decoder skips, each u(7) as shorten writes them
            w.u(b, 7)
    w.u(FN_VERBATIM, 2)                                      # a verbatim chunk (a file header), skipped on decoding
    w.u(len(verbatim), 5)
    for b in verbatim:
        w.u(b, 8)
    nwrap = max(3, len(QLPC_COEFS))
    lpcqoffset = 32 if version > 1 else 0
    hist = [[0] * nwrap for _ in range(channels)]
    means = [[0] * nmean for _ in range(channels)]
    pos, group, bitshift = 0, 0, 0
    default = [FN_DIFF0, FN_DIFF1, FN_DIFF2, FN_DIFF3, FN_QLPC]
    while pos < n:
        step = (plan[group] if group < len(plan) else FN_DIFF2) if plan is not None else default[group % len(default)]
        cmd = step
        if isinstance(step, tuple):
            cmd, shift, size = step
            if shift != bitshift:
                w.u(FN_BITSHIFT, 2)
                w.u(shift, 2)
                bitshift = shift
            if size != blocksize:
                w.u(FN_BLOCKSIZE, 2)
                uint(size, int(np.log2(blocksize)))
                blocksize = size
        if n - pos < blocksize:                              # the last, partial block, as shorten ends a file
            w.u(FN_BLOCKSIZE, 2)
            uint(n - pos, int(np.log2(blocksize)))
            blocksize = n - pos
        for c in range(channels):
            raw = samples[c, pos:pos + blocksize]
            assert len(raw) == blocksize and not np.any(raw & ((1 << bitshift) - 1)), "bad plan for these samples"
            x = [int(v) >> bitshift for v in raw]
            if nmean == 0:
                coffset = means[c][0] if means[c] else 0
            else:
                coffset = _cdiv(sum(means[c]) + (nmean // 2 if version >= 2 else 0), nmean)
                if version >= 2 and bitshift:
                    coffset = (coffset >> (bitshift - 1)) >> 1
            if cmd == FN_ZERO:
                assert not any(x)
                w.u(FN_ZERO, 2)
            else:
                if cmd == FN_QLPC:
                    coefs, q, order = QLPC_COEFS, 5, len(QLPC_COEFS)
                    init = lpcqoffset
                    past = [v - coffset for v in hist[c][-order:]]
                    target = [v - coffset for v in x]
                else:
                    coefs, q, order = FIXED[cmd], 0, cmd
                    init = 0 if order else coffset
                    past = list(hist[c][-order:]) if order else []
                    target = x
                res = []
                for t in target:
                    acc = init + sum(coefs[j] * past[-1 - j] for j in range(order))
                    res.append(t - (acc >> q))
                    if order:
                        past = past[1:] + [t]
                mean_abs = sum(abs(r) for r in res) / len(res)
                width = max(0, int(np.log2(mean_abs + 1)))
                w.u(cmd, 2)
                w.u(width + (1 if version == 0 else 0), 3)
                if cmd == FN_QLPC:
                    w.u(order, 2)
                    for a in coefs:
                        w.s(a, 5)
                for r in res:
                    w.s(r, width)
            if nmean > 0:
                mean = _cdiv(sum(x) + (blocksize // 2 if version >= 2 else 0), blocksize)
                means[c] = means[c][1:] + [mean << bitshift if version >= 2 else mean]
            hist[c] = (hist[c] + x)[-nwrap:]
        pos += blocksize
        group += 1
    w.u(FN_QUIT, 2)
    return b"ajkg" + bytes([version]) + w.data()


def sphere_shorten(samples, rate=16000, version=1, **kw):
    """A NIST SPHERE file as on the WSJ discs: a 1024-byte header, then the embedded shorten stream."""
    samples = np.asarray(samples)
    coding = "pcm,embedded-shorten-v1.1" if version < 2 else "pcm,embedded-shorten-v2.00"   # the discs' spellings
    header = (f"NIST_1A\n   1024\nsample_count -i {samples.shape[1]}\nsample_n_bytes -i 2\n"
              f"channel_count -i {samples.shape[0]}\nsample_byte_format -s2 01\nsample_rate -i {rate}\n"
              f"sample_coding -s{len(coding)} {coding}\nsample_sig_bits -i 16\nend_head\n").encode()
    return header.ljust(1024, b" ") + encode(samples, version=version, **kw)
