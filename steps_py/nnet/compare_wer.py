"""Usage: python -m steps_py.nnet.compare_wer [options] <system-dir>...

The equivalent of Kaldi's local/chain/compare_wer.sh for the recurrent systems: one column per system dir
(exp/nnet/<name>), one row per quantity:

  # System                 lstm_2l   gru_2l
  # Seeds                        3        3     runs: <sys> and <sys>_seed<k> (utils/nnet_stage.sh --seeds)
  # WER dev (tgpr)           12.34    13.01     best %WER of <sys>/decode_tgpr_dev/wer_* (as utils/best_wer.sh),
  #   95% CI           11.2-13.5 11.9-14.1       the mean over seeds, and its 95% bootstrap interval over the
  # WER eval (tgpr)          14.10    14.88       utterances and seeds (steps_py.decode.scoring.bootstrap_wer)
  #   95% CI           12.9-15.3 13.7-16.0     same for decode_tgpr_eval (--sets "dev test": other sets)
  # Final train CE          1.2340   1.3010     from <sys>/train_summary.json (written by steps_py.nnet.train):
  # Final valid CE          1.4560   1.5020       final_train_ce, final_valid_ce (cross-entropy per frame, nats),
  # Final valid frame acc   0.6120   0.5980       final_valid_acc (fraction of frames), num_params
  # Num params               1.23M    0.95M

A missing value prints as "-"; the CE, accuracy and parameter rows are means over the seeds. A directory with no
nnet.conf but with system dirs below it (exp/nnet) stands for all of them.

--tables paper groups the systems by their nnet.conf (cell, num_layers, lazy, residual) into the analogues of
Tang et al. (2017): Table 1 (LSTM and GRU rows x 1/2/4/6 layers, no lazy update, no residual), Table 2 (LSTM with
and without the lazy cell update, by layers), Table 3 (residual LSTM/GRU at 4 and 6 layers against plain ones),
Baselines (vanilla RNN and DNN with their parameter counts), each cell "dev / eval" WER (the --sets) with its 95% interval
on the line below (over utterances and seeds, as above), and the GMM line from --gmm-dir (default: exp/tri2b next
to exp/nnet) as the reference. The differences the paper's claims rest on, with paired intervals, are in
steps_py.memvis.findings. --json FILE also writes every number.

e.g.: python -m steps_py.nnet.compare_wer exp/nnet/lstm_2l exp/nnet/gru_2l
      python -m steps_py.nnet.compare_wer --tables paper --json exp/nnet/compare.json exp/nnet
"""
import argparse
import os

from steps_py.common import InputError, get_logger, read_json, run_main, write_json
import numpy as np

from steps_py.decode.scoring import best_utterance_errors, best_wer, bootstrap_wer, stack_errors
from steps_py.nnet.runs import group_runs
from steps_py.nnet.config import NnetConfig

log = get_logger("nnet.compare_wer")

SETS = ("dev", "eval")
LAYER_COLUMNS = (1, 2, 4, 6)          # Tang et al. 2017, Table 1
RESIDUAL_COLUMNS = (4, 6)             # Table 3
MISSING = "-"


# ---------------------------------------------------------------------------------------------- reading
def decode_wer(system_dir, data_set, lm="tgpr"):
    """(best %WER, its best_wer line) of <system-dir>/decode_<lm>_<set>, or (None, None) if it has no wer files."""
    return best_wer(os.path.join(system_dir, f"decode_{lm}_{data_set}"))


def read_summary(system_dir):
    """<system-dir>/train_summary.json as a dict ({} if absent; an unreadable file is an InputError)."""
    path = os.path.join(system_dir, "train_summary.json")
    if not os.path.exists(path):
        return {}
    out = read_json(path)
    if not isinstance(out, dict):
        raise InputError(f"{path}: expected a JSON object")
    return out


SUMMARY_KEYS = ("final_train_ce", "final_valid_ce", "final_valid_acc", "num_params", "train_seconds", "epochs")


def read_system(system_dir, lm="tgpr", sets=SETS):
    """Everything compare_wer shows of one run: a dict with name, wer_<set>, wer_line_<set>, errors_<set> ({utt:
    (errors, words)} of the best LM weight and penalty, None without scoring_kaldi/), the summary keys, and conf
    (the NnetConfig of nnet.conf, None if absent)."""
    out = {"name": os.path.basename(os.path.normpath(system_dir)), "dir": system_dir}
    for s in sets:
        out[f"wer_{s}"], out[f"wer_line_{s}"] = decode_wer(system_dir, s, lm)
        decode = os.path.join(system_dir, f"decode_{lm}_{s}")
        out[f"errors_{s}"] = None
        if out[f"wer_{s}"] is not None and os.path.exists(os.path.join(decode, "scoring_kaldi", "test_filt.txt")):
            out[f"errors_{s}"] = best_utterance_errors(decode)
    summary = read_summary(system_dir)
    for key in SUMMARY_KEYS:
        out[key] = summary.get(key)
    conf = os.path.join(system_dir, "nnet.conf")
    out["conf"] = NnetConfig.from_file(conf) if os.path.exists(conf) else None
    return out


