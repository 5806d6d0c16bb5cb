"""Usage: python -m steps_py.memvis.findings [options] <nnet-dir>... <out-dir>

Checks the claims of Tang et al. (2017) against our measurements, each with a 95% bootstrap interval over the
utterances (Bisani and Ney 2004) and, where a model was trained with several seeds, over the seeds too. Model dirs
named <name>_seed<k> are the seed-k runs of <name> (exp/nnet/lstm_2l, exp/nnet/lstm_2l_seed2, ...). Of each run it
reads
  nnet.conf                                what the model is (cell, num_layers, lazy, residual)
  extract_<set>/                           per utterance: the share of memory values in the paper's range, the
                                           trace smoothness (below), and the extreme percentile |c|
  memvis_<set>/noise/numbers.json          per utterance: memory persistence after the noise (memvis.noise)
  decode_tgpr_<set>/                       per utterance: errors and words of the best LM weight and penalty
  memvis_<set>/<analysis>/numbers.json     only to list the analyses present

Claims (id: paper statement -> the measured difference d whose interval decides; d > 0 supports the paper):
  lstm_values_in_range   LSTM cell values mostly within (-2, 2), with wide tails -> d = share of |c| < 2 (mean
                         over layers and utterances) - --mostly (0.5); and the 99.9th percentile |c| beyond 2
  gru_values_pile_at_1   GRU values pile up near +-1 -> d = density of h in [-1,-e] + [e,1] over the density in
                         (-e, e), minus 1 (e = --gru-edge, 0.7)
  lstm_smoother_than_gru LSTM traces are smoother than GRU's -> d = smoothness(GRU) - smoothness(LSTM), smoothness
                         = per utterance, on per-unit standardised memory vectors, mean step / mean distance of
                         random frame pairs of the utterance (1 = as rough as independent frames), mean over
                         layers; the raw-vector number of the whole set is given beside it
  noise_lingers_in_lstm  noise lingers longer in LSTM cells than in GRU memory -> d = median over utterances of
                         the persistence (frames, mean over layers; memvis.noise, unit-normalised) of LSTM - GRU;
                         the censored shares beside it
  lazy_improves_wer      lazy cell update improves WER -> d = %WER(baseline) - %WER(lazy model), paired over
                         utterances (baseline: same cell, layers, residual; lazy=none)
  residual_improves_wer  residual shortcuts improve WER -> d = %WER(baseline) - %WER(residual model)
  gru_beats_lstm_wer     GRUs have lower WER than LSTMs -> d = %WER(LSTM) - %WER(GRU), equal layers, both plain
  deeper_improves_wer    more layers lower the WER -> d = %WER(fewer layers) - %WER(more layers), same cell, both
                         plain, at the steps where the paper's WER fell (DEEPER_STEPS: LSTM 1-2, 2-4, 4-6; GRU 1-2,
                         2-4; its GRU 4 and 6 layers tie)
holds: true when the interval of d lies above 0, false when below, "inconclusive" when it contains 0, "not
measured" when a model or number is missing. LSTM/GRU claims compare models of equal num_layers (both plain:
lazy none, no residual) when there are such pairs, else every LSTM with every GRU; a claim with several comparisons
is true when all are, false when one is, and carries the interval of the least favourable one. Each LSTM/GRU
comparison (smoother, noise) also gives each model's own number with its interval (lstm_ci95, gru_ci95).

Outputs: <out-dir>/findings.json {"set", "num_samples", "models": {name: {"dirs", "seeds", "cell", "num_layers",
"lazy", "residual", "wer", "wer_ci95", "analyses"}}, "claims": [{"id", "paper", "measured", "ci95", "holds",
"how"}]} and findings.md (the same as tables, for reading).

Options: --set NAME (dev)  --mostly X (0.5)  --lstm-range R (2)  --gru-edge E (0.7)  --num-samples N (2000)
         --seed N (0)  --decode-prefix P (decode_tgpr_)
"""
import argparse
import glob
import os

