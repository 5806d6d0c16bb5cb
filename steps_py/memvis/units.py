"""Usage: python -m steps_py.memvis.units [options] <extract-dir> <out-dir>

Interpretable units: how well each unit's value (memory quantity by default: LSTM c, GRU h) predicts
 (i)   each phone class: one-vs-rest ROC AUC over the aligned frames (0.5 = no information; a unit whose value
       falls on the phone has AUC < 0.5, so units are ranked by |AUC - 0.5|);
 (ii)  silence vs speech: AUC of silence frames (SIL/SPN/NSN, per phones/silence.txt) among aligned frames;
 (iii) relative position in the utterance t / (T - 1): Pearson correlation.
AUCs come from ranks (Mann-Whitney U; ties get average ranks) over at most --max-frames aligned frames drawn at
random (--seed). The top units for each property are drawn over the spectrogram of an utterance (--utt, default
the first) with its phone alignment.

Writes units_<utt>.png/.svg (Fbank spectrogram with phone labels, then the traces of the best silence unit, the
best position unit and the best unit of each of the --num-phone-traces most frequent speech phones),
units_summary.png/.svg (per layer: distribution over units of the best phone AUC, the silence AUC and |r| with
the position), and numbers.json: quantity, frames_used, phones, phone_frames, top_silence_units /
top_position_units ([[layer, unit, auc or r], ...]), top_units_per_phone {phone: [[layer, unit, auc], ...]},
per_layer {mean_best_phone_auc, units_best_phone_auc_ge (count of units whose best max(AUC, 1-AUC) >=
--auc-threshold), best_silence_auc, mean_silence_auc, best_abs_position_r, mean_abs_position_r}, traces (what
the utterance figure shows).
"""
import numpy as np

from steps_py.common import InputError, get_logger, run_main
from steps_py.completion import skip_if_done
from steps_py.memvis.data import Extraction
from steps_py.memvis.analysis import (analysis_completion, analysis_parser, extraction_info, memory_quantity,
                                      sample_frames, save_figure, setup_matplotlib, write_numbers)

log = get_logger("memvis.units")


def column_ranks(values):
    """values [N, H] -> ranks [N, H] float64 (1..N per column, ties averaged)."""
    from scipy.stats import rankdata
    return rankdata(np.asarray(values), axis=0, method="average")


