"""Parallel jobs through the recipe's job runner, as Kaldi's ``$cmd JOB=1:N <log> <command>``.

``cmd`` is what cmd.sh exports as $train_cmd / $decode_cmd: utils/run.py (run.pl: local processes) or utils/slurm.py
(slurm.pl), with its options (``slurm.py --mem 4G``). Every ``JOB`` in the log pattern and the command becomes the
job's index. The runners write ``# Ended (code N)`` at the end of each job's log.
"""
import os
import re
import shlex
import shutil
import subprocess
import sys
import time

from steps_py.common import InputError

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
UTILS = os.path.join(REPO, "utils")


def module_argv(module, *positional, **options):
    """``python -m <module> --name value ... positional...``: options with value None or False are left out,
    True gives a bare ``--name``; underscores in names become dashes."""
    argv = [sys.executable, "-m", module]
    for name, value in options.items():
        if value is None or value is False:
            continue
        argv += [f"--{name.replace('_', '-')}"] + ([] if value is True else [str(value)])
    return argv + [str(p) for p in positional]


def first_error(log_path):
    """The first ERROR or Traceback line of a job log (else its last line), to quote in a failure message."""
    try:
        lines = open(log_path, errors="replace").read().splitlines()
    except OSError:
        return "(no log)"
    for line in lines:
        if line.startswith("ERROR") or "Traceback" in line:
            return line.strip()
    body = [line for line in lines if not line.startswith("#")]
    return body[-1].strip() if body else "(empty log)"


def run_jobs(cmd, nj, log_pattern, argv, what="jobs", done_pattern=None):
    """Runs ``<cmd> JOB=1:nj <log_pattern> <argv>`` and waits; returns the seconds it took.

    The jobs see this repository on PYTHONPATH and utils/ on PATH (a bare ``run.py`` is found there).
    ``done_pattern``: a path with JOB that each job creates when it finishes; the number of such files is printed
    as the jobs finish. Raises InputError naming the failed jobs' logs and quoting the first error of one of them.
    """
    words = shlex.split(cmd)
    if shutil.which(words[0]) is None and os.path.exists(os.path.join(UTILS, words[0])):
        words[0] = os.path.join(UTILS, words[0])
    env = dict(os.environ)
    env["PYTHONPATH"] = REPO + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["PATH"] = UTILS + os.pathsep + env.get("PATH", "")
    t0, last_reported = time.time(), -1
    proc = subprocess.Popen(words + [f"JOB=1:{nj}", log_pattern] + [str(a) for a in argv], env=env)
    while True:
        try:
            proc.wait(timeout=0.5)
            finished = True
        except subprocess.TimeoutExpired:
            finished = False
        if done_pattern:
            done = sum(os.path.exists(done_pattern.replace("JOB", str(j))) for j in range(1, nj + 1))
            if done != last_reported and (done or time.time() - t0 > 2):
                print(f"{done}/{nj} {what} finished ({time.time() - t0:.0f} s)", file=sys.stderr)
                last_reported = done
        if finished:
            break
    if proc.returncode != 0:
        logs = [log_pattern.replace("JOB", str(j)) for j in range(1, nj + 1)]
        failed = [p for p in logs if not re.search(r"# Ended \(code 0\)",
                                                   open(p, errors="replace").read() if os.path.exists(p) else "")]
        failed = failed or logs
        raise InputError(f"{len(failed)} of {nj} {what} failed (exit status {proc.returncode} of {cmd!r}); see "
                         f"{', '.join(failed[:3])}{' ...' if len(failed) > 3 else ''}; first error in {failed[0]}: "
                         f"{first_error(failed[0])}")
    return time.time() - t0