import numpy as np

from steps_py.common import InputError, get_logger, read_json, run_main, write_json, write_lines
from steps_py.completion import Completion, done_stamp, settings_of, skip_if_done
from steps_py.decode.scoring import (best_utterance_errors, best_wer, bootstrap_interval, bootstrap_wer, pooled_wer,
                                     stack_errors)
from steps_py.memvis.analysis import MEMORY_QUANTITY
from steps_py.memvis.data import Extraction
from steps_py.memvis.report_claims import findings_markdown
from steps_py.memvis.stats import smoothness, utterance_range_shares, utterance_smoothness
from steps_py.nnet.config import NnetConfig
from steps_py.nnet.runs import group_runs

log = get_logger("memvis.findings")

NOT_MEASURED = "not measured"
INCONCLUSIVE = "inconclusive"

PAPER = {
    "lstm_values_in_range": "LSTM cell values are mostly within (-2, 2), with wide tails",
    "gru_values_pile_at_1": "GRU memory values lie in [-1, 1] and pile up near +-1",
    "lstm_smoother_than_gru": "LSTM temporal traces are smoother than GRU ones",
    "noise_lingers_in_lstm": "noise inserted into the input lingers longer in LSTM cells than in GRU memory",
    "lazy_improves_wer": "lazy cell update (last layer) improves WER: LSTM 1/2/4 layers 10.96/9.97/9.67 -> "
                         "10.18/9.48/9.10 %WER (Tables 1, 2)",
    "residual_improves_wer": "residual shortcuts improve WER: LSTM 4/6 layers 9.67/9.47 -> 9.53/9.33, GRU 4/6 "
                             "9.32/9.32 -> 9.23/9.10 %WER (Tables 1, 3)",
    "gru_beats_lstm_wer": "GRUs have lower WER than LSTMs of the same depth: 1/2/4/6 layers LSTM "
                          "10.96/9.97/9.67/9.47, GRU 10.76/9.47/9.32/9.32 %WER (Table 1)",
    "deeper_improves_wer": "more layers lower the WER: LSTM 10.96/9.97/9.67/9.47, GRU 10.76/9.47/9.32 %WER at "
                           "1/2/4(/6) layers (Table 1)",
}

# The depth steps (fewer, more layers) of Table 1 where the paper's WER fell (GRU 4 -> 6 layers: 9.32 both)
DEEPER_STEPS = {"lstm": ((1, 2), (2, 4), (4, 6)), "gru": ((1, 2), (2, 4))}


# ---------------------------------------------------------------------------------------------------------------
# Reading: per-utterance samples of each run

