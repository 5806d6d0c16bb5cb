"""Figures of the run page (steps_py.memvis.run_report) that put the models on shared axes, re-plotted with
matplotlib from the analyses' numbers.json (no extraction is read): Fig. 1 value distributions (one share-per-bin
scale for every model and layer), Fig. 3 noise decay and persistence (every model on the same axes per layer) and
the memory by position against the training horizon. Each function takes [(model name, cell, numbers)] and returns
a PNG as base64 text (or None when no model has the numbers)."""
import base64
import io

import numpy as np

from steps_py.memvis.analysis import setup_matplotlib

DPI = 110
CELL_COLOURS = {"lstm": ("C0", "C2", "C4", "C6"), "gru": ("C1", "C3", "C5", "C7")}


def colours(models):
    """One colour per model, LSTMs in blues/greens and GRUs in oranges/reds, in the models' order."""
    used, out = {}, []
    for _, cell, _ in models:
        k = used.get(cell, 0)
        used[cell] = k + 1
        palette = CELL_COLOURS.get(cell, ("C7", "C8", "C9"))
        out.append(palette[k % len(palette)])
    return out


def to_png(fig):
    """A matplotlib figure -> base64 PNG text (DPI dots per inch); the figure is closed."""
    import matplotlib.pyplot as plt
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def shown_layers(num_layers):
    """The layers of Fig. 1: the first and the last (the paper's 1 and 4 of its 4-layer models)."""
    return [1] if num_layers <= 1 else [1, num_layers]


def _layer_list(numbers):
    layers = numbers.get("layers") or []
    return [layers[k] for k in sorted(layers, key=int)] if isinstance(layers, dict) else list(layers)


def distributions_figure(models):
    """Fig. 1: histograms of the memory values (LSTM c clipped to the plot range, GRU h) of the first and last
    layer of each model, from distributions/numbers.json. Rows: layers; columns: models; one y scale for all
    panels: the share of the values per bin (density x bin width; every model has the same number of bins), log.
    The paper's ranges are shaded (LSTM |c| < lstm_range, GRU |h| >= gru_edge)."""
    models = [m for m in models if m[2] and _layer_list(m[2])]
    if not models:
        return None
    plt = setup_matplotlib()
    rows = sorted({k for _, _, n in models for k in shown_layers(len(_layer_list(n)))})
    fig, axes = plt.subplots(len(rows), len(models), figsize=(3.1 * len(models), 2.2 * len(rows)), sharey=True,
                             squeeze=False)
    for col, ((name, cell, n), colour) in enumerate(zip(models, colours(models))):
        layers = _layer_list(n)
        for row, k in enumerate(rows):
            ax = axes[row][col]
            if k > len(layers) or k not in shown_layers(len(layers)):
                ax.set_axis_off()
                continue
            d = layers[k - 1]
            edges = np.asarray(d["histogram"]["edges"], dtype=float)
            share = np.asarray(d["histogram"]["density"], dtype=float) * np.diff(edges)
            if cell == "gru":
                edge = n.get("gru_edge", 0.7)
                for lo, hi in ((-1, -edge), (edge, 1)):
                    ax.axvspan(lo, hi, color="0.9", zorder=0)
            else:
                r = n.get("lstm_range", 2.0)
                ax.axvspan(-r, r, color="0.9", zorder=0)
            ax.stairs(np.maximum(share, 1e-7), edges, fill=True, color=colour, alpha=0.75)
            ax.set_yscale("log")
            ax.set_title(f"{name} layer {k}: {100 * d['share_in_range']:.0f}% in range", fontsize=8)
            if row == len(rows) - 1 or k == len(layers):
                clip = n.get("clip")
                q = n.get("quantity", "value")
                ax.set_xlabel(f"{q}" + (f" (clipped to ±{clip:g})" if cell != "gru" and clip else ""))
        axes[0][col].set_ylim(bottom=1e-6)
    for row in range(len(rows)):
        axes[row][0].set_ylabel("share of values per bin")
    fig.suptitle("Memory values of the first and last layer (grey: the paper's range)", fontsize=9)
    fig.tight_layout()
    return to_png(fig)


