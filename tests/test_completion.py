"""steps_py.completion: a step's stamp of finished work, stale when an input, a setting or an output changed."""
import os

import pytest

from steps_py import completion
from steps_py.common import InputError


def _completion(tmp_path, settings=None, outputs=("out.txt",)):
    d = tmp_path / "exp"
    return completion.Completion(completion.done_stamp(str(d), "step"), [str(tmp_path / "in.txt"), str(tmp_path / "lang")],
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
    before = completion.input_signature(str(step_inputs / "lang"))
    (step_inputs / "lang" / ".done.prepare_lang").write_text("{}\n")
    assert completion.input_signature(str(step_inputs / "lang")) == before
    assert completion.input_signature(str(step_inputs / "nothing")) is None


def test_skip_if_done_logs_what_it_skips_and_why_it_remakes(step_inputs, caplog):
    import logging
    log = logging.getLogger("test.step")
    with caplog.at_level(logging.INFO, logger="test.step"):
        assert not completion.skip_if_done(_completion(step_inputs), "exp", log)
        (step_inputs / "exp").mkdir()
        (step_inputs / "exp" / "out.txt").write_text("made\n")
        assert not os.path.exists(step_inputs / "exp" / ".done.step")
        _completion(step_inputs).finish()
        assert completion.skip_if_done(_completion(step_inputs), "exp", log)
    assert [r.getMessage().split(":")[0] for r in caplog.records] == ["making exp", "skipped"]
    assert caplog.records[-1].getMessage() == "skipped: exp is up to date"


def test_completion_names_the_inputs_that_came_or_went(step_inputs):
    _run_step(_completion(step_inputs), step_inputs)
    extra = step_inputs / "extra.txt"
    extra.write_text("x\n")
    c = completion.Completion(completion.done_stamp(str(step_inputs / "exp"), "step"), [str(step_inputs / "in.txt"), str(extra)],
                          {"beam": 13.0}, [str(step_inputs / "exp" / "out.txt")])
    assert c.stale_reason() == f"its inputs are other files than before (now also {extra}; no longer " \
                               f"{step_inputs / 'lang'})"


def test_skip_if_done_runs_before_start_while_the_old_stamp_stands(step_inputs):
    """Work that must precede the stamp's removal (a GMM's old models) runs before completion.start()."""
    import logging
    _run_step(_completion(step_inputs), step_inputs)
    stamp_there = []
    c = _completion(step_inputs, {"beam": 15.0})
    assert not completion.skip_if_done(c, "exp", logging.getLogger("test.step"),
                                   before_start=lambda: stamp_there.append(os.path.exists(c.stamp)))
    assert stamp_there == [True] and not os.path.exists(c.stamp)


def test_a_broken_link_in_an_input_dir_is_named(step_inputs):
    os.symlink(step_inputs / "gone.txt", step_inputs / "lang" / "phones" / "broken.int")
    with pytest.raises(InputError, match=r"cannot read .*broken.int, an input of this step"):
        completion.input_signature(str(step_inputs / "lang"))
