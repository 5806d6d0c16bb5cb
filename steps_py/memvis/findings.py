"""Usage: python -m steps_py.memvis.findings [options] <nnet-dir>... <out-dir>

Checks the claims of Tang et al. (2017) against our measurements. For each model dir exp/nnet/<name> it reads
  nnet.conf                              cell, num_layers, lazy, residual (what the model is)
  memvis_<set>/<analysis>/numbers.json   every analysis present (distributions, noise, ... ; listed in the output)
  decode_tgpr_<set>/wer_*                the best %WER (as utils/best_wer.sh, steps_py.decode.scoring)
  extract_<set>/                         only for the smoothness claim when no --compare numbers give it
and --compare <memvis.compare numbers.json> (optional: smoothness, noise persistence and value shares per model
and layer, for models named as the model dirs' base names).

Claims (id: paper statement -> what is measured; holds: true / false / "not measured" when a model or number is
missing):
  lstm_values_in_range   LSTM cell values mostly within (-2, 2), with wide tails -> per LSTM model the mean over
                         layers of the share of |c| < 2 (>= --mostly, 0.5) and the largest extreme percentile
                         |c| (memvis.distributions: 0.1% / 99.9%; compare numbers: 1% / 99%) beyond 2
  gru_values_pile_at_1   GRU values pile up near +-1 -> per GRU model the density of h in [-1,-e] + [e,1] (e =
                         gru_edge, 0.7) relative to the density in (-e, e): ratio > 1
  lstm_smoother_than_gru LSTM temporal traces are smoother than GRU -> smoothness (memvis.compare: mean step /
                         mean pair distance, lower = smoother), mean over layers: LSTM < GRU
  noise_lingers_in_lstm  noise lingers longer in LSTM cells than in GRU -> memvis.noise persistence (frames),
                         mean over layers and utterances: LSTM > GRU
  lazy_improves_wer      lazy cell update improves WER -> WER of each lazy LSTM < WER of its baseline (same cell,
                         layers, residual; lazy=none)
  residual_improves_wer  residual shortcuts improve WER -> WER of each residual model < WER of its baseline (same
                         cell, layers, lazy; residual=false)
LSTM/GRU claims compare models with equal num_layers (both lazy=none, residual=false) when such pairs exist, else
the mean over all LSTM models against the mean over all GRU models. A claim with several pairs holds when all do.

Outputs: <out-dir>/findings.json {"set", "models": {name: {"dir", "cell", "num_layers", "lazy", "residual", "wer",
"wer_line", "analyses"}}, "claims": [{"id", "paper", "measured", "holds", "how"}]} and findings.md (the same as a
table, for reading).

Options: --set NAME (dev)  --compare PATH  --mostly X (0.5)  --decode-prefix P (decode_tgpr_)
"""
import argparse
import glob
import os

import numpy as np

from steps_py.common import InputError, get_logger, read_json, run_main, write_json, write_lines
from steps_py.decode.scoring import best_wer
from steps_py.memvis.analysis import MEMORY_QUANTITY
from steps_py.memvis.data import Extraction
from steps_py.memvis.stats import smoothness
from steps_py.nnet.config import NnetConfig

log = get_logger("memvis.findings")

NOT_MEASURED = "not measured"

PAPER = {
    "lstm_values_in_range": "LSTM cell values are mostly within (-2, 2), with wide tails",
    "gru_values_pile_at_1": "GRU memory values lie in [-1, 1] and pile up near +-1",
    "lstm_smoother_than_gru": "LSTM temporal traces are smoother than GRU ones",
    "noise_lingers_in_lstm": "noise inserted into the input lingers longer in LSTM cells than in GRU memory",
    "lazy_improves_wer": "lazy cell update (last layer) improves WER: LSTM 1/2/4 layers 10.96/9.97/9.67 -> "
                         "10.18/9.48/9.10 %WER (Tables 1, 2)",
    "residual_improves_wer": "residual shortcuts improve WER: LSTM 4/6 layers 9.67/9.47 -> 9.53/9.33, GRU 4/6 "
                             "9.32/9.32 -> 9.23/9.10 %WER (Tables 1, 3)",
}


# ---------------------------------------------------------------------------------------------------------------
# Reading one model's numbers

