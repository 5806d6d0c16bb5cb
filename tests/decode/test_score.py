"""Kaldi-style scoring: WER counts against a hand count, wer file format, best_wer and RESULTS lines."""
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from steps_py.data.datadir import write_map
from steps_py.decode import scoring

from conftest import ROOT

def test_error_counts_match_a_hand_count():
    refs = {"u1": "the cat sat on the mat".split(), "u2": "a b c".split(), "u3": "x y".split()}
    hyps = {"u1": "the cat sat at the mat mat".split(),  # 1 sub (on->at), 1 ins (mat)
            "u2": "a c".split()}                         # 1 del (b); u3 has no hypothesis
    c = scoring.error_counts(refs, hyps)
    assert (c["ins"], c["del"], c["sub"], c["errors"], c["ref_words"]) == (1, 1, 1, 3, 9)
    assert (c["sentences"], c["sentence_errors"], c["missing"]) == (2, 2, 1)
    assert scoring.wer_lines(c) == ["%WER 33.33 [ 3 / 9, 1 ins, 1 del, 1 sub ]", "%SER 100.00 [ 2 / 2 ]",
                                  "Scored 2 sentences, 1 not present in hyp."]


def make_decode(tmp_path):
    data = tmp_path / "data"
    os.makedirs(data)
    write_map(str(data / "text"), {"u1": "A B <NOISE> C", "u2": "B C", "u3": "<SPOKEN_NOISE> A"})
    graph = tmp_path / "graph"
    os.makedirs(graph)
    with open(graph / "words.txt", "w") as f:
        f.write("<eps> 0\nA 1\nB 2\nC 3\n<NOISE> 4\n<SPOKEN_NOISE> 5\n<UNK> 6\n")
    dec = tmp_path / "exp" / "mono" / "decode_dev"
    os.makedirs(dec / "scoring")
    tra = {"10_0.0": "u1 1 2 4 3\nu2 2 3\nu3 1\n",       # perfect after filtering
           "11_0.0": "u1 1 2 6\nu2 2 3 3\nu3 5 1\n",     # 1 sub + 1 ins
           "10_0.5": "u1 1\nu2 2\n"}                     # 3 del, u3 missing
    for name, text in tra.items():
        (dec / "scoring" / f"{name}.tra").write_text(text)
    return str(data), str(graph), str(dec)


