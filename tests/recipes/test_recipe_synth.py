"""egs/synth/s5 stages 0-1 on the tiny corpus, as a user runs them."""
import os

import kaldiio
import numpy as np

from conftest import TINY_OPTS, run_recipe
from steps_py.feats.features import compute_features, load_feature_config
from steps_py.data.datadir import read_map, validate_data_dir
from steps_py.data.audio import read_wav_scp_value


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
