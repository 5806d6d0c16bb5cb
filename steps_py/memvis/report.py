"""Usage: python -m steps_py.memvis.report [options] <extract-dir> <memvis-dir> <out-html>

Writes one self-contained HTML page about the memory of a recurrent acoustic model:
  1. the figures of every analysis found in <memvis-dir>/<analysis>/ (*.png, or *.svg when there is no PNG of the
     same name) with the numbers of its numbers.json (key numbers first, in words and units: report_numbers);
  2. the findings table of findings.json (steps_py.memvis.findings: claims {id, paper, measured, holds, how}), if
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
<div id="selftest-result"> (tests/memvis/test_memvis_report.py runs it in headless Chromium).
"""
import argparse
import html
import json
import os

from steps_py.common import InputError, atomic_open, get_logger, run_main
from steps_py.completion import Completion, done_stamp, settings_of, skip_if_done
from steps_py.memvis.data import Extraction
from steps_py.memvis.report_data import explorer_data
from steps_py.memvis.report_numbers import READABLE, readable_numbers
from steps_py.memvis.report_page import (collect_analyses, explorer_html, find_findings, format_value, inline_assets,
                                         numbers_table, page_head, parse_list, report_inputs)

logger = get_logger("memvis.report")


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
        key = readable_numbers(a["name"], a.get("raw"), a["key_numbers"])
        if key and (len(a["numbers"]) > 25 or a["name"] in READABLE):
            parts.append(numbers_table(key, "key numbers"))
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
    """The findings table: claim (its text, else its id), what the paper says, what we measured, the 95% interval
    of the difference the verdict rests on, whether it holds (true / false; anything else, e.g. "inconclusive" or
    "not measured", shown as it is) and how it was measured when given."""
    e = html.escape
    if not claims:
        return "<p>No findings.json found.</p>"
    with_how = any("how" in c for c in claims)
    rows = []
    for c in claims:
        holds = c.get("holds")
        cls, word = {True: ("holds", "yes"), False: ("fails", "no")}.get(holds, ("unknown", cell_text(holds)))
        ci = c.get("ci95")
        ci_text = f"[{format_value(ci[0])}, {format_value(ci[1])}]" if ci else "-"
        cells = [c.get("claim", c.get("id", "")), c.get("paper", ""), c.get("measured", "")]
        tds = "".join(f"<td>{e(cell_text(x))}</td>" for x in cells) + f"<td>{e(ci_text)}</td>" + \
            f'<td class="{cls}">{e(word)}</td>'
        if with_how:
            tds += f'<td class="how">{e(cell_text(c.get("how", "")))}</td>'
        rows.append(f"<tr>{tds}</tr>")
    head = "<tr><th>claim</th><th>paper</th><th>measured</th><th>95% CI of d</th><th>holds</th>" + \
        ("<th>how</th>" if with_how else "") + "</tr>"
    return f'<p class="source">{e(path)}</p><table id="findings">{head}{"".join(rows)}</table>'


def render_html(title, analyses, findings, data, sources):
    """The whole page as text. ``findings`` = (path, claims); ``sources`` = (extract_dir, memvis_dir)."""
    e = html.escape
    css, js = inline_assets()
    explorer, data_bytes = explorer_html([(None, data)], js)
    head = page_head(title, css, f"extraction {e(sources[0])}; analyses {e(sources[1])}",
                     '<a href="#analyses">Analyses</a> <a href="#findings-section">Findings</a> '
                     '<a href="#explorer">Explorer</a>', f";\nexplorer data {data_bytes / 1e6:.1f} MB")
    return head + f"""<h2 id="analyses">Analyses</h2>
{analyses_html(analyses)}
<h2 id="findings-section">Findings</h2>
{findings_html(*findings)}
{explorer}
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
    done = Completion(done_stamp(os.path.dirname(args.out_html) or ".", os.path.basename(args.out_html)),
                      report_inputs(args.extract_dir, args.memvis_dir, args.findings), settings_of(args),
                      [args.out_html])
    if skip_if_done(done, args.out_html, logger):
        return 0

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
    done.finish()
    return 0


if __name__ == "__main__":
    run_main(main)