def merge_seeds(name, runs, num_samples=2000, sets=SETS):
    """The runs of one model (read_system dicts, one per seed) -> one system: WERs and summary numbers are means
    over the seeds, wer_ci_<set> the 95% interval over utterances and seeds (None when a run has no per-utterance
    errors), seeds the number of runs."""
    out = {"name": name, "dir": runs[0]["dir"], "dirs": [r["dir"] for r in runs], "seeds": len(runs),
           "conf": runs[0]["conf"]}
    for s in sets:
        wers = [r[f"wer_{s}"] for r in runs if r[f"wer_{s}"] is not None]
        out[f"wer_{s}"] = float(np.mean(wers)) if wers else None
        out[f"wer_line_{s}"] = runs[0][f"wer_line_{s}"]
        out[f"wer_ci_{s}"] = None
        errs = [r[f"errors_{s}"] for r in runs]
        stacked = stack_errors(errs) if wers and all(errs) else None
        if stacked and stacked[0]:
            _, lo, hi = bootstrap_wer(stacked[1][..., 0], stacked[1][0, :, 1], num_samples)
            out[f"wer_ci_{s}"] = [lo, hi]
    for key in SUMMARY_KEYS:
        vals = [r[key] for r in runs if r[key] is not None]
        out[key] = float(np.mean(vals)) if vals else None
    return out


def read_systems(system_dirs, lm="tgpr", sets=SETS):
    """System dirs -> one merged system per model (its seed runs together, see merge_seeds)."""
    runs = {d: read_system(d, lm, sets) for d in system_dirs}
    return [merge_seeds(name, [runs[d] for d in dirs], sets=sets) for name, dirs in group_runs(system_dirs).items()]


def expand_system_dirs(dirs):
    """System dirs: each argument itself, or (no nnet.conf / decode dir / summary in it) its subdirs that are."""
    def is_system(d):
        return any(os.path.exists(os.path.join(d, f)) for f in ("nnet.conf", "train_summary.json", "final.pt")) \
            or any(n.startswith("decode_") for n in os.listdir(d))
    out = []
    for d in dirs:
        if not os.path.isdir(d):
            raise InputError(f"no such directory {d}")
        if is_system(d):
            out.append(d)
            continue
        subs = sorted(os.path.join(d, n) for n in os.listdir(d) if os.path.isdir(os.path.join(d, n)))
        found = [s for s in subs if is_system(s)]
        if not found:
            raise InputError(f"{d}: neither a system dir (nnet.conf, train_summary.json, decode_*) nor a dir of them")
        out.extend(found)
    return out


# ---------------------------------------------------------------------------------------------- formatting
def fmt(value, kind):
    if value is None:
        return MISSING
    if kind == "wer":
        return f"{value:.2f}"
    if kind == "ci":
        return f"{value[0]:.1f}-{value[1]:.1f}"
    if kind == "int":
        return str(value)
    if kind == "ce":
        return f"{value:.4f}"
    if kind == "acc":
        return f"{value:.4f}"
    if kind == "params":
        return f"{value / 1e6:.2f}M" if value >= 1e5 else str(int(value))
    return str(value)


def table_rows(sets=SETS, lm="tgpr"):
    """(label, key, kind) of each row of compare_table: seeds, WER and interval per test set, CE, accuracy, size."""
    wer_rows = [row for s in sets for row in ((f"# WER {s} ({lm})", f"wer_{s}", "wer"),
                                              ("#   95% CI", f"wer_ci_{s}", "ci"))]
    return [("# Seeds", "seeds", "int")] + wer_rows + [
        ("# Final train CE", "final_train_ce", "ce"), ("# Final valid CE", "final_valid_ce", "ce"),
        ("# Final valid frame acc", "final_valid_acc", "acc"), ("# Num params", "num_params", "params")]