def noise_figure(models):
    """Fig. 3: after the noise burst, per layer the median over utterances of each model's memory change (in units
    of each unit's own frame-to-frame variation; noise/numbers.json "decay"), every model on the same axes with the
    threshold; last panel: persistence per layer and model (median, bars from the first to the third quartile)."""
    models = [m for m in models if m[2] and m[2].get("decay")]
    if not models:
        return None
    plt = setup_matplotlib()
    num_layers = max(len(n["decay"]) for _, _, n in models)
    fig = plt.figure(figsize=(3.0 * (num_layers + 1), 2.6))
    axes = []
    for k in range(1, num_layers + 2):  # the decay panels share their y axis, the persistence panel has its own
        axes.append(fig.add_subplot(1, num_layers + 1, k, sharey=axes[0] if 1 < k <= num_layers else None))
    cols = colours(models)
    for k in range(1, num_layers + 1):
        ax = axes[k - 1]
        for (name, _, n), colour in zip(models, cols):
            curve = (n["decay"].get(str(k)) or {}).get("median")
            if curve:
                ax.semilogy(np.maximum(np.asarray(curve, dtype=float), 1e-4), color=colour, label=name)
        threshold = (models[0][2].get("threshold") or {}).get("value")
        if threshold:
            ax.axhline(threshold, color="k", ls=":", lw=0.8, label="threshold")
        ax.set_title(f"layer {k}")
        ax.set_xlabel("frames after the first noise-free input (10 ms)")
        if k == 1:
            ax.set_ylabel("median change / own variation")
            ax.legend(fontsize=6)
    ax = axes[-1]
    width = 0.8 / len(models)
    for i, ((name, _, n), colour) in enumerate(zip(models, cols)):
        layers = n.get("layers") or {}
        ks = sorted(layers, key=int)
        x = np.array([int(k) for k in ks]) + (i - (len(models) - 1) / 2) * width
        med = np.array([layers[k]["persistence_frames_median"] for k in ks], dtype=float)
        q1 = np.array([layers[k].get("persistence_frames_q25", np.nan) for k in ks], dtype=float)
        q3 = np.array([layers[k].get("persistence_frames_q75", np.nan) for k in ks], dtype=float)
        ax.bar(x, med, width, color=colour, label=name)
        ax.errorbar(x, med, yerr=[np.maximum(med - q1, 0), np.maximum(q3 - med, 0)], fmt="none", ecolor="k", lw=0.8)
    ax.set_xticks(range(1, num_layers + 1), [f"layer {k}" for k in range(1, num_layers + 1)])
    ax.set_ylabel("persistence (frames of 10 ms)")
    ax.set_title("persistence: median, quartiles")
    fig.tight_layout()
    return to_png(fig)


def horizon_figure(models):
    """The memory by position in the utterance (horizon/numbers.json): per layer, the 99th percentile of |memory|
    in each position bin (bins of at least 100 frames) of every model on the same axes, the training horizon
    marked."""
    models = [m for m in models if m[2] and m[2].get("layers")]
    if not models:
        return None
    plt = setup_matplotlib()
    num_layers = max(len(n["layers"]) for _, _, n in models)
    fig, axes = plt.subplots(1, num_layers, figsize=(3.2 * num_layers, 2.6), sharey=True, squeeze=False)
    for k in range(1, num_layers + 1):
        ax = axes[0][k - 1]
        for (name, _, n), colour in zip(models, colours(models)):
            lay = n["layers"].get(str(k))
            if not lay:
                continue
            bins = [b for b in lay["bins"] if b["frames"] >= 100 and b.get("p99") is not None]
            ax.semilogy([(b["start"] + b["end"]) / 2 for b in bins], [b["p99"] for b in bins], color=colour,
                        label=f"{name} ({n.get('quantity', '')})")
            ax.axvline(n["horizon_frames"], color=colour, ls="--", lw=0.8)
        ax.set_title(f"layer {k}")
        ax.set_xlabel("frame in the utterance (dashed: training horizon)")
    axes[0][0].set_ylabel("99th percentile of |memory|")
    axes[0][0].legend(fontsize=6)
    fig.tight_layout()
    return to_png(fig)
