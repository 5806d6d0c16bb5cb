"""steps_py.common: the atomic writers and run_main on a full disk (ENOSPC), simulated by tests/full_disk.py."""
import errno
import json
import os
import subprocess
import sys

import pytest

from steps_py import common
from steps_py.common import NoSpaceError, atomic_path, run_main, write_lines

from conftest import ROOT
from full_disk import full_disk_open

NO_SPACE = os.strerror(errno.ENOSPC)


def test_atomic_open_on_a_full_disk_names_the_file_and_removes_the_temp_file(tmp_path, monkeypatch):
    path = tmp_path / "text"
    path.write_text("old content\n")
    monkeypatch.setattr(common, "open", full_disk_open(room=100), raising=False)
    with pytest.raises(NoSpaceError) as e:
        write_lines(str(path), [f"utt{k} HELLO WORLD" for k in range(10000)])
    assert str(e.value) == f"cannot write {path}: {NO_SPACE}"
    assert e.value.__cause__ is None and e.value.__suppress_context__   # no chained tracebacks
    assert os.listdir(tmp_path) == ["text"] and path.read_text() == "old content\n"


def test_atomic_path_on_a_full_disk_names_the_file_and_removes_the_temp_file(tmp_path):
    path = tmp_path / "feats.scp"
    with pytest.raises(NoSpaceError) as e:
        with atomic_path(str(path)) as tmp, open(tmp, "w") as f:
            f.write("utt1 /x.ark:10\n")
            f.flush()
            raise OSError(errno.ENOSPC, NO_SPACE)
    assert str(e.value) == f"cannot write {path}: {NO_SPACE}"
    assert os.listdir(tmp_path) == []


def test_a_full_disk_met_by_other_work_in_the_block_is_not_blamed_on_the_file(tmp_path, monkeypatch):
    """Only the writes to the atomic file name it: another file opened and written in the block keeps its own
    error (named by run_main when it names a file), and the atomic file is left as it was."""
    path, other = tmp_path / "a.json", tmp_path / "b.ark"
    with pytest.raises(OSError) as e:
        with common.atomic_open(str(path)) as f:
            f.write("{}")
            raise OSError(errno.ENOSPC, NO_SPACE)          # e.g. a full disk met by np.save of another file
    assert not isinstance(e.value, NoSpaceError) and not path.exists()
    with pytest.raises(NoSpaceError) as e:
        with common.atomic_path(str(path)) as tmp, open(tmp, "w"):
            raise OSError(errno.ENOSPC, NO_SPACE, str(other))   # open() of another file
    assert str(e.value) == f"cannot write {other}: {NO_SPACE}"
    monkeypatch.setattr(common, "open", full_disk_open(room=10), raising=False)
    with pytest.raises(NoSpaceError) as e:                       # the atomic file's own writes name it
        with common.atomic_open(str(path)) as f:
            f.write("x" * 100000)
    assert str(e.value) == f"cannot write {path}: {NO_SPACE}" and os.listdir(tmp_path) == []


def test_run_main_prints_one_line_for_a_full_disk(monkeypatch, capsys):
    """A full disk outside the atomic writers: the file when the error names it; other OSErrors are not hidden."""
    monkeypatch.setattr(sys, "argv", ["step.py"])
    for error, message in [(OSError(errno.ENOSPC, NO_SPACE, "/x/G.fst"), f"cannot write /x/G.fst: {NO_SPACE}"),
                           (OSError(errno.ENOSPC, NO_SPACE),
                            f"{NO_SPACE} (the file being written is not known; see the log above)")]:
        with pytest.raises(SystemExit) as e:
            run_main(lambda: raise_(error))
        assert e.value.code == 1 and capsys.readouterr().err == f"ERROR (step.py): {message}\n"
    with pytest.raises(PermissionError):
        run_main(lambda: raise_(PermissionError(errno.EACCES, "Permission denied", "/x")))


def raise_(error):
    raise error


def test_fix_data_dir_on_a_full_disk(tmp_path):
    """The command line on a real data dir: one line naming the file, exit status 1, no traceback, no temp files
    left, the tables as they were."""
    d = tmp_path / "d"
    d.mkdir()
    tables = {"wav.scp": "u1 /x/1.wav\nu2 /x/2.wav\n", "text": "u2 HI\nu1 HELLO\n", "utt2spk": "u1 u1\nu2 u2\n"}
    for name, content in tables.items():
        (d / name).write_text(content)
    driver = ("import runpy, sys; sys.path.insert(0, sys.argv[1]); import full_disk, steps_py.common as c; "
              "c.open = full_disk.full_disk_open(room=4); sys.argv = ['fix_data_dir.py'] + sys.argv[2:]; "
              "runpy.run_module('steps_py.data.fix_data_dir', run_name='__main__')")
    r = subprocess.run([sys.executable, "-c", driver, os.path.join(ROOT, "tests"), str(d)], capture_output=True,
                       text=True, cwd=ROOT)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert r.stderr == f"ERROR (fix_data_dir.py): cannot write {d}/wav.scp: {NO_SPACE}\n"
    assert sorted(os.listdir(d)) == [".backup", "text", "utt2spk", "wav.scp"]
    assert {name: (d / name).read_text() for name in tables} == tables


def test_write_json_keeps_the_time_stamp_of_the_same_content(tmp_path):
    """keep_same: the same JSON leaves the file's signature as it was (what was made from it stays up to date);
    other JSON, or no keep_same, gives it a new one."""
    from steps_py.common import write_json
    from steps_py.completion import input_signature
    path = str(tmp_path / "wer.json")
    write_json(path, {"dev": [15.6, 14.8]}, keep_same=True)     # no file yet: written
    assert json.load(open(path)) == {"dev": [15.6, 14.8]}
    write_json(path, {"dev": [15.6, 14.8]})
    os.utime(path, ns=(10**18, 10**18))
    before = input_signature(path)
    write_json(path, {"dev": [15.6, 14.8]}, keep_same=True)
    assert input_signature(path) == before
    write_json(path, {"dev": [15.6, 14.9]}, keep_same=True)
    assert input_signature(path) != before and json.load(open(path)) == {"dev": [15.6, 14.9]}
    os.utime(path, ns=(10**18, 10**18))
    write_json(path, {"dev": [15.6, 14.9]})
    assert input_signature(path) != before
