"""Data-dir validation and repair on small hand-written dirs."""
import os
import subprocess
import sys

import pytest

from steps_py.common import InputError, read_table
from steps_py.data.datadir import fix_data_dir, read_map, read_map_lenient, validate_data_dir, write_data_dir

from conftest import ROOT


def make_dir(d):
    utts = {"spk1-a": "spk1", "spk1-b": "spk1", "spk2-a": "spk2"}
    write_data_dir(str(d), wav_scp={u: f"/x/{u}.wav" for u in utts}, text={u: "HELLO WORLD" for u in utts},
                   utt2spk=utts, spk2gender={"spk1": "m", "spk2": "f"})
    return str(d)


def test_valid_dir_passes(tmp_path):
    d = make_dir(tmp_path / "d")
    assert validate_data_dir(d, no_feats=True) == 3
    assert read_map(os.path.join(d, "spk2utt")) == {"spk1": "spk1-a spk1-b", "spk2": "spk2-a"}


def test_unsorted_file_names_file_and_line(tmp_path):
    d = make_dir(tmp_path / "d")
    lines = open(os.path.join(d, "text")).readlines()
    open(os.path.join(d, "text"), "w").writelines([lines[1], lines[0], lines[2]])
    with pytest.raises(InputError, match=r"text:2: key 'spk1-a' is out of order"):
        validate_data_dir(d, no_feats=True)


def test_missing_utterance_is_named(tmp_path):
    d = make_dir(tmp_path / "d")
    lines = open(os.path.join(d, "wav.scp")).readlines()
    open(os.path.join(d, "wav.scp"), "w").writelines(lines[:2])
    with pytest.raises(InputError, match=r"wav.scp: 1 utterance\(s\) of utt2spk missing \(first: spk2-a\)"):
        validate_data_dir(d, no_feats=True)


def test_required_file_and_bad_gender(tmp_path):
    d = make_dir(tmp_path / "d")
    with pytest.raises(InputError, match="no such file feats.scp"):
        validate_data_dir(d)
    open(os.path.join(d, "spk2gender"), "w").write("spk1 m\nspk2 x\n")
    with pytest.raises(InputError, match=r"spk2gender:2: gender must be m or f"):
        validate_data_dir(d, no_feats=True)


def test_fix_keeps_common_utterances_and_logs_drops(tmp_path, caplog):
    d = make_dir(tmp_path / "d")
    lines = open(os.path.join(d, "text")).readlines()
    open(os.path.join(d, "text"), "w").writelines([lines[2], lines[0]])  # unsorted, spk1-b missing
    assert fix_data_dir(d) == 2
    assert "dropped 1 utterance(s)" in caplog.text
    assert validate_data_dir(d, no_feats=True) == 2
    assert read_map(os.path.join(d, "spk2utt")) == {"spk1": "spk1-a", "spk2": "spk2-a"}
    assert os.path.exists(os.path.join(d, ".backup", "text"))


def test_fix_counts_each_dropped_utterance_once_by_reason(tmp_path):
    """5 utterances dropped for 5 reasons (two of them lack two tables): one count, by reason, that adds up; with
    segments, a segment whose recording is not in wav.scp goes too, and so does a recording left without one."""
    d = tmp_path / "d"
    d.mkdir()
    (d / "wav.scp").write_text("".join(f"{u} /x/{u}.wav\n" for u in ["a", "b", "e"]))
    (d / "text").write_text("".join(f"{u} HI\n" for u in ["a", "c", "d", "e"]))
    (d / "utt2spk").write_text("".join(f"{u} {u}\n" for u in ["a", "b", "c", "f"]))
    r = subprocess.run([sys.executable, "-m", "steps_py.data.fix_data_dir", str(d)], capture_output=True, text=True,
                       cwd=ROOT)
    assert r.returncode == 0 and "Traceback" not in r.stderr
    assert f"{d}: dropped 5 utterance(s) (no entry in text: 1, no entry in utt2spk: 1, no entry in wav.scp: 1, " \
           "no entry in wav.scp or text: 1, no entry in wav.scp or utt2spk: 1)" in r.stderr
    assert f"{d}: 1 utterances, 1 speakers" in r.stderr and validate_data_dir(str(d), no_feats=True) == 1
    s = tmp_path / "s"
    s.mkdir()
    (s / "wav.scp").write_text("rec1 /x/1.wav\nrec3 /x/3.wav\n")
    (s / "segments").write_text("u1 rec1 0 1\nu2 rec2 0 1\nu3 rec3 0 1\n")
    (s / "text").write_text("u1 HI\nu2 HI\n")
    (s / "utt2spk").write_text("u1 u1\nu2 u2\nu3 u3\n")
    assert fix_data_dir(str(s)) == 1
    assert read_map(s / "segments") == {"u1": "rec1 0 1"} and read_map(s / "wav.scp") == {"rec1": "/x/1.wav"}


