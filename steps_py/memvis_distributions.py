"""Usage: python -m steps_py.memvis_distributions [options] <extract-dir> <out-dir>

Distributions of memory values per layer (Tang et al. 2017, Fig. 1): for --num-units units per layer drawn at
random (--seed), the histogram of their values over all frames (at most --max-frames frames, drawn at random) --
LSTM cell c clipped to +-clip (10) for plotting, GRU state h in [-1, 1] -- and the share of values in the paper's
ranges: LSTM |c| < lstm-range (2); GRU h in [-1, -gru-edge] and [gru-edge, 1] (gru-edge 0.7).

Writes distributions.png/.svg (one panel per layer: the pooled histogram and thin lines for single units) and
numbers.json: per layer {share_in_range, share_low_edge, share_high_edge (GRU), share_beyond_clip, mean, std,
percentiles, histogram {edges, density}}, the units drawn, the frames used and the ranges.
"""
import numpy as np

from steps_py.common import get_logger, run_main
from steps_py.memory_data import Extraction
from steps_py.memvis_common import (analysis_parser, extraction_info, memory_quantity, sample_frames,
                                    sample_units, save_figure, setup_matplotlib, write_numbers)

log = get_logger("memvis_distributions")

PERCENTILES = (0.1, 1, 5, 25, 50, 75, 95, 99, 99.9)


def range_shares(values, cell, lstm_range=2.0, gru_edge=0.7):
    """Shares of ``values`` (any shape) in the paper's ranges -> dict.

    LSTM (and rnn/dnn): share_in_range = P(-lstm_range < v < lstm_range).
    GRU: share_low_edge = P(-1 <= v <= -gru_edge), share_high_edge = P(gru_edge <= v <= 1),
    share_in_range = their sum (values piling up at the saturation ends)."""
    v = np.asarray(values, dtype=np.float64).ravel()
    if cell == "gru":
        low = float(np.mean((v >= -1) & (v <= -gru_edge)))
        high = float(np.mean((v >= gru_edge) & (v <= 1)))
        return {"share_in_range": low + high, "share_low_edge": low, "share_high_edge": high}
    return {"share_in_range": float(np.mean((v > -lstm_range) & (v < lstm_range)))}


def layer_distribution(values, cell, clip=10.0, bins=100, lstm_range=2.0, gru_edge=0.7, unit_lines=10):
    """values [n_frames, n_units] of one layer -> dict of the numbers behind one panel of Fig. 1.

    The histogram covers [-clip, clip] for LSTM (values clipped into it, as the paper plots them) and [-1, 1] for
    GRU; density over all sampled values; ``unit_lines`` single-unit histograms (densities) for the first units."""
    v = np.asarray(values, dtype=np.float64)
    lim = 1.0 if cell == "gru" else clip
    edges = np.linspace(-lim, lim, bins + 1)
    clipped = np.clip(v, -lim, lim)
    density, _ = np.histogram(clipped, bins=edges, density=True)
    out = range_shares(v, cell, lstm_range, gru_edge)
    out.update({
        "share_beyond_clip": float(np.mean(np.abs(v) >= lim)) if cell != "gru" else 0.0,
        "mean": float(v.mean()), "std": float(v.std()), "min": float(v.min()), "max": float(v.max()),
        "percentiles": {str(p): float(x) for p, x in zip(PERCENTILES, np.percentile(v, PERCENTILES))},
        "histogram": {"edges": edges, "density": density},
        "unit_histograms": [np.histogram(clipped[:, j], bins=edges, density=True)[0]
                            for j in range(min(unit_lines, v.shape[1]))],
    })
    return out


def plot(layers, cell, quantity, clip):
    plt = setup_matplotlib()
    n = len(layers)
    fig, axes = plt.subplots(1, n, figsize=(2.6 * n, 2.4), sharey=False, squeeze=False)
    for ax, (k, d) in zip(axes[0], enumerate(layers, 1)):
        edges = np.asarray(d["histogram"]["edges"])
        centres = (edges[:-1] + edges[1:]) / 2
        for h in d["unit_histograms"]:
            ax.plot(centres, h, color="0.6", lw=0.5, alpha=0.7)
        ax.fill_between(centres, d["histogram"]["density"], step="mid", color="C0" if cell != "gru" else "C1",
                        alpha=0.6)
        ax.set_yscale("log")
        ax.set_title(f"layer {k}: {100 * d['share_in_range']:.0f}% in range")
        ax.set_xlabel(f"{quantity}" + (f" (clipped to +-{clip:g})" if cell != "gru" else ""))
    axes[0][0].set_ylabel("density")
    fig.suptitle(f"{cell.upper()} {quantity} value distributions (grey: single units)")
    fig.tight_layout()
    return fig


def analyse(ext, num_units=50, max_frames=200000, quantity=None, clip=10.0, bins=100, lstm_range=2.0,
            gru_edge=0.7, seed=0):
    """Extraction -> numbers dict (see the module docstring)."""
    rng = np.random.default_rng(seed)
    q = memory_quantity(ext, quantity)
    frames = sample_frames(ext.total_frames, max_frames, rng)
    layers, units_used = [], []
    for k in range(1, ext.num_layers + 1):
        units = sample_units(ext.cell_dim, num_units, rng)
        values = ext.values(k, q, frames)[:, units]
        layers.append(layer_distribution(values, ext.cell, clip, bins, lstm_range, gru_edge))
        units_used.append(units)
    return {"analysis": "distributions", **extraction_info(ext), "quantity": q,
            "num_units": int(min(num_units, ext.cell_dim)), "units": units_used,
            "frames_used": int(len(frames)), "frame_sampling": "uniform without replacement, seeded"
            if len(frames) < ext.total_frames else "all frames",
            "seed": seed, "clip": clip, "lstm_range": lstm_range, "gru_edge": gru_edge,
            "range_definition": f"GRU: [-1,-{gru_edge}] + [{gru_edge},1]" if ext.cell == "gru"
            else f"(-{lstm_range},{lstm_range})",
            "layers": layers}


def main():
    p = analysis_parser(__doc__)
    p.add_argument("--num-units", type=int, default=50, help="units drawn per layer")
    p.add_argument("--max-frames", type=int, default=200000, help="frames drawn (0 = all)")
    p.add_argument("--quantity", default=None, help="quantity to analyse (default: c for LSTM, h otherwise)")
    p.add_argument("--clip", type=float, default=10.0, help="LSTM plotting range +-clip")
    p.add_argument("--bins", type=int, default=100)
    p.add_argument("--lstm-range", type=float, default=2.0, help="LSTM share counted in (-r, r)")
    p.add_argument("--gru-edge", type=float, default=0.7, help="GRU share counted in [-1,-e] and [e,1]")
    a = p.parse_args()
    ext = Extraction.load(a.extract_dir)
    numbers = analyse(ext, a.num_units, a.max_frames, a.quantity, a.clip, a.bins, a.lstm_range, a.gru_edge, a.seed)
    numbers["figures"] = save_figure(plot(numbers["layers"], ext.cell, numbers["quantity"], a.clip), a.out_dir,
                                     "distributions")
    write_numbers(a.out_dir, numbers)
    log.info(f"{ext.cell} {numbers['quantity']} share in {numbers['range_definition']} per layer: " +
             ", ".join(f"{d['share_in_range']:.3f}" for d in numbers["layers"]))


if __name__ == "__main__":
    run_main(main)
