"""steps_py.nnet.compare_wer on fabricated exp/nnet system dirs whose wer files are written by steps_py.decode.score."""
import json
import os
import subprocess
import sys

import pytest

from steps_py.nnet import compare_wer
from steps_py.decode.scoring import error_counts, wer_lines
from steps_py.common import write_lines

from conftest import ROOT


# 100 reference words; a hypothesis with k substitutions has k% WER
REF = {f"u{i}": [f"w{j}" for j in range(10)] for i in range(10)}


def write_wer(decode_dir, lmwt, errors, scoring=False):
    """A wer_<lmwt>_0.0 file of ``errors`` substitutions out of 100 words, via steps_py.decode.score's writer;
    with ``scoring`` also the references and hypotheses under scoring_kaldi/ (as score writes them)."""
    hyps = {u: list(ws) for u, ws in REF.items()}
    for k in range(errors):
        hyps[f"u{k % 10}"][k // 10] = "x"
    write_lines(os.path.join(decode_dir, f"wer_{lmwt}_0.0"), wer_lines(error_counts(REF, hyps)))
    if scoring:
        sdir = os.path.join(decode_dir, "scoring_kaldi")
        os.makedirs(os.path.join(sdir, "penalty_0.0"), exist_ok=True)
        write_lines(os.path.join(sdir, "test_filt.txt"), [f"{u} {' '.join(w)}" for u, w in sorted(REF.items())])
        write_lines(os.path.join(sdir, "penalty_0.0", f"{lmwt}.txt"),
                    [f"{u} {' '.join(w)}" for u, w in sorted(hyps.items())])


def make_system(root, name, conf, wers=None, summary=None, scoring=False):
    d = os.path.join(root, "nnet", name)
    os.makedirs(d)
    write_lines(os.path.join(d, "nnet.conf"), [f"{k}={v}" for k, v in conf.items()])
    for data_set, per_lmwt in (wers or {}).items():
        dd = os.path.join(d, f"decode_tgpr_{data_set}")
        os.makedirs(dd)
        for lmwt, errors in per_lmwt.items():
            write_wer(dd, lmwt, errors, scoring)
    if summary is not None:
        with open(os.path.join(d, "train_summary.json"), "w") as f:
            json.dump(summary, f)
    return d


def conf(cell, layers, lazy="none", residual="false"):
    return {"cell": cell, "num_layers": layers, "cell_dim": 64, "lazy": lazy, "residual": residual}


@pytest.fixture
def exp(tmp_path):
    root = str(tmp_path / "exp")
    summ = dict(final_train_ce=1.23456, final_valid_ce=1.5, final_valid_acc=0.6125, num_params=1234567,
                train_seconds=10.0, epochs=3)
    make_system(root, "lstm_2l", conf("lstm", 2), {"dev": {8: 20, 12: 15, 16: 17}, "eval": {12: 18}}, summ)
    make_system(root, "gru_2l", conf("gru", 2), {"dev": {12: 16}}, dict(summ, num_params=950000))
    make_system(root, "lstm_4l", conf("lstm", 4), {"dev": {12: 14}, "eval": {12: 16}})
    make_system(root, "lstm_lazy_2l", conf("lstm", 2, lazy="last"), {"dev": {12: 13}, "eval": {12: 15}})
    make_system(root, "gru_res_4l", conf("gru", 4, residual="true"), {"dev": {12: 12}, "eval": {12: 13}})
    make_system(root, "rnn_2l", conf("rnn", 2), {"dev": {12: 30}, "eval": {12: 31}}, dict(summ, num_params=800000))
    os.makedirs(os.path.join(root, "nnet", "empty_sys"))
    write_lines(os.path.join(root, "nnet", "empty_sys", "nnet.conf"), ["cell=dnn", "num_layers=4"])
    # GMM reference: the real tri2b decode dir of a small run if there is one, else a fabricated one
    gmm = os.path.join(root, "tri2b", "decode_tgpr_dev")
    os.makedirs(gmm)
    write_wer(gmm, 12, 21)
    return root


def run(*args):
    r = subprocess.run([sys.executable, "-m", "steps_py.nnet.compare_wer", *args], cwd=ROOT, capture_output=True,
                       text=True, env=dict(os.environ, PYTHONPATH=ROOT))
    assert r.returncode == 0, r.stderr
    return r.stdout


def row(out, label):
    return next(line for line in out.splitlines() if line.startswith(label))[len(label):].split()


def test_columns_per_system(exp):
    out = run(os.path.join(exp, "nnet", "lstm_2l"), os.path.join(exp, "nnet", "gru_2l"),
              os.path.join(exp, "nnet", "empty_sys"))
    assert row(out, "# System") == ["lstm_2l", "gru_2l", "empty_sys"]
    assert row(out, "# WER dev (tgpr)") == ["15.00", "16.00", "-"]          # best of wer_8/12/16
    assert row(out, "# WER eval (tgpr)") == ["18.00", "-", "-"]
    assert row(out, "# Final train CE") == ["1.2346", "1.2346", "-"]
    assert row(out, "# Final valid frame acc") == ["0.6125", "0.6125", "-"]
    assert row(out, "# Num params") == ["1.23M", "0.95M", "-"]


def test_paper_tables_and_json(exp, tmp_path):
    js = str(tmp_path / "out.json")
    out = run("--tables", "paper", "--json", js, os.path.join(exp, "nnet"))
    assert row(out, "# System") == sorted(["empty_sys", "gru_2l", "gru_res_4l", "lstm_2l", "lstm_4l",
                                           "lstm_lazy_2l", "rnn_2l"])
    lines = out.splitlines()
    t1 = lines.index(next(x for x in lines if x.startswith("# Table 1")))
    # Table 1, LSTM row: 1 layer missing, 2 layers 15/18, 4 layers 14/16, 6 layers missing
    assert lines[t1 + 2].split() == ["#", "LSTM", "-", "15.00", "/", "18.00", "14.00", "/", "16.00", "-"]
    assert lines[t1 + 3].split() == ["#", "GRU", "-", "16.00", "/", "-", "-", "-"]
    lazy = next(x for x in lines if x.startswith("# LSTM lazy=last"))
    assert lazy.split()[3:7] == ["-", "13.00", "/", "15.00"]
    res = next(x for x in lines if x.startswith("# GRU residual"))
    assert res.split()[3:] == ["12.00", "/", "13.00", "-"]
    base = [x for x in lines[lines.index(next(x for x in lines if x.startswith("# Baselines"))):]]
    assert base[1].split() == ["#", "DNN", "4l", "empty_sys", "-", "/", "-", "params", "-"]
    assert base[2].split() == ["#", "RNN", "2l", "rnn_2l", "30.00", "/", "31.00", "params", "0.80M"]
    assert base[3].split() == ["#", "GMM", "tri2b", "tri2b", "21.00", "/", "-", "params", "-"]
    data = json.load(open(js))
    assert data["systems"]["lstm_2l"]["wer_dev"] == 15.0
    assert data["systems"]["lstm_2l"]["wer_line_dev"].endswith("decode_tgpr_dev/wer_12_0.0")
    assert data["tables"]["table1"]["rows"][0][1][2] == {"system": "lstm_4l", "dev": 14.0, "eval": 16.0,
                                                         "dev_ci": None, "eval_ci": None}
    assert data["gmm"]["wer_dev"] == 21.0


def test_paper_tables_show_intervals(tmp_path):
    """With per-utterance errors (scoring_kaldi/), each table row gets a 95% CI line beneath it: an interval around
    the WER inside [0, 100] where the utterances' error rates differ, a single point where they do not."""
    root = str(tmp_path / "exp")
    make_system(root, "lstm_1l", conf("lstm", 1), {"dev": {12: 23}, "eval": {12: 7}}, scoring=True)
    make_system(root, "gru_1l", conf("gru", 1), {"dev": {12: 30}}, scoring=True)
    out = run("--tables", "paper", os.path.join(root, "nnet"))
    lines = out.splitlines()
    t1 = lines.index(next(x for x in lines if x.startswith("# Table 1")))
    assert lines[t1 + 2].split()[:5] == ["#", "LSTM", "23.00", "/", "7.00"]
    ci = lines[t1 + 3].split()
    assert ci[:3] == ["#", "95%", "CI"]
    (lo, hi), (elo, ehi) = (map(float, ci[3].split("-")), map(float, ci[5].split("-")))
    assert 0 <= lo < 23 < hi <= 100 and 0 <= elo < 7 < ehi <= 100
    assert lines[t1 + 4].split()[:5] == ["#", "GRU", "30.00", "/", "-"]
    assert lines[t1 + 5].split()[3:6] == ["30.0-30.0", "/", "-"]     # every utterance 3 errors in 10: no spread


def test_wer_files_of_a_real_decode(tmp_path, tiny_gmm):
    """The wer files of the tiny recipe's tri2b decode of dev (compute-wer's format), copied into a system dir."""
    import shutil
    src = os.path.join(tiny_gmm, "exp", "tri2b", "decode_tgpr_dev")
    d = tmp_path / "nnet" / "sys" / "decode_tgpr_dev"
    shutil.copytree(src, d, ignore=shutil.ignore_patterns("log", "scoring*"))
    best = min(float(open(os.path.join(src, f)).readline().split()[1])
               for f in os.listdir(src) if f.startswith("wer_"))
    s = compare_wer.read_system(str(tmp_path / "nnet" / "sys"))
    assert s["wer_dev"] == best and s["wer_eval"] is None and s["conf"] is None


def test_not_a_system_dir(tmp_path):
    os.makedirs(tmp_path / "x" / "y")
    r = subprocess.run([sys.executable, "-m", "steps_py.nnet.compare_wer", str(tmp_path / "x")], cwd=ROOT,
                       capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=ROOT))
    assert r.returncode != 0 and "neither a system dir" in r.stderr and "Traceback" not in r.stderr


def test_other_test_set_names(tmp_path):
    """A Kaldi-dir recipe's sets are dev and test: --sets "dev test" reads decode_tgpr_test and labels it so."""
    root = str(tmp_path / "exp")
    make_system(root, "lstm_2l", conf("lstm", 2), {"dev": {12: 7}, "test": {10: 9}}, scoring=True)
    out = run("--tables", "paper", "--sets", "dev test", "--json", str(tmp_path / "c.json"),
              os.path.join(root, "nnet"))
    assert "# WER test (tgpr)" in out and "eval" not in out
    assert "WER dev / test by number of layers" in out
    assert "7.00 / 9.00" in out
    data = json.load(open(tmp_path / "c.json"))
    assert data["systems"]["lstm_2l"]["wer_test"] == 9.0 and data["systems"]["lstm_2l"]["wer_ci_test"] is not None
    assert data["sets"] == ["dev", "test"]
    # the run's report page shows each set of the cells
    from steps_py.memvis.report_sections import wer_tables
    page = wer_tables(data, {})
    assert "dev 7.00 [" in page and "test 9.00 [" in page and "(dev / test)" in page
