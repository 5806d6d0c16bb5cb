"""Preparation of existing Kaldi data dirs (local/kaldi_dir_prep.py, egs/kaldi_dir/s5) on a tiny espeak-ng corpus."""
import collections
import os
import pathlib
import subprocess
import sys

import pytest

from conftest import ROOT, make_recipe_dir, run_recipe

sys.path.insert(0, os.path.join(ROOT, "local"))

from steps_py.data.datadir import read_map, validate_data_dir  # noqa: E402

PREP = os.path.join(ROOT, "local", "kaldi_dir_prep.py")
ENV = dict(os.environ, PYTHONPATH=ROOT, KALDI_PY_PROGRESS="0")

SENTENCES = {  # utt -> (speaker, recording, sentence); recordings are espeak-ng speech resampled to 16 kHz
    "spk1-a1": ("spk1", "a1", "the cat sat on the mat"),
    "spk1-a2": ("spk1", "a2", "a dog ran zorblax home"),     # ZORBLAX: no pronunciation -> <UNK>
    "spk2-a3": ("spk2", "a3", "the sun is hot"),             # left out of text: dropped with a log line
    "spk2-a4": ("spk2", "a4", "my flurbo is red"),           # FLURBO: pronounced by --lexicon
    "spk3-b1": ("spk3", "b1", "the dog sat"),
    "spk3-b2": ("spk3", "b2", "the red cat ran home"),
}


def write(path, lines):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.writelines(line + "\n" for line in lines)


@pytest.fixture(scope="session")
def source(tmp_path_factory):
    """train (one wav.scp pipe, one utterance missing from text) and dev (two segments of one recording)."""
    root = tmp_path_factory.mktemp("kaldi_dirs")
    audio = root / "audio"
    audio.mkdir()
    for utt, (_, rec, sentence) in SENTENCES.items():   # 16 kHz, the rate conf/mfcc.conf and fbank.conf expect
        subprocess.run(["espeak-ng", "-w", str(audio / f"{rec}.22k.wav"), sentence], check=True)
        subprocess.run(["sox", str(audio / f"{rec}.22k.wav"), "-r", "16000", str(audio / f"{rec}.wav")], check=True)
    subprocess.run(["sox", str(audio / "b1.wav"), str(audio / "b2.wav"), str(audio / "dev.wav")], check=True)
    train = [u for u in SENTENCES if u.startswith(("spk1", "spk2"))]
    write(root / "train" / "wav.scp", [f"{u} {audio}/{SENTENCES[u][1]}.wav" if u != "spk1-a2" else
                                       f"{u} sox {audio}/a2.wav -t wav - |" for u in train])
    write(root / "train" / "text", [f"{u} {SENTENCES[u][2]}" for u in train if u != "spk2-a3"])
    write(root / "train" / "utt2spk", [f"{u} {SENTENCES[u][0]}" for u in train])
    dur_b1 = float(subprocess.run(["soxi", "-D", str(audio / "b1.wav")], capture_output=True, text=True,
                                  check=True).stdout)
    write(root / "dev" / "wav.scp", [f"dev1 {audio}/dev.wav"])
    write(root / "dev" / "segments", [f"spk3-b1 dev1 0.00 {dur_b1:.2f}", f"spk3-b2 dev1 {dur_b1:.2f} {2 * dur_b1:.2f}"])
    write(root / "dev" / "text", ["spk3-b1 the dog sat", "spk3-b2 the red cat ran home"])
    write(root / "dev" / "spk2utt", ["spk3 spk3-b1 spk3-b2"])  # no utt2spk: made from spk2utt
    write(root / "dev" / "feats.scp", ["spk3-b1 /nowhere/raw.ark:10"])  # stale features are not copied
    write(root / "extra.lex", ["FLURBO F L ER1 B OW0", "ZORBLAX_NOT_USED Z AO1 R"])
    return root


