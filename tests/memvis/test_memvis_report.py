"""Tests of steps_py.memvis.report: the value coding and per-phone statistics (numpy), the page it writes, and the
page's own self-test run in headless Chromium (tests/chromium.py: no console error, no uncaught exception, no network
request)."""
import base64
import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest

from steps_py.memvis import report_page as rp
from steps_py.memvis import report_data as rd

from chromium import SELFTEST_JS, Chromium, assert_clean_run, need_chromium, run_selftest
from conftest import ROOT

# ---------------------------------------------------------------------------------------------------------------
# Fixtures: a small fake extraction and analyses dir, and a report built from them

def write_fake_memvis(memvis_dir):
    """A memvis dir with one analysis (PNG + SVG figure, numbers.json), one SVG-only analysis and findings.json."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    dist = os.path.join(memvis_dir, "distributions")
    os.makedirs(dist)
    fig, ax = plt.subplots(figsize=(3, 2))
    ax.plot([0, 1, 2], [1, 0, 2])
    fig.savefig(os.path.join(dist, "cell_values.png"))
    fig.savefig(os.path.join(dist, "cell_values.svg"))
    only_svg = os.path.join(memvis_dir, "saturation")
    os.makedirs(only_svg)
    fig.savefig(os.path.join(only_svg, "gates.svg"))
    plt.close(fig)
    with open(os.path.join(dist, "numbers.json"), "w") as f:
        json.dump({"layer1": {"c": {"fraction_abs_below_1": 0.8125, "max_abs": 37.5}},
                   "histogram": list(range(40)), "clipped": True}, f)
    findings = os.path.join(memvis_dir, "findings")
    os.makedirs(findings)
    with open(os.path.join(findings, "findings.json"), "w") as f:
        json.dump({"set": "dev", "claims": [  # as steps_py.memvis.findings writes it
            {"id": "lstm_values_in_range", "paper": "most |c| < 2", "measured": {"lstm2": 0.8125}, "holds": True,
             "ci95": [0.25, 0.375], "how": "share of |c| < 2"},
            {"claim": "GRU <values> & piles", "paper": "at +-1", "measured": 0.25, "holds": False},
            {"id": "noise_lingers_in_lstm", "paper": "longer in LSTM", "measured": None, "holds": "not measured"}]},
            f)


@pytest.fixture(scope="session")
def fake_dirs(tmp_path_factory):
    from fakes import fake_extraction
    base = tmp_path_factory.mktemp("memvis.report")
    ext = fake_extraction(str(base / "extract"), cell="lstm", num_layers=2, cell_dim=24, num_utts=5, seed=3,
                          use_model=False)
    write_fake_memvis(str(base / "memvis"))
    return base, ext


@pytest.fixture(scope="session")
def report(fake_dirs):
    """The report of the fake dirs written by the command line (4 of 5 utterances, at most 200 frames each)."""
    base, _ = fake_dirs
    out = base / "memvis" / "report.html"
    env = dict(os.environ, PYTHONPATH=ROOT, KALDI_PY_PROGRESS="0")
    res = subprocess.run([sys.executable, "-m", "steps_py.memvis.report", "--utts", "4", "--max-frames", "200",
                          "--title", "Fake <LSTM> & co", str(base / "extract"), str(base / "memvis"), str(out)],
                         env=env, capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 0, res.stderr
    return str(out), res.stderr


@pytest.fixture(scope="module")
def browser():
    need_chromium()
    with Chromium() as b:
        yield b


# ---------------------------------------------------------------------------------------------------------------
# Pure functions

def test_codes_round_trip_within_half_a_step():
    rng = np.random.default_rng(0)
    gates = rng.uniform(0, 1, (300, 16))
    cells = rng.standard_t(2, (300, 16)) * 5  # wide tails
    for values, kind, bits in ((gates, "linear", 8), (cells, "log", 8), (gates, "linear", 4), (cells, "log", 6)):
        codec = rd.make_codec(values, bits)
        assert codec["kind"] == kind and codec["max_code"] == 2 ** (bits - 1) - 1
        assert np.abs(rd.quantise(values, codec)).max() == codec["max_code"]
        back = rd.dequantise(rd.quantise(values, codec), codec)
        if kind == "linear":
            assert np.max(np.abs(back - values)) <= codec["step"] / 2 + 1e-6
        else:  # relative error of half a step in the log domain (absolute near 0)
            err = np.abs(np.log1p(np.abs(back) / codec["knee"]) - np.log1p(np.abs(values) / codec["knee"]))
            assert np.max(err) <= codec["step"] / 2 + 1e-6
            assert np.all(np.sign(back) * np.sign(values) >= 0)
        trace = rd.decode_trace(rd.encode_trace(values, codec), codec, values.shape[0])
        np.testing.assert_array_equal(trace, back)


def test_delta_coding_wraps_and_inverts():
    codes = np.array([[-127, 127, -127, 0, 5], [127, 127, -128 + 1, 100, -100]], dtype=np.int8)
    np.testing.assert_array_equal(rd.undelta_along_rows(rd.delta_along_rows(codes)), codes)


def test_phone_statistics_find_a_planted_unit():
    rng = np.random.default_rng(1)
    phone_ids = rng.integers(0, 4, 4000)
    values = rng.normal(0, 1, (4000, 10))
    values[phone_ids == 2, 7] += 3.0  # unit 7 fires on phone 2
    stats, counts = rd.phone_box_stats(values, phone_ids, num_phones=5)
    assert stats.shape == (10, 5, 5) and counts.tolist()[:4] == np.bincount(phone_ids).tolist() and counts[4] == 0
    assert np.all(np.isnan(stats[:, 4]))
    np.testing.assert_allclose(stats[7, 2], np.percentile(values[phone_ids == 2, 7], rd.BOX_PERCENTILES), rtol=1e-5)
    d = rd.phone_selectivity(values, phone_ids, 5)
    want = (values[phone_ids == 2, 7].mean() - values[:, 7].mean()) / values[:, 7].std()
    assert abs(d[2, 7] - want) < 1e-9 and want > 1.2 and np.all(np.isnan(d[4]))
    ranking = rd.rank_units(d, top=3)
    assert "4" not in ranking and ranking["2"][0][0] == 7 and ranking["2"][0][1] > 1.2
    assert all(abs(d) < 0.2 for p, r in ranking.items() for u, d in r if u != 7)


def test_phone_segments_and_numbers():
    assert rd.phone_segments([3, 3, -1, 5, 5, 5]) == [[0, 2, 3], [2, 3, -1], [3, 6, 5]]
    numbers = {"a": {"b": 0.123456}, "long": list(range(20)), "flag": False, "x": None, "clip": 10.0,
               "layers": [{"share": 0.0, "n": 3}, {"share": 0.5}]}
    rows = dict(rp.flatten_numbers(numbers))
    assert rows == {"a.b": "0.1235", "long": "20 values, min 0, max 19", "flag": "no", "x": "n/a", "clip": "10",
                    "layers[0].share": "0", "layers[0].n": "3", "layers[1].share": "0.5"}
    assert rp.key_numbers(numbers) == [("a.b", "0.1235"), ("layers[0].share", "0"), ("layers[1].share", "0.5")]
    assert rp.key_numbers(dict(numbers, summary={"wer": 9.97})) == [("wer", "9.97")]


# ---------------------------------------------------------------------------------------------------------------
# The written page

def read_page_data(html_path):
    text = open(html_path, encoding="utf-8").read()
    start = text.index('<script type="application/json" id="memvis-data">') + len(
        '<script type="application/json" id="memvis-data">')
    return text, json.loads(text[start:text.index("</script>", start)])


def test_report_content(report, fake_dirs):
    html_path, log = report
    _, ext = fake_dirs
    text, data = read_page_data(html_path)
    assert "Fake &lt;LSTM&gt; &amp; co" in text and "GRU &lt;values&gt; &amp; piles" in text
    assert text.count('src="data:image/png;base64,') == 1 and text.count('src="data:image/svg+xml;base64,') == 1
    assert "fraction_abs_below_1" in text and "0.8125" in text and 'class="holds"' in text
    assert 'class="fails"' in text and "http://" not in text.replace("http://www.w3.org", "")
    assert "lstm_values_in_range" in text and "{&quot;lstm2&quot;: 0.8125}" in text
    assert '<td class="unknown">not measured</td>' in text and "share of |c| &lt; 2" in text
    assert "95% CI of d" in text and "[0.25, 0.375]" in text
    assert [u["id"] for u in data["utts"]] == ext.utts[:4]
    assert data["quantities"] == ["c", "h", "i", "f", "o"] and data["layers"] == [1, 2]
    assert "MB" in log and "4 utterances" in log
    # the shipped values decode to the extraction's values within the code's resolution
    utt = data["utts"][1]
    s = ext.utt_slice(utt["id"])
    assert utt["num_frames"] == min(200, s.stop - s.start) and utt["total_frames"] == s.stop - s.start
    for q, kind in (("c", "log"), ("f", "linear")):
        codec = data["codecs"]["2"][q]
        assert codec["kind"] == kind and codec["max_code"] == 31  # default --bits 6
        got = rd.decode_trace(utt["values"]["2"][q], codec, utt["num_frames"])
        want = np.asarray(ext.layer(2)[q][s.start:s.start + utt["num_frames"]])
        np.testing.assert_array_equal(rd.quantise(got, codec), rd.quantise(want, codec))
        assert np.abs(got - want).max() > 0  # really quantised
    feats = np.frombuffer(__import__("zlib").decompress(base64.b64decode(utt["feats"])), np.uint8)
    assert feats.size == 40 * utt["num_frames"]
    # the statistics cover all aligned frames of all 5 utterances, not only the shipped ones
    aligned = np.asarray(ext.phone_ids) >= 0
    assert data["stats"]["frames"] == int(aligned.sum()) and data["stats"]["utts"] == 5
    assert data["stats"]["counts"] == np.bincount(ext.phone_ids[aligned], minlength=len(ext.phone_names)).tolist()


# ---------------------------------------------------------------------------------------------------------------
# In the browser

def test_report_selftest_in_chromium(report, browser):
    html_path, _ = report
    t = time.time()
    run = run_selftest(browser, html_path)
    assert_clean_run(run, html_path)
    assert "10 layer/quantity views" in run.selftest and "ranked units" in run.selftest
    print(f"self-test in {time.time() - t:.1f} s: {run.selftest}")


def test_checker_catches_broken_pages(report, browser, tmp_path):
    """The checks above would fail on a page whose script has a syntax error, throws, or logs an error."""
    html_path, _ = report
    text = open(html_path, encoding="utf-8").read()
    anchor = "function el(tag, attrs, children) {"
    assert anchor in text
    broken = {
        "syntax": text.replace(anchor, anchor + "\n  const = ;"),
        "throws": text.replace("async function start() {", "async function start() {\n  null.boom();"),
        "console": text.replace("function selfTestParsing(done) {",
                                "function selfTestParsing(done) {\n  console.error('planted');"),
        "selftest": text.replace('check(state.heat.units.join(",") === "0,2,3"', 'check(false'),
    }
    for name, page in broken.items():
        assert page != text, name
        path = tmp_path / f"{name}.html"
        path.write_text(page, encoding="utf-8")
        run = run_page_quick(browser, str(path))
        with pytest.raises(AssertionError):
            assert_clean_run(run, str(path))
        if name == "syntax":
            assert any("SyntaxError" in e for e in run.errors), run.errors
        if name == "console":
            assert any("planted" in e for e in run.errors) and run.selftest.startswith("ok"), run.errors


def run_page_quick(browser, html_path):
    """As run_selftest, but a broken page never writes a result: wait only a few seconds for it."""
    return browser.run_page("file://" + os.path.abspath(html_path) + "#selftest", SELFTEST_JS, wait=4.0)


def test_report_without_alignment_or_analyses(tmp_path, browser):
    """An extraction without phone alignment and an empty analyses dir still give a working page."""
    from steps_py.memvis.data import ExtractionWriter
    ext_dir, memvis_dir = tmp_path / "extract", tmp_path / "memvis"
    memvis_dir.mkdir()
    rng = np.random.default_rng(0)
    with ExtractionWriter(str(ext_dir), "gru", 1, 8, ("h", "z", "r", "n")) as w:
        for u in range(2):
            w.add(f"u{u}", [{q: rng.uniform(-1, 1, (50, 8)) for q in "hzrn"}], None, None, rng.normal(0, 1, (50, 40)))
    out = tmp_path / "r.html"
    env = dict(os.environ, PYTHONPATH=ROOT, KALDI_PY_PROGRESS="0")
    res = subprocess.run([sys.executable, "-m", "steps_py.memvis.report", str(ext_dir), str(memvis_dir), str(out)],
                         env=env, capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 0, res.stderr
    text, data = read_page_data(str(out))
    assert "No analyses found" in text and "No findings.json found" in text and data["stats"]["frames"] == 0
    assert_clean_run(run_selftest(browser, str(out)), str(out))


def test_bad_input_is_one_line(tmp_path, fake_dirs):
    base, _ = fake_dirs
    env = dict(os.environ, PYTHONPATH=ROOT, KALDI_PY_PROGRESS="0")
    for args in (["--layers", "3"], ["--quantities", "c,x"]):
        res = subprocess.run([sys.executable, "-m", "steps_py.memvis.report", *args, str(base / "extract"),
                              str(base / "memvis"), str(tmp_path / "x.html")], env=env, capture_output=True,
                             text=True, cwd=ROOT)
        problems = [line for line in res.stderr.splitlines() if not line.startswith("LOG ")]   # LOG: "making ..."
        assert res.returncode == 1 and len(problems) == 1 and problems[0].startswith("ERROR"), res.stderr
        assert not (tmp_path / "x.html").exists()
