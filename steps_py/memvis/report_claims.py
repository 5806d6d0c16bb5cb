"""The claims table of the run page (steps_py.memvis.run_report) for people: each claim of findings.json
(steps_py.memvis.findings) as the paper's statement, our number for the LSTM and for the GRU with its 95% interval,
the difference d the verdict rests on, the verdict in words and a link to the figure or table behind it. Pure
functions: findings objects in, rows of text (or HTML) out; no JSON is shown. Also findings.md, the findings'
own markdown summary (findings_markdown)."""
import html

from steps_py.memvis.report_numbers import interval, num, pct, signed

# Where each claim's evidence is on the run page (anchors of report_sections) and what it is called there.
CLAIM_FIGURE = {
    "lstm_values_in_range": ("fig1", "Fig. 1"),
    "gru_values_pile_at_1": ("fig1", "Fig. 1"),
    "lstm_smoother_than_gru": ("fig2", "Fig. 2"),
    "noise_lingers_in_lstm": ("fig3", "Fig. 3"),
    "lazy_improves_wer": ("table2", "Table 2, Fig. 5"),
    "residual_improves_wer": ("table3", "Table 3, Fig. 5"),
    "gru_beats_lstm_wer": ("table1", "Table 1"),
    "deeper_improves_wer": ("table1", "Table 1"),
}
DEFAULT_FIGURE = ("wer-tables", "WER")

# What d is, in words, per claim (d > 0 supports the paper)
D_MEANING = {
    "lstm_values_in_range": "share of |c| < 2 minus 50% (in points)",
    "gru_values_pile_at_1": "density near ±1 over the density between, minus 1",
    "lstm_smoother_than_gru": "GRU minus LSTM trace smoothness",
    "noise_lingers_in_lstm": "LSTM minus GRU persistence (frames)",
    "lazy_improves_wer": "baseline minus lazy model (WER points)",
    "residual_improves_wer": "baseline minus residual model (WER points)",
    "gru_beats_lstm_wer": "LSTM minus GRU (WER points)",
    "deeper_improves_wer": "fewer minus more layers (WER points)",
}

VERDICT = {True: ("holds", "holds"), False: ("fails", "does not hold"),
           "inconclusive": ("unknown", "inconclusive: the interval of d holds 0"),
           "not measured": ("unknown", "not measured")}

LABELS = {"share_in_range": "share in range", "p99.9_abs": "99.9th percentile |c|", "share_near_pm1": "share near ±1",
          "density_ratio": "density ratio", "lstm": "LSTM", "gru": "GRU", "wer": "WER", "baseline_wer": "baseline WER",
          "improvement": "improvement", "lstm_median": "LSTM median", "gru_median": "GRU median", "d": "d"}


def cell_of(name, models):
    """A model's cell type from findings.json's "models" (else guessed from its name: lstm_2l -> lstm)."""
    cell = (models.get(name) or {}).get("cell")
    if cell:
        return cell
    return next((c for c in ("lstm", "gru", "rnn", "dnn") if name.lower().startswith(c)), None)


