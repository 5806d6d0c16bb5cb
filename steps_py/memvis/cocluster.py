"""Usage: python -m steps_py.memvis.cocluster [options] <extract-dir> <out-dir>

Co-clustering of units and phones (as RNNVis does for hidden units and words): each unit's expected response to
each phone -- the mean of its value over the frames aligned to the phone (--response mean), or the mean state
update x_t - x_{t-1} over those frames (--response update, RNNVis; x_{-1} = 0 at each utterance start) -- gives a
matrix units x phones per layer. Spectral co-clustering (sklearn SpectralCoclustering, Dhillon 2001; seeded) of
its magnitudes (--sign abs; or only the positive / negative part: pos / neg, as the algorithm needs non-negative
entries) groups units and phones into --n-clusters biclusters.

<extract-dir> is an extraction (steps_py.memvis.data). Frames without a phone alignment are left out; phones with
fewer than --min-frames frames are left out (logged); --no-silence leaves out silence phones.

Outputs in <out-dir>, per layer k:
  matrix_layer<k>.png/.svg     the response matrix with units and phones reordered by cluster, cluster borders
  bipartite_layer<k>.png/.svg  unit clusters (left, size ~ unit count) linked to phone clusters (right, their
                               phones listed); edge width ~ the cluster pair's mean |response|
  numbers.json  {"extract_dir", "cell", "quantity", "response", "sign", "n_clusters", "seed", "min_frames",
                 "phones_used", "phones_dropped",
                 "layers": {"1": {"clusters": [{"phones": [...], "num_units": n, "units": [unit indices],
                                               "mean_abs_response": x}, ...],
                                  "block_mean_abs": [[...]] (unit cluster x phone cluster),
                                  "diagonal_ratio": mean |response| inside biclusters / outside}, ...}}

Options: --quantity NAME (default: c for LSTM, h otherwise)  --response mean|update (default update)
         --sign abs|pos|neg (default abs)  --n-clusters N (default 6)  --seed N (default 0)
         --min-frames N (default 20)  --no-silence  --layers LIST (default all)
"""

import numpy as np

from steps_py.common import InputError, get_logger, run_main
from steps_py.completion import skip_if_done
from steps_py.memvis.analysis import (MEMORY_QUANTITY, analysis_completion, analysis_parser, save_figure,
                                      setup_matplotlib, write_numbers)

log = get_logger("memvis.cocluster")


# ---------------------------------------------------------------------------------------------------------------
# Pure functions

def utterance_starts(offsets, total_frames):
    """bool [total_frames], True at each utterance's first frame (``offsets``: first frame of each utterance)."""
    starts = np.zeros(total_frames, dtype=bool)
    off = np.asarray(offsets, dtype=np.int64)
    starts[off[off < total_frames]] = True
    return starts


def state_updates(values, starts):
    """x_t - x_{t-1} per frame: values [N, H] (utterances concatenated), starts bool [N] (utterance first frames,
    where x_{t-1} = 0) -> [N, H] float64."""
    x = np.asarray(values, dtype=np.float64)
    prev = np.zeros_like(x)
    prev[1:] = x[:-1]
    prev[np.asarray(starts, dtype=bool)] = 0.0
    return x - prev


def unit_phone_response(values, phone_ids, num_phones):
    """Mean of each unit over the frames of each phone: values [N, H], phone_ids [N] (-1 = no phone) ->
    (response [H, num_phones] float64, NaN for phones without frames; counts [num_phones] int)."""
    x = np.asarray(values, dtype=np.float64)
    ids = np.asarray(phone_ids)
    keep = ids >= 0
    counts = np.bincount(ids[keep], minlength=num_phones)[:num_phones]
    sums = np.zeros((num_phones, x.shape[1]))
    np.add.at(sums, ids[keep], x[keep])
    with np.errstate(invalid="ignore", divide="ignore"):
        resp = sums / counts[:, None]
    resp[counts == 0] = np.nan
    return resp.T, counts


def signed_part(matrix, sign="abs"):
    """Non-negative matrix for co-clustering: |m| (abs), max(m, 0) (pos) or max(-m, 0) (neg)."""
    m = np.asarray(matrix, dtype=np.float64)
    if sign == "abs":
        return np.abs(m)
    if sign == "pos":
        return np.maximum(m, 0.0)
    if sign == "neg":
        return np.maximum(-m, 0.0)
    raise InputError(f"unknown --sign {sign!r} (abs, pos or neg)")


