"""Tests of the run's report page (steps_py.memvis.run_report and its libraries report_claims, report_numbers,
report_figures, report_sections): the claims for people, the choice of models, the size budget, and the page that
`utils/memvis_stage.sh report` writes for a small run, rendered in headless Chromium: claims table first, every claim
linked to a figure or table that exists, the explorer of each model, no console error, no network request.

The run: an LSTM and a GRU (2 layers, 16 units) with synthetic memory of trained-like ranges on 4 utterances
(fakes.fake_extraction), every analysis of the recipe run on them (noise on real FSDD recordings of
../shared/corpora/fsdd, or on synthetic audio without them, through a randomly initialised model), memvis.compare,
the findings and compare_wer.json."""
import json
import os
import pathlib
import subprocess
import sys
import time

import numpy as np
import pytest

from steps_py.memvis import report_claims as rc
from steps_py.memvis import run_report as rr
from steps_py.memvis.report_numbers import num, readable_numbers

from chromium import SELFTEST_JS, Chromium, assert_clean_run, need_chromium
from conftest import ROOT, make_recipe_dir

FSDD = os.path.join(ROOT, "..", "shared", "corpora", "fsdd", "recordings")
PAPER_SMALL = os.path.join(ROOT, "egs", "synth", "s5", "results", "paper_small", "findings.json")
MODELS = (("lstm_2l", "lstm", 3), ("gru_2l", "gru", 4))


# ---------------------------------------------------------------------------------------------------------------
# The run

