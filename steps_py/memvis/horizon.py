"""Usage: python -m steps_py.memvis.horizon [options] <extract-dir> <out-dir>

Memory beyond the training horizon: a recurrent model trained on chunks of H frames (chunk left context + the
longest chunk width + label delay) has never run its recurrence longer than H frames, while decoding and the
analyses run whole utterances. This compares the memory values (LSTM c, GRU h) at frames t >= H of each utterance
with those at t < H, per layer: percentiles of |value|, the share in the paper's range (LSTM |c| < --lstm-range,
GRU |h| in [--gru-edge, 1]) and the mean, in bins of --bin frames of position in the utterance. A cell that drifts
past the horizon shows growing |c| percentiles in the later bins.

H comes from <model-dir>/train_summary.json (horizon_frames; the model dir is the extraction's), else from the
train.conf and nnet.conf in the model dir, unless --horizon-frames is given.

Writes horizon.png/.svg (per layer: 50th, 99th and 99.9th percentile of |value| against the frame position, the
horizon marked) and numbers.json: {"horizon_frames", "bin", "layers": {"1": {"within": stats, "beyond": stats,
"p99_ratio": p99 beyond / p99 within, "bins": [{"start", "end", "frames", "p50", "p99", "p999", "share_in_range",
"mean"}, ...]}, ...}} with stats = {"frames", "p50", "p99", "p999", "max", "share_in_range"} of |value|.

Options: --horizon-frames N  --bin N (50)  --lstm-range R (2)  --gru-edge E (0.7)
"""
import os

import numpy as np

from steps_py.common import InputError, get_logger, read_json, read_shell_conf, run_main
from steps_py.completion import skip_if_done
from steps_py.memvis.analysis import (analysis_completion, analysis_parser, extraction_info, memory_quantity,
                                      save_figure, setup_matplotlib, write_numbers)
from steps_py.memvis.data import Extraction
from steps_py.nnet.config import NnetConfig

log = get_logger("memvis.horizon")


def positions(offsets):
    """Frame position within its utterance of every frame: offsets [U + 1] -> [N] (0 at each utterance start)."""
    lengths = np.diff(offsets)
    return np.arange(offsets[-1]) - np.repeat(offsets[:-1], lengths)


def abs_stats(values, cell, lstm_range=2.0, gru_edge=0.7):
    """|values| of some frames [n, H] -> {"frames", "p50", "p99", "p999", "max", "share_in_range"} (None: no
    frames)."""
    a = np.abs(np.asarray(values, dtype=np.float64))
    if a.size == 0:
        return {"frames": 0, "p50": None, "p99": None, "p999": None, "max": None, "share_in_range": None}
    inside = ((a >= gru_edge) & (a <= 1.0)) if cell == "gru" else (a < lstm_range)
    p50, p99, p999 = np.percentile(a, [50, 99, 99.9])
    return {"frames": int(len(a)), "p50": float(p50), "p99": float(p99), "p999": float(p999),
            "max": float(a.max()), "share_in_range": float(inside.mean())}


def horizon_numbers(ext, horizon, bin_frames=50, lstm_range=2.0, gru_edge=0.7):
    """Extraction -> numbers (see the module docstring)."""
    q = memory_quantity(ext)
    pos = positions(ext.offsets)
    layers = {}
    for k in range(1, ext.num_layers + 1):
        v = ext.values(k, q)
        within, beyond = abs_stats(v[pos < horizon], ext.cell, lstm_range, gru_edge), \
            abs_stats(v[pos >= horizon], ext.cell, lstm_range, gru_edge)
        bins = []
        for start in range(0, int(pos.max()) + 1, bin_frames):
            sel = (pos >= start) & (pos < start + bin_frames)
            st = abs_stats(v[sel], ext.cell, lstm_range, gru_edge)
            st.update(start=start, end=start + bin_frames, mean=float(np.asarray(v[sel], np.float64).mean()))
            bins.append(st)
        ratio = beyond["p99"] / within["p99"] if beyond["p99"] is not None and within["p99"] else None
        layers[str(k)] = {"within": within, "beyond": beyond, "p99_ratio": ratio, "bins": bins}
    return {"analysis": "horizon", **extraction_info(ext), "quantity": q, "horizon_frames": int(horizon),
            "bin": bin_frames, "lstm_range": lstm_range, "gru_edge": gru_edge, "layers": layers}


