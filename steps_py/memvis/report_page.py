"""Pieces shared by the report pages (steps_py.memvis.report: one model; steps_py.memvis.run_report: the models of a
run side by side): reading the analyses of a memvis dir and findings.json, numbers as short text, the inline assets
(report.js, report.css) and the explorer's section of the page."""
import base64
import datetime
import html
import json
import math
import os

from steps_py.common import InputError, read_json

ASSET_DIR = os.path.dirname(os.path.abspath(__file__))


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


def collect_analyses(memvis_dir):
    """Every subdirectory of memvis_dir holding figures or numbers.json ->
    list of {name, figures: [{name, mime, data (base64)}], numbers: [(key, text)], key_numbers: [(key, text)],
    raw: the numbers.json object ({} without one)} sorted by name."""
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
            analyses.append({"name": name, "figures": figures, "numbers": numbers, "key_numbers": key, "raw": obj})
    return analyses


def find_findings(memvis_dir, path=None):
    """(path, claims) of findings.json: ``path`` if given, else the first of memvis_dir/findings.json and
    memvis_dir/*/findings.json; (None, []) when there is none.

    The file holds a list of {claim (or id), paper, measured, holds[, how]} or an object with such a list under
    "claims" (as steps_py.memvis.findings writes it)."""
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


def parse_list(text, what):
    """'c,h' -> ['c', 'h']; None -> None."""
    if text is None:
        return None
    items = [x.strip() for x in text.split(",") if x.strip()]
    if not items:
        raise InputError(f"empty --{what}")
    return items


# ----------------------------------------------------------------------------------------------------------------
# HTML pieces

def script_json(obj):
    """JSON text safe inside <script type="application/json"> (no '</' sequence)."""
    return json.dumps(obj, separators=(",", ":"), allow_nan=False).replace("</", "<\\/")


def numbers_table(rows, heading):
    e = html.escape
    body = "".join(f"<tr><td>{e(k)}</td><td>{e(v)}</td></tr>" for k, v in rows)
    return f'<table class="numbers"><tr><th>{e(heading)}</th><th>value</th></tr>{body}</table>'


def read_asset(name):
    with open(os.path.join(ASSET_DIR, name), encoding="utf-8") as f:
        return f.read()


def page_head(title, css, source_html, nav_html, after_written=""):
    """The start of a report page: the document head with the inlined CSS, the title, the line naming the inputs
    (``source_html``, already escaped, then the time the page was written and ``after_written``) and the menu of
    links (``nav_html``)."""
    e = html.escape
    made = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>{e(title)}</title>
<style>
{css}
</style></head>
<body>
<h1>{e(title)}</h1>
<p class="source">{source_html}; written {made}{after_written}</p>
<nav>{nav_html}</nav>
"""


def inline_assets():
    """(css, js) text of report.css and report.js, to be inlined as they are."""
    css, js = read_asset("report.css"), read_asset("report.js")
    assert "</script" not in js.lower() and "</style" not in css.lower()  # they are inlined as they are
    return css, js


def explorer_html(models, js):
    """The explorer's section: heading, root, self-test result, the explorer data of each model and the script.

    models: [(name, data)] with data from report_data.explorer_data; one model with name None is the one-model page
    (<script id="memvis-data">), several get one <script class="memvis-model" data-model=name> each and a model
    selector in the page; none: the section says there is nothing to explore. Returns (html, bytes of the data)."""
    e = html.escape
    status = "Loading the explorer needs JavaScript." if models else "No extraction to explore."
    if len(models) == 1 and models[0][0] is None:
        blobs = [f'<script type="application/json" id="memvis-data">{script_json(models[0][1])}</script>']
    else:
        blobs = [f'<script type="application/json" class="memvis-model" id="memvis-data-{i}" '
                 f'data-model="{e(name)}">{script_json(data)}</script>' for i, (name, data) in enumerate(models)]
    data_bytes = sum(len(b.encode()) for b in blobs)
    body = "\n".join(blobs)
    return f"""<h2 id="explorer">Explorer</h2>
<div id="explorer-models"></div>
<div id="explorer-root"><p id="explorer-status">{status}</p></div>
<div id="selftest-result"></div>
{body}
<script>
{js}
</script>""", data_bytes


def report_inputs(extract_dir, memvis_dir, findings=None):
    """What the report is made from: the extraction, every analysis dir of memvis_dir (not the pages written
    beside them, nor memvis_dir/log, which each run of the analyses rewrites) and the findings file
    (``findings``, else memvis_dir/findings.json when there is one)."""
    dirs = [os.path.join(memvis_dir, n) for n in sorted(os.listdir(memvis_dir)) if n != "log"] \
        if os.path.isdir(memvis_dir) else []
    own = os.path.join(memvis_dir, "findings.json")
    return [extract_dir] + [d for d in dirs if os.path.isdir(d)] + \
        ([findings] if findings else [own] if os.path.isfile(own) else [])
