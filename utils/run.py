#!/usr/bin/env python3
"""Run a command locally as N parallel jobs, like Kaldi's run.pl.

Usage: run.py [--max-jobs-run N] [--mem M] [--num-threads T] [JOB=1:N] LOGFILE COMMAND...

Every "JOB" in LOGFILE and COMMAND is replaced by the job index. Each job's stdout and stderr go to its log file,
which also records the command line, the start and end time and the exit status (as run.pl does). Exits 1 if any
job failed, naming the failed jobs and their logs. --mem is accepted for compatibility with the cluster runners and
ignored here. Each job computes on --num-threads threads (default 1, as Kaldi's jobs): the thread counts of
OpenMP, OpenBLAS, MKL and numba are set to it, so that N jobs on N cores do not each start a pool of every core
(on 2 busy cores a 2-thread OpenBLAS product ran 70-250 times slower than a 1-thread one).
"""
import os
import re
import shlex
import subprocess
import sys
import time


def parse(argv):
    """Returns (options dict, first job, last job, log file, command words)."""
    opts = {"max_jobs_run": os.cpu_count() or 1, "mem": None, "num_threads": None}
    while argv and argv[0].startswith("--"):
        if len(argv) < 2:
            sys.exit(f"run.py: option {argv[0]} needs a value")
        name = argv[0][2:].replace("-", "_")
        if name not in opts:
            sys.exit(f"run.py: unknown option {argv[0]}")
        opts[name] = argv[1]
        argv = argv[2:]
    first = last = None
    if argv and re.fullmatch(r"[A-Za-z]+=\d+(:\d+)?", argv[0]):
        var, rng = argv[0].split("=")
        if var != "JOB":
            sys.exit(f"run.py: only JOB=a:b ranges are supported, got {argv[0]}")
        a, _, b = rng.partition(":")
        first, last = int(a), int(b or a)
        argv = argv[1:]
    if len(argv) < 2:
        sys.exit(__doc__)
    return opts, first, last, argv[0], argv[1:]


THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")


def thread_env(num_threads):
    """The environment variables that give a job ``num_threads`` compute threads (None: 1)."""
    n = str(int(num_threads or 1))
    return {v: n for v in THREAD_VARIABLES}


def command_line(words):
    # A single word is taken as a shell command line, as run.pl does; several words are quoted where needed.
    return words[0] if len(words) == 1 else " ".join(w if re.fullmatch(r"[\w./:=,+@%-]+", w) else shlex.quote(w)
                                                     for w in words)


def main(argv):
    opts, first, last, logfile, words = parse(argv)
    jobs = [None] if first is None else list(range(first, last + 1))
    env = dict(os.environ, **thread_env(opts["num_threads"]))
    cmd = command_line(words)
    pending, running, failed = list(jobs), {}, []
    max_run = max(1, int(opts["max_jobs_run"]))
    while pending or running:
        while pending and len(running) < max_run:
            job = pending.pop(0)
            this_cmd = cmd if job is None else cmd.replace("JOB", str(job))
            this_log = logfile if job is None else logfile.replace("JOB", str(job))
            os.makedirs(os.path.dirname(this_log) or ".", exist_ok=True)
            f = open(this_log, "w")
            f.write(f"# {this_cmd}\n# Started at {time.ctime()}\n#\n")
            f.flush()
            p = subprocess.Popen(["bash", "-c", "set -o pipefail; " + this_cmd], stdout=f, stderr=subprocess.STDOUT,
                                 env=env)
            running[p] = (job, this_log, f, time.time())
        done = [p for p in running if p.poll() is not None]
        if not done:
            time.sleep(0.05)
        for p in done:
            job, this_log, f, t0 = running.pop(p)
            f.write(f"# Accounting: time={time.time() - t0:.0f} threads={env['OMP_NUM_THREADS']}\n"
                    f"# Ended (code {p.returncode}) at {time.ctime()}, elapsed time {time.time() - t0:.0f} seconds\n")
            f.close()
            if p.returncode != 0:
                failed.append((job, this_log))
    if failed:
        if first is None:
            print(f"run.py: job failed, log is in {failed[0][1]}", file=sys.stderr)
        else:
            print(f"run.py: {len(failed)} / {len(jobs)} failed, log is in "
                  f"{', '.join(log for _, log in failed[:5])}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
