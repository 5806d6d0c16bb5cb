"""FSDD preparation (local/fsdd_prep.py) on the real recordings' names and on a small fake tree."""
import os
import subprocess
import sys

from conftest import ROOT
from steps_py.data.datadir import read_map

PREP = os.path.join(ROOT, "local", "fsdd_prep.py")
ENV = dict(os.environ, PYTHONPATH=ROOT)


def test_speaker_disjoint_tab_separated_sets(tmp_path):
    rec = tmp_path / "recordings"
    rec.mkdir()
    for spk in ["ann", "bob", "cy"]:
        for digit in range(10):
            for idx in range(3):
                (rec / f"{digit}_{spk}_{idx}.wav").write_bytes(b"")
    (rec / "README.txt").write_text("not audio")
    r = subprocess.run([sys.executable, PREP, "--per-speaker", "2", "--dev-speakers", "bob", "--test-speakers", "cy",
                        str(rec), str(tmp_path / "src")], capture_output=True, text=True, env=ENV)
    assert r.returncode == 0, r.stderr
    assert "README.txt: not a {digit}_{speaker}_{index}.wav name; skipped" in r.stderr and "(1 files skipped)" in r.stderr
    sets = {s: read_map(tmp_path / "src" / s / "utt2spk") for s in ["train", "dev", "test"]}
    assert {s: set(v.values()) for s, v in sets.items()} == {"train": {"ann"}, "dev": {"bob"}, "test": {"cy"}}
    assert all(len(v) == 20 for v in sets.values())                     # 10 digits x 2 recordings
    assert read_map(tmp_path / "src" / "dev" / "text")["bob_9_01"] == "NINE"
    assert open(tmp_path / "src" / "dev" / "wav.scp").readline() == f"bob_0_00\t{rec / '0_bob_0.wav'}\n"
    r = subprocess.run([sys.executable, PREP, "--dev-speakers", "zed", str(rec), str(tmp_path / "x")],
                       capture_output=True, text=True, env=ENV)
    assert r.returncode == 1 and "speaker zed has no recordings" in r.stderr and "Traceback" not in r.stderr
