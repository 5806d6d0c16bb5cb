"""WSJ data preparation (local/wsj_data_prep.py, local/wsj_format_lms.py) on a fabricated WSJ-shaped disc tree."""
import gzip
import os
import pathlib
import shutil
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT, make_recipe_dir, run_recipe

sys.path.insert(0, os.path.join(ROOT, "local"))
from wsj_fixture import make_wsj_tree, unix_compress  # noqa: E402

from steps_py.common import InputError  # noqa: E402
from steps_py.data.datadir import read_map, validate_data_dir  # noqa: E402

PREP = os.path.join(ROOT, "local", "wsj_data_prep.py")
ENV = dict(os.environ, PYTHONPATH=ROOT, KALDI_PY_PROGRESS="0")


def run_prep(args, cwd=None):
    return subprocess.run([sys.executable, PREP] + args, capture_output=True, text=True, env=ENV, cwd=cwd)


@pytest.fixture(scope="session")
def wsj(tmp_path_factory):
    root = tmp_path_factory.mktemp("wsj")
    return make_wsj_tree(str(root))


@pytest.fixture(scope="session")
def prepared(wsj, tmp_path_factory):
    data = tmp_path_factory.mktemp("prep") / "data"
    r = run_prep(["--lm-dir-out", str(data / "local" / "lm"), wsj["wsj0"], wsj["wsj1"], str(data)])
    assert r.returncode == 0, r.stderr
    return str(data), r.stderr


def test_sets_and_utterances(wsj, prepared):
    data, _ = prepared
    for name, utts in wsj["sets"].items():
        d = os.path.join(data, name)
        assert validate_data_dir(d, no_feats=True) == len(utts)
        assert list(read_map(os.path.join(d, "utt2spk"))) == utts
        assert list(read_map(os.path.join(d, "wav.scp"))) == utts
    assert not os.path.exists(os.path.join(data, "test_eval93"))  # its index is not on the fabricated discs
    assert not any(u.startswith("401") for u in read_map(os.path.join(data, "train_si284", "utt2spk")))


def test_normalised_transcripts(wsj, prepared):
    data, _ = prepared
    for name, utts in wsj["sets"].items():
        text = read_map(os.path.join(data, name, "text"))
        assert text == {u: wsj["text"][u] for u in utts}


def test_speakers_and_gender(wsj, prepared):
    data, _ = prepared
    for name in wsj["sets"]:
        utt2spk = read_map(os.path.join(data, name, "utt2spk"))
        assert all(spk == utt[:3] for utt, spk in utt2spk.items())
        spk2gender = read_map(os.path.join(data, name, "spk2gender"))
        assert spk2gender == {s: wsj["gender"][s] for s in set(utt2spk.values())}


def test_skips_are_named_and_counted(prepared):
    _, log = prepared
    assert "train_si84: skipping 01ac0201" in log and "no transcript in 01ac0200.dot" in log
    assert "train_si84: skipping 11-1.1/wsj0/si_tr_s/01a/01ac0203.wv1" in log and "no such audio file" in log
    assert "train_si84: 3 utterances; skipped 2 (excluded: 1, no audio: 1, no transcript: 1)" in log
    assert "test_eval93: index wsj1/doc/indices/wsj1/eval/h1_p0.ndx (on disc 13-32.1) not found" in log


def test_wav_entries_give_the_right_samples(wsj, prepared):
    data, _ = prepared
    from steps_py.data import audio as wav
    for name in ["train_si284", "test_eval92", "test_dev93"]:
        for utt, spec in read_map(os.path.join(data, name, "wav.scp")).items():
            audio = wav.read_wav_scp_value(spec)
            assert audio.rate == 16000
            assert audio.samples.shape == (1, wsj["samples"][utt]), utt
            np.testing.assert_array_equal(audio.samples[0], wsj["audio"][utt])   # the shorten .wv1, sample-exact


def test_dict_words_cover_training_and_lm(wsj, prepared):
    data, _ = prepared
    words = open(os.path.join(data, "local", "dict_words.txt")).read().split()
    assert words == sorted(set(words), key=lambda w: w.encode())
    train_words = {w for u in wsj["sets"]["train_si284"] for w in wsj["text"][u].split()}
    assert train_words <= set(words)
    assert "GOLD" in words and "<UNK>" in words  # from the LM only
    assert "<s>" not in words


def read_arpa_counts(path):
    counts, lines = {}, []
    with gzip.open(path, "rt") as f:
        for line in f:
            lines.append(line.rstrip("\n"))
            if line.startswith("ngram "):
                order, n = line.split()[1].split("=")
                counts[int(order)] = int(n)
    return counts, lines


