"""Usage: python -m steps_py.memvis.compare [options] <extract-dir1> <extract-dir2> ... <out-dir>

Side-by-side comparison of several models (LSTM vs GRU, baseline vs lazy vs residual, layer vs layer) on the same
utterances: one extraction dir per model (steps_py.memvis.data; e.g. exp/nnet/<name>/extract_dev).

Per model and layer, in one table:
  share_in_range, range_definition, std, p1/p99   stats.distribution_numbers with the same options and seed
                                                (the numbers memvis.distributions writes for that model alone):
                                                LSTM: share of |c| < --lstm-range; GRU: share in [-1,-e] + [e,1]
  share_abs_below_2, share_near_one             the same for every cell type, over the same sampled values:
                                                P(|v| < --lstm-range), P(--gru-edge <= |v| <= 1)
  smoothness                                    per utterance on per-unit standardised vectors, mean step length
                                                ||x_t - x_{t-1}|| over the mean distance of random frame pairs of
                                                the utterance, mean over utterances (lower = smoother;
                                                stats.utterance_smoothness)
  smoothness_raw                                the same on the raw vectors, pairs across the whole set (large
                                                units dominate it)
  saturation <gate> left/right                  stats.saturation_numbers (same options, seed): mean share of
                                                frames with the gate < --low / > --high
  noise_persistence_frames                      from the memvis.noise numbers.json of the model (--noise, one
                                                path per model in the same order; "-" for none)

Outputs in <out-dir>: table.md (the table), heatmaps.png/.svg (the same utterance's memory, units x frames, of each
model's last layer, side by side), traces.png/.svg (the 6 highest-variance units of each model's last layer over
the utterance), histograms.png/.svg (each model's value histograms per layer), smoothness.png/.svg (bars per model
and layer, with noise persistence when given), numbers.json:
  {"names", "extract_dirs", "utt", "options": {...}, "rows": [{"model", "cell", "layer", "quantity",
   "share_in_range", "range_definition", "share_abs_below_2", "share_near_one", "std", "p1", "p99",
   "smoothness", "smoothness_raw", "saturation": {gate: {"mean_left", "mean_right"}}, "noise_persistence_frames"},
   ...]}

Options: --names LIST (default: the extraction dirs' parent dir names)  --utt ID (default: the first utterance
all extractions share)  --noise LIST  --seed N (0)  --num-units N (50)  --max-frames N (200000)
--lstm-range R (2)  --gru-edge E (0.7)  --low L (0.1)  --high H (0.9)  --pairs N (20000, frame pairs)
"""
import argparse
import os

import numpy as np

from steps_py.common import InputError, get_logger, read_json, run_main, write_lines
from steps_py.completion import skip_if_done
from steps_py.memvis.analysis import (MEMORY_QUANTITY, analysis_completion, sample_frames, sample_units, save_figure,
                                      setup_matplotlib, write_numbers)
from steps_py.memvis.data import Extraction
from steps_py.memvis.stats import (distribution_numbers, saturation_numbers, smoothness, uniform_shares,
                                   utterance_smoothness)

log = get_logger("memvis.compare")


# ---------------------------------------------------------------------------------------------------------------
# Pure functions


def model_rows(ext, name, seed=0, num_units=50, max_frames=200000, lstm_range=2.0, gru_edge=0.7, low=0.1,
               high=0.9, num_pairs=20000, noise_numbers=None):
    """Table rows (one per layer) of one extraction ``ext``; ``noise_numbers``: memvis.noise numbers dict or None."""
    dist = distribution_numbers(ext, num_units=num_units, max_frames=max_frames, lstm_range=lstm_range,
                                        gru_edge=gru_edge, seed=seed)
    try:
        sat = saturation_numbers(ext, low=low, high=high, max_frames=max_frames, seed=seed)
    except InputError:
        sat = {"per_gate": {}}
    q = dist["quantity"]
    # the values memvis.distributions looked at (same draws from the same seeded generator)
    rng = np.random.default_rng(seed)
    frames = sample_frames(ext.total_frames, max_frames, rng)
    rows = []
    for k in range(1, ext.num_layers + 1):
        units = sample_units(ext.cell_dim, num_units, rng)
        d = dist["layers"][k - 1]
        sampled = ext.values(k, q, frames)[:, units]
        values = ext.values(k, q)
        row = {"model": name, "cell": ext.cell, "layer": k, "quantity": q,
               "share_in_range": d["share_in_range"], "range_definition": dist["range_definition"],
               **uniform_shares(sampled, lstm_range, gru_edge),
               "std": d["std"], "p1": d["percentiles"]["1"], "p99": d["percentiles"]["99"],
               "smoothness": float(np.nanmean(utterance_smoothness(
                   values, ext.offsets, values.mean(0, dtype=np.float64), values.std(0, dtype=np.float64),
                   np.random.default_rng(seed)))),
               "smoothness_raw": smoothness(values, ext.offsets, np.random.default_rng(seed), num_pairs),
               "saturation": {g: {"mean_left": layers[k - 1]["mean_left"], "mean_right": layers[k - 1]["mean_right"]}
                              for g, layers in sat["per_gate"].items()},
               "noise_persistence_frames": None}
        if noise_numbers is not None:
            lay = noise_numbers.get("layers", {}).get(str(k))
            row["noise_persistence_frames"] = lay["persistence_frames_mean"] if lay else None
        rows.append(row)
    return rows