def auc_from_ranks(ranks, positive):
    """ranks [N, H] (column_ranks), positive [N] bool -> AUC [H] = P(value of a positive > value of a negative)
    (+ half the ties); NaN when a class is empty."""
    positive = np.asarray(positive, dtype=bool)
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        return np.full(ranks.shape[1], np.nan)
    return (ranks[positive].sum(0) - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def phone_aucs(ranks, phone_ids, num_phones):
    """One-vs-rest AUC of every phone for every unit: ranks [N, H], phone_ids [N] (0..P-1) -> [P, H] (NaN for
    phones without frames)."""
    phone_ids = np.asarray(phone_ids)
    n = len(phone_ids)
    order = np.argsort(phone_ids, kind="stable")
    sorted_ids = phone_ids[order]
    frames = np.bincount(sorted_ids, minlength=num_phones)
    sums = np.zeros((num_phones, ranks.shape[1]))
    present = np.flatnonzero(frames)
    sums[present] = np.add.reduceat(ranks[order], np.searchsorted(sorted_ids, present), axis=0)
    n_pos = frames[:, None].astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        auc = (sums - n_pos * (n_pos + 1) / 2) / (n_pos * (n - n_pos))
    auc[(frames == 0) | (frames == n)] = np.nan
    return auc


def correlations(values, target):
    """Pearson correlation of each column of values [N, H] with target [N] -> [H] (NaN for constant columns)."""
    x = np.asarray(values, dtype=np.float64)
    y = np.asarray(target, dtype=np.float64)
    x = x - x.mean(0)
    y = y - y.mean()
    denom = np.sqrt((x ** 2).sum(0) * (y ** 2).sum())
    with np.errstate(invalid="ignore", divide="ignore"):
        return (x.T @ y) / denom


def top_by_strength(scores, centre, top):
    """scores [L, H] -> [[layer (1-based), unit, score], ...] of the ``top`` largest |score - centre|."""
    s = np.asarray(scores, dtype=np.float64)
    strength = np.nan_to_num(np.abs(s - centre), nan=-1.0).ravel()
    best = np.argsort(-strength, kind="stable")[:top]
    h = s.shape[1]
    return [[int(i // h) + 1, int(i % h), float(s.ravel()[i])] for i in best]


def analyse(ext, quantity=None, max_frames=100000, min_phone_frames=20, top=10, auc_threshold=0.8, seed=0,
            unit_block=32):
    """Extraction -> (numbers dict, aucs {"phone": [L, P, H], "silence": [L, H], "position": [L, H]})."""
    if not ext.has_phones:
        raise InputError(f"{ext.dir}: the extraction has no phone alignment")
    q = memory_quantity(ext, quantity)
    rng = np.random.default_rng(seed)
    frames = sample_frames(ext.total_frames, max_frames, rng, mask=ext.aligned_frames)
    phone_ids = ext.phone_ids[frames]
    silence = ext.silence_frames[frames]
    position = ext.relative_position[frames]
    names = ext.phone_names
    frame_counts = np.bincount(phone_ids, minlength=len(names))
    kept = [p for p in range(len(names)) if frame_counts[p] >= min_phone_frames]
    phone_auc, silence_auc, position_r = [], [], []
    for k in range(1, ext.num_layers + 1):
        x = ext.values(k, q, frames)
        layer_phone, layer_silence = np.zeros((len(names), ext.cell_dim)), np.zeros(ext.cell_dim)
        for start in range(0, ext.cell_dim, unit_block):  # blocks of units keep the float64 ranks small
            cols = slice(start, min(start + unit_block, ext.cell_dim))
            ranks = column_ranks(x[:, cols])
            layer_phone[:, cols] = phone_aucs(ranks, phone_ids, len(names))
            layer_silence[cols] = auc_from_ranks(ranks, silence)
        phone_auc.append(layer_phone)
        silence_auc.append(layer_silence)
        position_r.append(correlations(x, position))
    phone_auc, silence_auc, position_r = np.stack(phone_auc), np.stack(silence_auc), np.stack(position_r)
    per_layer = []
    for k in range(ext.num_layers):
        a = phone_auc[k][kept]
        best = np.nanmax(np.maximum(a, 1 - a), axis=0) if len(kept) else np.full(ext.cell_dim, np.nan)
        sil = np.maximum(silence_auc[k], 1 - silence_auc[k])
        per_layer.append({"mean_best_phone_auc": float(np.nanmean(best)),
                          "units_best_phone_auc_ge": int(np.sum(best >= auc_threshold)),
                          "best_silence_auc": float(np.nanmax(sil)) if np.isfinite(sil).any() else None,
                          "mean_silence_auc": float(np.nanmean(sil)) if np.isfinite(sil).any() else None,
                          "best_abs_position_r": float(np.nanmax(np.abs(position_r[k]))),
                          "mean_abs_position_r": float(np.nanmean(np.abs(position_r[k])))})
    numbers = {"analysis": "units", **extraction_info(ext), "quantity": q, "frames_used": int(len(frames)),
               "frame_sampling": "aligned frames, uniform without replacement, seeded"
               if len(frames) < int(ext.aligned_frames.sum()) else "all aligned frames",
               "seed": seed, "auc_threshold": auc_threshold, "min_phone_frames": min_phone_frames,
               "phones": [names[p] for p in kept], "phone_frames": [int(frame_counts[p]) for p in kept],
               "silence_frames": int(silence.sum()),
               "top_silence_units": top_by_strength(silence_auc, 0.5, top),
               "top_position_units": top_by_strength(position_r, 0.0, top),
               "top_units_per_phone": {names[p]: top_by_strength(phone_auc[:, p, :], 0.5, min(top, 3))
                                       for p in kept},
               "per_layer": per_layer}
    return numbers, {"phone": phone_auc, "silence": silence_auc, "position": position_r}


def choose_traces(ext, numbers, num_phone_traces=3):
    """[(label, layer, unit, phone or None)] drawn over the utterance: best silence unit, best position unit, best
    unit of the most frequent speech phones."""
    traces = []
    if numbers["top_silence_units"]:
        k, u, s = numbers["top_silence_units"][0]
        traces.append((f"silence AUC {s:.2f}", k, u, None))
    k, u, s = numbers["top_position_units"][0]
    traces.append((f"position r {s:+.2f}", k, u, None))
    silence = set(n for n, s in zip(ext.phone_names, ext.is_silence) if s)
    speech = sorted(((f, p) for p, f in zip(numbers["phones"], numbers["phone_frames"]) if p not in silence),
                    reverse=True)
    for _, p in speech[:num_phone_traces]:
        k, u, s = numbers["top_units_per_phone"][p][0]
        traces.append((f"{p} AUC {s:.2f}", k, u, p))
    return traces


def plot_utterance(ext, utt, quantity, traces):
    plt = setup_matplotlib()
    sl = ext.utt_slice(utt)
    feats = np.asarray(ext.feats[sl], dtype=np.float32)
    num_frames = len(feats)
    segments = ext.phone_segments(utt)
    fig, all_axes = plt.subplots(2 + len(traces), 1, figsize=(min(14, 2 + num_frames / 40), 1.9 + 0.9 * len(traces)),
                                 sharex=True, gridspec_kw={"height_ratios": [2.2, 0.35] + [1] * len(traces)})
    ax, label_ax, axes = all_axes[0], all_axes[1], [all_axes[0]] + list(all_axes[2:])
    ax.imshow(feats.T, origin="lower", aspect="auto", cmap="magma", interpolation="nearest",
              extent=(-0.5, num_frames - 0.5, -0.5, feats.shape[1] - 0.5))
    ax.set_ylabel("Fbank bin")
    ax.set_title(f"{utt}: {' '.join(ext.words(utt))}", fontsize=7, loc="left")
    label_ax.axis("off")
    label_ax.set_ylim(0, 1)
    for i, (s, e, p) in enumerate(segments):
        for a in axes:
            a.axvline(s - 0.5, color="w" if a is ax else "0.85", lw=0.4)
        if p is not None:
            label_ax.text((s + e - 1) / 2, 0.75 - 0.5 * (i % 2), p, ha="center", va="center", fontsize=5)
    t = np.arange(num_frames)
    for a, (label, k, u, phone) in zip(axes[1:], traces):
        v = np.asarray(ext.layer(k)[quantity][sl, u], dtype=np.float32)
        if phone is not None:
            for s, e, p in segments:
                if p == phone:
                    a.axvspan(s - 0.5, e - 0.5, color="C1", alpha=0.25, lw=0)
        elif label.startswith("silence"):
            for s, e, p in segments:
                if p is not None and ext.is_silence[ext.phone_names.index(p)]:
                    a.axvspan(s - 0.5, e - 0.5, color="C2", alpha=0.2, lw=0)
        a.plot(t, v, lw=0.8, color="C0")
        a.set_ylabel(f"L{k} u{u}", fontsize=6)
        a.text(0.005, 0.95, label, transform=a.transAxes, fontsize=6, va="top",
               bbox={"facecolor": "w", "alpha": 0.7, "lw": 0})
    axes[-1].set_xlabel(f"frame ({1000 * ext.frame_shift:.0f} ms)")
    fig.subplots_adjust(hspace=0.3)
    return fig


def plot_summary(numbers, aucs):
    plt = setup_matplotlib()
    phone_auc = aucs["phone"]
    keep = [i for i in range(phone_auc.shape[1]) if np.isfinite(phone_auc[:, i, :]).any()]
    best = np.nanmax(np.maximum(phone_auc[:, keep], 1 - phone_auc[:, keep]), axis=1) if keep else \
        np.full(aucs["silence"].shape, np.nan)
    panels = [("best phone AUC (max(AUC, 1-AUC))", best),
              ("silence AUC (max(AUC, 1-AUC))", np.maximum(aucs["silence"], 1 - aucs["silence"])),
              ("|r| with relative position", np.abs(aucs["position"]))]
    fig, axes = plt.subplots(1, 3, figsize=(9, 2.6))
    for ax, (title, data) in zip(axes, panels):
        cols = [d[np.isfinite(d)] for d in data]
        ax.boxplot(cols, showfliers=True, flierprops={"markersize": 2})
        ax.set_xticks(range(1, len(cols) + 1), [f"L{k}" for k in range(1, len(cols) + 1)])
        ax.set_title(title)
    fig.suptitle(f"{numbers['cell'].upper()} {numbers['quantity']}: how well single units predict phone, "
                 "silence and position")
    fig.tight_layout()
    return fig


def main():
    p = analysis_parser(__doc__)
    p.add_argument("--quantity", default=None, help="quantity (default: c for LSTM, h otherwise)")
    p.add_argument("--max-frames", type=int, default=100000, help="aligned frames drawn (0 = all)")
    p.add_argument("--min-phone-frames", type=int, default=20, help="phones with fewer frames are left out")
    p.add_argument("--top", type=int, default=10, help="top units listed for silence and position")
    p.add_argument("--auc-threshold", type=float, default=0.8)
    p.add_argument("--utt", default=None, help="utterance drawn (default: the first)")
    p.add_argument("--num-phone-traces", type=int, default=3)
    a = p.parse_args()
    done = analysis_completion(a, "units")
    if skip_if_done(done, a.out_dir, log):
        return 0
    ext = Extraction.load(a.extract_dir)
    numbers, aucs = analyse(ext, a.quantity, a.max_frames, a.min_phone_frames, a.top, a.auc_threshold, a.seed)
    utt = a.utt or ext.utts[0]
    ext.utt_slice(utt)
    traces = choose_traces(ext, numbers, a.num_phone_traces)
    numbers["utt"] = utt
    numbers["traces"] = [{"label": t[0], "layer": t[1], "unit": t[2], "phone": t[3]} for t in traces]
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in utt)
    numbers["figures"] = (save_figure(plot_utterance(ext, utt, numbers["quantity"], traces), a.out_dir,
                                      f"units_{safe}") +
                          save_figure(plot_summary(numbers, aucs), a.out_dir, "units_summary"))
    write_numbers(a.out_dir, numbers)
    done.finish()
    log.info(f"best silence unit {numbers['top_silence_units'][0]}, best position unit "
             f"{numbers['top_position_units'][0]}; mean best phone AUC per layer: " +
             ", ".join(f"{d['mean_best_phone_auc']:.3f}" for d in numbers["per_layer"]))


if __name__ == "__main__":
    run_main(main)