@pytest.fixture(scope="session")
def prepared(source, tmp_path_factory):
    data = tmp_path_factory.mktemp("kd_prep") / "data"
    r = subprocess.run([sys.executable, PREP, "--train", str(source / "train"), "--dev", str(source / "dev"),
                        "--lexicon", str(source / "extra.lex"), str(data)], capture_output=True, text=True, env=ENV)
    assert r.returncode == 0, r.stderr
    return data, r.stderr


def test_dirs_copied_repaired_and_valid(prepared):
    data, log = prepared
    assert validate_data_dir(str(data / "train"), no_feats=True) == 3
    assert list(read_map(data / "train" / "utt2spk")) == ["spk1-a1", "spk1-a2", "spk2-a4"]
    assert "train: dropping spk2-a3: no entry in text" in log
    assert "train: 1 utterance(s) dropped: no entry in text" in log
    assert "2 utterances kept, 0 dropped" in log and "3 utterances kept, 1 dropped" in log
    assert validate_data_dir(str(data / "dev"), no_feats=True) == 2
    assert read_map(data / "dev" / "utt2spk") == {"spk3-b1": "spk3", "spk3-b2": "spk3"}
    assert list(read_map(data / "dev" / "segments")) == ["spk3-b1", "spk3-b2"]
    assert not (data / "dev" / "feats.scp").exists()
    assert read_map(data / "train" / "wav.scp")["spk1-a2"].endswith("-t wav - |")


def test_tab_separated_dirs_keep_every_utterance(source, prepared, tmp_path):
    """The same dirs with tabs, runs of spaces, trailing blanks and CRLF endings (as real corpora ship them), a
    tab-separated spk2gender and lexicon: the prepared dirs equal those of the space-separated source."""
    tabbed = tmp_path / "tabbed"
    for name in ["train", "dev"]:
        for f in sorted((source / name).iterdir()):
            lines = f.read_text().splitlines()
            out = [line.replace(" ", "\t", 1) + ("\t" if n % 2 else "") for n, line in enumerate(lines)]
            if f.name == "text":
                out = [line.replace(" ", "  ") + "\r" for line in out]
            write(tabbed / name / f.name, out)
    write(tabbed / "train" / "spk2gender", ["spk1\tm", "spk2 \t f"])
    write(tabbed / "extra.lex", ["FLURBO\tF L ER1 B OW0", "ZORBLAX_NOT_USED\tZ AO1 R"])
    data = tmp_path / "data"
    r = subprocess.run([sys.executable, PREP, "--train", str(tabbed / "train"), "--dev", str(tabbed / "dev"),
                        "--lexicon", str(tabbed / "extra.lex"), str(data)], capture_output=True, text=True, env=ENV)
    assert r.returncode == 0, r.stderr
    ref, _ = prepared
    for name, table in [("train", "text"), ("train", "utt2spk"), ("train", "wav.scp"), ("dev", "segments"),
                        ("dev", "text")]:
        assert read_map(data / name / table) == read_map(ref / name / table), (name, table)
    assert read_map(data / "train" / "spk2gender") == {"spk1": "m", "spk2": "f"}
    assert open(data / "local" / "dict" / "lexicon.txt").read() == open(ref / "local" / "dict" / "lexicon.txt").read()


def test_oov_words_become_unk_with_counts(prepared):
    data, log = prepared
    text = read_map(data / "train" / "text")
    assert text["spk1-a2"] == "A DOG RAN <UNK> HOME"
    assert text["spk2-a4"] == "MY FLURBO IS RED"  # pronounced by the extra lexicon
    assert read_map(data / "train" / "text.orig")["spk1-a2"] == "A DOG RAN ZORBLAX HOME"
    assert "train: 1 of 15 words (6.67%) have no pronunciation and became <UNK> (1 distinct); " \
           "most frequent: ZORBLAX 1" in log
    assert "dev: 0 of 8 words (0.00%)" in log
    assert "all sets: 1 words mapped to <UNK> (1 distinct); most frequent: ZORBLAX 1" in log
    assert open(data / "local" / "text_oov_counts.txt").read() == "ZORBLAX 1\n"
    lexicon = collections.defaultdict(list)
    for line in open(data / "local" / "dict" / "lexicon.txt"):
        word, *phones = line.split()
        lexicon[word].append(phones)
    assert lexicon["FLURBO"] == [["F", "L", "ER", "B", "OW"]]
    assert "ZORBLAX" not in lexicon and "<UNK>" in lexicon and "CAT" in lexicon
    # dev words not in the training text are out of the vocabulary (RED is in it, through train)
    assert read_map(data / "dev" / "text")["spk3-b2"] == "THE RED CAT RAN HOME"


