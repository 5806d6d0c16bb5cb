"""lhotse manifests in and out (local/lhotse_to_kaldi.py, local/kaldi_to_lhotse.py) on real FSDD recordings."""
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT

sys.path.insert(0, os.path.join(ROOT, "local"))

from steps_py.data.audio import extract_segment, read_wav_scp_value  # noqa: E402
from steps_py.data.datadir import read_map, validate_data_dir  # noqa: E402
from steps_py.kaldi.io import write_int_vectors  # noqa: E402

FSDD = os.path.join(ROOT, "..", "shared", "corpora", "fsdd", "recordings")
WORDS = ["ZERO", "ONE", "TWO", "THREE", "FOUR", "FIVE", "SIX", "SEVEN", "EIGHT", "NINE"]
ENV = dict(os.environ, PYTHONPATH=ROOT, KALDI_PY_PROGRESS="0")
FILES = ["0_george_0", "3_george_1", "7_jackson_2", "9_jackson_4", "5_lucas_3"]


def run(script, *args):
    return subprocess.run([sys.executable, os.path.join(ROOT, "local", script), *map(str, args)],
                          capture_output=True, text=True, env=ENV)


@pytest.fixture(scope="module")
def manifests(tmp_path_factory):
    """A RecordingSet, SupervisionSet and CutSet of 5 FSDD recordings of 3 speakers; lucas's supervision is the
    middle of its recording (a segment)."""
    if not os.path.isdir(FSDD):
        pytest.skip(f"no {FSDD}")
    from lhotse import CutSet, Recording, RecordingSet, SupervisionSegment, SupervisionSet
    d = tmp_path_factory.mktemp("lhotse")
    recs = RecordingSet.from_recordings(Recording.from_file(os.path.join(FSDD, f + ".wav")) for f in FILES)
    sups = []
    for r in recs:
        digit, spk, _ = r.id.split("_")
        start, dur = (0.05, round(r.duration - 0.1, 3)) if spk == "lucas" else (0.0, r.duration)
        sups.append(SupervisionSegment(id=r.id, recording_id=r.id, start=start, duration=dur,
                                       text=WORDS[int(digit)].lower(), speaker=spk, gender="male"))
    sups = SupervisionSet.from_segments(sups)
    recs.to_file(d / "recordings.jsonl.gz")
    sups.to_file(d / "supervisions.jsonl.gz")
    CutSet.from_manifests(recordings=recs, supervisions=sups).to_file(d / "cuts.jsonl.gz")
    return d, recs, sups


def test_manifests_become_a_valid_data_dir(manifests, tmp_path):
    d, recs, sups = manifests
    r = run("lhotse_to_kaldi.py", "--cuts", d / "cuts.jsonl.gz", tmp_path / "data")
    assert r.returncode == 0, r.stderr
    data = str(tmp_path / "data")
    assert validate_data_dir(data, no_feats=True) == 5            # every utterance kept
    utt2spk = read_map(os.path.join(data, "utt2spk"))
    assert utt2spk["lucas-5_lucas_3"] == "lucas" and len(utt2spk) == 5   # ids prefixed: they did not start with spk
    assert read_map(os.path.join(data, "text"))["george-3_george_1"] == "three"
    assert read_map(os.path.join(data, "spk2gender")) == {"george": "m", "jackson": "m", "lucas": "m"}
    wav, segments = read_map(os.path.join(data, "wav.scp")), read_map(os.path.join(data, "segments"))
    rec, start, end = segments["lucas-5_lucas_3"].split()
    audio = extract_segment(read_wav_scp_value(wav[rec]), float(start), float(end))
    ref = recs["5_lucas_3"].load_audio()[0] * 32768
    assert audio.rate == 8000                                     # FSDD's rate, kept
    np.testing.assert_allclose(audio.samples[0], ref[400:400 + audio.samples.shape[1]], atol=1e-3)
    assert abs(audio.samples.shape[1] - sups["5_lucas_3"].duration * 8000) <= 1
    # the same from the two manifests, without the prefix
    r = run("lhotse_to_kaldi.py", "--prefix-spk-id", "false", "--recordings", d / "recordings.jsonl.gz",
            "--supervisions", d / "supervisions.jsonl.gz", tmp_path / "data2")
    assert r.returncode == 0, r.stderr
    assert sorted(read_map(tmp_path / "data2" / "utt2spk")) == sorted(FILES)