def memory_samples(extract_dir, lstm_range=2.0, gru_edge=0.7, max_tail_frames=200000):
    """One run's extraction -> {"utts", "share" [U], "smoothness" [U] (means over layers), "smoothness_raw" (the
    whole set's raw-vector smoothness, mean over layers), "extreme_abs" (99.9th percentile |value|, largest over
    layers)}."""
    ext = Extraction.load(extract_dir)
    q = MEMORY_QUANTITY.get(ext.cell, "h")
    shares, smooth, raw, tails = [], [], [], []
    for k in range(1, ext.num_layers + 1):
        v = ext.values(k, q)
        shares.append(utterance_range_shares(v, ext.offsets, ext.cell, lstm_range, gru_edge))
        mean, std = v.mean(0, dtype=np.float64), v.std(0, dtype=np.float64)
        smooth.append(utterance_smoothness(v, ext.offsets, center=mean, scale=std))
        raw.append(smoothness(v, ext.offsets, np.random.default_rng(0)))
        step = max(1, len(v) // max_tail_frames)
        tails.append(float(np.percentile(np.abs(v[::step]), 99.9)))
    return {"utts": list(ext.utts), "share": np.mean(shares, 0), "smoothness": np.mean(smooth, 0),
            "smoothness_raw": float(np.mean(raw)), "extreme_abs": max(tails)}


def noise_samples(numbers):
    """memvis.noise numbers -> {"utts", "persistence" [U] (frames, mean over layers), "censored_share"}."""
    utts = sorted(numbers.get("utterances", {}))
    per = [[r["persistence_frames"] for r in numbers["utterances"][u]["layers"].values()] for u in utts]
    cens = [r["censored"] for u in utts for r in numbers["utterances"][u]["layers"].values()]
    return {"utts": utts, "persistence": np.array([np.mean(p) for p in per]),
            "censored_share": float(np.mean(cens)) if cens else None}


def run_info(run_dir, set_name, decode_prefix="decode_tgpr_", lstm_range=2.0, gru_edge=0.7):
    """Everything findings needs of one run dir: its conf, its analyses, and the per-utterance samples."""
    info = {"dir": run_dir, "cell": None, "num_layers": None, "lazy": "none", "residual": False}
    conf = os.path.join(run_dir, "nnet.conf")
    if os.path.exists(conf):
        c = NnetConfig.from_file(conf)
        info.update(cell=c.cell, num_layers=c.num_layers, lazy=c.lazy, residual=c.residual)
    numbers = {os.path.basename(os.path.dirname(p)): read_json(p)
               for p in sorted(glob.glob(os.path.join(run_dir, f"memvis_{set_name}", "*", "numbers.json")))}
    info["analyses"] = sorted(numbers)
    if info["cell"] is None:
        cells = {n.get("cell") for n in numbers.values() if n.get("cell")}
        info["cell"] = cells.pop() if len(cells) == 1 else None
    decode = os.path.join(run_dir, f"{decode_prefix}{set_name}")
    info["wer"], info["wer_line"] = best_wer(decode)
    info["errors"] = best_utterance_errors(decode)
    extract = os.path.join(run_dir, f"extract_{set_name}")
    info["memory"] = memory_samples(extract, lstm_range, gru_edge) \
        if os.path.exists(os.path.join(extract, "index.json")) else None
    info["noise"] = noise_samples(numbers["noise"]) if numbers.get("noise", {}).get("utterances") else None
    return info


def model_info(name, run_dirs, set_name, decode_prefix="decode_tgpr_", lstm_range=2.0, gru_edge=0.7):
    """A model (all its seed runs) -> dict of name, cell, num_layers, lazy, residual, runs (run_info dicts)."""
    runs = [run_info(d, set_name, decode_prefix, lstm_range, gru_edge) for d in run_dirs]
    first = runs[0]
    for r in runs[1:]:
        if any(r[k] != first[k] for k in ("cell", "num_layers", "lazy", "residual")):
            raise InputError(f"{r['dir']} is not the same model as {first['dir']} (another nnet.conf)")
    if first["cell"] is None:
        log.warning(f"{first['dir']}: no nnet.conf and no cell type in its numbers; left out of the LSTM/GRU claims")
    return {"name": name, **{k: first[k] for k in ("cell", "num_layers", "lazy", "residual")}, "runs": runs}


# ---------------------------------------------------------------------------------------------------------------
# Samples as [seeds, utterances] arrays over the utterances every run has

def stacked(model, key, field, utts=None):
    """(utts, array [S, U, ...]) of ``field`` of sample ``key`` ("memory", "noise") over the model's runs that
    have it, on the utterances all of them have (and ``utts`` when given); None when no run has it."""
    runs = [r[key] for r in model["runs"] if r.get(key) is not None]
    if not runs:
        return None
    common = set(runs[0]["utts"]).intersection(*[r["utts"] for r in runs[1:]])
    if utts is not None:
        common &= set(utts)
    order = [u for u in runs[0]["utts"] if u in common]
    pos = [{u: i for i, u in enumerate(r["utts"])} for r in runs]
    return order, np.stack([np.asarray(r[field])[[p[u] for u in order]] for r, p in zip(runs, pos)])


def stacked_errors(model, utts=None):
    """(utts, array [S, U, 2] of (errors, words)) over the runs with a decode, or None."""
    return stack_errors([r.get("errors") for r in model["runs"]], utts)


def paired(a, b, sample):
    """The samples of models a and b on the utterances both have: (array a, array b) or None."""
    sa, sb = sample(a), sample(b)
    if sa is None or sb is None:
        return None
    both = set(sa[0]) & set(sb[0])
    if not both:
        return None
    sa, sb = sample(a, both), sample(b, both)
    return sa[1], sb[1]


def _memory(field):
    return lambda m, utts=None: stacked(m, "memory", field, utts)


def _noise(m, utts=None):
    return stacked(m, "noise", "persistence", utts)


# ---------------------------------------------------------------------------------------------------------------
# Verdicts

def verdict(lo, hi):
    """True when the interval of d lies above 0, False below, "inconclusive" when it holds 0."""
    if lo > 0:
        return True
    if hi < 0:
        return False
    return INCONCLUSIVE


def combine(results):
    """Several comparisons (dicts with "ci95", "holds") -> (ci95 of the least favourable, holds of the claim)."""
    if not results:
        return None, NOT_MEASURED
    worst = min(results, key=lambda r: r["ci95"][0])
    holds = [r["holds"] for r in results]
    if False in holds:
        return worst["ci95"], False
    return worst["ci95"], True if all(h is True for h in holds) else INCONCLUSIVE


def _interval(systems, statistic, opts):
    value, lo, hi = bootstrap_interval(systems, statistic, opts["num_samples"], opts["seed"])
    return {"d": value, "ci95": [lo, hi], "holds": verdict(lo, hi)}


def _claim(cid, measured, results, how):
    ci95, holds = combine(results)
    return {"id": cid, "paper": PAPER[cid], "measured": measured, "ci95": ci95, "holds": holds, "how": how}


# ---------------------------------------------------------------------------------------------------------------
# Claims (pure: model dicts in, claim dicts out)

def claim_lstm_range(models, opts):
    measured, results = {}, []
    for m in models:
        if m["cell"] != "lstm":
            continue
        s = _memory("share")(m)
        if s is None:
            measured[m["name"]] = NOT_MEASURED
            continue
        r = _interval([s[1]], lambda a: float(a[0].mean()) - opts["mostly"], opts)
        tail = max(run["memory"]["extreme_abs"] for run in m["runs"] if run.get("memory"))
        if r["holds"] is True and not tail > opts["lstm_range"]:
            r["holds"] = False          # mostly in range, but no wide tails
        measured[m["name"]] = {"share_in_range": r["d"] + opts["mostly"], "ci95": [x + opts["mostly"]
                               for x in r["ci95"]], "p99.9_abs": tail, "seeds": len(s[1]), "utts": len(s[0])}
        results.append(r)
    return _claim("lstm_values_in_range", measured, results,
                  f"d = share of |c| < {opts['lstm_range']:g} - {opts['mostly']:g} (and the 99.9th percentile "
                  f"|c| > {opts['lstm_range']:g})")


def pile_ratio(edge_share, gru_edge):
    """Density of values in [-1,-e] + [e,1] over the density in (-e, e) (1 = flat, > 1 = piling up at +-1)."""
    inner = 1.0 - edge_share
    if inner <= 0:
        return float("inf")
    return (edge_share / (2 * (1 - gru_edge))) / (inner / (2 * gru_edge))


def claim_gru_pile(models, opts):
    measured, results = {}, []
    for m in models:
        if m["cell"] != "gru":
            continue
        s = _memory("share")(m)
        if s is None:
            measured[m["name"]] = NOT_MEASURED
            continue
        r = _interval([s[1]], lambda a: pile_ratio(float(a[0].mean()), opts["gru_edge"]) - 1.0, opts)
        measured[m["name"]] = {"share_near_pm1": float(s[1].mean()), "density_ratio": r["d"] + 1.0,
                               "ci95": [x + 1.0 for x in r["ci95"]], "seeds": len(s[1]), "utts": len(s[0])}
        results.append(r)
    return _claim("gru_values_pile_at_1", measured, results,
                  f"d = density of h in [-1,-{opts['gru_edge']:g}] + [{opts['gru_edge']:g},1] over the density in "
                  f"between, minus 1")


def _plain(m):
    """No lazy update, no residual shortcuts."""
    return m["lazy"] == "none" and not m["residual"]


def lstm_gru_pairs(models):
    """(lstm, gru) pairs with equal num_layers, both plain (lazy none, no residual); else every LSTM with every
    GRU."""
    plain = [m for m in models if _plain(m)]
    pairs = [(a, b) for a in plain if a["cell"] == "lstm" for b in plain
             if b["cell"] == "gru" and b["num_layers"] == a["num_layers"]]
    if pairs:
        return pairs
    return [(a, b) for a in models if a["cell"] == "lstm" for b in models if b["cell"] == "gru"]


def _lstm_vs_gru(cid, models, sample, single, lstm_minus_gru, describe, how, opts):
    """A claim comparing each LSTM with its GRU (lstm_gru_pairs): ``single(array [S, U])`` is one model's number,
    d = single(LSTM) - single(GRU) (``lstm_minus_gru``) or its negative; each comparison also carries each model's
    own number with its interval (lstm_ci95, gru_ci95) on the utterances both have."""
    def statistic(a):
        d = single(a[0]) - single(a[1])
        return d if lstm_minus_gru else -d

    measured, results = {}, []
    for lstm, gru in lstm_gru_pairs(models):
        p = paired(lstm, gru, sample)
        if p is None:
            measured[f"{lstm['name']} vs {gru['name']}"] = NOT_MEASURED
            continue
        r = _interval(list(p), statistic, opts)
        own = [_interval([x], lambda a: single(a[0]), opts)["ci95"] for x in p]
        measured[f"{lstm['name']} vs {gru['name']}"] = {**describe(lstm, gru, p), "lstm_ci95": own[0],
                                                       "gru_ci95": own[1], "d": r["d"], "ci95": r["ci95"],
                                                       "seeds": [len(p[0]), len(p[1])], "utts": p[0].shape[1]}
        results.append(r)
    return _claim(cid, measured, results, how)


def _raw_smoothness(m):
    vals = [r["memory"]["smoothness_raw"] for r in m["runs"] if r.get("memory")]
    return float(np.mean(vals)) if vals else None


def claim_smoother(models, opts):
    return _lstm_vs_gru(
        "lstm_smoother_than_gru", models, _memory("smoothness"), lambda a: float(np.nanmean(a)), False,
        lambda lstm, gru, p: {"lstm": float(np.nanmean(p[0])), "gru": float(np.nanmean(p[1])),
                              "lstm_raw": _raw_smoothness(lstm), "gru_raw": _raw_smoothness(gru)},
        "d = smoothness(GRU) - smoothness(LSTM): per utterance, per-unit standardised vectors, mean step / mean "
        "pair distance within the utterance (lower = smoother); raw: whole set, raw vectors", opts)


def _censored(m):
    vals = [r["noise"]["censored_share"] for r in m["runs"] if r.get("noise")]
    return float(np.mean(vals)) if vals else None


def claim_noise(models, opts):
    def median(a):
        return float(np.median(a.mean(0)))
    return _lstm_vs_gru(
        "noise_lingers_in_lstm", models, _noise, median, True,
        lambda lstm, gru, p: {"lstm_median": median(p[0]), "gru_median": median(p[1]),
                              "lstm_censored_share": _censored(lstm), "gru_censored_share": _censored(gru)},
        "d = median persistence (frames) of LSTM - GRU, per utterance the mean over layers (memvis.noise)", opts)


def _claim_wer(cid, models, is_variant, same_base, how, opts):
    measured, results = {}, []
    for v in models:
        if not is_variant(v):
            continue
        for b in models:
            if b is v or not same_base(v, b):
                continue
            p = paired(b, v, lambda m, utts=None: stacked_errors(m, utts))
            if p is None:
                measured[f"{v['name']} vs {b['name']}"] = NOT_MEASURED
                continue
            r = _interval(list(p), lambda a: pooled_wer(a[0]) - pooled_wer(a[1]), opts)
            measured[f"{v['name']} vs {b['name']}"] = {"wer": pooled_wer(p[1]), "baseline_wer": pooled_wer(p[0]),
                                                       "improvement": r["d"], "ci95": r["ci95"],
                                                       "seeds": [len(p[1]), len(p[0])], "utts": p[0].shape[1]}
            results.append(r)
    return _claim(cid, measured, results, how)


def claim_lazy(models, opts):
    return _claim_wer("lazy_improves_wer", models, lambda m: m["lazy"] != "none",
                      lambda v, b: (b["lazy"] == "none" and b["cell"] == v["cell"] and
                                    b["num_layers"] == v["num_layers"] and b["residual"] == v["residual"]),
                      "d = %WER(baseline) - %WER(lazy), paired over utterances (baseline: same cell, layers, "
                      "residual)", opts)


def claim_residual(models, opts):
    return _claim_wer("residual_improves_wer", models, lambda m: m["residual"],
                      lambda v, b: (not b["residual"] and b["cell"] == v["cell"] and
                                    b["num_layers"] == v["num_layers"] and b["lazy"] == v["lazy"]),
                      "d = %WER(baseline) - %WER(residual), paired over utterances (baseline: same cell, "
                      "layers, lazy)", opts)


def claim_gru_beats_lstm(models, opts):
    return _claim_wer("gru_beats_lstm_wer", models, lambda m: m["cell"] == "gru" and _plain(m),
                      lambda v, b: b["cell"] == "lstm" and _plain(b) and b["num_layers"] == v["num_layers"],
                      "d = %WER(LSTM) - %WER(GRU), paired over utterances (equal layers, no lazy update, no "
                      "residual)", opts)


def claim_deeper(models, opts):
    return _claim_wer("deeper_improves_wer", models, lambda m: m["cell"] in DEEPER_STEPS and _plain(m),
                      lambda v, b: (b["cell"] == v["cell"] and _plain(b) and
                                    (b["num_layers"], v["num_layers"]) in DEEPER_STEPS[v["cell"]]),
                      "d = %WER(fewer layers) - %WER(more layers), paired over utterances (same cell, no lazy "
                      "update, no residual; the steps where the paper's WER fell: " +
                      ", ".join(f"{c.upper()} {a}-{b}" for c, steps in DEEPER_STEPS.items() for a, b in steps) +
                      ")", opts)


DEFAULTS = {"mostly": 0.5, "lstm_range": 2.0, "gru_edge": 0.7, "num_samples": 2000, "seed": 0}


def evaluate_claims(models, **opts):
    """All claims for the model dicts (see model_info) -> list of claim dicts."""
    opts = {**DEFAULTS, **opts}
    return [claim_lstm_range(models, opts), claim_gru_pile(models, opts), claim_smoother(models, opts),
            claim_noise(models, opts), claim_lazy(models, opts), claim_residual(models, opts),
            claim_gru_beats_lstm(models, opts), claim_deeper(models, opts)]


# ---------------------------------------------------------------------------------------------------------------
# Outputs

def model_summary(m, opts):
    """The models table's row of a model: dirs, seeds, conf, WER with its interval over utterances and seeds."""
    s = stacked_errors(m)
    wer, ci = None, None
    if s is not None:
        words = s[1][0, :, 1]
        wer, lo, hi = bootstrap_wer(s[1][..., 0], words, opts["num_samples"], opts["seed"])
        ci = [lo, hi]
    analyses = sorted({a for r in m["runs"] for a in r["analyses"]})
    return {"dirs": [r["dir"] for r in m["runs"]], "seeds": len(m["runs"]),
            **{k: m[k] for k in ("cell", "num_layers", "lazy", "residual")}, "wer": wer, "wer_ci95": ci,
            "analyses": analyses}


def findings_inputs(model_dirs, set_name="dev", decode_prefix="decode_tgpr_"):
    """What run_findings reads of each run (the module docstring): nnet.conf, the extraction and the decode dir of
    the set, and the numbers.json of every analysis in memvis_<set>/ (the report beside them is left out)."""
    inputs = []
    for d in model_dirs:
        inputs += [os.path.join(d, "nnet.conf"), os.path.join(d, f"extract_{set_name}"),
                   os.path.join(d, f"{decode_prefix}{set_name}")]
        inputs += sorted(glob.glob(os.path.join(d, f"memvis_{set_name}", "*", "numbers.json")))
    return [p for p in inputs if os.path.exists(p)]


def run_findings(model_dirs, out_dir, set_name="dev", decode_prefix="decode_tgpr_", **opts):
    for d in model_dirs:
        if not os.path.isdir(d):
            raise InputError(f"no such directory {d}")
    opts = {**DEFAULTS, **opts}
    models = [model_info(name, dirs, set_name, decode_prefix, opts["lstm_range"], opts["gru_edge"])
              for name, dirs in group_runs(model_dirs).items()]
    claims = evaluate_claims(models, **opts)
    summaries = {m["name"]: model_summary(m, opts) for m in models}
    findings = {"set": set_name, "num_samples": opts["num_samples"], "models": summaries, "claims": claims}
    os.makedirs(out_dir, exist_ok=True)
    write_lines(os.path.join(out_dir, "findings.md"), findings_markdown(set_name, summaries, claims))
    write_json(os.path.join(out_dir, "findings.json"), findings)  # last: its presence means the step finished
    for c in claims:
        log.info(f"{c['id']}: holds {c['holds']}" + (f" (d 95% CI [{c['ci95'][0]:.3g}, {c['ci95'][1]:.3g}])"
                                                     if c["ci95"] else ""))
    return findings


def main():
    p = argparse.ArgumentParser(usage=__doc__.split("\n")[0][len("Usage: "):], description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--set", dest="set_name", default="dev")
    p.add_argument("--mostly", type=float, default=DEFAULTS["mostly"])
    p.add_argument("--lstm-range", type=float, default=DEFAULTS["lstm_range"])
    p.add_argument("--gru-edge", type=float, default=DEFAULTS["gru_edge"])
    p.add_argument("--num-samples", type=int, default=DEFAULTS["num_samples"])
    p.add_argument("--seed", type=int, default=DEFAULTS["seed"])
    p.add_argument("--decode-prefix", default="decode_tgpr_")
    p.add_argument("dirs", nargs="+", metavar="nnet-dir ... out-dir")
    a = p.parse_args()
    if len(a.dirs) < 2:
        p.error("need at least one model dir and the output dir")
    *model_dirs, out_dir = a.dirs
    done = Completion(done_stamp(out_dir, "findings"), findings_inputs(model_dirs, a.set_name, a.decode_prefix),
                      settings_of(a), [os.path.join(out_dir, "findings.json")])
    if skip_if_done(done, out_dir, log):
        return 0
    run_findings(model_dirs, out_dir, a.set_name, a.decode_prefix, mostly=a.mostly, lstm_range=a.lstm_range,
                 gru_edge=a.gru_edge, num_samples=a.num_samples, seed=a.seed)
    done.finish()
    return 0


if __name__ == "__main__":
    run_main(main)
