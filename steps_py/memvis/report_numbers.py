"""Key numbers of the analyses for people (steps_py.memvis.run_report, steps_py.memvis.report): each analysis's
numbers.json -> rows (label, text) with names a reader of Tang et al. understands, rounded, with their units
(% of frames, frames of 10 ms, AUC), one value per layer. Pure functions of the numbers.json objects."""
import math
import re

FRAME_SHIFT = 0.01  # s per frame, unless numbers.json says otherwise


# ----------------------------------------------------------------------------------------------------------------
# Numbers as text

def num(x, digits=3):
    """A number with ``digits`` significant digits, trailing zeros dropped (no exponent for 1e-3 <= |x| < 1e5):
    0.18104 -> "0.181", 0.1 -> "0.1", 18440 -> "18440"; None and NaN -> "-"."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if float(x).is_integer() and abs(x) < 1e5:
        return str(int(x))
    a = abs(x)
    if a < 1e-3 or a >= 1e5:
        return f"{x:.{digits - 1}e}"
    text = f"{x:.{max(0, digits - 1 - int(math.floor(math.log10(a))))}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def pct(x, digits=1):
    """A share in [0, 1] as a percentage: 0.7761 -> "77.6%"."""
    return "-" if x is None else f"{100 * x:.{digits}f}%"


def signed(x, digits=3):
    """A difference with its sign: +0.044, -1.2."""
    return "-" if x is None else ("+" if x > 0 else "") + num(x, digits)


def interval(ci, fmt=num):
    """[lo, hi] -> "[lo, hi]" with ``fmt``; None -> ""."""
    return f"[{fmt(ci[0])}, {fmt(ci[1])}]" if ci else ""


def frames(x, frame_shift=FRAME_SHIFT):
    """Frames -> "11.5 frames (115 ms)"."""
    if x is None:
        return "-"
    return f"{num(x)} frames ({num(1000 * x * frame_shift)} ms)"


def per_layer(values, fmt=num):
    """[v1, v2, ...] (or {"1": v1, ...}) -> "layer 1: v1, layer 2: v2"."""
    if isinstance(values, dict):
        values = [values[k] for k in sorted(values, key=int)]
    return ", ".join(f"layer {k}: {fmt(v)}" for k, v in enumerate(values, 1))


def noted(text, note):
    """``text`` followed by " (note)", or "" when there is no text."""
    return f"{text} ({note})" if text and note else text


def humanise(path):
    """A numbers.json key path as words: "per_layer[0].mean_best_phone_auc" -> "per layer 1: mean best phone auc"."""
    text = re.sub(r"\[(\d+)\]", lambda m: f" {int(m.group(1)) + 1}:", path)
    return re.sub(r"\s+", " ", text.replace(".", " ").replace("_", " ")).strip().rstrip(":")


# ----------------------------------------------------------------------------------------------------------------
# One function per analysis: numbers.json -> [(label, text)]

def _layers(numbers):
    """The per-layer entries of numbers["layers"] in layer order (a list, or a dict keyed "1", "2", ...)."""
    layers = numbers.get("layers") or []
    return [layers[k] for k in sorted(layers, key=int)] if isinstance(layers, dict) else list(layers)


def distributions_rows(n):
    layers = _layers(n)
    rows = [("share in the paper's range", noted(per_layer([d.get("share_in_range") for d in layers], pct),
                                                 "in " + n.get("range_definition", "").replace("GRU: ", "")))]
    if n.get("cell") != "gru":
        rows.append((f"share beyond the plot's clip (|value| > {num(n.get('clip'))})",
                     per_layer([d.get("share_beyond_clip") for d in layers], lambda x: pct(x, 2))))
    rows += [("standard deviation", per_layer([d.get("std") for d in layers])),
             ("1st .. 99th percentile",
              per_layer([(d.get("percentiles", {}).get("1"), d.get("percentiles", {}).get("99")) for d in layers],
                        lambda p: f"{num(p[0])} .. {num(p[1])}")),
             ("min .. max", per_layer([(d.get("min"), d.get("max")) for d in layers],
                                      lambda p: f"{num(p[0])} .. {num(p[1])}")),
             ("frames used", f"{num(n['frames_used'])} of {num(n.get('total_frames'))}" if "frames_used" in n
              else "")]
    return rows


def tsne_rows(n):
    return [("trace smoothness in the memory space (mean step / mean distance; lower = smoother)",
             per_layer(n.get("mean_smoothness_original") or [])),
            ("the same in the 2-D t-SNE plane", per_layer(n.get("mean_smoothness_embedding") or [])),
            ("utterances embedded", ", ".join(n.get("utts") or []))]


def noise_rows(n):
    shift = n.get("frame_shift", FRAME_SHIFT)
    burst = n.get("noise", {})
    layers = _layers(n)
    return [("noise burst", f"{num(burst.get('dur'))} s of white noise at {num(burst.get('start'))} s, "
                            f"{num(burst.get('db'))} dB relative to the utterance ({burst.get('mode', 'add')})"),
            ("memory persistence after the burst: median [quartiles]",
             per_layer([(d.get("persistence_frames_median"), d.get("persistence_frames_q25"),
                         d.get("persistence_frames_q75")) for d in layers],
                       lambda p: f"{frames(p[0], shift)} [{num(p[1])}, {num(p[2])}]")),
            ("never settled within the utterance (censored)",
             per_layer([d.get("censored_share") for d in layers], pct)),
            ("median over utterances of the mean over layers", frames(n.get("persistence_frames_median"), shift)),
            ("utterances", num(len(n.get("utterances") or {})))]


def responsibility_rows(n):
    dim = n.get("cell_dim")
    of = f" of {dim}" if dim else ""
    share = n.get("share_threshold")
    return [("share of irregular values", noted(per_layer(n.get("irregular_share_per_layer") or [], pct),
                                                n.get("irregular_definition", ""))),
            (f"units responsible for a phone (the paper's share on the phone, and {num(n.get('min_lift'))} x the "
             "unit's own rate)",
             noted(per_layer(n.get("responsible_units_per_layer") or [], lambda x: f"{num(x)}{of}"),
                   f"share >= {num(share)}" if share is not None else "")),
            ("units irregular on most frames (not phone-specific)",
             per_layer(n.get("irregular_everywhere_per_layer") or [], lambda x: f"{num(x)}{of}")),
            ("unit-phone pairs by the paper's criterion alone",
             per_layer([sum(row) for row in n.get("counts_absolute") or []]))]


def saturation_rows(n):
    low, high = num(n.get("low")), num(n.get("high"))
    rows = []
    for gate, layers in (n.get("per_gate") or {}).items():
        rows.append((f"gate {gate}: frames left-saturated (< {low}) / right-saturated (> {high}), mean over units",
                     per_layer([(d.get("mean_left"), d.get("mean_right")) for d in layers],
                               lambda p: f"{pct(p[0])} / {pct(p[1])}")))
    for gate, layers in (n.get("per_gate") or {}).items():
        rows.append((f"gate {gate}: units saturated on most frames, left / right",
                     per_layer([(d.get("units_mostly_left"), d.get("units_mostly_right")) for d in layers],
                               lambda p: f"{num(p[0])} / {num(p[1])}")))
    if n.get("gru_z"):
        rows.append(("GRU z convention", "Karpathy's: 1 - our z, so left-saturated = keeps its memory"))
    return rows


def units_rows(n):
    layers = n.get("per_layer") or []
    dim = n.get("cell_dim")
    return [("mean over units of the best phone AUC (0.5 = no information)",
             per_layer([d.get("mean_best_phone_auc") for d in layers])),
            (f"units with a phone AUC >= {num(n.get('auc_threshold'))}",
             per_layer([d.get("units_best_phone_auc_ge") for d in layers],
                       lambda x: f"{num(x)}" + (f" of {dim}" if dim else ""))),
            ("best silence detector (AUC)", per_layer([d.get("best_silence_auc") for d in layers])),
            ("best |correlation| with the position in the utterance",
             per_layer([d.get("best_abs_position_r") for d in layers]))]


def cocluster_rows(n):
    layers = _layers(n)
    return [("response inside the biclusters over outside (diagonal ratio; 1 = no structure)",
             per_layer([d.get("diagonal_ratio") for d in layers])),
            ("biclusters", f"{num(n.get('n_clusters'))} of units and phones, response: {n.get('response', '')}"),
            ("largest unit cluster",
             per_layer([max((c.get("num_units", 0) for c in d.get("clusters", [])), default=None) for d in layers]))]


def trajectories_rows(n):
    layers = _layers(n)
    return [("autoencoder (2-D code) reconstruction error, MSE of standardised units (1 = none)",
             per_layer([d.get("dae_reconstruction_mse") for d in layers])),
            ("PCA (2-D) reconstruction error", per_layer([d.get("pca_reconstruction_mse") for d in layers])),
            ("variance in the first two principal components",
             per_layer([d.get("pca_explained_variance_2d") for d in layers], pct))]


def horizon_rows(n):
    layers = _layers(n)
    return [("training horizon", frames(n.get("horizon_frames"))),
            ("99th percentile of |value| within / beyond the horizon",
             per_layer([(d.get("within", {}).get("p99"), d.get("beyond", {}).get("p99")) for d in layers],
                       lambda p: f"{num(p[0])} / {num(p[1])}")),
            ("frames beyond the horizon", per_layer([d.get("beyond", {}).get("frames") for d in layers]))]


READABLE = {"distributions": distributions_rows, "tsne": tsne_rows, "noise": noise_rows, "noise_late": noise_rows,
            "responsibility": responsibility_rows, "saturation": saturation_rows, "units": units_rows,
            "cocluster": cocluster_rows, "trajectories": trajectories_rows, "horizon": horizon_rows}


def readable_numbers(analysis, numbers, fallback=()):
    """Key numbers of one analysis for people: [(label, text)]. An analysis this module does not know gets the
    ``fallback`` rows ((key path, text), e.g. report_page.key_numbers) with their paths put into words."""
    rows = READABLE.get(analysis)
    if rows is None or not numbers:
        return [(humanise(k), v) for k, v in fallback]
    try:
        out = [(label, text) for label, text in rows(numbers) if text not in ("", "-")]
    except (KeyError, TypeError, ValueError, AttributeError, IndexError):  # an older or unusual numbers.json
        out = []
    return out or [(humanise(k), v) for k, v in fallback]


def side_by_side(rows_by_model):
    """{model: [(label, text)]} -> (labels in order of first appearance, {model: {label: text}}), for one table
    with a column per model."""
    labels = []
    for rows in rows_by_model.values():
        labels += [label for label, _ in rows if label not in labels]
    return labels, {m: dict(rows) for m, rows in rows_by_model.items()}
