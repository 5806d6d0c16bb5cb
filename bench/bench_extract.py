"""Cost of memory extraction at decode time: one decoding job with and without extraction of every utterance.

Usage: python bench/bench_extract.py [--repeats 2] [--dtype float16] <graph-dir> <data-dir> <nnet-dir> [<ali-dir>]
  e.g. (in egs/synth/s5) python ../../../bench/bench_extract.py exp/tri2b/graph_tgpr data/dev_fbank \\
           exp/nnet/lstm_2l exp/tri2b_ali_dev

Prints the wall time of the plain decode, of the decode that also extracts all utterances (cells, gates, outputs
of every layer, phones, features), their ratio (target <= 1.3), and the acoustic-model RTFs; the runs alternate so
that load changes hit both. Decoding options: conf/decode_nnet.conf if present, else the defaults.
"""
import argparse
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from steps_py.data.datadir import read_map  # noqa: E402
from steps_py.decode.driver import add_decode_options, decode_options  # noqa: E402
from steps_py.kaldi.options import config_argv  # noqa: E402
from steps_py.memvis.extract import Extractor, extract_part_dir  # noqa: E402
from steps_py.nnet.device import add_device_option  # noqa: E402
from steps_py.nnet.hybrid import run_job  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--dtype", default="float16")
    p.add_argument("--num-utts", type=int, default=40, help="utterances decoded (default 40)")
    p.add_argument("graph_dir")
    p.add_argument("data_dir")
    p.add_argument("nnet_dir")
    p.add_argument("ali_dir", nargs="?")
    a = p.parse_args()
    dp = argparse.ArgumentParser()
    add_decode_options(dp)
    dp.add_argument("--filter-words")
    add_device_option(dp)
    conf = "conf/decode_nnet.conf"
    dargs = dp.parse_args(config_argv(conf) if os.path.exists(conf) else [])
    opts = decode_options(dargs)
    work = tempfile.mkdtemp(prefix="bench_extract.")
    data = os.path.join(work, "data")
    os.makedirs(data)
    utts = list(read_map(os.path.join(a.data_dir, "feats.scp")))[:a.num_utts]
    for f in ("feats.scp", "utt2spk", "text", "cmvn.scp"):
        src = os.path.join(a.data_dir, f)
        if os.path.exists(src):
            keep = set(utts) if f != "cmvn.scp" else None
            with open(src) as fin, open(os.path.join(data, f), "w") as fout:
                for line in fin:
                    if keep is None or line.split(maxsplit=1)[0] in keep:
                        fout.write(line)
    times = {"plain": [], "extract": []}
    try:
        for r in range(a.repeats):
            for mode in ("plain", "extract"):
                out = os.path.join(work, f"{mode}{r}")
                part = extract_part_dir(out, 1)
                make_tap = (lambda bundle, part=part: Extractor(bundle, part, utts, data, a.ali_dir, a.dtype)) \
                    if mode == "extract" else None
                t0 = time.time()
                run_job(a.graph_dir, data, a.nnet_dir, out, 1, opts, make_tap=make_tap, device=dargs.device)
                times[mode].append(time.time() - t0)
        plain, extract = min(times["plain"]), min(times["extract"])
        size = sum(os.path.getsize(os.path.join(work, "extract0", "extract", "part.1", f))
                   for f in os.listdir(os.path.join(work, "extract0", "extract", "part.1")))
        print(f"{len(utts)} utterances, LMWT sweep of {len(opts.pairs())} decodes per utterance")
        print(f"plain decode        {plain:8.2f} s  (runs: {', '.join(f'{t:.2f}' for t in times['plain'])})")
        print(f"decode + extraction {extract:8.2f} s  (runs: {', '.join(f'{t:.2f}' for t in times['extract'])})")
        print(f"ratio extraction / plain: {extract / plain:.3f}  (target <= 1.3); extraction {size / 1e6:.1f} MB "
              f"({a.dtype})")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
