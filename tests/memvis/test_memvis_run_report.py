"""Tests of the run's report page (steps_py.memvis.run_report and its libraries): the claims of findings.json and
the analyses' key numbers as text for people."""
import json
import os

from steps_py.memvis import report_claims as rc
from steps_py.memvis.report_numbers import num, readable_numbers

from conftest import ROOT

PAPER_SMALL = os.path.join(ROOT, "egs", "synth", "s5", "results", "paper_small", "findings.json")


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