def test_lm_text_is_training_transcripts(prepared):
    data, _ = prepared
    assert open(data / "local" / "lm_text.txt").read().splitlines() == [
        "THE CAT SAT ON THE MAT", "A DOG RAN ZORBLAX HOME", "MY FLURBO IS RED"]


def test_wav_entries_readable(prepared):
    data, _ = prepared
    from steps_py.data import audio as wav
    for utt, spec in read_map(data / "train" / "wav.scp").items():
        audio = wav.read_wav_scp_value(spec)
        assert audio.rate == 16000 and audio.samples.shape[1] > 0.5 * 16000, utt


def test_map_oov_words():
    from kaldi_dir_prep import map_oov_words
    mapped, oovs = map_oov_words({"u1": "A B C", "u2": "C D D", "u3": ""}, {"A", "C"}, "<unk>")
    assert mapped == {"u1": "A <unk> C", "u2": "C <unk> <unk>", "u3": ""}
    assert oovs == {"B": 1, "D": 2}


def test_bad_input_is_reported(tmp_path, source):
    (tmp_path / "empty").mkdir()
    r = subprocess.run([sys.executable, PREP, "--train", str(tmp_path / "empty"), str(tmp_path / "data")],
                       capture_output=True, text=True, env=ENV)
    assert r.returncode == 1 and "no such file wav.scp" in r.stderr and "Traceback" not in r.stderr
    r = subprocess.run([sys.executable, PREP, "--train", str(source / "train"), "--lexicon", str(tmp_path / "x"),
                        str(tmp_path / "data")], capture_output=True, text=True, env=ENV)
    assert r.returncode == 1 and "--lexicon" in r.stderr and "no such file" in r.stderr


def test_each_dropped_utterance_is_named_once_and_counted(tmp_path):
    """Train: 5 of 8 utterances dropped for 5 reasons (one table or two lacking each); dev (segments): one whose
    recording is not in wav.scp. Each is named once with its reasons; the per-reason counts, the repair's count and
    the summary agree."""
    train, dev = tmp_path / "train", tmp_path / "dev"
    write(train / "wav.scp", [f"{u} /w/{u}.wav" for u in ["spk1-a", "spk1-b", "spk1-d", "spk2-a", "spk3-a"]])
    write(train / "text", [f"{u} HELLO" for u in ["spk1-a", "spk1-c", "spk1-d", "spk2-a", "spk2-b", "spk3-a"]])
    write(train / "utt2spk", [f"{u} {u[:4]}" for u in ["spk1-a", "spk1-b", "spk1-c", "spk1-e", "spk2-a", "spk3-a"]])
    write(dev / "wav.scp", ["rec1 /w/rec1.wav"])
    write(dev / "segments", ["spk4-a rec1 0.0 1.0", "spk4-b rec2 0.0 1.0"])
    write(dev / "text", ["spk4-a HELLO", "spk4-b HELLO"])
    write(dev / "utt2spk", ["spk4-a spk4", "spk4-b spk4"])
    r = subprocess.run([sys.executable, PREP, "--train", str(train), "--dev", str(dev), str(tmp_path / "data")],
                       capture_output=True, text=True, env=ENV)
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    reasons = {"spk1-b": "no entry in text", "spk1-c": "no entry in wav.scp", "spk1-d": "no entry in utt2spk",
               "spk1-e": "no entry in wav.scp or text", "spk2-b": "no entry in wav.scp or utt2spk"}
    named = [line.split("train: dropping ", 1)[1] for line in r.stderr.splitlines() if "train: dropping " in line]
    assert sorted(named) == sorted(f"{u}: {why}" for u, why in reasons.items())
    for why in reasons.values():
        assert f"train: 1 utterance(s) dropped: {why}\n" in r.stderr
    assert "train.tmp: dropped 5 utterance(s) (no entry in text: 1, no entry in utt2spk: 1, no entry in wav.scp: 1, " \
           "no entry in wav.scp or text: 1, no entry in wav.scp or utt2spk: 1)" in r.stderr
    assert f"train: {train} -> {tmp_path}/data/train: 3 utterances kept, 5 dropped" in r.stderr
    assert "dev: dropping spk4-b: its recording is not in wav.scp" in r.stderr
    assert f"dev: {dev} -> {tmp_path}/data/dev: 1 utterances kept, 1 dropped" in r.stderr
    assert list(read_map(tmp_path / "data" / "train" / "utt2spk")) == ["spk1-a", "spk2-a", "spk3-a"]
    assert list(read_map(tmp_path / "data" / "dev" / "segments")) == ["spk4-a"]


