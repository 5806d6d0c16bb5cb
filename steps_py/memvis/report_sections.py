"""The sections of the run page (steps_py.memvis.run_report) as HTML, in the paper's order: Fig. 1 distributions,
Fig. 2 t-SNE traces, Fig. 3 noise insertion, the responsibility of units for phones, Fig. 5 the lazy and residual
models, Tables 1-3 (WER); then the other views: gate saturation and interpretable units (Karpathy et al.),
co-clustering (RNNVis), autoencoder trajectories, the training horizon, the models side by side (memvis.compare).

A model here is a dict {"name", "cell", "num_layers", "lazy", "residual", "analyses": {analysis name: the entry of
report_page.collect_analyses (figures, raw numbers.json)}}. Each section is <section id=ANCHOR> with a caption that
says which figure of Tang et al. (2017) it reproduces; a section without data says so in <p class="missing">."""
import html

from steps_py.memvis import report_figures as rf
from steps_py.memvis.report_numbers import num, readable_numbers, side_by_side

e = html.escape

# Tang et al. (2017), %WER on WSJ (Tables 1-3), by table, row label (as steps_py.nnet.compare_wer names its rows)
# and number of layers
PAPER_WER = {
    "table1": {"LSTM": {1: 10.96, 2: 9.97, 4: 9.67, 6: 9.47}, "GRU": {1: 10.76, 2: 9.47, 4: 9.32, 6: 9.32}},
    "table2": {"LSTM": {1: 10.96, 2: 9.97, 4: 9.67}, "LSTM lazy=last": {1: 10.18, 2: 9.48, 4: 9.10}},
    "table3": {"LSTM": {4: 9.67, 6: 9.47}, "LSTM residual": {4: 9.53, 6: 9.33}, "GRU": {4: 9.32, 6: 9.32},
               "GRU residual": {4: 9.23, 6: 9.10}},
}


# ----------------------------------------------------------------------------------------------------------------
# Building blocks

def model_label(m):
    """"lstm_2l (LSTM, 2 layers, lazy update)"."""
    extra = [f"{m['num_layers']} layers"] if m.get("num_layers") else []
    if m.get("lazy") not in (None, "none"):
        extra.append(f"lazy update: {m['lazy']}")
    if m.get("residual"):
        extra.append("residual")
    return f"{m['name']} ({', '.join([(m.get('cell') or '?').upper()] + extra)})"


def section(anchor, title, caption, body):
    return (f'<section class="paper-figure" id="{e(anchor)}"><h3>{e(title)}</h3>'
            f'<p class="caption">{e(caption)}</p>{body}</section>')


def missing(text):
    return f'<p class="missing">{e(text)}</p>'


def image(data, alt, mime="image/png"):
    return f'<img alt="{e(alt)}" src="data:{mime};base64,{data}">'


def figures_of(model, analysis, pick=None):
    """The figures of one analysis of a model (PNG, or SVG where there is no PNG), those whose file name
    ``pick(name)`` accepts."""
    a = model["analyses"].get(analysis)
    return [f for f in (a["figures"] if a else []) if pick is None or pick(f["name"])]


def side_by_side_figures(models, analysis, pick=None, limit=None):
    """One column per model with its figures of ``analysis`` (the same file names side by side); "" if none."""
    cols = []
    for m in models:
        figs = figures_of(m, analysis, pick)[:limit]
        if not figs:
            continue
        imgs = "".join(f'<figure>{image(f["data"], f["name"], f["mime"])}<figcaption>{e(m["name"])}: '
                       f'{e(analysis)}/{e(f["name"])}</figcaption></figure>' for f in figs)
        cols.append(f'<div class="model-column"><h4>{e(model_label(m))}</h4>{imgs}</div>')
    return f'<div class="side-by-side">{"".join(cols)}</div>' if cols else ""


def numbers_side_by_side(models, analysis):
    """The readable key numbers (report_numbers) of ``analysis``, one column per model; "" if none."""
    rows = {m["name"]: readable_numbers(analysis, m["analyses"][analysis]["raw"], m["analyses"][analysis]
                                        ["key_numbers"]) for m in models if analysis in m["analyses"]}
    rows = {k: v for k, v in rows.items() if v}
    if not rows:
        return ""
    labels, table = side_by_side(rows)
    head = "<tr><th>key numbers</th>" + "".join(f"<th>{e(m)}</th>" for m in rows) + "</tr>"
    body = "".join(f"<tr><td>{e(label)}</td>" + "".join(f"<td>{e(table[m].get(label, '-'))}</td>" for m in rows) +
                   "</tr>" for label in labels)
    return f'<table class="key-numbers">{head}{body}</table>'


