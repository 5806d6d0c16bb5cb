"""Usage: python -m steps_py.memvis.run_report [options] <nnet-dir>... <out-html>

Writes the report of a run: one self-contained HTML page (exp/nnet/memvis_<set>/report.html) that a reader of Tang
et al. (2017) can follow, the models of the run side by side:
  1. the claims table first: each claim of findings.json (steps_py.memvis.findings) as the paper's statement, our
     number for the LSTM and for the GRU with its 95% interval, the difference d with its interval, the verdict
     (holds, does not hold, inconclusive, not measured) and a link to the figure or table behind it;
  2. the paper's figures in the paper's order, each captioned with the figure it reproduces: Fig. 1 value
     distributions of the first and last layer, Fig. 2 t-SNE traces per layer, Fig. 3 noise insertion, the units
     responsible for phones, Fig. 5 the traces of the lazy and residual models (when the run has them), Tables 1-3
     (from compare_wer.json, with the paper's WER); the LSTM beside the GRU, on shared axes where the numbers
     allow (re-plotted from numbers.json: distributions, noise, horizon);
  3. the other views: gate saturation, interpretable units, co-clustering, autoencoder trajectories, the training
     horizon, the models side by side (memvis.compare);
  4. the explorer of cells and gates (as in steps_py.memvis.report) with a model selector;
with the key numbers of every analysis in words and units. The page opens from disk (no server, no network).

<nnet-dir> is a model's dir (exp/nnet/<model>): its nnet.conf, extract_<set>/ and memvis_<set>/<analysis>/ are read.
The figures show the plain LSTM and GRU of equal depth (the deepest such pair; else the first LSTM and the first
GRU), Fig. 5 adds the lazy-update and residual models; the explorer ships those of them that have an extraction.

Options:
  --set NAME          the analysed set (default dev)
  --findings FILE     findings.json (default <out-dir>/findings/findings.json)
  --compare-dir DIR   memvis.compare's output (default <out-dir>/compare)
  --compare-wer FILE  compare_wer.json of steps_py.nnet.compare_wer (default: compare_wer.json beside the first
                      <nnet-dir>, if there is one)
  --utts N            utterances per model in the explorer (default 20; fewer when the page would pass --max-mb)
  --max-frames N      frames per shipped utterance (default 1000)
  --bits N            bits per shipped value, 2..8 (default 6)
  --stats-max-frames N  frames for the per-phone statistics (default 200000)
  --top-units N       units ranked per phone (default 20)
  --max-mb X          size budget of the page in MB (default 25): the explorer drops utterances to fit
  --title TEXT        page title
Self-test: open <out-html>#selftest (tests/memvis/test_memvis_run_report.py runs it in headless Chromium): besides
the explorer of every model, it checks that the claims table comes first and that every claim's link resolves.
"""
import argparse
import html
import os

from steps_py.common import InputError, atomic_open, get_logger, read_json, run_main
from steps_py.completion import Completion, done_stamp, settings_of, skip_if_done
from steps_py.memvis.data import Extraction
from steps_py.memvis.report_claims import claims_html
from steps_py.memvis.report_data import explorer_data
from steps_py.memvis.report_page import (collect_analyses, explorer_html, inline_assets, page_head, report_inputs,
                                         script_json)
from steps_py.memvis import report_sections as rs
from steps_py.nnet.config import NnetConfig

log = get_logger("memvis.run_report")


# ----------------------------------------------------------------------------------------------------------------
# The models of the run

def describe_model(nnet_dir, findings_models):
    """{name, dir, cell, num_layers, lazy, residual} of a model dir: from findings.json's models, else its nnet.conf,
    else unknown (None)."""
    name = os.path.basename(os.path.normpath(nnet_dir))
    info = {"name": name, "dir": nnet_dir, "cell": None, "num_layers": None, "lazy": "none", "residual": False}
    known = findings_models.get(name)
    if known:
        info.update({k: known[k] for k in ("cell", "num_layers", "lazy", "residual") if k in known})
    elif os.path.isfile(os.path.join(nnet_dir, "nnet.conf")):
        c = NnetConfig.from_file(os.path.join(nnet_dir, "nnet.conf"))
        info.update(cell=c.cell, num_layers=c.num_layers, lazy=c.lazy, residual=c.residual)
    return info


def load_model(nnet_dir, set_name, findings_models):
    """A model of the page: describe_model plus its analyses ({name: collect_analyses entry}) and its extraction
    dir (None without one)."""
    m = describe_model(nnet_dir, findings_models)
    memvis = os.path.join(nnet_dir, f"memvis_{set_name}")
    m["analyses"] = {a["name"]: a for a in collect_analyses(memvis)} if os.path.isdir(memvis) else {}
    if m["cell"] is None:
        cells = {a["raw"].get("cell") for a in m["analyses"].values() if isinstance(a["raw"], dict)} - {None}
        m["cell"] = cells.pop() if len(cells) == 1 else None
    if m["num_layers"] is None:
        layers = {a["raw"].get("num_layers") for a in m["analyses"].values() if isinstance(a["raw"], dict)} - {None}
        m["num_layers"] = layers.pop() if len(layers) == 1 else None
    extract = os.path.join(nnet_dir, f"extract_{set_name}")
    m["extract_dir"] = extract if os.path.isfile(os.path.join(extract, "index.json")) else None
    return m


