"""The data of the report's explorer (steps_py.memvis.report), pure functions of an extraction: cell values coded
as small integers (linear, or logarithmic for wide-range quantities such as LSTM cells), delta-coded along time,
deflated and base64-encoded for the page; phone tiers; per-phone box statistics and unit rankings."""
import base64
import math
import zlib

import numpy as np

from steps_py.common import InputError, progress
from steps_py.memvis.data import runs

BOX_PERCENTILES = (5.0, 25.0, 50.0, 75.0, 95.0)  # whisker low, Q1, median, Q3, whisker high


RANGE_PERCENTILE = 99.0  # default colour scale: this percentile of |value| (values beyond get the end colour)


LINEAR_MAX_ABS = 2.0  # quantities with |value| up to this get a linear int8 code, wider ones a logarithmic code


# ----------------------------------------------------------------------------------------------------------------
# Quantisation and blob coding

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
# Statistics per phone

def phone_segments(phone_ids):
    """Frame phone ids [T] -> list of [start, end, phone_id] runs (end exclusive, frames)."""
    return [[s, e, int(p)] for s, e, p in runs(phone_ids)]


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
# Explorer data from the extraction

def explorer_data(ext, num_utts, max_frames, layers=None, quantities=None, stats_max_frames=200000, top_units=20,
                  bits=6):
    """The explorer's inline JSON (see report.js for how it is read) from an Extraction.

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