def test_score_writes_kaldi_files_and_best_wer(tmp_path):
    data, graph, dec = make_decode(tmp_path)
    res = subprocess.run([sys.executable, "-m", "steps_py.decode.score", data, graph, dec], capture_output=True,
                         text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": ROOT})
    assert res.returncode == 0, res.stderr
    assert open(os.path.join(dec, "wer_10_0.0")).read() == \
        "%WER 0.00 [ 0 / 6, 0 ins, 0 del, 0 sub ]\n%SER 0.00 [ 0 / 3 ]\nScored 3 sentences, 0 not present in hyp.\n"
    assert open(os.path.join(dec, "wer_11_0.0")).readline() == "%WER 33.33 [ 2 / 6, 1 ins, 0 del, 1 sub ]\n"
    assert open(os.path.join(dec, "wer_10_0.5")).read().splitlines()[::2] == \
        ["%WER 60.00 [ 3 / 5, 0 ins, 3 del, 0 sub ]", "Scored 2 sentences, 1 not present in hyp."]
    assert open(os.path.join(dec, "scoring_kaldi", "test_filt.txt")).read() == "u1 A B C\nu2 B C\nu3 A\n"
    assert open(os.path.join(dec, "scoring_kaldi", "penalty_0.0", "11.txt")).read() == \
        "u1 A B <UNK>\nu2 B C C\nu3 A\n"
    best = open(os.path.join(dec, "scoring_kaldi", "best_wer")).read().strip()
    assert best == f"%WER 0.00 [ 0 / 6, 0 ins, 0 del, 0 sub ] {dec}/wer_10_0.0"


def test_score_without_filter_counts_noise_words(tmp_path):
    data, graph, dec = make_decode(tmp_path)
    scoring.score(data, graph, dec, drop_words=())
    # refs now have 8 words; hyp 10_0.0 "A" for "<SPOKEN_NOISE> A" is one deletion
    assert open(os.path.join(dec, "wer_10_0.0")).readline() == "%WER 12.50 [ 1 / 8, 0 ins, 1 del, 0 sub ]\n"


def test_best_wer_appends_results_once(tmp_path):
    data, graph, dec = make_decode(tmp_path)
    scoring.score(data, graph, dec)
    results = tmp_path / "RESULTS"
    results.write_text("# results\n%WER 50.00 [ 5 / 10, 0 ins, 0 del, 5 sub ] exp/other/decode/wer_9_0.0\n"
                       f"%WER 99.00 [ 99 / 100, 0 ins, 0 del, 99 sub ] {dec}/wer_12_0.0\n")
    for _ in range(2):
        res = subprocess.run([sys.executable, "-m", "steps_py.decode.best_wer", "--append", str(results), dec],
                             capture_output=True, text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": ROOT})
        assert res.returncode == 0, res.stderr
        assert res.stdout == f"%WER 0.00 [ 0 / 6, 0 ins, 0 del, 0 sub ] {dec}/wer_10_0.0\n"
    assert results.read_text().splitlines() == [
        "# results", "%WER 50.00 [ 5 / 10, 0 ins, 0 del, 5 sub ] exp/other/decode/wer_9_0.0",
        f"%WER 0.00 [ 0 / 6, 0 ins, 0 del, 0 sub ] {dec}/wer_10_0.0"]


def test_best_wer_prefers_lowest_and_first_in_c_order(tmp_path):
    for name, wer in (("wer_9_0.0", "20.00"), ("wer_10_0.0", "15.00"), ("wer_10_0.5", "15.00"), ("wer_8_1.0", "30.00")):
        (tmp_path / name).write_text(f"%WER {wer} [ 3 / 20, 0 ins, 0 del, 3 sub ]\n")
    assert scoring.best_for_dir(str(tmp_path)).endswith("/wer_10_0.0")
    assert scoring.best_for_dir(str(tmp_path)).startswith("%WER 15.00 ")


def test_bootstrap_wer_interval_against_known_cases():
    # every utterance 1 error in 4 words: each resampling has WER 25%, so the interval is exactly [25, 25]
    assert scoring.bootstrap_wer([1] * 50, [4] * 50, num_samples=500) == (25.0, 25.0, 25.0)
    # 100 utterances of 10 words, 20 with all words wrong: WER 20%, the binomial standard error over
    # utterances is sqrt(0.2 * 0.8 / 100) = 4%, so the 95% interval is about 20 +- 7.8
    errors = [10] * 20 + [0] * 80
    wer, lo, hi = scoring.bootstrap_wer(errors, [10] * 100, num_samples=20000, seed=1)
    assert wer == 20.0 and 11.5 < lo < 13.5 and 26.5 < hi < 28.5
    assert scoring.bootstrap_wer(errors, [10] * 100, num_samples=2000, seed=3) == \
        scoring.bootstrap_wer(errors, [10] * 100, num_samples=2000, seed=3)
    # paired: system 0 makes one more error than system 1 on every utterance -> difference exactly 10%
    assert scoring.bootstrap_wer_difference([2] * 30, [1] * 30, [10] * 30, num_samples=500) == (10.0, 10.0, 10.0)
    # paired difference of identical systems is 0 whatever the resampling
    assert scoring.bootstrap_wer_difference(errors, errors, [10] * 100, num_samples=500) == (0.0, 0.0, 0.0)


def test_bootstrap_over_seeds_and_utterances():
    # three seeds of identical WER on every utterance: the seeds add nothing, the interval is the utterances' one
    errors = [10] * 20 + [0] * 80
    one = scoring.bootstrap_wer(errors, [10] * 100, num_samples=4000, seed=1)
    three = scoring.bootstrap_wer([errors] * 3, [10] * 100, num_samples=4000, seed=1)
    assert three[0] == one[0] == 20.0 and abs(three[1] - one[1]) <= 1.5 and abs(three[2] - one[2]) <= 1.5
    # seeds of 10%, 20% and 30% WER on equal utterances: the interval covers the seeds' spread, not one seed's
    seeds = [[1] * 100, [2] * 100, [3] * 100]
    wer, lo, hi = scoring.bootstrap_wer(seeds, [10] * 100, num_samples=4000, seed=2)
    assert wer == 20.0 and lo < 15.0 and hi > 25.0 and 10.0 <= lo and hi <= 30.0
    # a paired difference whose sign the utterances settle while one system's seeds vary
    diff, lo, hi = scoring.bootstrap_wer_difference(seeds, [0] * 100, [10] * 100, num_samples=2000)
    assert diff == 20.0 and lo > 0
    # the statistic sees [seeds, utterances, ...] arrays, utterances paired across systems
    value, lo, hi = scoring.bootstrap_interval([np.arange(5.0)[None, :], np.arange(5.0)[None, :] + 1],
                                               lambda a: float(a[1].mean() - a[0].mean()), num_samples=300)
    assert value == 1.0 and lo == pytest.approx(1.0) and hi == pytest.approx(1.0)


def test_wer_bootci_on_scored_decode_dirs(tmp_path):
    data, graph, dec = make_decode(tmp_path)
    scoring.score(data, graph, dec)                     # best: wer_10_0.0, no errors
    refs, hyps = scoring.best_hypotheses(dec)
    assert refs == {"u1": ["A", "B", "C"], "u2": ["B", "C"], "u3": ["A"]} and hyps == refs
    assert scoring.utterance_errors(refs, {"u1": ["A", "C", "C"], "u2": ["B"]}) == {"u1": (1, 3), "u2": (1, 2)}
    data2, graph2, dec2 = make_decode(tmp_path / "b")
    os.remove(os.path.join(dec2, "scoring", "10_0.0.tra"))
    scoring.score(data2, graph2, dec2)                  # best: wer_11_0.0, 1 sub + 1 ins in 6 words
    res = subprocess.run([sys.executable, "-m", "steps_py.decode.wer_bootci", "--num-samples", "2000", dec, dec2],
                         capture_output=True, text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": ROOT})
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0] == f"%WER 0.00 95% CI [0.00, 0.00] {dec}"
    wer2, lo2, hi2 = (float(x) for x in re.match(r"%WER (\S+) 95% CI \[(\S+), (\S+)\] ", lines[1]).groups())
    assert wer2 == 33.33 and lo2 == 0.0 and 33.33 < hi2 <= 100.0   # 3 utterances: a resampling may miss u1, u2
    diff, lo, hi = (float(x) for x in re.match(r"difference (\S+) 95% CI \[(\S+), (\S+)\] \(utterances of both: 3\)$",
                                               lines[2]).groups())
    assert diff == -33.33 and lo == -hi2 and hi == 0.0
    bad = subprocess.run([sys.executable, "-m", "steps_py.decode.wer_bootci", str(tmp_path)], capture_output=True,
                         text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": ROOT})
    assert bad.returncode != 0 and "no wer_* files" in bad.stderr and "Traceback" not in bad.stderr