def _plain(m):
    return m.get("lazy") in (None, "none") and not m.get("residual")


def choose_models(models):
    """(shown, variants, baselines): the LSTM and GRU the paper's figures compare (plain models of equal depth
    with analyses, the deepest pair; else the first LSTM and the first GRU with analyses; else the first models with
    analyses), the lazy-update and residual models with analyses (Fig. 5) and the plain models of their cell and
    depth."""
    analysed = [m for m in models if m["analyses"]]
    plain = [m for m in analysed if _plain(m)]
    pairs = [(a, b) for a in plain if a["cell"] == "lstm" for b in plain
             if b["cell"] == "gru" and b["num_layers"] == a["num_layers"]]
    if pairs:
        shown = list(max(pairs, key=lambda p: p[0]["num_layers"] or 0))
    else:
        shown = [m for m in (next((m for m in plain + analysed if m["cell"] == c), None) for c in ("lstm", "gru"))
                 if m]
        shown = shown or analysed[:2]
    variants = [m for m in analysed if not _plain(m)]
    baselines = []
    for v in variants:
        b = next((m for m in plain if m["cell"] == v["cell"] and m["num_layers"] == v["num_layers"]), None)
        if b is not None and b not in baselines:
            baselines.append(b)
    return shown, variants, baselines


# ----------------------------------------------------------------------------------------------------------------
# The explorer within the size budget

def fit_explorers(datas, budget_bytes):
    """[(name, explorer data)] -> (the same list, utterances dropped) with each data's "utts" cut from the end, one
    utterance at a time from the model with the most, until the page's data (script_json) fits ``budget_bytes`` or
    every model is down to one utterance. The data dicts are changed in place."""
    sizes = [[len(script_json(u)) + 1 for u in d["utts"]] for _, d in datas]
    total = sum(len(script_json(d)) for _, d in datas)
    dropped = 0
    while total > budget_bytes:
        i = max(range(len(datas)), key=lambda k: (len(sizes[k]), sum(sizes[k])))
        if len(sizes[i]) <= 1:
            break
        total -= sizes[i].pop()
        datas[i][1]["utts"].pop()
        dropped += 1
    return datas, dropped


# ----------------------------------------------------------------------------------------------------------------
# The page

