"""Shorten decoding speed: steps_py.data.shorten against desphere 0.1.1 on the same version-2 stream.

Usage: python bench/bench_shorten.py [--seconds 10] [--repeats 3]

A WSJ-like utterance (16 kHz, mono, speech-like noise shaped by a sine, blocks of 256, DIFF and QLPC blocks) is
encoded by tests/shorten_encoder.py; both decoders read it; prints the median time of each, the real-time factor
and the ratio (ours / desphere).
"""
import argparse
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
from shorten_encoder import FN_DIFF1, FN_DIFF2, FN_QLPC, encode  # noqa: E402

from steps_py.data.shorten import decode  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--repeats", type=int, default=3)
    a = p.parse_args()
    import desphere.shorten
    n = int(a.seconds * 16000) // 256 * 256
    rng = np.random.default_rng(0)
    x = (3000 * np.sin(np.arange(n) * 0.002)[None] * rng.normal(0, 1, n) * 0.3).astype(np.int64)
    data = encode(x, version=2, nmean=4, plan=[FN_DIFF1, FN_DIFF2, FN_QLPC] * (n // 256))
    times = {"ours": [], "desphere": []}
    for _ in range(a.repeats):
        t = time.perf_counter()
        ours = decode(data)
        times["ours"].append(time.perf_counter() - t)
        t = time.perf_counter()
        ref, _, _ = desphere.shorten.decode(data)
        times["desphere"].append(time.perf_counter() - t)
    assert np.array_equal(ours[0], np.asarray(ref)) and np.array_equal(ours, x)
    med = {k: statistics.median(v) for k, v in times.items()}
    for k, v in times.items():
        print(f"{k:9s} median {med[k]:.3f} s (range {min(v):.3f}-{max(v):.3f}) for {n / 16000:.1f} s of audio: "
              f"RTF {med[k] / (n / 16000):.4f}")
    print(f"ratio ours / desphere: {med['ours'] / med['desphere']:.2f}")


if __name__ == "__main__":
    main()
