"""steps_py.common: the atomic writers and run_main on a full disk (ENOSPC), simulated by tests/full_disk.py."""
import errno
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


# ------------------------------------------------------------------------------------------ finished work
def _completion(tmp_path, settings=None, outputs=("out.txt",)):
    d = tmp_path / "exp"
    return common.Completion(common.done_stamp(str(d), "step"), [str(tmp_path / "in.txt"), str(tmp_path / "lang")],
                             settings or {"beam": 13.0}, [str(d / o) for o in outputs])


def _run_step(c, tmp_path):
    """What a step does between its check and its stamp: writes its output."""
    c.start()
    (tmp_path / "exp").mkdir(exist_ok=True)
    (tmp_path / "exp" / "out.txt").write_text("made\n")
    c.finish()


@pytest.fixture
def step_inputs(tmp_path):
    (tmp_path / "in.txt").write_text("input\n")
    (tmp_path / "lang" / "phones").mkdir(parents=True)
    (tmp_path / "lang" / "phones" / "sets.int").write_text("1 2\n")
    return tmp_path


def test_completion_is_stale_until_the_step_finished_then_up_to_date(step_inputs):
    c = _completion(step_inputs)
    assert c.stale_reason().startswith("no record of a finished run") and not c.finished_before
    _run_step(c, step_inputs)
    again = _completion(step_inputs)
    assert again.stale_reason() is None and again.finished_before


def test_completion_stale_when_an_input_a_setting_or_an_output_changed(step_inputs):
    _run_step(_completion(step_inputs), step_inputs)
    os.utime(step_inputs / "in.txt", ns=(0, os.stat(step_inputs / "in.txt").st_mtime_ns + 1000))   # touch
    assert _completion(step_inputs).stale_reason() == f"{step_inputs / 'in.txt'} changed since it was made"
    _run_step(_completion(step_inputs), step_inputs)
    (step_inputs / "lang" / "phones" / "extra.int").write_text("3\n")   # a file added below an input dir
    assert _completion(step_inputs).stale_reason() == f"{step_inputs / 'lang'} changed since it was made"
    _run_step(_completion(step_inputs), step_inputs)
    assert _completion(step_inputs, {"beam": 15.0}).stale_reason() == "settings changed: beam 13.0 -> 15.0"
    (step_inputs / "exp" / "out.txt").unlink()
    assert _completion(step_inputs).stale_reason() == f"{step_inputs / 'exp' / 'out.txt'} is missing"


def test_completion_a_step_killed_after_its_start_does_not_look_finished(step_inputs):
    _run_step(_completion(step_inputs), step_inputs)
    c = _completion(step_inputs, {"beam": 15.0})
    assert c.stale_reason().startswith("settings changed")
    c.start()   # killed from here on: the old stamp is gone although the old output is still there
    assert (step_inputs / "exp" / "out.txt").exists()
    assert _completion(step_inputs).stale_reason().startswith("no record of a finished run")


def test_completion_an_input_changed_while_the_step_ran_makes_it_stale(step_inputs):
    c = _completion(step_inputs)
    c.start()
    (step_inputs / "in.txt").write_text("input changed while the step ran\n")
    (step_inputs / "exp").mkdir()
    (step_inputs / "exp" / "out.txt").write_text("made from the old input\n")
    c.finish()
    assert _completion(step_inputs).stale_reason() == f"{step_inputs / 'in.txt'} changed since it was made"


def test_completion_stamps_are_not_part_of_a_directory_input(step_inputs):
    before = common.input_signature(str(step_inputs / "lang"))
    (step_inputs / "lang" / ".done.prepare_lang").write_text("{}\n")
    assert common.input_signature(str(step_inputs / "lang")) == before
    assert common.input_signature(str(step_inputs / "nothing")) is None


def test_skip_if_done_logs_what_it_skips_and_why_it_remakes(step_inputs, caplog):
    import logging
    log = logging.getLogger("test.step")
    with caplog.at_level(logging.INFO, logger="test.step"):
        assert not common.skip_if_done(_completion(step_inputs), "exp", log)
        (step_inputs / "exp").mkdir()
        (step_inputs / "exp" / "out.txt").write_text("made\n")
        assert not os.path.exists(step_inputs / "exp" / ".done.step")
        _completion(step_inputs).finish()
        assert common.skip_if_done(_completion(step_inputs), "exp", log)
    assert [r.getMessage().split(":")[0] for r in caplog.records] == ["making exp", "skipped"]
    assert caplog.records[-1].getMessage() == "skipped: exp is up to date"


def test_completion_names_the_inputs_that_came_or_went(step_inputs):
    _run_step(_completion(step_inputs), step_inputs)
    extra = step_inputs / "extra.txt"
    extra.write_text("x\n")
    c = common.Completion(common.done_stamp(str(step_inputs / "exp"), "step"), [str(step_inputs / "in.txt"), str(extra)],
                          {"beam": 13.0}, [str(step_inputs / "exp" / "out.txt")])
    assert c.stale_reason() == f"its inputs are other files than before (now also {extra}; no longer " \
                               f"{step_inputs / 'lang'})"


def test_skip_if_done_runs_before_start_while_the_old_stamp_stands(step_inputs):
    """Work that must precede the stamp's removal (a GMM's old models) runs before completion.start()."""
    import logging
    _run_step(_completion(step_inputs), step_inputs)
    stamp_there = []
    c = _completion(step_inputs, {"beam": 15.0})
    assert not common.skip_if_done(c, "exp", logging.getLogger("test.step"),
                                   before_start=lambda: stamp_there.append(os.path.exists(c.stamp)))
    assert stamp_there == [True] and not os.path.exists(c.stamp)


def test_a_broken_link_in_an_input_dir_is_named(step_inputs):
    os.symlink(step_inputs / "gone.txt", step_inputs / "lang" / "phones" / "broken.int")
    with pytest.raises(common.InputError, match=r"cannot read .*broken.int, an input of this step"):
        common.input_signature(str(step_inputs / "lang"))