def models_summary(shown, findings_models):
    """One line per model of the figures: cell, layers, seeds and WER with its interval (findings.json)."""
    e = html.escape
    items = []
    for m in shown:
        f = findings_models.get(m["name"], {})
        wer = f.get("wer")
        ci = f.get("wer_ci95")
        runs = f.get("seeds")
        text = rs.model_label(m) + (f", {runs} training run{'s' if runs > 1 else ''}" if runs else "") + \
            (f", %WER {wer:.2f}" + (f" [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else "") if wer is not None else "")
        items.append(f"<li>{e(text)}</li>")
    return f'<ul class="models">{"".join(items)}</ul>' if items else ""


def render_run_page(title, findings, models, compare, compare_wer, explorers, sources):
    """The whole page as text. findings: (path, findings.json object or {}); models: loaded models; compare:
    {file name: figure} of memvis.compare; compare_wer: (path, object) or (None, None); explorers: [(name, explorer
    data)]; sources: a line naming the inputs."""
    e = html.escape
    css, js = inline_assets()
    shown, variants, baselines = choose_models(models)
    fmodels = findings[1].get("models") or {}
    explorer, _ = explorer_html(explorers, js)
    nav = " ".join(f'<a href="#{a}">{e(t)}</a>' for a, t in (
        ("claims-heading", "Claims"), ("fig1", "Fig. 1"), ("fig2", "Fig. 2"), ("fig3", "Fig. 3"),
        ("responsibility", "Responsibility"), ("fig5", "Fig. 5"), ("wer-tables", "Tables 1-3"),
        ("other-views", "Other views"), ("explorer", "Explorer")))
    paper = "\n".join([rs.fig1(shown), rs.fig2(shown, compare), rs.fig3(shown), rs.responsibility(shown),
                       rs.fig5(variants, baselines), rs.wer_tables(compare_wer[1], fmodels, compare_wer[0] or "")])
    return page_head(title, css, e(sources), nav) + f"""<h2 id="claims-heading">What Tang et al. (2017) claim, and what we measure</h2>
{models_summary(shown, fmodels)}
{claims_html(findings[1].get("claims") or [], fmodels, findings[0] or "")}
<h2 id="paper-figures">The paper's figures, in its order</h2>
{paper}
<h2 id="other-views">Other views</h2>
{rs.other_views(shown, compare)}
{explorer}
</body></html>
"""


def read_optional_json(path, what):
    """(path, object) of a JSON file, (None, {}) when path is None or missing (logged)."""
    if path and os.path.isfile(path):
        return path, read_json(path)
    if path:
        log.warning(f"no {what} {path}: the page goes on without it")
    return None, {}


def page_inputs(nnet_dirs, set_name, findings, compare_dir, compare_wer):
    """The files and dirs the run's page is made from, those that exist: each model's nnet.conf, extraction and
    analysis dirs (report_page.report_inputs), the findings, memvis.compare's dir and compare_wer.json."""
    paths = []
    for d in nnet_dirs:
        paths += [os.path.join(d, "nnet.conf")] + report_inputs(os.path.join(d, f"extract_{set_name}"),
                                                                 os.path.join(d, f"memvis_{set_name}"))
    return [p for p in paths + [findings, compare_dir, compare_wer] if p and os.path.exists(p)]


def main():
    parser = argparse.ArgumentParser(usage=__doc__.split("\n")[0][len("Usage: "):], description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--set", dest="set_name", default="dev")
    parser.add_argument("--findings")
    parser.add_argument("--compare-dir")
    parser.add_argument("--compare-wer")
    parser.add_argument("--utts", type=int, default=20)
    parser.add_argument("--max-frames", type=int, default=1000)
    parser.add_argument("--bits", type=int, default=6)
    parser.add_argument("--stats-max-frames", type=int, default=200000)
    parser.add_argument("--top-units", type=int, default=20)
    parser.add_argument("--max-mb", type=float, default=25.0)
    parser.add_argument("--title")
    parser.add_argument("dirs", nargs="+", metavar="nnet-dir ... out-html")
    a = parser.parse_args()
    if len(a.dirs) < 2:
        parser.error("need at least one model dir and the output page")
    *nnet_dirs, out_html = a.dirs
    if min(a.utts, a.max_frames, a.stats_max_frames, a.top_units) < 1 or a.max_mb <= 0:
        raise InputError("--utts, --max-frames, --stats-max-frames, --top-units and --max-mb must be positive")
    for d in nnet_dirs:
        if not os.path.isdir(d):
            raise InputError(f"no such directory {d}")
    out_dir = os.path.dirname(out_html) or "."
    findings_path = a.findings or os.path.join(out_dir, "findings", "findings.json")
    default_wer = os.path.join(os.path.dirname(os.path.normpath(nnet_dirs[0])), "compare_wer.json")
    wer_path = a.compare_wer or (default_wer if os.path.isfile(default_wer) else None)
    compare_dir = a.compare_dir or os.path.join(out_dir, "compare")
    done = Completion(done_stamp(out_dir, os.path.basename(out_html)),
                      page_inputs(nnet_dirs, a.set_name, findings_path, compare_dir, wer_path), settings_of(a),
                      [out_html])
    if skip_if_done(done, out_html, log):
        return 0
    findings = read_optional_json(findings_path, "findings.json")
    compare_wer = read_optional_json(wer_path, "compare_wer.json")
    compare = {}
    if os.path.isdir(compare_dir):
        parent, name = os.path.split(os.path.normpath(compare_dir))
        entry = next((x for x in collect_analyses(parent) if x["name"] == name), None)
        compare = {f["name"]: f for f in (entry["figures"] if entry else [])}
    models = [load_model(d, a.set_name, findings[1].get("models") or {}) for d in nnet_dirs]
    shown, variants, _ = choose_models(models)
    explorers = [(m["name"], explorer_data(Extraction.load(m["extract_dir"]), a.utts, a.max_frames, None, None,
                                           a.stats_max_frames, a.top_units, a.bits))
                 for m in shown + variants if m["extract_dir"]]
    title = a.title or f"Tang et al. (2017) on our models: {', '.join(m['name'] for m in shown)} on {a.set_name}"
    sources = f"models {', '.join(nnet_dirs)}; findings {findings[0] or '-'}; WER tables {compare_wer[0] or '-'}"
    without = render_run_page(title, findings, models, compare, compare_wer, [], sources)
    budget = a.max_mb * 1e6 - len(without.encode())
    explorers, dropped = fit_explorers(explorers, budget)
    page = render_run_page(title, findings, models, compare, compare_wer, explorers, sources)
    with atomic_open(out_html, "w", encoding="utf-8") as f:
        f.write(page)
    size = len(page.encode()) / 1e6
    log.info(f"wrote {out_html}: {size:.2f} MB; figures of {', '.join(m['name'] for m in shown + variants)}; "
             f"explorer: " + ", ".join(f"{n} {len(d['utts'])} utterances" for n, d in explorers) +
             (f" ({dropped} utterances left out to stay under --max-mb {a.max_mb:g})" if dropped else ""))
    if size > a.max_mb:
        log.warning(f"{out_html} is {size:.1f} MB, more than --max-mb {a.max_mb:g} (the figures alone)")
    done.finish()
    return 0


if __name__ == "__main__":
    run_main(main)