@pytest.fixture(scope="session")
def kaldi_dir_recipe(source, tmp_path_factory):
    """egs/kaldi_dir/s5 on the source dirs, as a user runs it: ./run.sh --stop-stage 0 (without --lexicon), then
    ./run.sh --stage 1 --stop-stage 1 --nj 2 in the same recipe dir. Returns (s5, stage-0 output, stage-1 output)."""
    s5 = make_recipe_dir(tmp_path_factory.mktemp("kaldi_dir_recipe"), "kaldi_dir")
    dirs = ["--train", str(source / "train"), "--dev", str(source / "dev")]
    out0, _ = run_recipe(s5, "--stop-stage", "0", *dirs)
    out1, seconds = run_recipe(s5, "--stage", "1", "--stop-stage", "1", "--nj", "2", *dirs)
    print(f"run.sh stage 1: {seconds:.1f} s")
    return pathlib.Path(s5), out0, out1


def test_run_sh_stage_0(kaldi_dir_recipe):
    s5, out, _ = kaldi_dir_recipe
    assert "Stage 0: data dirs, dictionary, lang, language model" in out and "Done (stages 0 to 0)" in out
    words = set(open(s5 / "data" / "lang" / "words.txt").read().split()[::2])
    assert {"CAT", "HOME", "<UNK>"} <= words and "ZORBLAX" not in words and "FLURBO" not in words
    for lm in ["tg", "tgpr"]:
        assert (s5 / "data" / f"lang_test_{lm}" / "G.fst").stat().st_size > 0
    assert read_map(s5 / "data" / "train" / "text")["spk2-a4"] == "MY <UNK> IS RED"  # no --lexicon this time


def test_run_sh_without_train_dir(tmp_path):
    s5 = make_recipe_dir(tmp_path, "kaldi_dir")
    r = subprocess.run(["./run.sh", "--stop-stage", "0"], cwd=s5, capture_output=True, text=True)
    assert r.returncode != 0 and "no training data dir" in r.stderr


def test_run_sh_stage_1(kaldi_dir_recipe):
    s5, _, out = kaldi_dir_recipe
    assert "Stage 1: MFCC and Fbank features, CMVN" in out and "Done (stages 1 to 1)" in out
    import kaldiio
    for name, n in [("train", 3), ("dev", 2)]:
        for suffix, dim in [("", 13), ("_fbank", 40)]:
            d = s5 / "data" / (name + suffix)
            assert validate_data_dir(str(d)) == n
            assert all(m.shape[1] == dim for _, m in kaldiio.load_scp(str(d / "feats.scp")).items())
