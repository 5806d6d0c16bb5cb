"""Usage: python -m steps_py.memvis_report [options] <extract-dir> <memvis-dir> <out-html>

Writes one self-contained HTML page about the memory of a recurrent acoustic model:
  1. the figures of every analysis found in <memvis-dir>/<analysis>/ (*.png, or *.svg when there is no PNG of the
     same name) with the numbers of its numbers.json (its "summary" object, if any, shown first as key numbers);
  2. the findings table of findings.json (steps_py.memvis_findings: claims {id, paper, measured, holds, how}), if
     there is one;
  3. an interactive explorer (plain JS on <canvas>): pick an utterance, a layer, a quantity (c, h, gates) and units;
     heat map units x frames aligned with the Fbank spectrogram and the phone tier (words listed per utterance);
     values on hover; for one unit its per-phone box plots, for one phone the units that respond most.

The page opens from disk: no server, no network, no external library. Cell values are stored as small integer
codes (linear, or logarithmic for wide-range quantities such as LSTM cells), delta-coded along time and deflated; the
browser inflates them with its built-in DecompressionStream. Per-phone quartiles and unit rankings are computed
here from all extracted utterances (or an evenly strided subset of --stats-max-frames frames).

Options:
  --utts N               utterances shipped to the explorer (first N of the extraction, default 20)
  --max-frames N         frames shipped per utterance (longer ones are cut, default 1000 = 10 s)
  --layers LIST          comma list of 1-based layers to ship (default all)
  --quantities LIST      comma list of quantities to ship (default all of the extraction, e.g. c,h,i,f,o)
  --stats-max-frames N   frames used for the per-phone statistics (default 200000)
  --top-units N          units ranked per phone (default 20)
  --bits N               bits per shipped value, 2..8 (default 6: 63 levels for bounded quantities, about 6 %
                         relative error for log-coded LSTM cells; 8 bits make the page about 1.5 times larger)
  --title TEXT           page title
  --findings FILE        findings.json to show (default: <memvis-dir>/findings.json or <memvis-dir>/*/findings.json)
Self-test: open <out-html>#selftest; the page exercises its explorer and writes the outcome into
<div id="selftest-result"> (tests/test_memvis_report.py runs it in headless Chromium).
"""
import argparse
import base64
import datetime
import html
import json
import math
import os
import zlib

import numpy as np

from steps_py.common import InputError, atomic_open, get_logger, progress, run_main

logger = get_logger("memvis_report")

ASSET_DIR = os.path.dirname(os.path.abspath(__file__))
BOX_PERCENTILES = (5.0, 25.0, 50.0, 75.0, 95.0)  # whisker low, Q1, median, Q3, whisker high
RANGE_PERCENTILE = 99.0  # default colour scale: this percentile of |value| (values beyond get the end colour)
LINEAR_MAX_ABS = 2.0  # quantities with |value| up to this get a linear int8 code, wider ones a logarithmic code


# ----------------------------------------------------------------------------------------------------------------
# Quantisation and blob coding (pure functions)