def cocluster(matrix, n_clusters, seed=0):
    """Spectral co-clustering of a non-negative matrix [R, C] -> (row_labels [R], col_labels [C]) in 0..n-1.

    Rows/columns that are all zero get a tiny floor (the algorithm divides by row and column sums). Clusters are
    numbered by decreasing mean entry of their bicluster: cluster 0 is the strongest."""
    from sklearn.cluster import SpectralCoclustering
    m = np.asarray(matrix, dtype=np.float64)
    if n_clusters > min(m.shape):
        raise InputError(f"--n-clusters {n_clusters} is more than min(units, phones) = {min(m.shape)}")
    m = m + 1e-12 * max(m.max(), 1e-12)
    model = SpectralCoclustering(n_clusters=n_clusters, random_state=seed, n_init=10)
    model.fit(m)
    rows, cols = model.row_labels_.astype(int), model.column_labels_.astype(int)
    strength = [m[np.ix_(rows == c, cols == c)].mean() if (rows == c).any() and (cols == c).any() else -1.0
                for c in range(n_clusters)]
    rank = np.empty(n_clusters, dtype=int)
    rank[np.argsort(strength)[::-1]] = np.arange(n_clusters)
    return rank[rows], rank[cols]


def block_means(matrix, row_labels, col_labels, n_clusters):
    """Mean entry of each (row cluster, column cluster) block: [n, n] (NaN for empty blocks)."""
    m = np.asarray(matrix, dtype=np.float64)
    out = np.full((n_clusters, n_clusters), np.nan)
    for a in range(n_clusters):
        for b in range(n_clusters):
            blk = m[np.ix_(row_labels == a, col_labels == b)]
            if blk.size:
                out[a, b] = blk.mean()
    return out


def diagonal_ratio(matrix, row_labels, col_labels):
    """Mean entry inside the biclusters (row cluster == column cluster) / mean entry outside (1 = no structure)."""
    m = np.asarray(matrix, dtype=np.float64)
    inside = row_labels[:, None] == col_labels[None, :]
    if not inside.any() or inside.all():
        return float("nan")
    return float(m[inside].mean() / max(m[~inside].mean(), 1e-300))


def cocluster_layer(values, phone_ids, starts, phone_names, n_clusters=6, response="update", sign="abs", seed=0,
                    min_frames=20, keep_phones=None):
    """One layer's analysis: values [N, H], phone_ids [N], starts bool [N] -> dict (numbers of the layer plus
    "matrix" [H, P_used] signed response, "phones" used, "row_labels", "col_labels")."""
    x = state_updates(values, starts) if response == "update" else np.asarray(values, dtype=np.float64)
    if response not in ("update", "mean"):
        raise InputError(f"unknown --response {response!r} (mean or update)")
    resp, counts = unit_phone_response(x, phone_ids, len(phone_names))
    use = counts >= min_frames
    if keep_phones is not None:
        use &= np.asarray(keep_phones, dtype=bool)
    if use.sum() < n_clusters:
        raise InputError(f"only {int(use.sum())} phones have >= {min_frames} frames; need >= --n-clusters "
                         f"({n_clusters})")
    matrix = resp[:, use]
    phones = [p for p, u in zip(phone_names, use) if u]
    mag = signed_part(matrix, sign)
    rows, cols = cocluster(mag, n_clusters, seed)
    blocks = block_means(np.abs(matrix), rows, cols, n_clusters)
    clusters = [{"phones": [p for p, c in zip(phones, cols) if c == k], "num_units": int((rows == k).sum()),
                 "units": np.flatnonzero(rows == k).tolist(),
                 "mean_abs_response": float(blocks[k, k]) if np.isfinite(blocks[k, k]) else None}
                for k in range(n_clusters)]
    return {"clusters": clusters, "block_mean_abs": blocks, "diagonal_ratio": diagonal_ratio(mag, rows, cols),
            "matrix": matrix, "phones": phones, "row_labels": rows, "col_labels": cols,
            "phone_counts": {p: int(c) for p, c, u in zip(phone_names, counts, use) if u}}


# ---------------------------------------------------------------------------------------------------------------
# Figures

def plot_matrix(out_dir, k, res, title):
    pyplot = setup_matplotlib()
    m, rows, cols, phones = res["matrix"], res["row_labels"], res["col_labels"], res["phones"]
    ro, co = np.argsort(rows, kind="stable"), np.argsort(cols, kind="stable")
    mm = m[np.ix_(ro, co)]
    lim = np.percentile(np.abs(mm), 99) or 1.0
    fig, ax = pyplot.subplots(figsize=(max(6, 0.25 * len(phones) + 2), 6))
    im = ax.imshow(mm, aspect="auto", cmap="RdBu_r", vmin=-lim, vmax=lim, interpolation="nearest")
    for b in np.flatnonzero(np.diff(rows[ro])) + 0.5:
        ax.axhline(b, color="k", lw=0.8)
    for b in np.flatnonzero(np.diff(cols[co])) + 0.5:
        ax.axvline(b, color="k", lw=0.8)
    ax.set_xticks(range(len(phones)))
    ax.set_xticklabels([phones[i] for i in co], rotation=90, fontsize=7)
    ax.set_ylabel("unit (grouped by cluster)")
    ax.set_title(title)
    fig.colorbar(im, ax=ax, label="expected response")
    return save_figure(fig, out_dir, f"matrix_layer{k}")