def compare_table(systems, sets=SETS, lm="tgpr"):
    """compare_wer.sh's table: lines of a header row and one row per quantity, one column per system."""
    rows = table_rows(sets, lm)
    width = max([len(s["name"]) for s in systems] + [8]) + 2
    label_width = max(len(r[0]) for r in rows) + 1
    lines = ["# System".ljust(label_width) + "".join(s["name"].rjust(width) for s in systems)]
    for label, key, kind in rows:
        lines.append(label.ljust(label_width) + "".join(fmt(s[key], kind).rjust(width) for s in systems))
    return lines


# ---------------------------------------------------------------------------------------------- paper tables
def _conf(s):
    """(cell, num_layers, lazy, residual) of a system's model."""
    c = s["conf"]
    return c.cell, c.num_layers, c.lazy, c.residual


def _pick(systems, pred, what):
    """The first system (by name) that satisfies pred; others that also do are logged."""
    found = sorted((s for s in systems if s["conf"] and pred(*_conf(s))), key=lambda s: s["name"])
    if len(found) > 1:
        log.warning(f"{what}: {len(found)} systems fit ({', '.join(s['name'] for s in found)}); "
                    f"showing {found[0]['name']}")
    return found[0] if found else None


def _cell(s, sets=SETS):
    """{"system", <set>: WER, <set>_ci: interval, for each test set} of one table cell (None where no system
    fits); the intervals are merge_seeds' 95% intervals (None without per-utterance errors)."""
    if s is None:
        return None
    out = {"system": s["name"]}
    for name in sets:
        out[name], out[f"{name}_ci"] = s[f"wer_{name}"], s.get(f"wer_ci_{name}")
    return out


def paper_tables(systems, gmm=None, sets=SETS):
    """The analogues of Tang et al. 2017 Tables 1-3 and the baselines: a dict of tables, each
    {"title", "columns" (layer counts), "rows": [(label, [cell per column])]} or, for baselines, rows of
    (label, cell with num_params and num_layers)."""
    shown = " / ".join(sets)
    t1 = {"title": f"Table 1: LSTM and GRU, WER {shown} by number of layers (no lazy update, no residual)",
          "columns": list(LAYER_COLUMNS), "rows": []}
    for cell in ("lstm", "gru"):
        t1["rows"].append((cell.upper(), [_cell(sets=sets, s=_pick(
            systems, lambda c, n, lz, r, cell=cell, L=L: c == cell and n == L and lz == "none" and not r,
            f"table 1 {cell} {L} layers")) for L in LAYER_COLUMNS]))
    lazy_values = sorted({_conf(s)[2] for s in systems if s["conf"] and _conf(s)[0] == "lstm"} - {"none"})
    t2 = {"title": f"Table 2: LSTM with the lazy cell update vs normal, WER {shown} by number of layers",
          "columns": list(LAYER_COLUMNS), "rows": []}
    t2["rows"].append(("LSTM", [_cell(sets=sets, s=_pick(
        systems, lambda c, n, lz, r, L=L: c == "lstm" and n == L and lz == "none" and not r,
        f"table 2 lstm {L} layers")) for L in LAYER_COLUMNS]))
    for value in lazy_values or ["last"]:
        t2["rows"].append((f"LSTM lazy={value}", [_cell(sets=sets, s=_pick(
            systems, lambda c, n, lz, r, L=L, v=value: c == "lstm" and n == L and lz == v and not r,
            f"table 2 lstm lazy={value} {L} layers")) for L in LAYER_COLUMNS]))
    t3 = {"title": f"Table 3: residual connections, WER {shown} by number of layers",
          "columns": list(RESIDUAL_COLUMNS), "rows": []}
    for cell in ("lstm", "gru"):
        for res in (False, True):
            t3["rows"].append((cell.upper() + (" residual" if res else ""), [_cell(sets=sets, s=_pick(
                systems, lambda c, n, lz, r, cell=cell, L=L, res=res: c == cell and n == L and lz == "none"
                and r == res, f"table 3 {cell} residual={res} {L} layers")) for L in RESIDUAL_COLUMNS]))
    base = {"title": f"Baselines: vanilla RNN and DNN (WER {shown}, parameters)", "rows": []}
    for s in sorted(systems, key=lambda s: s["name"]):
        if s["conf"] and _conf(s)[0] in ("rnn", "dnn"):
            cell = _cell(s, sets)
            cell.update(num_params=s["num_params"], num_layers=_conf(s)[1])
            base["rows"].append((f"{_conf(s)[0].upper()} {_conf(s)[1]}l", cell))
    if gmm is not None:
        base["rows"].append(("GMM " + gmm["name"], dict(_cell(gmm, sets), num_params=None, num_layers=None)))
    return {"table1": t1, "table2": t2, "table3": t3, "baselines": base}