def replot(models, analysis, plot):
    """A report_figures plot of the raw numbers of ``analysis`` of every model that has it; "" if none."""
    data = plot([(m["name"], m.get("cell"), m["analyses"][analysis]["raw"]) for m in models
                 if analysis in m["analyses"]])
    return f'<figure class="wide">{image(data, analysis)}</figure>' if data else ""


def first_common(models, analysis, prefix):
    """The first figure name ``prefix``*.png that every model of ``models`` having the analysis has (e.g. the same
    utterance's delta figure), else the first of the first model."""
    names = [sorted(f["name"] for f in figures_of(m, analysis) if f["name"].startswith(prefix)) for m in models]
    names = [n for n in names if n]
    if not names:
        return None
    common = sorted(set(names[0]).intersection(*names[1:]))
    return (common or names[0])[0]


# ----------------------------------------------------------------------------------------------------------------
# The paper's figures

def setting(models, analysis, key, default, cell=None):
    """The value of ``key`` in the numbers of ``analysis`` of the first model (of ``cell``, when given) that has
    it, formatted with :g: the setting the analysis ran with, for a caption; ``default`` when none has it."""
    for m in models:
        raw = (m["analyses"].get(analysis) or {}).get("raw")
        if isinstance(raw, dict) and raw.get(key) is not None and (cell is None or m.get("cell") == cell):
            return f"{raw[key]:g}" if isinstance(raw[key], (int, float)) else str(raw[key])
    return default


def fig1(models):
    body = replot(models, "distributions", rf.distributions_figure)
    shown = sorted({k for m in models for k in rf.shown_layers(m.get("num_layers") or 1)})
    layers = " and ".join(str(k) for k in shown)
    clip = setting(models, "distributions", "clip", "?")
    cap = (f"Reproduces Fig. 1 of Tang et al.: the distributions of the memory values (LSTM cell c, clipped to "
           f"±{clip} for the plot; GRU state h) of layers {layers} (the paper shows layers 1 and 4 of its 4-layer "
           "models; these models have the layers shown). One y scale for every panel: the share of the values per bin. The "
           "paper: LSTM values mostly near 0 with wide tails, GRU values in [-1, 1] piling up at ±1.")
    return section("fig1", "Fig. 1: memory value distributions", cap,
                   (body or missing("No distributions analysis.")) + numbers_side_by_side(models, "distributions"))


def fig2(models, compare):
    body = side_by_side_figures(models, "tsne", lambda f: f.endswith(".png"))
    traces = "".join(f'<figure class="wide">{image(compare[k]["data"], k)}<figcaption>compare/{e(k)}: '
                     f'{e(text)}</figcaption></figure>' for k, text in (
                         ("traces.png", "the 6 highest-variance units of each model's last layer over the same "
                                        "utterance"),
                         ("smoothness.png", "trace smoothness per model and layer (lower = smoother)"))
                     if k in compare)
    cap = ("Reproduces Fig. 2 of Tang et al.: t-SNE of the memory vectors of single utterances, per layer, points "
           "joined in time order (colour: time). Each t-SNE plane is its own embedding, so the models stand side by "
           "side rather than on shared axes. The paper: LSTM traces are smoother than GRU ones.")
    return section("fig2", "Fig. 2: t-SNE traces of the memory per layer", cap,
                   (body or missing("No t-SNE analysis.")) + traces + numbers_side_by_side(models, "tsne"))


def fig3(models):
    body = replot(models, "noise", rf.noise_figure)
    utt = first_common(models, "noise", "delta_")
    deltas = side_by_side_figures(models, "noise", lambda f: f == utt) if utt else ""
    late = replot(models, "noise_late", rf.noise_figure)
    if late:
        late = f"<h4>The same burst later in the utterance, past the training horizon (noise_late)</h4>{late}" + \
            numbers_side_by_side(models, "noise_late")
    cap = ("Reproduces Fig. 3 of Tang et al.: white noise is put into the audio and the memory of the noisy audio "
           "is compared with that of the clean audio. The change is measured in units of each unit's own "
           "frame-to-frame variation; persistence is how many frames it stays above the threshold once the input "
           "is free of noise. Every model on the same axes. The paper: noise lingers longer in LSTM cells than in "
           "GRU memory.")
    return section("fig3", "Fig. 3: memory after noise insertion", cap,
                   (body or missing("No noise analysis (its claim is not measured).")) + deltas + late +
                   numbers_side_by_side(models, "noise"))


