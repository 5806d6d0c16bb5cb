"""The statistics of the memory analyses that more than one analysis reports (pure functions of extractions and
arrays): value distributions and the paper's value ranges (Fig. 1), gate saturation (Karpathy et al. 2015), and the
smoothness of memory traces (Fig. 2).
"""
import numpy as np

from steps_py.common import InputError
from steps_py.memvis.analysis import GATE_QUANTITIES, extraction_info, memory_quantity, sample_frames, sample_units


# ---------------------------------------------------------------------------------------------------------------
# Value distributions (steps_py.memvis.distributions)

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


def distribution_numbers(ext, num_units=50, max_frames=200000, quantity=None, clip=10.0, bins=100, lstm_range=2.0,
            gru_edge=0.7, seed=0):
    """Extraction -> the numbers of steps_py.memvis.distributions (see there)."""
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


# ---------------------------------------------------------------------------------------------------------------
# Gate saturation (steps_py.memvis.saturation)

def saturation_fractions(gate_values, low=0.1, high=0.9):
    """gate_values [N, H] -> (left [H] = P(v < low), right [H] = P(v > high)) over the N frames."""
    g = np.asarray(gate_values)
    return (g < low).mean(0), (g > high).mean(0)


def saturation_numbers(ext, low=0.1, high=0.9, max_frames=200000, seed=0):
    """Extraction -> the numbers of steps_py.memvis.saturation (see there). A GRU's z is given in Karpathy et al.'s
    convention (1 - ours), so that a left-saturated gate keeps the memory as an LSTM's left-saturated i does."""
    gates = [g for g in GATE_QUANTITIES.get(ext.cell, ()) if g in ext.quantities]
    if not gates:
        raise InputError(f"{ext.dir}: a {ext.cell} extraction with quantities {ext.quantities} has no gates "
                         f"(LSTM: i, f, o; GRU: z, r)")
    rng = np.random.default_rng(seed)
    frames = sample_frames(ext.total_frames, max_frames, rng)
    per_gate = {}
    for g in gates:
        layers = []
        for k in range(1, ext.num_layers + 1):
            values = ext.values(k, g, frames)
            if ext.cell == "gru" and g == "z":
                values = 1.0 - values      # Karpathy's z weighs the candidate; ours weighs the kept state
            left, right = saturation_fractions(values, low, high)
            layers.append({"mean_left": float(left.mean()), "mean_right": float(right.mean()),
                           "mean_unsaturated": float(1 - left.mean() - right.mean()),
                           "units_mostly_left": int((left > 0.5).sum()),
                           "units_mostly_right": int((right > 0.5).sum()),
                           "left": np.round(left, 4), "right": np.round(right, 4)})
        per_gate[g] = layers
    return {"analysis": "saturation", **extraction_info(ext), "gates": gates, "low": low, "high": high,
            "gru_z": "Karpathy et al.'s convention, h = (1 - z) h_prev + z candidate: 1 - the z of our GRU (which "
                     "weighs the kept state), so left-saturated z means keeping the memory" if ext.cell == "gru"
            else None,
            "frames_used": int(len(frames)), "seed": seed,
            "frame_sampling": "uniform without replacement, seeded" if len(frames) < ext.total_frames
            else "all frames", "per_gate": per_gate}


# ---------------------------------------------------------------------------------------------------------------
# Trace smoothness (steps_py.memvis.compare, tsne, findings)

def step_lengths(values, offsets):
    """||x_t - x_{t-1}|| for consecutive frames within each utterance: values [N, H], offsets [U + 1] -> [N - U]."""
    x = np.asarray(values, dtype=np.float64)
    d = np.linalg.norm(np.diff(x, axis=0), axis=1)
    keep = np.ones(len(d), dtype=bool)
    inner = np.asarray(offsets[1:-1], dtype=np.int64)
    keep[inner[(inner >= 1) & (inner <= len(d))] - 1] = False  # the step from one utterance's last frame to the next
    return d[keep]