def run_main(module, argv):
    """``module.main()`` in this process with the command line argv."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sys, "argv", [module.__name__] + [str(a) for a in argv])
        assert module.main() in (0, None)


def write_scored_decode(model_dir, utts, wrong):
    """decode_tgpr_dev with one LM weight: ``wrong`` of 4 words wrong in every utterance."""
    dec = model_dir / "decode_tgpr_dev"
    (dec / "scoring_kaldi" / "penalty_0.0").mkdir(parents=True)
    (dec / "scoring_kaldi" / "test_filt.txt").write_text("".join(f"{u} a b c d\n" for u in utts))
    (dec / "scoring_kaldi" / "penalty_0.0" / "10.txt").write_text(
        "".join(f"{u} {'x ' * wrong}{' '.join('abcd'[wrong:])}\n" for u in utts))
    errors, words = wrong * len(utts), 4 * len(utts)
    (dec / "wer_10_0.0").write_text(f"%WER {100 * errors / words:.2f} [ {errors} / {words}, 0 ins, 0 del, "
                                    f"{errors} sub ]\n")


def fsdd_data_dir(path, num_utts=3):
    """A data dir of recordings of the FSDD dev speaker (theo, 8 kHz); without the corpus, as many synthetic 0.5 s
    utterances at 8 kHz (a voiced sweep in noise)."""
    import soundfile
    path.mkdir()
    if os.path.isdir(FSDD):  # the first recordings long enough for the burst (0.1 s in, 0.1 s, 0.2 s after)
        names = sorted(f for f in os.listdir(FSDD) if "_theo_" in f)
        names = [f for f in names if soundfile.info(os.path.join(FSDD, f)).duration >= 0.45][:num_utts]
        utts = [f"theo_{f.split('_')[0]}_{int(f[:-4].split('_')[2]):02d}" for f in names]
        wavs = [os.path.join(FSDD, f) for f in names]
    else:
        utts = [f"theo_{d}_00" for d in range(num_utts)]
        rng, rate, wavs = np.random.default_rng(0), 8000, []
        for d in range(num_utts):
            t = np.arange(rate // 2) / rate
            x = 3000 * np.sin(2 * np.pi * (150 + 40 * d + 200 * t) * t) * np.hanning(t.size) + rng.normal(0, 50, t.size)
            wavs.append(str(path / f"{utts[d]}.wav"))
            soundfile.write(wavs[-1], x.astype(np.int16), rate, subtype="PCM_16")
    (path / "wav.scp").write_text("".join(f"{u} {w}\n" for u, w in zip(utts, wavs)))
    (path / "utt2spk").write_text("".join(f"{u} theo\n" for u in utts))
    return path


@pytest.fixture(scope="module")
def run_s5(tmp_path_factory):
    """A recipe dir whose exp/nnet holds what stages 5-8 leave for the report (see the module docstring)."""
    from fakes import fake_extraction, random_bundle
    from steps_py.memvis import (cocluster, compare, distributions, findings, horizon, noise, responsibility,
                                 saturation, trajectories, tsne, units)
    from steps_py.nnet import compare_wer
    t = time.time()
    s5 = make_recipe_dir(tmp_path_factory.mktemp("run_report"), "synth")
    nnet = os.path.join(s5, "exp", "nnet")
    data = fsdd_data_dir(tmp_path_factory.mktemp("fsdd") / "dev")
    for name, cell, seed in MODELS:
        d = os.path.join(nnet, name)
        os.makedirs(d)
        open(os.path.join(d, "final.pt"), "w").close()  # what utils/grid.sh's model list looks for
        with open(os.path.join(d, "nnet.conf"), "w") as f:
            f.write(f"cell={cell}\nnum_layers=2\ncell_dim=16\n")
        ext = fake_extraction(os.path.join(d, "extract_dev"), cell, num_layers=2, cell_dim=16, num_utts=4,
                              seed=seed, use_model=False, max_frames=120)
        write_scored_decode(pathlib.Path(d), ext.utts, 1 if cell == "gru" else 2)
        out = os.path.join(d, "memvis_dev")
        for module, opts in ((distributions, []), (responsibility, []), (saturation, []), (units, []),
                             (tsne, ["--num-utts", "1", "--max-iter", "250"]),
                             (cocluster, ["--n-clusters", "3", "--min-frames", "5"]),
                             (trajectories, ["--epochs", "1", "--num-utts", "1"]),
                             (horizon, ["--horizon-frames", "50", "--bin", "10"])):
            run_main(module, opts + [ext.dir, os.path.join(out, module.__name__.rsplit(".", 1)[1])])
        noise.run_noise(random_bundle(cell), str(data), os.path.join(out, "noise"), num_utts=3, noise_start=0.1,
                        noise_dur=0.1, min_after=0.2, cmvn="utterance", hold=3, plot_utts=1,
                        fbank_config=os.path.join(ROOT, "conf", "fbank_8k.conf"), model_dir=d)
    dirs = [os.path.join(nnet, name) for name, _, _ in MODELS]
    all_dir = os.path.join(nnet, "memvis_dev")
    run_main(compare, ["--names", "lstm_2l,gru_2l", "--noise",
                       ",".join(os.path.join(d, "memvis_dev", "noise", "numbers.json") for d in dirs),
                       *[os.path.join(d, "extract_dev") for d in dirs], os.path.join(all_dir, "compare")])
    findings.run_findings(dirs, os.path.join(all_dir, "findings"), num_samples=200)
    run_main(compare_wer, ["--tables", "paper", "--sets", "dev", "--json", os.path.join(nnet, "compare_wer.json"),
                           *dirs])
    print(f"run built in {time.time() - t:.1f} s")
    return s5


@pytest.fixture(scope="module")
def stage_report(run_s5):
    """`utils/memvis_stage.sh report` in the run's recipe dir: (its output, seconds)."""
    env = dict(os.environ, PYTHONPATH=ROOT, KALDI_PY_PROGRESS="0",
               PATH=os.pathsep.join([os.path.dirname(sys.executable), os.path.join(ROOT, "utils"),
                                     os.environ.get("PATH", "")]))
    t = time.time()
    res = subprocess.run(["utils/memvis_stage.sh", "report"], cwd=run_s5, env=env, capture_output=True, text=True)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    return res.stdout + res.stderr, time.time() - t


@pytest.fixture(scope="module")
def browser():
    need_chromium()
    with Chromium() as b:
        yield b


# ---------------------------------------------------------------------------------------------------------------
# Pure parts