def responsibility(models):
    body = side_by_side_figures(models, "responsibility", lambda f: f.endswith(".png"))
    lstm, gru = (setting(models, "responsibility", k, "?") for k in ("lstm_threshold", "gru_threshold"))
    share = {c: setting(models, "responsibility", "share_threshold", None, c) for c in ("lstm", "gru")}
    share = {c: f"{float(v) * 100:g}%" if v else "?" for c, v in share.items()}
    cap = (f"The paper's responsibility of units for phones: a value is irregular outside (-{lstm}, {lstm}) for an "
           f"LSTM cell and inside (-{gru}, {gru}) for a GRU state; a unit is responsible for a phone when most of "
           f"the phone's frames are irregular ({share['lstm']} LSTM, {share['gru']} GRU), here also at "
           f"{setting(models, 'responsibility', 'min_lift', '?')} times the unit's own rate.")
    return section("responsibility", "Units responsible for phones", cap,
                   (body or missing("No responsibility analysis.")) + numbers_side_by_side(models, "responsibility"))


def fig5(variants, baselines):
    """Fig. 5: the t-SNE traces of the lazy-update and residual models beside their plain baselines."""
    cap = ("Reproduces Fig. 5 of Tang et al.: t-SNE traces of the models with the lazy cell update and with "
           "residual shortcuts, beside the plain model of the same cell and depth.")
    if not variants:
        return section("fig5", "Fig. 5: traces of the lazy and residual models", cap,
                       missing("No lazy-update or residual model in this grid (--grid paper or paper_small trains "
                               "them)."))
    body = side_by_side_figures(baselines + variants, "tsne", lambda f: f.endswith(".png"))
    return section("fig5", "Fig. 5: traces of the lazy and residual models", cap,
                   (body or missing("The lazy and residual models have no t-SNE analysis (run utils/memvis_stage.sh "
                                    "analyse for their grid).")) + numbers_side_by_side(baselines + variants, "tsne"))


