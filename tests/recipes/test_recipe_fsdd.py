"""egs/fsdd/s5 end to end on real speech: FSDD digits at 8 kHz, 3 recordings per digit and speaker, every stage
(the GMMs with about two thirds of their EM passes: tests/fixtures/gmm_fsdd_ci.conf)."""
import os
import re

import kaldiio
import pytest

from conftest import FIXTURES, ROOT, make_recipe_dir, run_recipe
from steps_py.data.datadir import read_map

FSDD = os.path.join(ROOT, "..", "shared", "corpora", "fsdd", "recordings")
OPTS = ("--per-speaker", "3", "--nj", "2", "--gmm-conf", os.path.join(FIXTURES, "gmm_fsdd_ci.conf"))


@pytest.fixture(scope="module")
def fsdd_recipe(tmp_path_factory):
    if not os.path.isdir(FSDD):
        pytest.skip(f"no {FSDD}")
    s5 = make_recipe_dir(tmp_path_factory.mktemp("fsdd"), "fsdd")
    out, seconds = run_recipe(s5, *OPTS)
    print(f"egs/fsdd/s5 run.sh {' '.join(OPTS)}: {seconds:.1f} s")
    return s5, out


def wers(s5):
    """{decode dir: %WER} of RESULTS."""
    out = {}
    for line in open(os.path.join(s5, "RESULTS")):
        m = re.match(r"%WER ([\d.]+) .* (exp/\S+)/wer_\S+$", line.strip())
        if m:
            out[m.group(2)] = float(m.group(1))
    return out


def test_tab_separated_dirs_keep_every_utterance(fsdd_recipe):
    s5, out = fsdd_recipe
    assert "\t" in open(os.path.join(s5, "data", "src", "train", "text")).readline()
    for name, speakers in [("train", 4), ("dev", 1), ("test", 1)]:
        utt2spk = read_map(os.path.join(s5, "data", name, "utt2spk"))
        assert len(utt2spk) == speakers * 10 * 3 and len(set(utt2spk.values())) == speakers, name
    assert set(read_map(os.path.join(s5, "data", "dev", "utt2spk")).values()) == {"theo"}
    assert read_map(os.path.join(s5, "data", "train", "text"))["george_7_02"] == "SEVEN"


def test_features_at_8khz(fsdd_recipe):
    s5, _ = fsdd_recipe
    assert "--sample-frequency=8000" in open(os.path.join(s5, "data", "train_fbank", "conf", "fbank.conf")).read()
    scp = read_map(os.path.join(s5, "data", "test_fbank", "feats.scp"))
    feats = kaldiio.load_mat(scp["yweweler_0_00"])
    assert feats.shape[1] == 40 and 20 < feats.shape[0] < 200        # 10 ms frames of a short word


def test_every_system_decodes_real_speech(fsdd_recipe):
    s5, _ = fsdd_recipe
    w = wers(s5)
    for system in ["mono", "tri1", "tri2b", "nnet/lstm_2l", "nnet/gru_2l"]:
        for s in ["dev", "test"]:
            assert f"exp/{system}/decode_tgpr_{s}" in w, (system, s, sorted(w))
    assert w["exp/tri2b/decode_tgpr_test"] < 50                      # 10 words: chance is 90%
    assert os.path.isfile(os.path.join(s5, "exp", "nnet", "memvis_dev", "findings", "findings.json"))
    for m in ["lstm_2l", "gru_2l"]:
        assert os.path.getsize(os.path.join(s5, "exp", "nnet", m, "memvis_dev", "report.html")) > 10000
    assert os.path.getsize(os.path.join(s5, "exp", "nnet", "memvis_dev", "report.html")) > 10000  # the run's page


def test_second_run_skips_every_step(fsdd_recipe):
    """The FSDD and Kaldi-dir preparations, and every step after them, find their work done (issue 12)."""
    s5, _ = fsdd_recipe
    results = open(os.path.join(s5, "RESULTS"), "rb").read()
    out, seconds = run_recipe(s5, *OPTS)
    print(f"egs/fsdd/s5 second run: {seconds:.1f} s")
    assert ") making " not in out
    for what in ["data/src", "data (data dirs and dictionary)", "data/lang", "exp/mono", "exp/tri2b_ali_test",
                 "exp/nnet/gru_2l/decode_tgpr_test", "exp/nnet/memvis_dev/findings"]:
        assert f"skipped: {what} is up to date" in out, what
    assert open(os.path.join(s5, "RESULTS"), "rb").read() == results