def model_info(model_dir, set_name, decode_prefix="decode_tgpr_"):
    """What findings need of one model dir -> dict (name, dir, cell, num_layers, lazy, residual, wer, numbers of
    each analysis under memvis_<set>/)."""
    name = os.path.basename(os.path.normpath(model_dir))
    info = {"name": name, "dir": model_dir, "cell": None, "num_layers": None, "lazy": "none", "residual": False}
    conf = os.path.join(model_dir, "nnet.conf")
    if os.path.exists(conf):
        c = NnetConfig.from_file(conf)
        info.update(cell=c.cell, num_layers=c.num_layers, lazy=c.lazy, residual=c.residual)
    numbers = {}
    for path in sorted(glob.glob(os.path.join(model_dir, f"memvis_{set_name}", "*", "numbers.json"))):
        numbers[os.path.basename(os.path.dirname(path))] = read_json(path)
    info["numbers"] = numbers
    if info["cell"] is None:
        cells = {n.get("cell") for n in numbers.values() if n.get("cell")}
        info["cell"] = cells.pop() if len(cells) == 1 else None
        if info["cell"] is None:
            log.warning(f"{model_dir}: no nnet.conf and no cell type in its numbers; the model is left out of "
                        f"the LSTM/GRU claims")
    info["wer"], info["wer_line"] = best_wer(os.path.join(model_dir, f"{decode_prefix}{set_name}"))
    extract = os.path.join(model_dir, f"extract_{set_name}")
    info["extract_dir"] = extract if os.path.exists(os.path.join(extract, "index.json")) else None
    return info


def value_stats(info, compare_rows):
    """Per layer {share_in_range, tail, gru_edge, source} from memvis.distributions numbers, else compare rows."""
    d = info["numbers"].get("distributions")
    if d and d.get("layers"):
        out = []
        for lay in d["layers"]:
            pct = lay.get("percentiles", {})
            tails = [abs(pct[k]) for k in ("0.1", "99.9") if pct.get(k) is not None]
            out.append({"share_in_range": lay["share_in_range"], "tail": max(tails) if tails else None,
                        "gru_edge": d.get("gru_edge", 0.7), "lstm_range": d.get("lstm_range", 2.0),
                        "source": "memvis.distributions"})
        return out
    rows = [r for r in compare_rows if r["model"] == info["name"]]
    return [{"share_in_range": r["share_in_range"], "tail": max(abs(r["p1"]), abs(r["p99"])),
             "gru_edge": 0.7, "lstm_range": 2.0, "source": "memvis.compare"} for r in rows]


def smoothness_of(info, compare_rows):
    """Mean over layers of the smoothness (compare numbers, else computed from extract_<set>), or None."""
    rows = [r["smoothness"] for r in compare_rows if r["model"] == info["name"] and r["smoothness"] is not None]
    if rows:
        return float(np.mean(rows)), "memvis.compare"
    if info.get("extract_dir"):
        ext = Extraction.load(info["extract_dir"])
        q = MEMORY_QUANTITY.get(ext.cell, "h")
        vals = [smoothness(ext.values(k, q), ext.offsets, np.random.default_rng(0))
                for k in range(1, ext.num_layers + 1)]
        return float(np.mean(vals)), "extraction"
    return None, None


def persistence_of(info, compare_rows):
    """Mean noise persistence (frames) of a model: memvis.noise numbers, else compare rows; or None."""
    n = info["numbers"].get("noise")
    if n and n.get("persistence_frames_mean") is not None:
        return float(n["persistence_frames_mean"]), "memvis.noise"
    rows = [r["noise_persistence_frames"] for r in compare_rows
            if r["model"] == info["name"] and r.get("noise_persistence_frames") is not None]
    if rows:
        return float(np.mean(rows)), "memvis.compare"
    return None, None


# ---------------------------------------------------------------------------------------------------------------
# Claims (pure: model info dicts in, claim dicts out)

def _claim(cid, measured, holds, how):
    return {"id": cid, "paper": PAPER[cid], "measured": measured, "holds": holds, "how": how}