def test_claims_read_as_text_with_each_model_in_its_column():
    """The 17-model grid's findings (egs/synth/s5/results/paper_small): every claim becomes text without JSON, its
    models in the LSTM or GRU column, its d per comparison, and a link to its figure."""
    f = json.load(open(PAPER_SMALL))
    rows = {c["id"]: rc.claim_row(c, f["models"]) for c in f["claims"]}
    assert set(rows) == set(rc.CLAIM_FIGURE)
    for r in rows.values():
        text = " ".join(r["lstm"] + r["gru"] + r["other"] + r["d"])
        assert "{" not in text and "'" not in text and "ci95" not in text, text
        assert r["figure"][0] in ("fig1", "fig2", "fig3", "table1", "table2", "table3")
    lazy = rows["lazy_improves_wer"]
    assert lazy["lstm"][0] == "lstm_lazy_1l_c128: 22.24% WER [19.35, 25.37]" and not lazy["gru"]
    assert lazy["d"][0] == "lstm_lazy_1l_c128 vs lstm_1l_c128: +3.54 [+1.69, +5.45] WER points"
    assert lazy["d"][-1] == "least favourable: [-2.34, +1.61]" and lazy["verdict"][0] == "unknown"
    assert any(x.startswith("gru_res_6l_c128: 15.43% WER") for x in rows["residual_improves_wer"]["gru"])
    smooth = rows["lstm_smoother_than_gru"]
    assert smooth["verdict"] == ("holds", "holds") and len(smooth["lstm"]) == 4 == len(smooth["gru"])
    assert smooth["d"][0] == "lstm_1l_c128 vs gru_1l_c128: +0.142 [+0.14, +0.143]"
    assert rows["lstm_values_in_range"]["lstm"][0] == \
        "lstm_1l_c128: 61.8% of |c| < 2 [61.6%, 62.1%]; 99.9th percentile of |c| 188"
    assert rows["noise_lingers_in_lstm"]["verdict"][1] == "not measured"
    html = rc.claims_html(f["claims"], f["models"])
    assert html.count('<tr id="claim-') == 8 and html.count('<a href="#') == 8 and "{" not in html


def test_numbers_read_as_words():
    assert [num(x) for x in (0.18104, 14.77, 0.1, 5.0, 18440, 1e-5, -0.2)] == \
        ["0.181", "14.8", "0.1", "5", "18440", "1.00e-05", "-0.2"]
    noise_numbers = {"frame_shift": 0.01, "noise": {"start": 0.1, "dur": 0.1, "db": 0, "mode": "add"},
                     "layers": {"1": {"persistence_frames_median": 5.0, "persistence_frames_q25": 5,
                                      "persistence_frames_q75": 6, "censored_share": 0.0},
                                "2": {"persistence_frames_median": 18.0, "persistence_frames_q25": 14.75,
                                      "persistence_frames_q75": 20.75, "censored_share": 0.05}},
                     "persistence_frames_median": 11.5, "utterances": {"a": {}, "b": {}}}
    rows = dict(readable_numbers("noise", noise_numbers))
    assert rows["memory persistence after the burst: median [quartiles]"] == \
        "layer 1: 5 frames (50 ms) [5, 6], layer 2: 18 frames (180 ms) [14.8, 20.8]"
    assert rows["never settled within the utterance (censored)"] == "layer 1: 0.0%, layer 2: 5.0%"
    # an analysis the page does not know: its key paths in words
    assert readable_numbers("new", {"x": 1}, [("per_layer[0].mean_auc", "0.9")]) == [("per layer 1: mean auc", "0.9")]


def test_captions_give_the_settings_the_analyses_ran_with():
    """Thresholds in the captions come from the analyses' numbers (conf/memvis.conf's options), not the code."""
    from steps_py.memvis import report_sections as rs
    models = [{"name": "l", "cell": "lstm", "analyses": {
                  "saturation": {"raw": {"low": 0.05, "high": 0.95}, "figures": [], "key_numbers": {}},
                  "responsibility": {"raw": {"lstm_threshold": 8.0, "gru_threshold": 0.4, "share_threshold": 0.7,
                                             "min_lift": 2.0}, "figures": [], "key_numbers": {}},
                  "distributions": {"raw": {"clip": 12.0}, "figures": [], "key_numbers": {}}}},
              {"name": "g", "cell": "gru", "analyses": {
                  "responsibility": {"raw": {"share_threshold": 0.6}, "figures": [], "key_numbers": {}}}}]
    text = rs.other_views(models, {}) + rs.responsibility(models)
    assert "left-saturated (&lt; 0.05) against right-saturated (&gt; 0.95)" in text
    assert "outside (-8, 8)" in text and "inside (-0.4, 0.4)" in text and "(70% LSTM, 60% GRU)" in text
    assert "at 2 times" in text