def plot(numbers):
    plt = setup_matplotlib()
    n = len(numbers["layers"])
    fig, axes = plt.subplots(1, n, figsize=(3.2 * n, 2.6), squeeze=False)
    for ax, (k, lay) in zip(axes[0], sorted(numbers["layers"].items(), key=lambda kv: int(kv[0]))):
        bins = [b for b in lay["bins"] if b["frames"] >= 100]
        x = [(b["start"] + b["end"]) / 2 for b in bins]
        for key, label in (("p50", "50%"), ("p99", "99%"), ("p999", "99.9%")):
            ax.semilogy(x, [b[key] for b in bins], label=f"{label} of |{numbers['quantity']}|")
        ax.axvline(numbers["horizon_frames"], color="k", ls="--", lw=0.8, label="training horizon")
        ax.set_xlabel("frame in the utterance")
        ax.set_title(f"layer {k}")
    axes[0][0].legend(fontsize=6)
    fig.suptitle(f"{numbers['cell'].upper()} memory by position: within and beyond the training horizon")
    fig.tight_layout()
    return fig


def training_horizon(ext):
    """The training horizon of the extraction's model: horizon_frames of its train_summary.json, else chunk left
    context + the longest chunk width (of the train.conf copied into the model dir) + label delay (nnet.conf)."""
    d = ext.model_dir or ""
    summary = os.path.join(d, "train_summary.json")
    if d and os.path.exists(summary) and "horizon_frames" in read_json(summary):
        return int(read_json(summary)["horizon_frames"])
    conf, nnet_conf = os.path.join(d, "train.conf"), os.path.join(d, "nnet.conf")
    if d and os.path.exists(conf) and os.path.exists(nnet_conf):
        tc = read_shell_conf(conf)
        if "chunk_width" in tc and "chunk_left_context" in tc:
            widths = [int(w) for w in tc["chunk_width"].split(",")]
            return int(tc["chunk_left_context"]) + max(widths) + NnetConfig.from_file(nnet_conf).label_delay
    raise InputError(f"{ext.dir}: no horizon_frames in {summary} and no chunk_width / chunk_left_context in "
                     f"{conf}; give --horizon-frames")


def main():
    p = analysis_parser(__doc__)
    p.add_argument("--horizon-frames", type=int, default=None, help="training horizon (default: from the model)")
    p.add_argument("--bin", type=int, default=50, help="frames per position bin")
    p.add_argument("--lstm-range", type=float, default=2.0)
    p.add_argument("--gru-edge", type=float, default=0.7)
    a = p.parse_args()
    done = analysis_completion(a, "horizon")
    if skip_if_done(done, a.out_dir, log):
        return 0
    ext = Extraction.load(a.extract_dir)
    horizon = a.horizon_frames if a.horizon_frames is not None else training_horizon(ext)
    numbers = horizon_numbers(ext, horizon, a.bin, a.lstm_range, a.gru_edge)
    numbers["figures"] = save_figure(plot(numbers), a.out_dir, "horizon")
    write_numbers(a.out_dir, numbers)
    done.finish()
    for k, lay in numbers["layers"].items():
        w, b = lay["within"], lay["beyond"]
        log.info(f"layer {k}: p99 |{numbers['quantity']}| {w['p99']:.3g} within the first {horizon} frames, "
                 f"{b['p99'] if b['p99'] is None else round(b['p99'], 3)} beyond; in range {w['share_in_range']:.3f}"
                 f" / {b['share_in_range']}")


if __name__ == "__main__":
    run_main(main)