def wer_cell(cell, paper, sets=("dev", "eval")):
    """A table cell of compare_wer.json ({system, <set>, <set>_ci for each test set}) and the paper's number."""
    parts = []
    if cell:
        for s in sets:
            if cell.get(s) is not None:
                ci = cell.get(f"{s}_ci")
                parts.append(f"{s} {cell[s]:.2f}" + (f" [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else ""))
        parts = [f"{cell.get('system', '')}: " + "; ".join(parts)] if parts else []
    if paper is not None:
        parts.append(f"paper {paper:.2f}")
    return "<br>".join(e(p) for p in parts) or "&ndash;"


def wer_table(key, table, sets=("dev", "eval")):
    """One of compare_wer.json's tables 1-3 ({title, columns: layers, rows: [[label, [cell or null]]]}) with the
    paper's WER in each cell; ``sets``: the test sets of the cells."""
    paper = PAPER_WER.get(key, {})
    cols = table.get("columns", [])
    head = "<tr><th>layers</th>" + "".join(f"<th>{e(str(c))}</th>" for c in cols) + "</tr>"
    body = ""
    for label, cells in table.get("rows", []):
        body += f"<tr><td>{e(label)}</td>" + "".join(
            f"<td>{wer_cell(c, paper.get(label, {}).get(n), sets)}</td>" for c, n in zip(cells, cols)) + "</tr>"
    return f'<table id="{e(key)}" class="wer"><caption>{e(table.get("title", key))}</caption>{head}{body}</table>'


def wer_tables(compare_wer, findings_models, source=""):
    """Tables 1-3 (anchors table1..table3) from compare_wer.json when there is one, else the findings' WER per
    model under table1 (and notes under table2, table3)."""
    sets = tuple((compare_wer or {}).get("sets") or ("dev", "eval"))
    cap = ("Reproduces Tables 1-3 of Tang et al.: %WER [95% interval over utterances and seeds] of each of our "
           f"models ({' / '.join(sets)}) and, below it, the paper's %WER on WSJ. The paired differences the claims "
           "rest on are in the claims table above.")
    tables = (compare_wer or {}).get("tables") or {}
    parts = []
    for key in ("table1", "table2", "table3"):
        if key in tables:
            parts.append(wer_table(key, tables[key], sets))
        elif key == "table1" and findings_models:
            rows = ""
            for name, m in findings_models.items():
                if m.get("wer") is not None:
                    cell = wer_cell({"system": name, "dev": m["wer"], "dev_ci": m.get("wer_ci95")}, None)
                    rows += (f"<tr><td>{e(name)}</td><td>{e(m.get('cell') or '')}</td>"
                             f"<td>{num(m.get('num_layers'))}</td><td>{cell}</td></tr>")
            parts.append(f'<table id="table1" class="wer"><caption>%WER per model (findings.json; no '
                         f'compare_wer.json)</caption><tr><th>model</th><th>cell</th><th>layers</th><th>%WER</th>'
                         f'</tr>{rows}</table>')
        else:
            parts.append(f'<p id="{key}" class="missing">No {key.replace("table", "Table ")} '
                         "(exp/nnet/compare_wer.json is made by utils/nnet_stage.sh compare).</p>")
    baselines = tables.get("baselines")
    if baselines and baselines.get("rows"):
        rows = "".join(f"<tr><td>{e(label)}</td><td>{wer_cell(cell, None)}</td></tr>"
                       for label, cell in baselines["rows"])
        parts.append(f'<table class="wer"><caption>{e(baselines.get("title", ""))}</caption>{rows}</table>')
    if source:
        parts.append(f'<p class="source">{e(source)}</p>')
    return section("wer-tables", "Tables 1-3: word error rates", cap, "".join(parts))


# ----------------------------------------------------------------------------------------------------------------
# Other views

def other_view(anchor, title, caption, models, analysis, pick=None, extra=""):
    body = side_by_side_figures(models, analysis, pick)
    return section(anchor, title, caption, (body or missing(f"No {analysis} analysis.")) + extra +
                   numbers_side_by_side(models, analysis))


def other_views(models, compare):
    png = lambda f: f.endswith(".png")  # noqa: E731
    low, high = (setting(models, "saturation", k, "?") for k in ("low", "high"))
    parts = [
        other_view("saturation", "Gate saturation (Karpathy et al. 2015)",
                   f"Per gate unit, the share of frames it is left-saturated (< {low}) against right-saturated "
                   f"(> {high}); GRU z in Karpathy's convention (left = keeps its memory).", models, "saturation", png),
        other_view("units", "Interpretable units (Karpathy et al. 2015)",
                   "Units that predict a phone, silence or the position in the utterance (ROC AUC, correlation), "
                   "and the best of them over one utterance's spectrogram.", models, "units", png),
        other_view("cocluster", "Co-clustering of units and phones (RNNVis)",
                   "Spectral co-clustering of each unit's expected update on each phone: matrices reordered by "
                   "cluster, and the unit clusters linked to the phone clusters.", models, "cocluster", png),
        other_view("trajectories", "Autoencoder trajectories (lstm-visualisation)",
                   "Each frame's memory mapped to 2-D by a denoising autoencoder (left) and by PCA (right).",
                   models, "trajectories", png),
        section("horizon", "The memory within and beyond the training horizon",
                "The 99th percentile of |memory| by position in the utterance, every model on the same axes; the "
                "training chunks never ran the recurrence past the horizon.",
                (replot(models, "horizon", rf.horizon_figure) or missing("No horizon analysis.")) +
                numbers_side_by_side(models, "horizon")),
    ]
    shown = [k for k in ("heatmaps.png", "histograms.png") if k in compare]
    if shown:
        figs = "".join(f'<figure class="wide">{image(compare[k]["data"], k)}<figcaption>compare/{e(k)}'
                       f'</figcaption></figure>' for k in shown)
        parts.append(section("compare", "The models side by side (memvis.compare)",
                             "The same utterance's memory (units x frames, last layer) and the value histograms "
                             "per layer of each model.", figs))
    known = {"distributions", "tsne", "noise", "noise_late", "responsibility", "saturation", "units", "cocluster",
             "trajectories", "horizon"}
    for name in sorted({a for m in models for a in m["analyses"]} - known):
        parts.append(other_view(f"analysis-{name}", name, f"The {name} analysis.", models, name, png))
    return "\n".join(parts)