def test_language_models(prepared):
    data, _ = prepared
    lm = os.path.join(data, "local", "lm")
    bg, bg_lines = read_arpa_counts(os.path.join(lm, "lm_bg.arpa.gz"))
    tg, tg_lines = read_arpa_counts(os.path.join(lm, "lm_tg.arpa.gz"))
    tgpr, _ = read_arpa_counts(os.path.join(lm, "lm_tgpr.arpa.gz"))
    assert sorted(bg) == [1, 2] and sorted(tg) == [1, 2, 3]
    assert tg_lines[0] == "\\data\\" and bg_lines[0] == "\\data\\"  # the free-form header is gone
    assert tg_lines[-1] == "\\end\\"
    entries = [ln for ln in tg_lines if ln and not ln.startswith(("\\", "ngram"))]
    assert len(entries) == sum(tg.values())
    assert all(len(e.split("\t")) in (2, 3) for e in entries)  # tab-separated fields
    assert tgpr[1] == tg[1] and tgpr[3] < tg[3]  # pruning removed trigrams, kept every word
    vocab = open(os.path.join(lm, "vocab.txt")).read().split()
    assert len(vocab) == tg[1] - 2 and "<s>" not in vocab


def test_rerun_keeps_existing_lms(wsj, prepared):
    """A re-run on the same discs is skipped whole, every output kept with its time stamp; without the stamp of the
    finished run (as after a kill) the data dirs are made again and the LMs still kept."""
    data, _ = prepared
    tgpr = os.path.join(data, "local", "lm", "lm_tgpr.arpa.gz")
    text = os.path.join(data, "train_si284", "text")
    mtimes = os.stat(tgpr).st_mtime_ns, os.stat(text).st_mtime_ns
    argv = ["--lm-dir-out", os.path.join(data, "local", "lm"), wsj["wsj0"], wsj["wsj1"], data]
    r = run_prep(argv)
    assert r.returncode == 0, r.stderr
    assert "(WSJ data dirs) is up to date" in r.stderr and (os.stat(tgpr).st_mtime_ns, os.stat(text).st_mtime_ns) == mtimes
    os.unlink(os.path.join(data, ".done.wsj_data_prep"))
    r = run_prep(argv)
    assert r.returncode == 0, r.stderr
    assert "lm_tgpr.arpa.gz exists, kept" in r.stderr and os.stat(tgpr).st_mtime_ns == mtimes[0]


def test_not_a_wsj_directory(tmp_path, wsj):
    (tmp_path / "corpus" / "audio").mkdir(parents=True)
    r = run_prep([str(tmp_path / "corpus"), wsj["wsj1"], str(tmp_path / "data")])
    assert r.returncode == 1
    assert "is not a WSJ wsj0 directory" in r.stderr and "11-1.1" in r.stderr
    assert "Traceback" not in r.stderr
    r = run_prep([str(tmp_path / "nowhere"), wsj["wsj1"], str(tmp_path / "data")])
    assert r.returncode == 1 and "does not exist" in r.stderr


def test_missing_required_index(tmp_path, wsj):
    wsj0 = tmp_path / "wsj0"
    shutil.copytree(wsj["wsj0"], wsj0, symlinks=True)
    os.unlink(wsj0 / "11-13.1" / "wsj0" / "doc" / "indices" / "train" / "tr_s_wv1.ndx")
    r = run_prep([str(wsj0), wsj["wsj1"], str(tmp_path / "data")])
    assert r.returncode == 1
    assert "index wsj0/doc/indices/train/tr_s_wv1.ndx (on disc 11-13.1) not found" in r.stderr


def test_normalize_transcript():
    from wsj_data_prep import normalize_transcript
    words = ("[loud_breath] Of course there isn\\'t [<door_slam] [door_slam>] [phone_ring/] [/phone_ring] any ~ . "
             "<and> I\\. B\\. M\\. %PERCENT .POINT --DASH Mr\\. [misc_noise]").split()
    assert normalize_transcript(words) == ["<NOISE>", "OF", "COURSE", "THERE", "ISN'T", "ANY", "AND", "I.", "B.",
                                           "M.", "PERCENT", "POINT", "-DASH", "MR.", "<NOISE>"]
    assert normalize_transcript(["[breath]"], "<SPOKEN_NOISE>") == ["<SPOKEN_NOISE>"]


def test_index_and_dot_parsing_errors():
    from wsj_data_prep import parse_dot, parse_ndx
    entries = parse_ndx([";; comment", "11_14_1:wsj0/si_et_20/440/440c0201", "13_32_1: wsj1/x/4k0/4k0c0301.wv1"],
                        "x.ndx", add_ext=".wv1", disc_fix=("13_32_1", "13_33_1"))
    assert entries == [("11-14.1", "wsj0/si_et_20/440/440c0201.wv1", 2), ("13-33.1", "wsj1/x/4k0/4k0c0301.wv1", 3)]
    with pytest.raises(InputError, match=r"x\.ndx:2: cannot parse"):
        parse_ndx([";;", "wsj0/si_tr_s/011/011c0201.wv1"], "x.ndx")
    assert parse_dot(["Hello world (011C0201)\n", "\n"], "a.dot") == {"011c0201": "Hello world"}
    with pytest.raises(InputError, match=r"a\.dot:1: expected"):
        parse_dot(["no id here\n"], "a.dot")