def test_models_are_paired_and_the_explorer_fits_its_budget():
    def model(name, cell, layers, lazy="none", residual=False, analysed=True):
        return {"name": name, "cell": cell, "num_layers": layers, "lazy": lazy, "residual": residual,
                "analyses": {"tsne": {}} if analysed else {}}
    grid = [model("lstm_2l", "lstm", 2), model("gru_2l", "gru", 2), model("lstm_4l", "lstm", 4),
            model("gru_4l", "gru", 4), model("gru_6l", "gru", 6, analysed=False), model("lazy_4l", "lstm", 4, "last"),
            model("res_4l", "gru", 4, residual=True), model("rnn_2l", "rnn", 2)]
    shown, variants, baselines = rr.choose_models(grid)
    assert [m["name"] for m in shown] == ["lstm_4l", "gru_4l"]  # the deepest analysed pair
    assert [m["name"] for m in variants] == ["lazy_4l", "res_4l"] and baselines == shown
    assert [m["name"] for m in rr.choose_models(grid[1:2] + grid[7:])[0]] == ["gru_2l"]
    rng = np.random.default_rng(0)

    def data(n):
        return {"stats": {"box": "x" * 1000}, "utts": [{"values": "y" * int(rng.integers(900, 1100))}
                                                       for _ in range(n)]}
    datas = [("a", data(20)), ("b", data(5))]
    full = sum(len(rr.script_json(d)) for _, d in datas)
    fitted, dropped = rr.fit_explorers(datas, full - 10000)
    assert sum(len(rr.script_json(d)) for _, d in fitted) <= full - 10000 and dropped >= 10
    assert len(fitted[0][1]["utts"]) >= len(fitted[1][1]["utts"]) >= 5 - 1  # the larger model gives way first
    tiny, _ = rr.fit_explorers([("a", data(3)), ("b", data(2))], 100)
    assert [len(d["utts"]) for _, d in tiny] == [1, 1]  # never below one utterance per model


# ---------------------------------------------------------------------------------------------------------------
# The stage and the page

def test_stage_writes_the_run_page_beside_the_model_pages(run_s5, stage_report):
    log, seconds = stage_report
    page = os.path.join(run_s5, "exp", "nnet", "memvis_dev", "report.html")
    for name, _, _ in MODELS:
        assert os.path.getsize(os.path.join(run_s5, "exp", "nnet", name, "memvis_dev", "report.html")) > 10000
    assert f"report page {os.path.realpath(page)}" in log and "explorer: lstm_2l 4 utterances, gru_2l 4 utterances" in log
    text = open(page, encoding="utf-8").read()
    assert os.path.getsize(page) < 30e6
    order = [text.index(f'id="{a}"') for a in ("claims-heading", "claims", "fig1", "fig2", "fig3", "responsibility",
                                               "fig5", "wer-tables", "table1", "other-views", "saturation", "units",
                                               "cocluster", "trajectories", "horizon", "explorer")]
    assert order == sorted(order), "sections out of the paper's order"
    assert "Reproduces Fig. 1 of Tang et al." in text and "layers 1 and 2" in text
    assert "per_layer[0]" not in text and "mean_best_phone_auc" not in text  # key numbers in words
    assert "&quot;" not in text[:text.index('id="explorer"')]              # no JSON before the explorer's data
    assert text.count('<script type="application/json" class="memvis-model"') == 2     # an explorer per model
    assert "lstm_2l: dev 50.00 [50.00, 50.00]" in text                                  # Table 1 of compare_wer
    print(f"stage report: {seconds:.1f} s; run page {os.path.getsize(page) / 1e6:.2f} MB")


