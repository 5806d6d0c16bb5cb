"""steps_py.jobs: parallel jobs through the runner of cmd.sh, and their failures named by log."""
import os
import sys

import pytest

from steps_py.common import InputError
from steps_py.jobs import module_argv, run_jobs


def test_module_argv():
    assert module_argv("steps_py.x.y", "a", 3, nj=2, dry_run=True, skip=False, none=None, some_name="v") == \
        [sys.executable, "-m", "steps_py.x.y", "--nj", "2", "--dry-run", "--some-name", "v", "a", "3"]


def test_run_jobs_with_run_py(tmp_path):
    """run.py is found in utils/ without being on PATH; every JOB is replaced; done files are counted."""
    argv = [sys.executable, "-c", f"open('{tmp_path}/out.JOB', 'w').write('JOB')"]
    seconds = run_jobs("run.py", 3, str(tmp_path / "log" / "x.JOB.log"), argv, done_pattern=str(tmp_path / "out.JOB"))
    assert seconds >= 0
    assert [open(tmp_path / f"out.{j}").read() for j in (1, 2, 3)] == ["1", "2", "3"]


def test_a_failed_job_is_named_with_its_first_error(tmp_path):
    argv = [sys.executable, "-c", "import sys\nif JOB == 2: sys.exit('ERROR (x) job JOB broke')"]
    with pytest.raises(InputError) as e:
        run_jobs("run.py", 3, str(tmp_path / "y.JOB.log"), argv, what="test jobs")
    message = str(e.value)
    assert message.startswith("1 of 3 test jobs failed") and os.path.join(str(tmp_path), "y.2.log") in message
    assert "ERROR (x) job 2 broke" in message and "y.1.log" not in message
