#!/usr/bin/env python3
"""Run a command as a Slurm job array with the interface of run.py (Kaldi's slurm.pl).

Usage: slurm.py [--mem M] [--num-threads T] [--gpu G] [--time HH:MM:SS] [--partition P] [--max-jobs-run N]
                [JOB=1:N] LOGFILE COMMAND...

Submits one array job through `sbatch --wait` and returns when every task has finished; each task writes the
LOGFILE with JOB replaced by its index, with run.py's header and trailer lines. Exits 1 if any task failed.
Each task computes on --num-threads threads (default 1; the same thread variables as run.py). Extra sbatch options
can be given in the environment variable SLURM_EXTRA_OPTS.
"""
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from run import command_line, thread_env  # noqa: E402


def main(argv):
    opts = {"mem": None, "num_threads": None, "gpu": None, "time": None, "partition": None, "max_jobs_run": None}
    while argv and argv[0].startswith("--"):
        name = argv[0][2:].replace("-", "_")
        if name not in opts or len(argv) < 2:
            sys.exit(f"slurm.py: bad option {argv[0]}")
        opts[name], argv = argv[1], argv[2:]
    first = last = 1
    array = False
    if argv and argv[0].startswith("JOB="):
        a, _, b = argv[0][4:].partition(":")
        first, last, array = int(a), int(b or a), True
        argv = argv[1:]
    if len(argv) < 2:
        sys.exit(__doc__)
    logfile, cmd = argv[0], command_line(argv[1:])
    if array:
        cmd, logfile = cmd.replace("JOB", "$SLURM_ARRAY_TASK_ID"), logfile.replace("JOB", "$SLURM_ARRAY_TASK_ID")
    logdir = os.path.dirname(logfile.replace("$SLURM_ARRAY_TASK_ID", "1")) or "."
    os.makedirs(logdir, exist_ok=True)
    threads = " ".join(f"{k}={v}" for k, v in thread_env(opts["num_threads"]).items())
    script = f"""#!/bin/bash
cd {os.getcwd()}
export {threads}
log="{logfile}"
{{ echo "# {cmd.replace('"', '')}"; echo "# Started at $(date) on $(hostname)"; echo "#"; }} > "$log"
t0=$(date +%s)
( set -o pipefail; {cmd} ) >> "$log" 2>&1
rc=$?
echo "# Ended (code $rc) at $(date), elapsed time $(( $(date +%s) - t0 )) seconds" >> "$log"
exit $rc
"""
    with tempfile.NamedTemporaryFile("w", dir=logdir, prefix="slurm.", suffix=".sh", delete=False) as f:
        f.write(script)
    sb = ["sbatch", "--wait", "--parsable", "--output=/dev/null", "--export=ALL"]
    if array:
        sb.append(f"--array={first}-{last}" + (f"%{opts['max_jobs_run']}" if opts["max_jobs_run"] else ""))
    if opts["mem"]:
        sb.append(f"--mem={opts['mem']}")
    if opts["num_threads"]:
        sb.append(f"--cpus-per-task={opts['num_threads']}")
    if opts["gpu"] and opts["gpu"] != "0":
        sb.append(f"--gres=gpu:{opts['gpu']}")
    if opts["time"]:
        sb.append(f"--time={opts['time']}")
    if opts["partition"]:
        sb.append(f"--partition={opts['partition']}")
    sb += os.environ.get("SLURM_EXTRA_OPTS", "").split() + [f.name]
    try:
        rc = subprocess.call(sb)
    except FileNotFoundError:
        sys.exit("slurm.py: sbatch not found; use run.py in cmd.sh on a machine without Slurm")
    os.unlink(f.name)
    if rc != 0:
        print(f"slurm.py: job array failed (sbatch exit {rc}), logs: {argv[0]}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