def test_second_stage_run_skips_the_run_page(run_s5, stage_report, tmp_path):
    """The page is stamped (steps_py.completion.Completion): a second report stage finds it up to date and leaves it
    alone, also when stage 8 has rewritten the analyses' logs (memvis_<set>/log is not an input); a changed
    analysis makes it again."""
    page = os.path.join(run_s5, "exp", "nnet", "memvis_dev", "report.html")
    before = os.stat(page).st_mtime_ns
    logs = os.path.join(run_s5, "exp", "nnet", "gru_2l", "memvis_dev", "log")
    os.makedirs(logs, exist_ok=True)
    with open(os.path.join(logs, "saturation.log"), "w") as f:
        f.write("skipped: saturation is up to date\n")
    env = dict(os.environ, PYTHONPATH=ROOT, KALDI_PY_PROGRESS="0",
               PATH=os.pathsep.join([os.path.dirname(sys.executable), os.path.join(ROOT, "utils"),
                                     os.environ.get("PATH", "")]))
    res = subprocess.run(["utils/memvis_stage.sh", "report"], cwd=run_s5, env=env, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "skipped: exp/nnet/memvis_dev/report.html is up to date" in res.stderr
    assert os.stat(page).st_mtime_ns == before
    nnet = os.path.join(run_s5, "exp", "nnet")
    args = ["--utts", "2", "--findings", os.path.join(nnet, "memvis_dev", "findings", "findings.json"),
            os.path.join(nnet, "lstm_2l"), os.path.join(nnet, "gru_2l")]
    copy = str(tmp_path / "report.html")
    run_main(rr, args + [copy])
    numbers = os.path.join(nnet, "gru_2l", "memvis_dev", "saturation", "numbers.json")
    st = os.stat(numbers)
    os.utime(numbers, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    try:
        made = os.stat(copy).st_mtime_ns
        run_main(rr, args + [copy])
        assert os.stat(copy).st_mtime_ns != made
    finally:
        os.utime(numbers, ns=(st.st_atime_ns, st.st_mtime_ns))


LAYOUT_JS = """(() => {
  const result = document.getElementById('selftest-result');
  if (!result || !result.textContent) return null;
  const claims = document.getElementById('claims');
  const links = Array.from(claims.querySelectorAll("a[href^='#']"), a => {
    const target = document.getElementById(a.getAttribute('href').slice(1));
    const row = a.closest('tr');
    return {href: a.getAttribute('href'), exists: target !== null, verdict: row.querySelector('td:nth-last-child(2)')
      .textContent, images: target ? target.querySelectorAll('img').length : 0,
      tables: target ? (target.matches('table') ? 1 : target.querySelectorAll('table').length) : 0};
  });
  const figures = Array.from(document.querySelectorAll('section.paper-figure'), s => s.id);
  const firstH2 = document.querySelector('h2').id;
  const claimsBeforeFigures = figures.every(id =>
    claims.compareDocumentPosition(document.getElementById(id)) & Node.DOCUMENT_POSITION_FOLLOWING);
  const models = Array.from(document.querySelectorAll('#explorer-models option'), o => o.textContent);
  return JSON.stringify({selftest: result.textContent, links, firstH2, claimsBeforeFigures, models,
                         rows: claims.querySelectorAll('tr[id^=claim-]').length});
})()"""


def assert_run_page_layout(browser, page, models):
    """The run page ``page`` passes its self-test in Chromium with no error, starts with the claims table, every claim
    links to a figure or table that exists (with an image or a table when the claim was measured), and the explorer
    offers ``models``. Returns the self-test's text."""
    run = browser.run_page("file://" + os.path.abspath(page) + "#selftest", LAYOUT_JS, wait=120.0)
    layout = json.loads(run.selftest) if run.selftest else {}
    run.selftest = layout.get("selftest")
    assert_clean_run(run, page)
    assert layout["firstH2"] == "claims-heading" and layout["claimsBeforeFigures"] and layout["rows"] == 8
    assert layout["models"] == models
    assert len(layout["links"]) == 8 and all(link["exists"] for link in layout["links"]), layout["links"]
    for link in layout["links"]:
        if link["verdict"] != "not measured":  # a measured claim leads to a figure or a table with its numbers
            assert link["images"] + link["tables"] > 0, link
    hrefs = {link["href"] for link in layout["links"]}
    assert {"#fig1", "#fig2", "#fig3", "#table1", "#table2", "#table3"} <= hrefs
    assert "claims first, 8 claim links resolve" in run.selftest and f"model {models[-1]}" in run.selftest
    return run.selftest


def test_run_page_in_chromium_claims_first_and_every_claim_links_to_its_figure(run_s5, stage_report, browser):
    page = os.path.join(run_s5, "exp", "nnet", "memvis_dev", "report.html")
    t = time.time()
    selftest = assert_run_page_layout(browser, page, ["lstm_2l", "gru_2l"])
    print(f"run page self-test in {time.time() - t:.1f} s: {selftest[:200]}")


@pytest.mark.slow
def test_a_finished_run_page_in_chromium(browser):
    """The same checks on the page of a finished run of the default grid (lstm_2l and gru_2l, the 8 claims), e.g.
    the default run's:
    RUN_PAGE=egs/synth/s5/exp/nnet/memvis_dev/report.html tools/venv/bin/python -m pytest -m slow -k finished_run_page"""
    page = os.environ.get("RUN_PAGE")
    if not page:
        pytest.skip("set RUN_PAGE to a run page (exp/nnet/memvis_<set>/report.html of a finished run)")
    size_mb = os.path.getsize(page) / 1e6
    t = time.time()
    selftest = assert_run_page_layout(browser, page, ["lstm_2l", "gru_2l"])
    print(f"\n{page}: {size_mb:.1f} MB; self-test in {time.time() - t:.1f} s: {selftest[:300]}")
    assert size_mb < 30


def test_lazy_model_fills_fig5_and_runs_without_findings_or_extraction_still_render(run_s5, tmp_path, browser):
    """A lazy-update LSTM beside the plain models (its analyses copied from lstm_2l): Fig. 5 shows it with its
    baseline and the explorer offers the three models; without findings.json the claims table says so."""
    import shutil
    nnet = os.path.join(run_s5, "exp", "nnet")
    lazy = tmp_path / "lstm_lazy_2l"
    shutil.copytree(os.path.join(nnet, "lstm_2l", "memvis_dev"), lazy / "memvis_dev")
    os.symlink(os.path.join(nnet, "lstm_2l", "extract_dev"), lazy / "extract_dev")
    (lazy / "nnet.conf").write_text("cell=lstm\nnum_layers=2\nlazy=last\n")
    page = tmp_path / "report.html"
    run_main(rr, ["--utts", "2", "--findings", tmp_path / "none.json", os.path.join(nnet, "lstm_2l"),
                  os.path.join(nnet, "gru_2l"), lazy, page])
    text = page.read_text(encoding="utf-8")
    fig5 = text[text.index('id="fig5"'):text.index('id="wer-tables"')]
    assert "lstm_lazy_2l (LSTM, 2 layers, lazy update: last)" in fig5 and "lstm_2l (LSTM, 2 layers)" in fig5
    assert fig5.count("<img") == 2 and 'class="missing"' not in fig5
    assert 'id="claims" class="missing">No findings.json' in text
    run = browser.run_page("file://" + str(page) + "#selftest", LAYOUT_JS.replace(
        "claims.querySelectorAll(\"a[href^='#']\")", "[]"), wait=60.0)
    layout = json.loads(run.selftest)
    run.selftest = layout["selftest"]
    assert_clean_run(run, str(page))
    assert layout["models"] == ["lstm_2l", "gru_2l", "lstm_lazy_2l"] and layout["rows"] == 0
    # a run whose models have analyses but no extraction: nothing to explore, the page still passes
    os.remove(lazy / "extract_dev")
    bare = tmp_path / "bare.html"
    run_main(rr, ["--findings", tmp_path / "none.json", lazy, bare])
    assert "No extraction to explore." in bare.read_text(encoding="utf-8")
    run = browser.run_page("file://" + str(bare) + "#selftest", SELFTEST_JS, wait=30.0)
    assert_clean_run(run, str(bare))