def table_markdown(rows):
    """The rows as a Markdown table (numbers rounded for reading; numbers.json keeps them exact)."""
    gates = sorted({g for r in rows for g in r["saturation"]})
    head = ["model", "cell", "layer", "in range", "range", "|v|<2", "near +-1", "std", "smoothness", "raw",
            *[f"{g} sat L/R" for g in gates], "noise persistence (frames)"]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]

    def f(x, fmt="{:.3f}"):
        return "-" if x is None or (isinstance(x, float) and not np.isfinite(x)) else fmt.format(x)

    for r in rows:
        cells = [r["model"], r["cell"], str(r["layer"]), f(r["share_in_range"]), r["range_definition"],
                 f(r["share_abs_below_2"]), f(r["share_near_one"]), f(r["std"]), f(r["smoothness"]),
                 f(r["smoothness_raw"])]
        for g in gates:
            s = r["saturation"].get(g)
            cells.append(f"{s['mean_left']:.2f}/{s['mean_right']:.2f}" if s else "-")
        cells.append(f(r["noise_persistence_frames"], "{:.1f}"))
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------------------------------------------------------
# Figures

def _last_layer(ext, utt):
    q = MEMORY_QUANTITY.get(ext.cell, "h")
    return q, ext.values(ext.num_layers, q, ext.utt_slice(utt))


def plot_heatmaps(out_dir, exts, names, utt, max_units=64):
    pyplot = setup_matplotlib()
    fig, axes = pyplot.subplots(1, len(exts), figsize=(4.5 * len(exts), 3.6), squeeze=False)
    for ax, ext, name in zip(axes[0], exts, names):
        q, v = _last_layer(ext, utt)
        order = np.argsort(-v.var(0))[:max_units]
        lim = 1.0 if ext.cell == "gru" else max(float(np.percentile(np.abs(v), 99)), 1e-6)
        im = ax.imshow(v[:, order].T, aspect="auto", origin="lower", cmap="RdBu_r", vmin=-lim, vmax=lim,
                       interpolation="nearest")
        ax.set_title(f"{name}: layer {ext.num_layers} {q}", fontsize=9)
        ax.set_xlabel("frame (10 ms)")
        fig.colorbar(im, ax=ax, pad=0.01)
    axes[0][0].set_ylabel("unit (by variance)")
    fig.suptitle(f"{utt}: memory of the last layer")
    return save_figure(fig, out_dir, "heatmaps")


def plot_traces(out_dir, exts, names, utt, num_units=6):
    pyplot = setup_matplotlib()
    fig, axes = pyplot.subplots(1, len(exts), figsize=(4.5 * len(exts), 3.0), squeeze=False)
    for ax, ext, name in zip(axes[0], exts, names):
        q, v = _last_layer(ext, utt)
        for j in np.argsort(-v.var(0))[:num_units]:
            ax.plot(v[:, j], lw=0.8)
        ax.set_title(f"{name}: layer {ext.num_layers} {q}, {num_units} units", fontsize=9)
        ax.set_xlabel("frame (10 ms)")
    fig.suptitle(f"{utt}: temporal traces")
    return save_figure(fig, out_dir, "traces")


def plot_histograms(out_dir, exts, names, seed, max_frames=50000, clip=10.0):
    pyplot = setup_matplotlib()
    fig, axes = pyplot.subplots(1, len(exts), figsize=(4.0 * len(exts), 3.0), squeeze=False)
    for ax, ext, name in zip(axes[0], exts, names):
        q = MEMORY_QUANTITY.get(ext.cell, "h")
        lim = 1.0 if ext.cell == "gru" else clip
        rng = np.random.default_rng(seed)
        frames = np.sort(rng.choice(ext.total_frames, min(max_frames, ext.total_frames), replace=False))
        for k in range(1, ext.num_layers + 1):
            v = np.clip(ext.values(k, q, frames).ravel(), -lim, lim)
            ax.hist(v, bins=100, range=(-lim, lim), density=True, histtype="step", label=f"layer {k}")
        ax.set_yscale("log")
        ax.set_title(f"{name} ({ext.cell} {q})", fontsize=9)
        ax.legend(fontsize=7)
    return save_figure(fig, out_dir, "histograms")