def test_tables_split_on_any_whitespace(tmp_path):
    """Kaldi's readers: the key ends at the first run of spaces or tabs; trailing blanks and CRLF endings go."""
    d = tmp_path / "d"
    d.mkdir()
    (d / "wav.scp").write_bytes(b"spk1-a\t/x/spk1-a.wav\r\nspk1-b   sox /x/b.wav -t wav - |  \r\nspk2-a \t /x/c.wav\n")
    (d / "text").write_bytes(b"spk1-a\tHELLO  WORLD\t\r\nspk1-b\r\nspk2-a HELLO\n")
    (d / "utt2spk").write_text("spk1-a\tspk1\nspk1-b\tspk1\nspk2-a\tspk2\n")
    (d / "spk2utt").write_text("spk1\tspk1-a spk1-b\nspk2\tspk2-a\n")
    (d / "spk2gender").write_text("spk1\tm\nspk2 \t f \n")
    assert read_map(d / "wav.scp") == {"spk1-a": "/x/spk1-a.wav", "spk1-b": "sox /x/b.wav -t wav - |",
                                       "spk2-a": "/x/c.wav"}
    assert read_map(d / "text", allow_empty_value=True) == {"spk1-a": "HELLO  WORLD", "spk1-b": "", "spk2-a": "HELLO"}
    assert read_map(d / "spk2gender") == {"spk1": "m", "spk2": "f"}
    assert validate_data_dir(str(d), no_feats=True) == 3
    fix_data_dir(str(d))                                  # rewritten the Kaldi way: one space after the key
    assert open(d / "spk2gender").read() == "spk1 m\nspk2 f\n"
    assert validate_data_dir(str(d), no_feats=True) == 3


def test_split_by_utterance_when_fewer_speakers_than_jobs(tmp_path):
    """A one-speaker set (a dev speaker of its own) still splits into 2 jobs: by utterance; by speaker it cannot."""
    from steps_py.data.datadir import split_data
    d = tmp_path / "d"
    utts = {f"spk1-{k}": "spk1" for k in "abcde"}
    write_data_dir(str(d), wav_scp={u: f"/x/{u}.wav" for u in utts}, text={u: "HELLO" for u in utts},
                   utt2spk=utts)
    split = split_data(str(d), 2)
    parts = [list(read_map(os.path.join(split, str(j), "utt2spk"))) for j in (1, 2)]
    assert split.endswith("split2utt") and sorted(parts[0] + parts[1]) == sorted(utts) and all(parts)
    assert read_map(os.path.join(split, "2", "spk2utt")) == {"spk1": " ".join(parts[1])}
    with pytest.raises(InputError, match="cannot split 1 speaker"):
        split_data(str(d), 2, per_utt=False)


def test_non_utf8_byte_names_the_file_and_line(tmp_path):
    """A Latin-1 byte in text at line 600 (past the first block Python's decoder reads): every table reader and the
    command-line steps name the file, the line and the byte in one line, without a traceback."""
    utts = {f"spk1-{k:04d}": "spk1" for k in range(1, 701)}
    d = str(tmp_path / "d")
    write_data_dir(d, wav_scp={u: f"/x/{u}.wav" for u in utts}, text={u: "HELLO WORLD" for u in utts},
                   utt2spk=utts)
    lines = open(os.path.join(d, "text"), "rb").read().splitlines(keepends=True)
    lines[599] = b"spk1-0600 CAF\xc9 OLE\n"
    open(os.path.join(d, "text"), "wb").writelines(lines)
    message = f"{d}/text:600: not UTF-8 (byte 0xc9 at character 14); convert the file with iconv -f <its encoding> " \
              "-t utf-8"
    for reader in (read_map, read_map_lenient, read_table):
        with pytest.raises(InputError) as e:
            reader(os.path.join(d, "text"))
        assert str(e.value) == message
    for step, args in [("validate_data_dir", ["--no-feats", d]), ("fix_data_dir", [d])]:
        r = subprocess.run([sys.executable, "-m", f"steps_py.data.{step}"] + args, capture_output=True, text=True,
                           cwd=ROOT)
        assert r.returncode == 1 and "Traceback" not in r.stderr
        assert r.stderr.splitlines()[-1] == f"ERROR ({step}.py): {message}"