def test_bad_manifest_is_named(tmp_path):
    (tmp_path / "cuts.jsonl").write_text('{"id": "x", "type": "Nothing"}\n')
    r = run("lhotse_to_kaldi.py", "--cuts", tmp_path / "cuts.jsonl", tmp_path / "data")
    assert r.returncode == 1 and f"cannot read the lhotse manifest(s) {tmp_path / 'cuts.jsonl'}" in r.stderr
    assert "Traceback" not in r.stderr
    r = run("lhotse_to_kaldi.py", "--cuts", tmp_path / "none.jsonl", tmp_path / "data")
    assert r.returncode == 1 and "no such file" in r.stderr


def test_phone_runs():
    from kaldi_to_lhotse import phone_runs
    assert phone_runs([1, 1, 1, 2, 2, 1], {1: "SIL", 2: "AH_S"}, 0.5, 0.01) == [
        ("SIL", 0.5, 0.03), ("AH_S", 0.53, 0.02), ("SIL", 0.55, 0.01)]
    assert phone_runs([], {}, 0.0, 0.01) == []


def test_data_dir_and_alignment_round_trip(manifests, tmp_path):
    """Our data dir and a phone alignment of it out to lhotse, and back: the same utterances, texts and spans."""
    from lhotse import CutSet, SupervisionSet
    d, _, sups = manifests
    assert run("lhotse_to_kaldi.py", "--cuts", d / "cuts.jsonl.gz", tmp_path / "data").returncode == 0
    data = tmp_path / "data"
    ali = tmp_path / "ali"
    ali.mkdir()
    (ali / "phones.txt").write_text("<eps> 0\nSIL 1\nW_B 2\nAH_E 3\n")
    utts = list(read_map(data / "utt2spk"))
    write_int_vectors(str(ali / "phone_ali.1.gz"), {u: [1] * 10 + [2] * 5 + [3] * 7 for u in utts[:4]})
    r = run("kaldi_to_lhotse.py", "--ali-dir", ali, data, tmp_path / "out")
    assert r.returncode == 0, r.stderr
    assert "1 of 5 utterances have no phone alignment" in r.stderr
    out = {s.id: s for s in SupervisionSet.from_file(tmp_path / "out" / "supervisions.jsonl.gz")}
    assert sorted(out) == sorted(utts)
    lucas = out["lucas-5_lucas_3"]
    orig = {s.id: s for s in sups}["5_lucas_3"]
    assert lucas.text == orig.text == "five"
    assert abs(lucas.start - orig.start) < 1e-3 and abs(lucas.duration - orig.duration) < 1e-3
    george = out[utts[0]]
    assert [(a.symbol, a.start, a.duration) for a in george.alignment["phone"]] == [
        ("SIL", george.start, 0.1), ("W_B", george.start + 0.1, 0.05), ("AH_E", george.start + 0.15, 0.07)]
    cuts = CutSet.from_file(tmp_path / "out" / "cuts.jsonl.gz")
    assert len(cuts) == 5 and all(c.sampling_rate == 8000 for c in cuts)


def test_memory_extraction_rides_on_the_cuts(manifests, tmp_path):
    """An extraction's cells and gates come back from the exported cuts with cut.load_custom, frame for frame."""
    from lhotse import CutSet
    from steps_py.memvis.data import ExtractionWriter
    d, _, _ = manifests
    assert run("lhotse_to_kaldi.py", "--cuts", d / "cuts.jsonl.gz", tmp_path / "data").returncode == 0
    utts = list(read_map(tmp_path / "data" / "utt2spk"))[:2]
    rng = np.random.default_rng(0)
    internals = {u: [{q: rng.normal(size=(20 + i, 4)).astype(np.float32) for q in ["r", "z", "n", "h"]}
                     for _ in range(2)] for i, u in enumerate(utts)}
    with ExtractionWriter(str(tmp_path / "ext"), "gru", 2, 4, ["r", "z", "n", "h"]) as w:
        for u in utts:
            w.add(u, internals[u], None, None, rng.normal(size=(len(internals[u][0]["h"]), 3)).astype(np.float32))
    r = run("kaldi_to_lhotse.py", "--extract-dir", tmp_path / "ext", tmp_path / "data", tmp_path / "out")
    assert r.returncode == 0, r.stderr
    cuts = {c.id: c for c in CutSet.from_file(tmp_path / "out" / "cuts.jsonl.gz")}
    assert sorted(cuts) == sorted(read_map(tmp_path / "data" / "utt2spk"))
    for u in utts:
        np.testing.assert_array_equal(cuts[u].load_custom("layer2_h"), internals[u][1]["h"])
        np.testing.assert_array_equal(cuts[u].load_custom("layer1_z"), internals[u][0]["z"])
    assert not cuts[list(set(cuts) - set(utts))[0]].custom
