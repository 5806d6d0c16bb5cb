"""egs/synth/s5 stages 0-1 on the tiny corpus, as a user runs them."""
import os

import kaldiio
import numpy as np

from steps_py.data.audio import read_wav_scp_value
from steps_py.data.datadir import read_map, validate_data_dir
from steps_py.feats.features import compute_features, load_feature_config

from conftest import TINY_OPTS, make_recipe_dir, run_recipe


def test_data_dirs_validate_with_features(tiny_recipe):
    d = os.path.join(tiny_recipe, "data")
    for s in ["train", "dev", "eval"]:
        assert validate_data_dir(os.path.join(d, s)) > 0
        assert validate_data_dir(os.path.join(d, s + "_fbank")) > 0
    spk = {s: set(read_map(os.path.join(d, s, "spk2utt"))) for s in ["train", "dev", "eval"]}
    assert not (spk["train"] & spk["dev"]) and not (spk["train"] & spk["eval"]) and not (spk["dev"] & spk["eval"])
    for f in ["lang/L_disambig.fst", "lang_test_tg/G.fst", "lang_test_tgpr/G.fst", "local/lm/perplexity.txt"]:
        assert os.path.getsize(os.path.join(d, f)) > 0, f


def test_features_read_back_bit_exact(tiny_recipe):
    """kaldiio reads the scp back exactly as the features computed again from the audio."""
    d = os.path.join(tiny_recipe, "data")
    for sub, conf, dim in [("dev", "mfcc.conf", 13), ("dev_fbank", "fbank.conf", 40)]:
        feats = dict(kaldiio.load_scp(os.path.join(d, sub, "feats.scp")))
        utt = sorted(feats)[0]
        wav = read_map(os.path.join(d, sub, "wav.scp"))[utt]
        config = load_feature_config(conf.split(".")[0], os.path.join(tiny_recipe, "conf", conf))
        again = compute_features(read_wav_scp_value(wav).samples[0], config)
        assert feats[utt].shape[1] == dim
        np.testing.assert_array_equal(feats[utt], again)
        cmvn = dict(kaldiio.load_scp(os.path.join(d, sub, "cmvn.scp")))
        assert all(m.shape == (2, dim + 1) for m in cmvn.values())


def test_rerun_skips_finished_work(tiny_recipe):
    ark = os.path.join(tiny_recipe, "mfcc")
    before = {f: os.path.getmtime(os.path.join(ark, f)) for f in os.listdir(ark)}
    out, seconds = run_recipe(tiny_recipe, *TINY_OPTS, "--stop-stage", "1")
    after = {f: os.path.getmtime(os.path.join(ark, f)) for f in os.listdir(ark)}
    assert before == after
    assert "corpus already complete" in out and "nothing to do" in out


def test_lang_settings_on_the_command_line(tmp_path):
    """A setting of conf/lang.conf given on run.sh's command line overrides the conf file (as in the WSJ and
    Kaldi-dir recipes): --sil-prob 0.25 puts -log(0.25) on the optional-silence arcs of L.fst."""
    import math

    from local.synth import make_corpus
    from steps_py.kaldi.bindings import kaldifst
    s5 = make_recipe_dir(tmp_path, "synth")
    make_corpus.make_tiny_corpus(s5)
    run_recipe(s5, *TINY_OPTS, "--sil-prob", "0.25", "--stop-stage", "0")
    L = kaldifst.StdVectorFst.read(os.path.join(s5, "data", "lang", "L.fst"))
    costs = {round(arc.weight.value, 4) for s in range(L.num_states) for arc in kaldifst.ArcIterator(L, s)}
    assert round(-math.log(0.25), 4) in costs and round(-math.log(0.75), 4) in costs
    assert round(-math.log(0.5), 4) not in costs