def wer_text(name, wer, models):
    """"name 7.2% WER [5.0, 9.6]" with the model's interval over utterances and seeds from findings' models."""
    ci = (models.get(name) or {}).get("wer_ci95")
    return f"{name}: {wer:.2f}% WER" + (f" [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else "")


def comparison_lines(cid, key, value, models):
    """One comparison of a claim -> ({"lstm": [text], "gru": [text], "other": [text]}, d text or None)."""
    out = {"lstm": [], "gru": [], "other": []}
    if not isinstance(value, dict):
        out["other"].append(f"{key}: {value}")
        return out, None
    names = key.split(" vs ")
    ci = value.get("ci95")
    if cid == "lstm_values_in_range":
        out["lstm"].append(f"{key}: {pct(value.get('share_in_range'))} of |c| < 2 {interval(ci, pct)}; "
                           f"99.9th percentile of |c| {num(value.get('p99.9_abs'))}")
        return out, None
    if cid == "gru_values_pile_at_1":
        out["gru"].append(f"{key}: {pct(value.get('share_near_pm1'))} of h near ±1; density there "
                          f"{num(value.get('density_ratio'))} x the density between {interval(ci)}")
        return out, None
    d_text = None
    if "d" in value and len(names) == 2:
        d_text = f"{signed(value['d'])} {interval(ci, signed)}"
    if cid == "lstm_smoother_than_gru" and len(names) == 2:
        for side, name, cell in (("lstm", names[0], "lstm"), ("gru", names[1], "gru")):
            out[cell].append(" ".join(x for x in (f"{name}: smoothness {num(value.get(side))}",
                                                  interval(value.get(side + "_ci95")), "(lower = smoother)") if x))
        return out, d_text
    if cid == "noise_lingers_in_lstm" and len(names) == 2:
        for side, name in (("lstm", names[0]), ("gru", names[1])):
            censored = value.get(f"{side}_censored_share")
            out[side].append(" ".join(x for x in (f"{name}: median {num(value.get(side + '_median'))} frames",
                                                  interval(value.get(side + "_ci95"))) if x) +
                             (f", {pct(censored)} never settled" if censored is not None else ""))
        return out, d_text + " frames" if d_text else None
    if "wer" in value and "baseline_wer" in value and len(names) == 2:
        variant, base = names
        for name, wer in ((variant, value["wer"]), (base, value["baseline_wer"])):
            cell = cell_of(name, models)
            out[cell if cell in ("lstm", "gru") else "other"].append(wer_text(name, wer, models))
        d = value.get("improvement")
        return out, f"{variant} vs {base}: {signed(d)} {interval(ci, signed)} WER points"
    # a claim this page does not know: its scalar numbers with readable names
    parts = [f"{LABELS.get(k, k.replace('_', ' '))} {num(v) if not isinstance(v, list) else interval(v)}"
             for k, v in value.items() if isinstance(v, (int, float)) or (isinstance(v, list) and len(v) == 2)]
    out["other"].append(f"{key}: " + ", ".join(parts))
    return out, d_text


def claim_row(claim, models):
    """One claim of findings.json -> {"id", "paper", "lstm": [text], "gru": [text], "other": [text], "d": [text],
    "d_meaning", "verdict": (css class, words), "figure": (anchor, label), "how"}."""
    cid = claim.get("id") or claim.get("claim", "")
    row = {"id": cid, "paper": claim.get("paper", ""), "lstm": [], "gru": [], "other": [], "d": [],
           "d_meaning": D_MEANING.get(cid, ""), "how": claim.get("how", ""),
           "figure": CLAIM_FIGURE.get(cid, DEFAULT_FIGURE)}
    holds = claim.get("holds")
    row["verdict"] = VERDICT.get(holds, ("unknown", str(holds)))
    measured = claim.get("measured")
    if isinstance(measured, dict):
        for key, value in measured.items():
            lines, d_text = comparison_lines(cid, key, value, models)
            for side in ("lstm", "gru", "other"):
                row[side] += [x for x in lines[side] if x not in row[side]]
            if d_text:
                several = len(measured) > 1 and not d_text.startswith(key)
                row["d"].append(f"{key}: {d_text}" if several else d_text)
    elif measured not in (None, ""):
        row["other"].append(str(measured) if not isinstance(measured, float) else num(measured))
    ci = claim.get("ci95")
    if ci and (len(row["d"]) != 1 or cid in ("lstm_values_in_range", "gru_values_pile_at_1")):
        scale = 100 if cid == "lstm_values_in_range" else 1
        least = "least favourable: " if len(row["d"]) > 1 else ""
        row["d"].append(f"{least}{interval([scale * ci[0], scale * ci[1]], signed)}")
    return row


def claims_html(claims, models, source=""):
    """The claims table (id "claims"): the paper | LSTM (ours) | GRU (ours) | d [95% CI] | verdict | evidence.
    ``models``: findings.json's "models" ({name: {cell, wer, wer_ci95, ...}})."""
    e = html.escape
    if not claims:
        return '<p id="claims" class="missing">No findings.json: run utils/memvis_stage.sh findings.</p>'
    rows = [claim_row(c, models) for c in claims]
    with_other = any(r["other"] for r in rows)

    def lines(texts):
        return "<br>".join(e(t) for t in texts) or "&ndash;"
    body = []
    for r in rows:
        cls, words = r["verdict"]
        anchor, label = r["figure"]
        d = lines(r["d"]) + (f'<div class="note">{e(r["d_meaning"])}</div>' if r["d_meaning"] and r["d"] else "")
        body.append(f'<tr id="claim-{e(r["id"])}"><td>{e(r["paper"])}</td><td>{lines(r["lstm"])}</td>'
                    f'<td>{lines(r["gru"])}</td>' + (f"<td>{lines(r['other'])}</td>" if with_other else "") +
                    f'<td title="{e(r["how"])}">{d}</td><td class="{cls}">{e(words)}</td>'
                    f'<td><a href="#{e(anchor)}">{e(label)}</a></td></tr>')
    head = ("<tr><th>Tang et al. (2017)</th><th>LSTM (ours)</th><th>GRU (ours)</th>" +
            ("<th>other</th>" if with_other else "") +
            "<th>d [95% CI]</th><th>verdict</th><th>evidence</th></tr>")
    note = ("d > 0 supports the paper; the claim holds when the 95% interval of d (bootstrap over utterances and, "
            "with several training runs, seeds) lies above 0, does not hold when it lies below, and is inconclusive "
            "when it holds 0. Hover over d for how it is measured.")
    src = f'<p class="source">{e(source)}</p>' if source else ""
    return f'<table id="claims" class="claims">{head}{"".join(body)}</table><p class="note">{e(note)}</p>{src}'


def _md_value(x):
    if isinstance(x, float):
        return f"{x:.3g}"
    if isinstance(x, list) and len(x) == 2 and all(isinstance(v, float) for v in x):
        return f"[{x[0]:.3g}, {x[1]:.3g}]"
    if isinstance(x, dict):
        return ", ".join(f"{k} {_md_value(v)}" for k, v in x.items())
    return str(x)


def findings_markdown(set_name, summaries, claims):
    """findings.md of steps_py.memvis.findings: the models' WERs and every claim with its measured values (lines)."""
    out = [f"# Findings on the {set_name} set (95% intervals: bootstrap over utterances and seeds)", "",
           "| model | seeds | cell | layers | lazy | residual | %WER | 95% CI |", "|---|---|---|---|---|---|---|---|"]
    for name, s in summaries.items():
        wer = f"{s['wer']:.2f}" if s["wer"] is not None else "-"
        ci = f"[{s['wer_ci95'][0]:.2f}, {s['wer_ci95'][1]:.2f}]" if s["wer_ci95"] else "-"
        out.append(f"| {name} | {s['seeds']} | {s['cell']} | {s['num_layers']} | {s['lazy']} | {s['residual']} | "
                   f"{wer} | {ci} |")
    out += ["", "| claim | paper | measured | d: 95% CI | holds |", "|---|---|---|---|---|"]
    for c in claims:
        meas = "; ".join(f"{k}: {_md_value(v)}" for k, v in c["measured"].items()) or "-"
        ci = _md_value(c["ci95"]) if c["ci95"] else "-"
        out.append(f"| {c['id']} | {c['paper']} | {meas} | {ci} | {c['holds']} |")
    out += ["", "How each claim is measured (holds: the interval of d above 0 true, below 0 false, else "
            "inconclusive):", ""] + [f"- {c['id']}: {c['how']}" for c in claims]
    return out
