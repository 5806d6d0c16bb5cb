"""Usage: python -m steps_py.memvis.distributions [options] <extract-dir> <out-dir>

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
from steps_py.completion import skip_if_done
from steps_py.memvis.analysis import analysis_completion, analysis_parser, save_figure, setup_matplotlib, write_numbers
from steps_py.memvis.data import Extraction
from steps_py.memvis.stats import distribution_numbers

log = get_logger("memvis.distributions")


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
    done = analysis_completion(a, "distributions")
    if skip_if_done(done, a.out_dir, log):
        return 0
    ext = Extraction.load(a.extract_dir)
    numbers = distribution_numbers(ext, a.num_units, a.max_frames, a.quantity, a.clip, a.bins, a.lstm_range,
                                   a.gru_edge, a.seed)
    numbers["figures"] = save_figure(plot(numbers["layers"], ext.cell, numbers["quantity"], a.clip), a.out_dir,
                                     "distributions")
    write_numbers(a.out_dir, numbers)
    done.finish()
    log.info(f"{ext.cell} {numbers['quantity']} share in {numbers['range_definition']} per layer: " +
             ", ".join(f"{d['share_in_range']:.3f}" for d in numbers["layers"]))


if __name__ == "__main__":
    run_main(main)