def make_codec(values, bits=8, knee=1.0):
    """A code of ``bits`` (2..8) bits for ``values`` (any shape, float), stored in int8 with codes in
    [-M, M], M = 2**(bits-1) - 1: dict {kind, step, max_code[, offset][, knee]}.

    kind "linear": value = offset + code * step, offset = (max + min) / 2, step = (max - min) / (2 M) (bounded
    quantities: gates, h, GRU memory).
    kind "log": value = sign(code) * knee * expm1(|code| * step), step = log1p(max|v| / knee) / M (wide tails:
    LSTM cells; relative error about step/2 for |v| >> knee, absolute error about knee*step/2 near 0).
    """
    finite = np.asarray(values, dtype=np.float32)
    finite = finite[np.isfinite(finite)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (-1.0, 1.0)
    max_abs = max(abs(lo), abs(hi), 1e-6)
    if not 2 <= bits <= 8:
        raise InputError(f"--bits must be 2..8, got {bits}")
    max_code = 2 ** (bits - 1) - 1
    if max_abs <= LINEAR_MAX_ABS:
        return {"kind": "linear", "offset": (hi + lo) / 2, "step": max(hi - lo, 1e-6) / (2 * max_code),
                "max_code": max_code}
    return {"kind": "log", "knee": float(knee), "step": math.log1p(max_abs / knee) / max_code, "max_code": max_code}


def quantise(values, codec):
    """float array -> int8 codes of the same shape (NaN -> 0, out of range clipped to +-max_code)."""
    v = np.nan_to_num(np.asarray(values, dtype=np.float64), nan=0.0)
    if codec["kind"] == "linear":
        q = (v - codec["offset"]) / codec["step"]
    else:
        q = np.sign(v) * np.log1p(np.abs(v) / codec["knee"]) / codec["step"]
    return np.clip(np.rint(q), -codec["max_code"], codec["max_code"]).astype(np.int8)


def dequantise(codes, codec):
    """int8 codes -> float32 values (the inverse of quantise up to rounding)."""
    q = np.asarray(codes, dtype=np.float64)
    if codec["kind"] == "linear":
        v = codec["offset"] + q * codec["step"]
    else:
        v = np.sign(q) * codec["knee"] * np.expm1(np.abs(q) * codec["step"])
    return v.astype(np.float32)


def encode_blob(codes):
    """int8/uint8 array -> base64 text of its zlib-deflated bytes (C order)."""
    return base64.b64encode(zlib.compress(np.ascontiguousarray(codes).tobytes(), 6)).decode("ascii")


def decode_blob(text, dtype=np.int8):
    """The inverse of encode_blob: a flat array of ``dtype``."""
    return np.frombuffer(zlib.decompress(base64.b64decode(text)), dtype=dtype)


def delta_along_rows(codes):
    """int8 [R, T] -> int8 [R, T] of differences along T (first column kept), wrapping modulo 256.

    The browser undoes it with a running sum per row; smooth traces become runs of small numbers that deflate well.
    """
    c = np.asarray(codes, dtype=np.int8)
    d = c.copy()
    d[:, 1:] = (c[:, 1:].astype(np.int16) - c[:, :-1].astype(np.int16)).astype(np.int8)  # wraps like uint8 maths
    return d


def undelta_along_rows(deltas):
    """The inverse of delta_along_rows."""
    return np.cumsum(np.asarray(deltas, dtype=np.int64), axis=1).astype(np.uint8).view(np.int8)


def encode_trace(values, codec):
    """Values [T, H] of one utterance -> blob of unit-major int8 deltas [H, T] (see delta_along_rows)."""
    return encode_blob(delta_along_rows(quantise(np.asarray(values).T, codec)))


def decode_trace(text, codec, num_frames):
    """The inverse of encode_trace: float32 values [T, H]."""
    codes = undelta_along_rows(decode_blob(text).reshape(-1, num_frames))
    return dequantise(codes, codec).T


# ----------------------------------------------------------------------------------------------------------------
# Statistics per phone (pure functions)

def phone_segments(phone_ids):
    """Frame phone ids [T] -> list of [start, end, phone_id] runs (end exclusive, frames)."""
    ids = np.asarray(phone_ids)
    if ids.size == 0:
        return []
    starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
    ends = np.r_[starts[1:], ids.size]
    return [[int(s), int(e), int(ids[s])] for s, e in zip(starts, ends)]


def stride_frames(num_frames, max_frames):
    """Indices of an evenly strided subset of at most ``max_frames`` of ``num_frames`` frames (all if fewer)."""
    if num_frames <= max_frames:
        return np.arange(num_frames)
    return np.linspace(0, num_frames - 1, max_frames).round().astype(np.int64)


def phone_box_stats(values, phone_ids, num_phones, percentiles=BOX_PERCENTILES):
    """Per-phone percentiles of every unit.

    values [N, H] float, phone_ids [N] int in [0, num_phones) -> (stats [H, P, len(percentiles)] float32, NaN
    for phones without frames; counts [P] int64 frames per phone).
    """
    values = np.asarray(values, dtype=np.float32)
    phone_ids = np.asarray(phone_ids, dtype=np.int64)
    counts = np.bincount(phone_ids, minlength=num_phones)[:num_phones]
    stats = np.full((values.shape[1], num_phones, len(percentiles)), np.nan, dtype=np.float32)
    order = np.argsort(phone_ids, kind="stable")
    bounds = np.r_[0, np.cumsum(counts)]
    for p in np.flatnonzero(counts):
        rows = values[order[bounds[p]:bounds[p + 1]]]
        stats[:, p, :] = np.percentile(rows, percentiles, axis=0).T
    return stats, counts


def phone_selectivity(values, phone_ids, num_phones):
    """How much each unit's value on a phone differs from its value overall, in standard deviations.

    values [N, H], phone_ids [N] -> d [P, H] = (mean over frames of phone p - mean over all frames) / std over all
    frames (NaN for phones without frames; units with std 0 get d = 0).
    """
    values = np.asarray(values, dtype=np.float64)
    phone_ids = np.asarray(phone_ids, dtype=np.int64)
    counts = np.bincount(phone_ids, minlength=num_phones)[:num_phones]
    sums = np.zeros((num_phones, values.shape[1]))
    present = np.flatnonzero(counts)
    if present.size:
        order = np.argsort(phone_ids, kind="stable")
        starts = np.r_[0, np.cumsum(counts)][present]
        sums[present] = np.add.reduceat(values[order], starts, axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = sums / counts[:, None]
    std = values.std(axis=0)
    d = (means - values.mean(axis=0)) / np.where(std > 0, std, np.inf)
    d[counts == 0] = np.nan
    return d


def rank_units(selectivity, top):
    """d [P, H] -> {phone_id: [[unit, d], ...]} the ``top`` units of largest |d| per phone (phones with frames)."""
    ranking = {}
    for p, row in enumerate(selectivity):
        if np.all(np.isnan(row)):
            continue
        order = np.argsort(-np.abs(row), kind="stable")[:top]
        ranking[str(p)] = [[int(u), round(float(row[u]), 3)] for u in order]
    return ranking


def colour_range(values):
    """Suggested colour scale [lo, hi] of a quantity: [0, p99] for non-negative values (gates), else symmetric
    +-p99 of |v| (LSTM cells are wide-tailed; the page lets the user change it)."""
    v = np.asarray(values, dtype=np.float32).ravel()
    v = v[np.isfinite(v)]
    if v.size == 0:
        return [-1.0, 1.0]
    v = v[::max(1, v.size // 1000000)]  # a strided sample of at most ~1e6 values is plenty for a percentile
    if v.min() >= 0:
        return [0.0, float(max(np.percentile(v, RANGE_PERCENTILE), 1e-6))]
    a = float(max(np.percentile(np.abs(v), RANGE_PERCENTILE), 1e-6))
    return [-a, a]


# ----------------------------------------------------------------------------------------------------------------
# Analyses and findings from <memvis-dir>

def flatten_numbers(obj, prefix="", max_list=8):
    """A numbers.json object -> rows (key, text): nested dicts joined with '.', short lists shown inline, long lists
    summarised as their length, min and max, numbers with 4 significant digits."""
    rows = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            rows += flatten_numbers(v, f"{prefix}.{k}" if prefix else str(k), max_list)
    elif isinstance(obj, list) and obj and all(isinstance(x, dict) for x in obj) and len(obj) <= max_list:
        for i, v in enumerate(obj):
            rows += flatten_numbers(v, f"{prefix}[{i}]", max_list)
    elif isinstance(obj, list):
        nums = [x for x in obj if isinstance(x, (int, float)) and not isinstance(x, bool)]
        if len(obj) <= max_list and all(not isinstance(x, (list, dict)) for x in obj):
            rows.append((prefix, "[" + ", ".join(format_value(x) for x in obj) + "]"))
        elif nums and len(nums) == len(obj):
            rows.append((prefix, f"{len(obj)} values, min {format_value(min(nums))}, max {format_value(max(nums))}"))
        else:
            rows.append((prefix, f"list of {len(obj)} items"))
    else:
        rows.append((prefix, format_value(obj)))
    return rows


def key_numbers(numbers, limit=12):
    """The rows of a numbers.json object worth showing at once: the rows of its "summary" object if it has one,
    else the first ``limit`` measurements (floating-point numbers below the top level, where the settings live)
    -> rows (key, text)."""
    if isinstance(numbers, dict) and isinstance(numbers.get("summary"), dict):
        return flatten_numbers(numbers["summary"])
    rows = []

    def walk(obj, path, depth):
        if isinstance(obj, dict):
            for k, v in obj.items():
                walk(v, f"{path}.{k}" if path else str(k), depth + 1)
        elif isinstance(obj, list) and len(obj) <= 8 and all(isinstance(x, dict) for x in obj):
            for i, v in enumerate(obj):
                walk(v, f"{path}[{i}]", depth + 1)
        elif isinstance(obj, float) and depth > 1:
            rows.append((path, format_value(obj)))

    walk(numbers, "", 0)
    return rows[:limit]


def format_value(x):
    """A scalar as short text: floats with 4 significant digits, booleans as yes/no, None as n/a."""
    if x is None:
        return "n/a"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, float):
        return "nan" if math.isnan(x) else f"{x:.4g}"
    return str(x)


def read_json(path):
    """A JSON file -> object; InputError naming the file when it does not parse."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        raise InputError(f"{path}: cannot read JSON: {e}") from None


def collect_analyses(memvis_dir):
    """Every subdirectory of memvis_dir holding figures or numbers.json ->
    list of {name, figures: [{name, mime, data (base64)}], numbers: [(key, text)], key_numbers: [(key, text)]}
    sorted by name."""
    analyses = []
    if not os.path.isdir(memvis_dir):
        raise InputError(f"no such directory {memvis_dir}")
    for name in sorted(os.listdir(memvis_dir)):
        d = os.path.join(memvis_dir, name)
        if not os.path.isdir(d):
            continue
        files = sorted(os.listdir(d))
        stems_png = {f[:-4] for f in files if f.endswith(".png")}
        figures = []
        for f in files:
            if f.endswith(".png") or (f.endswith(".svg") and f[:-4] not in stems_png):
                mime = "image/png" if f.endswith(".png") else "image/svg+xml"
                with open(os.path.join(d, f), "rb") as fh:
                    figures.append({"name": f, "mime": mime, "data": base64.b64encode(fh.read()).decode("ascii")})
        numbers_path = os.path.join(d, "numbers.json")
        obj = read_json(numbers_path) if os.path.isfile(numbers_path) else {}
        numbers, key = flatten_numbers(obj), key_numbers(obj)
        if figures or numbers:
            analyses.append({"name": name, "figures": figures, "numbers": numbers, "key_numbers": key})
    return analyses


def find_findings(memvis_dir, path=None):
    """(path, claims) of findings.json: ``path`` if given, else the first of memvis_dir/findings.json and
    memvis_dir/*/findings.json; (None, []) when there is none.

    The file holds a list of {claim (or id), paper, measured, holds[, how]} or an object with such a list under
    "claims" (as steps_py.memvis_findings writes it)."""
    if path is not None and not os.path.isfile(path):
        raise InputError(f"no such file {path}")
    candidates = [path] if path else [os.path.join(memvis_dir, "findings.json")]
    if not path and os.path.isdir(memvis_dir):
        candidates += [os.path.join(memvis_dir, d, "findings.json") for d in sorted(os.listdir(memvis_dir))]
    for path in candidates:
        if os.path.isfile(path):
            obj = read_json(path)
            claims = obj.get("claims", obj.get("findings")) if isinstance(obj, dict) else obj
            if not isinstance(claims, list) or not all(isinstance(c, dict) for c in claims):
                raise InputError(f"{path}: expected a list of {{claim, paper, measured, holds}} objects")
            return path, claims
    return None, []


# ----------------------------------------------------------------------------------------------------------------
# Explorer data from the extraction

def parse_list(text, what):
    """'c,h' -> ['c', 'h']; None -> None."""
    if text is None:
        return None
    items = [x.strip() for x in text.split(",") if x.strip()]
    if not items:
        raise InputError(f"empty --{what}")
    return items


def explorer_data(ext, num_utts, max_frames, layers=None, quantities=None, stats_max_frames=200000, top_units=20,
                  bits=6):
    """The explorer's inline JSON (see memvis_report.js for how it is read) from an Extraction.

    Per shipped utterance: words, phone segments [[start, end, phone_id]], Fbank (uint8 [40, T] deflated) and per
    layer and quantity the values (encode_trace, ``bits`` bits). Per layer and quantity: the codec, a colour range,
    per-phone box statistics of every unit (int8 [H, P, 5] in an 8-bit code of its own, deflated) and the top units
    per phone.
    """
    all_layers = list(range(1, int(ext.num_layers) + 1))
    layers = [int(k) for k in layers] if layers else all_layers
    for k in layers:
        if k not in all_layers:
            raise InputError(f"--layers: no layer {k} in the extraction (layers 1..{len(all_layers)})")
    utts = list(ext.utts)[:num_utts]
    if not utts:
        raise InputError("the extraction holds no utterances")
    slices = [ext.utt_slice(u) for u in utts]
    shipped = [slice(s.start, min(s.stop, s.start + max_frames)) for s in slices]
    phone_ids = np.asarray(ext.phone_ids)
    phone_names = [str(p) for p in ext.phone_names]
    num_phones = len(phone_names)
    if phone_ids.size and phone_ids.max() >= num_phones:
        raise InputError(f"{ext.dir}: phone ids beyond the {num_phones} phone names")
    aligned = np.flatnonzero(phone_ids >= 0)  # -1 = frame without alignment: no statistics
    stat_frames = aligned[stride_frames(aligned.size, stats_max_frames)]
    stat_phones = phone_ids[stat_frames]

    feats = np.asarray(ext.feats)
    feat_rows = np.concatenate([feats[s] for s in shipped])
    feat_lo, feat_hi = float(feat_rows.min()), float(feat_rows.max())
    feat_step = max(feat_hi - feat_lo, 1e-6) / 255.0

    data_utts = []
    for u, s, full in zip(utts, shipped, slices):
        f = np.clip(np.rint((feats[s] - feat_lo) / feat_step), 0, 255).astype(np.uint8)
        data_utts.append({
            "id": u, "num_frames": s.stop - s.start, "total_frames": full.stop - full.start,
            "words": [str(w) for w in ext.words(u)], "phones": phone_segments(phone_ids[s]),
            "feats": encode_blob(f.T), "values": {}})

    codecs, box_codecs, ranges, box, ranking, shipped_quantities = {}, {}, {}, {}, {}, None
    counts = np.bincount(stat_phones, minlength=num_phones)[:num_phones]
    for k in progress(layers, desc="layers"):
        layer = ext.layer(k)
        names = quantities or list(layer)
        missing = [q for q in names if q not in layer]
        if missing:
            raise InputError(f"layer {k}: no quantity {', '.join(missing)} in the extraction (has {', '.join(layer)})")
        shipped_quantities = names
        for table in (codecs, box_codecs, ranges, box, ranking):
            table[str(k)] = {}
        for q in names:
            values = layer[q]
            sample = ext.values(k, q, stat_frames)
            if sample.shape[0] == 0:  # no aligned frame: code and colours from the shipped frames
                sample = np.concatenate([ext.values(k, q, s) for s in shipped])
            codec = make_codec(sample, bits)
            codecs[str(k)][q] = codec
            ranges[str(k)][q] = colour_range(sample)
            stats, _ = phone_box_stats(sample[:stat_frames.size], stat_phones, num_phones)
            box_codecs[str(k)][q] = make_codec(sample, 8)  # small: box statistics keep 8 bits
            box[str(k)][q] = encode_blob(quantise(stats, box_codecs[str(k)][q]))
            ranking[str(k)][q] = rank_units(
                phone_selectivity(sample[:stat_frames.size], stat_phones, num_phones), top_units)
            for entry, s in zip(data_utts, shipped):
                entry["values"].setdefault(str(k), {})[q] = encode_trace(np.asarray(values[s], np.float32), codec)
        del layer

    return {
        "cell": ext.cell, "num_layers": len(all_layers), "cell_dim": int(ext.cell_dim),
        "frame_shift": float(ext.frame_shift), "layers": layers, "quantities": shipped_quantities,
        "phone_names": phone_names, "codecs": codecs, "ranges": ranges,
        "feats_codec": {"lo": feat_lo, "step": feat_step, "dim": int(feats.shape[1])},
        "utts": data_utts, "num_utts_extracted": len(ext.utts), "max_frames": max_frames,
        "stats": {"frames": int(stat_frames.size), "frames_extracted": int(phone_ids.size),
                  "frames_aligned": int(aligned.size),
                  "utts": len(ext.utts), "percentiles": list(BOX_PERCENTILES), "counts": counts.tolist(),
                  "box": box, "box_codecs": box_codecs, "ranking": ranking, "top_units": top_units},
    }


# ----------------------------------------------------------------------------------------------------------------
# HTML

def script_json(obj):
    """JSON text safe inside <script type="application/json"> (no '</' sequence)."""
    return json.dumps(obj, separators=(",", ":"), allow_nan=False).replace("</", "<\\/")


def numbers_table(rows, heading):
    e = html.escape
    body = "".join(f"<tr><td>{e(k)}</td><td>{e(v)}</td></tr>" for k, v in rows)
    return f'<table class="numbers"><tr><th>{e(heading)}</th><th>value</th></tr>{body}</table>'


def analyses_html(analyses):
    """The figures-and-numbers section."""
    e = html.escape
    if not analyses:
        return "<p>No analyses found.</p>"
    parts = []
    for a in analyses:
        parts.append(f'<section class="analysis" id="analysis-{e(a["name"])}"><h3>{e(a["name"])}</h3>')
        for fig in a["figures"]:
            parts.append(f'<figure><img alt="{e(fig["name"])}" src="data:{fig["mime"]};base64,{fig["data"]}">'
                         f'<figcaption>{e(fig["name"])}</figcaption></figure>')
        if a["key_numbers"] and len(a["numbers"]) > 25:
            parts.append(numbers_table(a["key_numbers"], "key numbers"))
        if a["numbers"]:
            table = numbers_table(a["numbers"], "numbers.json")
            if len(a["numbers"]) > 25:
                summary = f"all of numbers.json ({len(a['numbers'])} entries)"
                table = f"<details><summary>{summary}</summary>{table}</details>"
            parts.append(table)
        parts.append("</section>")
    return "\n".join(parts)


def cell_text(x):
    """A findings cell as text: strings as they are, scalars with format_value, anything else as compact JSON."""
    if isinstance(x, str):
        return x
    if x is None or isinstance(x, (bool, int, float)):
        return format_value(x)
    return json.dumps(x, separators=(", ", ": "))


def findings_html(path, claims):
    """The findings table: claim (its text, else its id), what the paper says, what we measured, whether it holds
    (true / false; anything else, e.g. "not measured", shown as it is) and how it was measured when given."""
    e = html.escape
    if not claims:
        return "<p>No findings.json found.</p>"
    with_how = any("how" in c for c in claims)
    rows = []
    for c in claims:
        holds = c.get("holds")
        cls, word = {True: ("holds", "yes"), False: ("fails", "no")}.get(holds, ("unknown", cell_text(holds)))
        cells = [c.get("claim", c.get("id", "")), c.get("paper", ""), c.get("measured", "")]
        tds = "".join(f"<td>{e(cell_text(x))}</td>" for x in cells) + f'<td class="{cls}">{e(word)}</td>'
        if with_how:
            tds += f'<td class="how">{e(cell_text(c.get("how", "")))}</td>'
        rows.append(f"<tr>{tds}</tr>")
    head = "<tr><th>claim</th><th>paper</th><th>measured</th><th>holds</th>" + \
        ("<th>how</th>" if with_how else "") + "</tr>"
    return f'<p class="source">{e(path)}</p><table id="findings">{head}{"".join(rows)}</table>'


def read_asset(name):
    with open(os.path.join(ASSET_DIR, name), encoding="utf-8") as f:
        return f.read()


def render_html(title, analyses, findings, data, sources):
    """The whole page as text. ``findings`` = (path, claims); ``sources`` = (extract_dir, memvis_dir)."""
    e = html.escape
    js = read_asset("memvis_report.js")
    css = read_asset("memvis_report.css")
    assert "</script" not in js.lower() and "</style" not in css.lower()  # they are inlined as they are
    data_json = script_json(data)
    made = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>{e(title)}</title>
<style>
{css}
</style></head>
<body>
<h1>{e(title)}</h1>
<p class="source">extraction {e(sources[0])}; analyses {e(sources[1])}; written {made};
explorer data {len(data_json) / 1e6:.1f} MB</p>
<nav><a href="#analyses">Analyses</a> <a href="#findings-section">Findings</a> <a href="#explorer">Explorer</a></nav>
<h2 id="analyses">Analyses</h2>
{analyses_html(analyses)}
<h2 id="findings-section">Findings</h2>
{findings_html(*findings)}
<h2 id="explorer">Explorer</h2>
<div id="explorer-root"><p id="explorer-status">Loading the explorer needs JavaScript.</p></div>
<div id="selftest-result"></div>
<script type="application/json" id="memvis-data">{data_json}</script>
<script>
{js}
</script>
</body></html>
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--utts", type=int, default=20)
    parser.add_argument("--max-frames", type=int, default=1000)
    parser.add_argument("--layers")
    parser.add_argument("--quantities")
    parser.add_argument("--stats-max-frames", type=int, default=200000)
    parser.add_argument("--top-units", type=int, default=20)
    parser.add_argument("--bits", type=int, default=6)
    parser.add_argument("--title")
    parser.add_argument("--findings")
    parser.add_argument("extract_dir")
    parser.add_argument("memvis_dir")
    parser.add_argument("out_html")
    args = parser.parse_args()
    if args.utts < 1 or args.max_frames < 1 or args.stats_max_frames < 1 or args.top_units < 1:
        raise InputError("--utts, --max-frames, --stats-max-frames and --top-units must be positive")

    from steps_py.memory_data import Extraction
    ext = Extraction.load(args.extract_dir)
    layers = parse_list(args.layers, "layers")
    try:
        layers = [int(k) for k in layers] if layers else None
    except ValueError:
        raise InputError(f"--layers: expected a comma list of integers, got {args.layers!r}") from None
    data = explorer_data(ext, args.utts, args.max_frames, layers, parse_list(args.quantities, "quantities"),
                         args.stats_max_frames, args.top_units, args.bits)
    analyses = collect_analyses(args.memvis_dir)
    findings = find_findings(args.memvis_dir, args.findings)
    title = args.title or f"Memory of {data['cell'] or 'the model'}: {os.path.normpath(args.extract_dir)}"
    page = render_html(title, analyses, findings, data, (args.extract_dir, args.memvis_dir))
    with atomic_open(args.out_html, "w", encoding="utf-8") as f:
        f.write(page)
    logger.info(f"wrote {args.out_html}: {len(page.encode()) / 1e6:.2f} MB; {len(analyses)} analyses, "
                f"{len(findings[1])} findings, {len(data['utts'])} utterances x {len(data['layers'])} layers x "
                f"{len(data['quantities'])} quantities x {data['cell_dim']} units; statistics over "
                f"{data['stats']['frames']} of {data['stats']['frames_extracted']} frames")
    return 0


if __name__ == "__main__":
    run_main(main)