def plot_smoothness(out_dir, rows, names):
    pyplot = setup_matplotlib()
    has_noise = any(r["noise_persistence_frames"] is not None for r in rows)
    fig, axes = pyplot.subplots(1, 2 if has_noise else 1, figsize=(10 if has_noise else 5.5, 3.2), squeeze=False)
    max_layers = max(r["layer"] for r in rows)
    width = 0.8 / max_layers
    for col, key, label in ((0, "smoothness", "smoothness (standardised; step / pair distance)"),
                            (1, "noise_persistence_frames", "noise persistence (frames)"))[:2 if has_noise else 1]:
        ax = axes[0][col]
        for k in range(1, max_layers + 1):
            xs, ys = [], []
            for m, name in enumerate(names):
                r = next((r for r in rows if r["model"] == name and r["layer"] == k), None)
                if r is not None and r[key] is not None:
                    xs.append(m + (k - 1) * width)
                    ys.append(r[key])
            ax.bar(xs, ys, width=width, label=f"layer {k}")
        ax.set_xticks([m + 0.4 - width / 2 for m in range(len(names))])
        ax.set_xticklabels(names)
        ax.set_ylabel(label)
        ax.legend(fontsize=7)
    return save_figure(fig, out_dir, "smoothness")


# ---------------------------------------------------------------------------------------------------------------
# I/O

def default_name(extract_dir):
    """exp/nnet/lstm_2l/extract_dev -> lstm_2l."""
    return os.path.basename(os.path.dirname(os.path.abspath(extract_dir))) or extract_dir


def run_compare(exts, names, out_dir, utt=None, noise_paths=None, seed=0, num_units=50, max_frames=200000,
                lstm_range=2.0, gru_edge=0.7, low=0.1, high=0.9, num_pairs=20000):
    """The comparison of loaded extractions ``exts`` named ``names``; writes figures, table.md, numbers.json."""
    if len(exts) != len(names):
        raise InputError(f"{len(names)} names for {len(exts)} extraction dirs")
    if len(set(names)) != len(names):
        raise InputError(f"model names must differ: {', '.join(names)}")
    noise_paths = list(noise_paths or [])
    if noise_paths and len(noise_paths) != len(exts):
        raise InputError(f"--noise has {len(noise_paths)} paths for {len(exts)} models (use - for none)")
    common = [u for u in exts[0].utts if all(u in set(e.utts) for e in exts[1:])]
    if utt is None:
        if not common:
            raise InputError("the extractions share no utterance")
        utt = common[0]
    elif utt not in common:
        raise InputError(f"utterance {utt} is not in every extraction")
    rows = []
    for i, (ext, name) in enumerate(zip(exts, names)):
        noise = read_json(noise_paths[i]) if noise_paths and noise_paths[i] != "-" else None
        rows += model_rows(ext, name, seed, num_units, max_frames, lstm_range, gru_edge, low, high, num_pairs, noise)
        log.info(f"{name}: " + "; ".join(f"layer {r['layer']}: in range {r['share_in_range']:.3f}, smoothness "
                                         f"{r['smoothness']:.3f}" for r in rows if r["model"] == name))
    os.makedirs(out_dir, exist_ok=True)
    plot_heatmaps(out_dir, exts, names, utt)
    plot_traces(out_dir, exts, names, utt)
    plot_histograms(out_dir, exts, names, seed)
    plot_smoothness(out_dir, rows, names)
    write_lines(os.path.join(out_dir, "table.md"), table_markdown(rows).splitlines())
    numbers = {"analysis": "compare", "names": names, "extract_dirs": [os.path.abspath(e.dir) for e in exts],
               "cells": [e.cell for e in exts], "utt": utt, "noise_numbers": noise_paths or None,
               "options": {"seed": seed, "num_units": num_units, "max_frames": max_frames, "lstm_range": lstm_range,
                           "gru_edge": gru_edge, "low": low, "high": high, "pairs": num_pairs},
               "rows": rows}
    write_numbers(out_dir, numbers)
    return numbers


def main():
    p = argparse.ArgumentParser(usage=__doc__.split("\n")[0][len("Usage: "):], description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--names", default="")
    p.add_argument("--utt", default=None)
    p.add_argument("--noise", default="", help="memvis.noise numbers.json per model, comma-separated (- = none)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--num-units", type=int, default=50)
    p.add_argument("--max-frames", type=int, default=200000)
    p.add_argument("--lstm-range", type=float, default=2.0)
    p.add_argument("--gru-edge", type=float, default=0.7)
    p.add_argument("--low", type=float, default=0.1)
    p.add_argument("--high", type=float, default=0.9)
    p.add_argument("--pairs", type=int, default=20000)
    p.add_argument("dirs", nargs="+", metavar="extract-dir ... out-dir")
    a = p.parse_args()
    if len(a.dirs) < 2:
        p.error("need at least one extraction dir and the output dir")
    *extract_dirs, out_dir = a.dirs
    noise_files = [x for x in a.noise.split(",") if x and x != "-" and os.path.exists(x)]
    done = analysis_completion(argparse.Namespace(**vars(a), out_dir=out_dir), "compare", extract_dirs + noise_files)
    if skip_if_done(done, out_dir, log):
        return 0
    exts = [Extraction.load(d) for d in extract_dirs]
    names = [n for n in a.names.split(",") if n] or [default_name(d) for d in extract_dirs]
    run_compare(exts, names, out_dir, a.utt, [x for x in a.noise.split(",") if x], a.seed, a.num_units,
                a.max_frames, a.lstm_range, a.gru_edge, a.low, a.high, a.pairs)
    done.finish()
    return 0


if __name__ == "__main__":
    run_main(main)