def test_unix_compress_is_read_by_gzip():
    data = b"".join(b"%d the quick brown fox %d\n" % (i, i * i) for i in range(20000))  # widens codes to 16 bits
    out = subprocess.run(["gzip", "-dc"], input=unix_compress(data), capture_output=True, check=True).stdout
    assert out == data


def test_undecodable_sphere_is_detected(tmp_path):
    from wsj_data_prep import sphere_decodable
    header = (b"NIST_1A\n   1024\nsample_count -i 100\nsample_n_bytes -i 2\nchannel_count -i 1\n"
              b"sample_byte_format -s2 10\nsample_rate -i 16000\nsample_coding -s25 pcm,embedded-shorten-v1.1\n"
              b"sample_sig_bits -i 16\nend_head\n").ljust(1024, b" ")
    (tmp_path / "a.wv1").write_bytes(header + b"ajkg\x01" + bytes(40))  # a shorten stream of zero bits: truncated
    ok, why = sphere_decodable(str(tmp_path / "a.wv1"))
    assert not ok and "a.wv1: cannot decode the embedded shorten stream (truncated stream" in why
    (tmp_path / "c.wv1").write_bytes(header + b"ajkg\x03" + bytes(40))
    assert "version 3" in sphere_decodable(str(tmp_path / "c.wv1"))[1]
    subprocess.run(["sox", "-n", "-r", "16000", "-b", "16", "-t", "sph", str(tmp_path / "b.wv1"), "synth", "100s",
                    "sine", "300"], check=True)
    assert sphere_decodable(str(tmp_path / "b.wv1")) == (True, "")


@pytest.fixture(scope="session")
def wsj_recipe(wsj, tmp_path_factory):
    """egs/wsj/s5 on the fabricated discs, as a user runs it: ./run.sh --stop-stage 0, then
    ./run.sh --stage 1 --stop-stage 1 --nj 2 in the same recipe dir. Returns (s5, stage-0 output, stage-1 output)."""
    s5 = make_recipe_dir(tmp_path_factory.mktemp("wsj_recipe"), "wsj")
    discs = ["--wsj0", wsj["wsj0"], "--wsj1", wsj["wsj1"]]
    out0, _ = run_recipe(s5, "--stop-stage", "0", *discs)
    out1, seconds = run_recipe(s5, "--stage", "1", "--stop-stage", "1", "--nj", "2", *discs)
    print(f"run.sh stage 1: {seconds:.1f} s")
    return pathlib.Path(s5), out0, out1


def test_run_sh_stage_0(wsj, wsj_recipe):
    s5, out, _ = wsj_recipe
    assert "Stage 0: data preparation" in out and "Done (stages 0 to 0)" in out
    words = set(open(s5 / "data" / "lang" / "words.txt").read().split()[::2])
    assert {"GOLD", "COMPANY'S", "<SPOKEN_NOISE>", "<UNK>", "<NOISE>"} <= words
    for lm in ["bg", "tg", "tgpr"]:
        assert (s5 / "data" / f"lang_test_{lm}" / "G.fst").stat().st_size > 0
    for name, utts in wsj["sets"].items():
        assert validate_data_dir(str(s5 / "data" / name), no_feats=True) == len(utts)


def test_run_sh_stage_1(wsj, wsj_recipe):
    s5, _, out = wsj_recipe
    assert "Stage 1: MFCC and Fbank features" in out and "Done (stages 1 to 1)" in out
    import kaldiio
    for name in ["train_si284", "train_si84", "test_dev93", "test_eval92"]:
        for suffix, dim in [("", 13), ("_fbank", 40)]:
            d = s5 / "data" / (name + suffix)
            assert validate_data_dir(str(d)) == len(wsj["sets"][name])
            feats = dict(kaldiio.load_scp(str(d / "feats.scp")))
            assert sorted(feats) == wsj["sets"][name]
            for utt, m in feats.items():
                assert m.shape[1] == dim
                assert abs(m.shape[0] - wsj["samples"][utt] / 160) <= 3  # 10 ms frames


def test_arpa_vocabulary_with_spaces_or_tabs(tmp_path):
    """ARPA n-gram lines separated by tabs (SRILM) or by spaces (other writers) give the same vocabulary."""
    import gzip
    from wsj_format_lms import copy_arpa
    body = "\\data\\\nngram 1=3\n\n\\1-grams:\n-1.0{0}</s>\n-99{0}<s>{0}-0.5\n-0.7{0}HELLO{0}-0.2\n\n\\end\\\n"
    vocabs = []
    for sep in ["\t", " ", " \t "]:
        src = tmp_path / f"lm{len(vocabs)}.arpa.gz"
        with gzip.open(src, "wt") as f:
            f.write(body.format(sep))
        vocabs.append(copy_arpa(str(src), str(tmp_path / f"out{len(vocabs)}.arpa.gz")))
    assert vocabs == [["</s>", "<s>", "HELLO"]] * 3
