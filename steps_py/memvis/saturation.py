"""Usage: python -m steps_py.memvis.saturation [options] <extract-dir> <out-dir>

Gate saturation (Karpathy, Johnson and Fei-Fei 2015, Fig. 3): for each gate unit, the fraction of frames where
the gate is left-saturated (value < --low 0.1) and right-saturated (value > --high 0.9). Gates: LSTM i, f, o;
GRU z, r (after the sigmoid). GRU z is shown in Karpathy et al.'s convention, h = (1 - z) h_prev + z candidate,
i.e. 1 - the z of our GRU (h = z h_prev + (1 - z) candidate), so that left-saturated means "keeps its memory" for
both an LSTM's input gate and a GRU's update gate. At most --max-frames frames, drawn at random (--seed).

Writes saturation.png/.svg (one scatter per gate type: x = left-saturated fraction, y = right-saturated fraction,
one point per unit, colour = layer) and numbers.json: gates, per gate and layer {mean_left, mean_right,
mean_unsaturated, units_mostly_left, units_mostly_right (units saturated that way on > 50% of the frames)}, and
the per-unit fractions (left / right [layer][unit], 4 decimals).
"""
from steps_py.common import get_logger, run_main
from steps_py.completion import skip_if_done
from steps_py.memvis.analysis import analysis_completion, analysis_parser, save_figure, setup_matplotlib, write_numbers
from steps_py.memvis.data import Extraction
from steps_py.memvis.stats import saturation_numbers

log = get_logger("memvis.saturation")


GATE_NAMES = {"i": "input gate", "f": "forget gate", "o": "output gate", "z": "update gate", "r": "reset gate"}


def plot(numbers):
    plt = setup_matplotlib()
    gates = numbers["gates"]
    fig, axes = plt.subplots(1, len(gates), figsize=(2.8 * len(gates), 2.9), squeeze=False)
    cmap = plt.get_cmap("plasma")
    num_layers = numbers["num_layers"]
    for ax, g in zip(axes[0], gates):
        ax.plot([0, 1], [1, 0], color="0.7", lw=0.6, ls="--")
        for k, d in enumerate(numbers["per_gate"][g], 1):
            ax.scatter(d["left"], d["right"], s=5, alpha=0.6, color=cmap((k - 1) / max(num_layers - 1, 1) * 0.85),
                       label=f"layer {k}")
        ax.set_xlim(-0.02, 1.02)
        ax.set_ylim(-0.02, 1.02)
        ax.set_aspect("equal")
        ax.set_xlabel(f"fraction left-saturated (< {numbers['low']:g})")
        ax.set_title(f"{GATE_NAMES.get(g, g)} ({g})")
    axes[0][0].set_ylabel(f"fraction right-saturated (> {numbers['high']:g})")
    axes[0][-1].legend(fontsize=6, markerscale=2, loc="upper right")
    fig.suptitle(f"{numbers['cell'].upper()} gate saturation per unit")
    fig.tight_layout()
    return fig


def main():
    p = analysis_parser(__doc__)
    p.add_argument("--low", type=float, default=0.1, help="left-saturated below this")
    p.add_argument("--high", type=float, default=0.9, help="right-saturated above this")
    p.add_argument("--max-frames", type=int, default=200000, help="frames drawn (0 = all)")
    a = p.parse_args()
    done = analysis_completion(a, "saturation")
    if skip_if_done(done, a.out_dir, log):
        return 0
    ext = Extraction.load(a.extract_dir)
    numbers = saturation_numbers(ext, a.low, a.high, a.max_frames, a.seed)
    numbers["figures"] = save_figure(plot(numbers), a.out_dir, "saturation")
    write_numbers(a.out_dir, numbers)
    done.finish()
    for g in numbers["gates"]:
        log.info(f"{g}: mean left/right saturated per layer: " +
                 ", ".join(f"{d['mean_left']:.3f}/{d['mean_right']:.3f}" for d in numbers["per_gate"][g]))


if __name__ == "__main__":
    run_main(main)