def plot_bipartite(out_dir, k, res, title):
    pyplot = setup_matplotlib()
    clusters, blocks = res["clusters"], np.nan_to_num(res["block_mean_abs"])
    n = len(clusters)
    fig, ax = pyplot.subplots(figsize=(9, 0.8 * n + 1.5))
    ys = np.arange(n)[::-1]
    wmax = blocks.max() or 1.0
    for a in range(n):
        for b in range(n):
            w = blocks[a, b] / wmax
            if w > 0.05:
                ax.plot([0.1, 0.9], [ys[a], ys[b]], color="tab:red" if a == b else "grey", lw=0.5 + 5 * w,
                        alpha=0.3 + 0.6 * w, zorder=1)
    sizes = np.array([c["num_units"] for c in clusters], dtype=float)
    ax.scatter(np.full(n, 0.1), ys, s=30 + 400 * sizes / max(sizes.max(), 1), color="tab:blue", zorder=2)
    ax.scatter(np.full(n, 0.9), ys, s=60, color="tab:orange", marker="s", zorder=2)
    for i, c in enumerate(clusters):
        ax.text(0.07, ys[i], f"U{i} ({c['num_units']} units)", ha="right", va="center", fontsize=8)
        names = " ".join(c["phones"])
        ax.text(0.93, ys[i], f"P{i}: {names if len(names) < 60 else names[:57] + '...'}", ha="left", va="center",
                fontsize=8)
    ax.set_xlim(-0.35, 1.6)
    ax.set_ylim(-0.7, n - 0.3)
    ax.axis("off")
    ax.set_title(title)
    return save_figure(fig, out_dir, f"bipartite_layer{k}")


# ---------------------------------------------------------------------------------------------------------------
# I/O

def run_cocluster(ext, out_dir, quantity=None, response="update", sign="abs", n_clusters=6, seed=0, min_frames=20,
                  no_silence=False, layers=None):
    """The analysis of a loaded Extraction ``ext``; writes figures + numbers.json; returns numbers."""
    quantity = quantity or MEMORY_QUANTITY.get(ext.cell, "h")
    if quantity not in ext.quantities:
        raise InputError(f"{ext.dir}: no quantity {quantity!r} (has {', '.join(ext.quantities)})")
    if not ext.has_phones:
        raise InputError(f"{ext.dir}: the extraction has no phone alignment")
    starts = utterance_starts(ext.offsets[:-1], ext.total_frames)
    phone_ids = np.asarray(ext.phone_ids)
    names = ext.phone_names
    keep = ~np.asarray(ext.is_silence, dtype=bool) if no_silence else None
    counts = np.bincount(phone_ids[phone_ids >= 0], minlength=len(names))
    dropped = [p for p, c in zip(names, counts) if c < min_frames]
    if dropped:
        log.info(f"{len(dropped)} phone(s) with < {min_frames} frames left out: {' '.join(dropped)}")
    numbers = {"extract_dir": ext.dir, "cell": ext.cell, "quantity": quantity, "response": response, "sign": sign,
               "n_clusters": n_clusters, "seed": seed, "min_frames": min_frames, "no_silence": no_silence,
               "phones_dropped": dropped, "layers": {}}
    for k in layers or range(1, ext.num_layers + 1):
        res = cocluster_layer(ext.values(k, quantity, dtype=np.float64), phone_ids, starts, names, n_clusters,
                              response, sign, seed, min_frames, keep)
        numbers["phones_used"] = res["phones"]
        numbers["layers"][str(k)] = {key: res[key] for key in ("clusters", "block_mean_abs", "diagonal_ratio",
                                                               "phone_counts")}
        title = f"layer {k} {quantity}: {response} response, {n_clusters} co-clusters"
        plot_matrix(out_dir, k, res, title)
        plot_bipartite(out_dir, k, res, title)
        log.info(f"layer {k}: diagonal ratio {res['diagonal_ratio']:.2f}; clusters " +
                 "; ".join(f"{c['num_units']} units / {' '.join(c['phones'])}" for c in res["clusters"]))
    write_numbers(out_dir, numbers)
    return numbers


def main():
    p = analysis_parser(__doc__)
    p.add_argument("--quantity", default=None)
    p.add_argument("--response", choices=("mean", "update"), default="update")
    p.add_argument("--sign", choices=("abs", "pos", "neg"), default="abs")
    p.add_argument("--n-clusters", type=int, default=6)
    p.add_argument("--min-frames", type=int, default=20)
    p.add_argument("--no-silence", action="store_true")
    p.add_argument("--layers", default="")
    a = p.parse_args()
    done = analysis_completion(a, "cocluster")
    if skip_if_done(done, a.out_dir, log):
        return 0
    from steps_py.memvis.data import Extraction
    ext = Extraction.load(a.extract_dir)
    run_cocluster(ext, a.out_dir, a.quantity, a.response, a.sign, a.n_clusters, a.seed, a.min_frames, a.no_silence,
                  [int(k) for k in a.layers.split(",") if k] or None)
    done.finish()
    return 0


if __name__ == "__main__":
    run_main(main)