def _dev_eval(cell, sets=SETS):
    if cell is None:
        return MISSING
    return " / ".join(fmt(cell[name], "wer") for name in sets)


def _dev_eval_ci(cell, sets=SETS):
    if cell is None:
        return ""
    return " / ".join(fmt(cell.get(f"{name}_ci"), "ci") for name in sets)


def format_paper_tables(tables, sets=SETS):
    lines = []
    for key in ("table1", "table2", "table3"):
        t = tables[key]
        label_width = max(len(r[0]) for r in t["rows"]) + 2
        col_width = max([len(f(c, sets)) for _, cells in t["rows"] for c in cells for f in (_dev_eval, _dev_eval_ci)]
                        + [13]) + 2
        lines += [f"# {t['title']}",
                  "# " + "".ljust(label_width) + "".join(f"{n} layer{'s' if n > 1 else ''}".rjust(col_width)
                                                        for n in t["columns"])]
        for label, cells in t["rows"]:
            lines.append("# " + label.ljust(label_width) + "".join(_dev_eval(c, sets).rjust(col_width) for c in cells))
            if any(c and any(c[f"{name}_ci"] for name in sets) for c in cells):
                lines.append("# " + "  95% CI".ljust(label_width) +
                             "".join(_dev_eval_ci(c, sets).rjust(col_width) for c in cells))
        lines.append("")
    t = tables["baselines"]
    lines.append(f"# {t['title']}")
    if not t["rows"]:
        lines.append("# (no rnn/dnn systems, no GMM decode dirs)")
    for label, cell in t["rows"]:
        params = fmt(cell["num_params"], "params")
        ci = f"   95% CI {_dev_eval_ci(cell, sets)}" if any(cell.get(f"{name}_ci") for name in sets) else ""
        lines.append(f"# {label:<16} {cell['system']:<16} {_dev_eval(cell, sets):>17}   params {params}{ci}")
    return lines


def find_gmm_dir(system_dirs, gmm_dir):
    """--gmm-dir, or exp/tri2b next to the exp/nnet holding the systems (None if it has no decode dirs)."""
    if gmm_dir:
        return gmm_dir
    parent = os.path.dirname(os.path.normpath(system_dirs[0])) if system_dirs else ""
    cand = os.path.join(os.path.dirname(parent), "tri2b")
    return cand if os.path.isdir(cand) else None


def plain_system(s):
    """A system dict for JSON (its conf as a dict)."""
    return dict(s, conf=s["conf"] and s["conf"].to_dict())


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tables", choices=["paper"], help="also print the paper's tables (see above)")
    p.add_argument("--gmm-dir", help="GMM system shown as the reference line of --tables paper "
                                     "(default: exp/tri2b next to exp/nnet, when it exists)")
    p.add_argument("--lm", default="tgpr", help="LM of the decode dirs: decode_<lm>_<set> (default: tgpr)")
    p.add_argument("--sets", default=" ".join(SETS),
                   help="the test sets, decode_<lm>_<set> (default: %(default)s; e.g. \"dev test\")")
    p.add_argument("--json", metavar="FILE", help="also write every number to FILE (JSON)")
    p.add_argument("dirs", nargs="+", help="system dirs (exp/nnet/<name>) or dirs holding them (exp/nnet)")
    a = p.parse_args()
    sets = tuple(a.sets.split())
    if not sets:
        raise InputError("--sets: no test set given")
    system_dirs = expand_system_dirs(a.dirs)
    systems = read_systems(system_dirs, a.lm, sets)
    lines = compare_table(systems, sets, a.lm)
    out = {"sets": list(sets), "systems": {s["name"]: plain_system(s) for s in systems}}
    if a.tables == "paper":
        gmm_dir = find_gmm_dir(system_dirs, a.gmm_dir)
        gmm = merge_seeds(os.path.basename(os.path.normpath(gmm_dir)), [read_system(gmm_dir, a.lm, sets)],
                          sets=sets) if gmm_dir else None
        if gmm_dir and all(gmm[f"wer_{s}"] is None for s in sets):
            log.warning(f"{gmm_dir}: no decode_{a.lm}_{{{','.join(sets)}}} with wer files; no GMM line")
            gmm = None
        tables = paper_tables(systems, gmm, sets)
        lines += [""] + format_paper_tables(tables, sets)
        out["tables"] = tables
        out["gmm"] = gmm and plain_system(gmm)
    print("\n".join(lines))
    if a.json:
        write_json(a.json, out, keep_same=True)   # a re-run leaves the run page (its input) up to date


if __name__ == "__main__":
    run_main(main)