def mean_pair_distance(values, rng, num_pairs=20000):
    """Mean ||x_i - x_j|| over ``num_pairs`` random frame pairs i != j of values [N, H]."""
    x = np.asarray(values, dtype=np.float64)
    n = len(x)
    if n < 2:
        return float("nan")
    i = rng.integers(0, n, num_pairs)
    j = (i + rng.integers(1, n, num_pairs)) % n
    return float(np.linalg.norm(x[i] - x[j], axis=1).mean())


def smoothness(values, offsets=None, rng=None, num_pairs=20000):
    """Mean step length within utterances / mean distance of random frame pairs (0 = constant trace, ~1.4 = as
    rough as independent frames). values [N, H]; offsets [U + 1] (None: one utterance); rng: the pairs' generator
    (None: seed 0). NaN for fewer than 3 frames or constant values."""
    x = np.asarray(values, dtype=np.float64)
    if len(x) < 3:
        return float("nan")
    steps = step_lengths(x, [0, len(x)] if offsets is None else offsets)
    pairs = mean_pair_distance(x, np.random.default_rng(0) if rng is None else rng, num_pairs)
    return float(steps.mean() / pairs) if len(steps) and pairs > 0 else float("nan")


def uniform_shares(values, lstm_range=2.0, gru_edge=0.7):
    """P(|v| < lstm_range) and P(gru_edge <= |v| <= 1) of values (any shape)."""
    a = np.abs(np.asarray(values, dtype=np.float64))
    return {"share_abs_below_2": float(np.mean(a < lstm_range)),
            "share_near_one": float(np.mean((a >= gru_edge) & (a <= 1.0)))}


# ---------------------------------------------------------------------------------------------------------------
# Per-utterance statistics (the samples that steps_py.memvis.findings bootstraps)

def utterance_smoothness(values, offsets, center=None, scale=None, rng=None, num_pairs=2000):
    """Smoothness of each utterance's trace: its mean step ||x_t - x_{t-1}|| over the mean distance of random
    frame pairs of the same utterance -> [U]. 1 = as rough as independent frames, 3 / (T + 1) for a straight line
    at constant speed, 0 = constant; NaN under 3 frames. values [N, H]; offsets [U + 1]; center, scale [H]: each
    unit is standardised, (x - center) / scale, so that a few large units do not dominate (the per-unit mean and
    std over the set; a unit of scale 0 is only centred); rng: the pairs (None: seed 0)."""
    rng = np.random.default_rng(0) if rng is None else rng
    if scale is not None:
        scale = np.where(np.asarray(scale) > 0, scale, 1.0)
    out = np.full(len(offsets) - 1, np.nan)
    for u, (a, b) in enumerate(zip(offsets[:-1], offsets[1:])):
        T = int(b - a)
        if T < 3:
            continue
        seg = np.asarray(values[a:b], dtype=np.float64)
        if center is not None:
            seg = (seg - center) / (scale if scale is not None else 1.0)
        steps = np.linalg.norm(np.diff(seg, axis=0), axis=1).mean()
        i = rng.integers(0, T, num_pairs)
        j = (i + rng.integers(1, T, num_pairs)) % T
        pairs = np.linalg.norm(seg[i] - seg[j], axis=1).mean()
        out[u] = steps / pairs if pairs > 0 else np.nan
    return out


def utterance_range_shares(values, offsets, cell, lstm_range=2.0, gru_edge=0.7):
    """range_shares' share_in_range of each utterance (all its frames and units): values [N, H], offsets [U + 1]
    -> [U] (LSTM: P(|v| < lstm_range); GRU: P(gru_edge <= |v| <= 1))."""
    a = np.abs(np.asarray(values, dtype=np.float64))
    inside = ((a >= gru_edge) & (a <= 1.0)) if cell == "gru" else (a < lstm_range)
    per_frame = inside.mean(1)
    lengths = np.diff(offsets)
    sums = np.add.reduceat(per_frame, offsets[:-1]) if len(per_frame) else np.zeros(len(lengths))
    return np.where(lengths > 0, sums / np.maximum(lengths, 1), np.nan)