def claim_lstm_range(models, compare_rows, mostly=0.5):
    measured, verdicts = {}, []
    for m in models:
        if m["cell"] != "lstm":
            continue
        stats = value_stats(m, compare_rows)
        if not stats:
            measured[m["name"]] = NOT_MEASURED
            continue
        share = float(np.mean([s["share_in_range"] for s in stats]))
        tails = [s["tail"] for s in stats if s["tail"] is not None]
        tail = max(tails) if tails else None
        rng = stats[0]["lstm_range"]
        ok = share >= mostly and tail is not None and tail > rng
        measured[m["name"]] = {"share_in_range": share, "extreme_abs_value": tail, "range": rng,
                               "source": stats[0]["source"]}
        verdicts.append(ok)
    holds = all(verdicts) if verdicts else NOT_MEASURED
    return _claim("lstm_values_in_range", measured, holds,
                  f"mean share of |c| < 2 over layers >= {mostly} and the extreme percentile |c| beyond 2")


def pile_ratio(edge_share, gru_edge):
    """Density of values in [-1,-e] + [e,1] over the density in (-e, e) (1 = flat, > 1 = piling up at +-1)."""
    inner = 1.0 - edge_share
    if inner <= 0:
        return float("inf")
    return (edge_share / (2 * (1 - gru_edge))) / (inner / (2 * gru_edge))


def claim_gru_pile(models, compare_rows):
    measured, verdicts = {}, []
    for m in models:
        if m["cell"] != "gru":
            continue
        stats = value_stats(m, compare_rows)
        if not stats:
            measured[m["name"]] = NOT_MEASURED
            continue
        share = float(np.mean([s["share_in_range"] for s in stats]))
        ratio = pile_ratio(share, stats[0]["gru_edge"])
        measured[m["name"]] = {"share_near_pm1": share, "gru_edge": stats[0]["gru_edge"], "density_ratio": ratio,
                               "source": stats[0]["source"]}
        verdicts.append(ratio > 1.0)
    holds = all(verdicts) if verdicts else NOT_MEASURED
    return _claim("gru_values_pile_at_1", measured, holds,
                  "density of h in [-1,-e] + [e,1] over the density in (-e, e), mean over layers: > 1")


def lstm_gru_pairs(models):
    """(lstm, gru) model pairs with equal num_layers, both plain (lazy none, no residual); else one pair of the
    lists of all LSTM and all GRU models."""
    plain = [m for m in models if m["lazy"] == "none" and not m["residual"]]
    pairs = [([a], [b]) for a in plain if a["cell"] == "lstm" for b in plain
             if b["cell"] == "gru" and b["num_layers"] == a["num_layers"]]
    if pairs:
        return pairs
    lstm = [m for m in models if m["cell"] == "lstm"]
    gru = [m for m in models if m["cell"] == "gru"]
    return [(lstm, gru)] if lstm and gru else []


def _compare_lstm_gru(cid, models, value_of, lstm_wins, how):
    measured, verdicts = {}, []
    for lstm, gru in lstm_gru_pairs(models):
        lv = [value_of(m) for m in lstm]
        gv = [value_of(m) for m in gru]
        for m, v in zip(lstm + gru, lv + gv):
            if v[0] is not None:
                measured[m["name"]] = {"value": v[0], "source": v[1]}
        lv = [v[0] for v in lv if v[0] is not None]
        gv = [v[0] for v in gv if v[0] is not None]
        if lv and gv:
            verdicts.append(bool(lstm_wins(float(np.mean(lv)), float(np.mean(gv)))))
    return _claim(cid, measured, all(verdicts) if verdicts else NOT_MEASURED, how)


def claim_smoother(models, compare_rows):
    return _compare_lstm_gru("lstm_smoother_than_gru", models, lambda m: smoothness_of(m, compare_rows),
                             lambda lstm, gru: lstm < gru,
                             "smoothness = mean step / mean pair distance (lower = smoother): LSTM < GRU")


def claim_noise(models, compare_rows):
    return _compare_lstm_gru("noise_lingers_in_lstm", models, lambda m: persistence_of(m, compare_rows),
                             lambda lstm, gru: lstm > gru,
                             "memory persistence after the noise (frames, memvis.noise): LSTM > GRU")


def _claim_wer(cid, models, is_variant, same_base, how):
    measured, verdicts = {}, []
    for v in models:
        if not is_variant(v):
            continue
        bases = [b for b in models if b is not v and same_base(v, b)]
        for b in bases:
            if v["wer"] is None or b["wer"] is None:
                continue
            measured[f"{v['name']} vs {b['name']}"] = {"wer": v["wer"], "baseline_wer": b["wer"],
                                                       "improvement": b["wer"] - v["wer"]}
            verdicts.append(v["wer"] < b["wer"])
    return _claim(cid, measured, all(verdicts) if verdicts else NOT_MEASURED, how)


def claim_lazy(models):
    return _claim_wer("lazy_improves_wer", models, lambda m: m["lazy"] != "none",
                      lambda v, b: (b["lazy"] == "none" and b["cell"] == v["cell"] and
                                    b["num_layers"] == v["num_layers"] and b["residual"] == v["residual"]),
                      "best %WER of each lazy model < that of its baseline (same cell, layers, residual)")


def claim_residual(models):
    return _claim_wer("residual_improves_wer", models, lambda m: m["residual"],
                      lambda v, b: (not b["residual"] and b["cell"] == v["cell"] and
                                    b["num_layers"] == v["num_layers"] and b["lazy"] == v["lazy"]),
                      "best %WER of each residual model < that of its baseline (same cell, layers, lazy)")


def evaluate_claims(models, compare_rows=(), mostly=0.5):
    """All claims for the model info dicts (see model_info) -> list of claim dicts."""
    compare_rows = list(compare_rows)
    return [claim_lstm_range(models, compare_rows, mostly), claim_gru_pile(models, compare_rows),
            claim_smoother(models, compare_rows), claim_noise(models, compare_rows), claim_lazy(models),
            claim_residual(models)]


def findings_markdown(set_name, models, claims):
    def fmt(x):
        if isinstance(x, float):
            return f"{x:.3g}"
        if isinstance(x, dict):
            return ", ".join(f"{k} {fmt(v)}" for k, v in x.items() if k != "source")
        return str(x)

    out = [f"# Findings on the {set_name} set", "",
           "| model | cell | layers | lazy | residual | %WER | analyses |", "|---|---|---|---|---|---|---|"]
    for m in models:
        out.append(f"| {m['name']} | {m['cell']} | {m['num_layers']} | {m['lazy']} | {m['residual']} | "
                   f"{m['wer'] if m['wer'] is not None else '-'} | {', '.join(sorted(m['numbers'])) or '-'} |")
    out += ["", "| claim | paper | measured | holds |", "|---|---|---|---|"]
    for c in claims:
        meas = "; ".join(f"{k}: {fmt(v)}" for k, v in c["measured"].items()) or "-"
        out.append(f"| {c['id']} | {c['paper']} | {meas} | {c['holds']} |")
    out += ["", "How each claim is measured:", ""] + [f"- {c['id']}: {c['how']}" for c in claims]
    return out


def run_findings(model_dirs, out_dir, set_name="dev", compare_path=None, mostly=0.5, decode_prefix="decode_tgpr_"):
    for d in model_dirs:
        if not os.path.isdir(d):
            raise InputError(f"no such directory {d}")
    models = [model_info(d, set_name, decode_prefix) for d in model_dirs]
    compare_rows = read_json(compare_path).get("rows", []) if compare_path else []
    claims = evaluate_claims(models, compare_rows, mostly)
    findings = {"set": set_name, "compare": compare_path,
                "models": {m["name"]: {k: m[k] for k in ("dir", "cell", "num_layers", "lazy", "residual", "wer",
                                                         "wer_line")} | {"analyses": sorted(m["numbers"])}
                           for m in models},
                "claims": claims}
    os.makedirs(out_dir, exist_ok=True)
    write_lines(os.path.join(out_dir, "findings.md"), findings_markdown(set_name, models, claims))
    write_json(os.path.join(out_dir, "findings.json"), findings)  # last: its presence means the step finished
    for c in claims:
        log.info(f"{c['id']}: holds {c['holds']}")
    return findings


def main():
    p = argparse.ArgumentParser(usage=__doc__.split("\n")[0][len("Usage: "):], description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--set", dest="set_name", default="dev")
    p.add_argument("--compare", default=None, help="numbers.json of memvis.compare")
    p.add_argument("--mostly", type=float, default=0.5)
    p.add_argument("--decode-prefix", default="decode_tgpr_")
    p.add_argument("dirs", nargs="+", metavar="nnet-dir ... out-dir")
    a = p.parse_args()
    if len(a.dirs) < 2:
        p.error("need at least one model dir and the output dir")
    *model_dirs, out_dir = a.dirs
    run_findings(model_dirs, out_dir, a.set_name, a.compare, a.mostly, a.decode_prefix)
    return 0


if __name__ == "__main__":
    run_main(main)
