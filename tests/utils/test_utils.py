"""The job runner (run.py, Kaldi's run.pl), parse_options.sh and check_run_options.sh."""
import os
import subprocess
import sys

import pytest

from conftest import ROOT, make_recipe_dir

RUN = os.path.join(ROOT, "utils", "run.py")


def test_run_py_runs_jobs_and_writes_logs(tmp_path):
    out = tmp_path / "out"
    r = subprocess.run([sys.executable, RUN, "JOB=1:3", str(tmp_path / "log" / "x.JOB.log"),
                        f"echo job JOB > {out}.JOB"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    for j in (1, 2, 3):
        assert open(f"{out}.{j}").read() == f"job {j}\n"
        log = open(tmp_path / "log" / f"x.{j}.log").read()
        assert log.startswith(f"# echo job {j}") and "Ended (code 0)" in log


def test_run_py_reports_failed_jobs(tmp_path):
    r = subprocess.run([sys.executable, RUN, "JOB=1:2", str(tmp_path / "f.JOB.log"), "test JOB -eq 1"],
                       capture_output=True, text=True)
    assert r.returncode == 1
    assert "1 / 2 failed" in r.stderr and "f.2.log" in r.stderr
    assert "Ended (code 1)" in open(tmp_path / "f.2.log").read()


def test_run_py_jobs_compute_on_one_thread_unless_told(tmp_path):
    """Kaldi's jobs are single-threaded: N jobs on N cores must not each start a BLAS pool of every core."""
    probe = (f"{sys.executable} -c 'import numpy, threadpoolctl; "
             "print(sorted({p[\"num_threads\"] for p in threadpoolctl.threadpool_info()}))'")
    many = min(2, os.cpu_count())            # OpenBLAS caps its pool at the cores
    for opts, want, outer in (([], 1, "2"), (["--num-threads", str(many)], many, "1")):   # not what it inherits
        out = tmp_path / f"threads{want}"
        env = dict(os.environ, OMP_NUM_THREADS=outer, OPENBLAS_NUM_THREADS=outer)
        r = subprocess.run([sys.executable, RUN, *opts, str(tmp_path / f"t{want}.log"), f"{probe} > {out}"],
                           capture_output=True, text=True, env=env)
        assert r.returncode == 0, r.stderr + open(tmp_path / f"t{want}.log").read()
        assert out.read_text().strip() == f"[{want}]"
        assert f"threads={opts[1] if opts else 1}" in open(tmp_path / f"t{want}.log").read()


def test_run_py_pipefail(tmp_path):
    r = subprocess.run([sys.executable, RUN, str(tmp_path / "p.log"), "false | cat"], capture_output=True)
    assert r.returncode == 1


def parse(args, tmp_path):
    script = tmp_path / "s.sh"
    script.write_text(f"stage=0\nnj=4\nfoo_bar=x\n. {ROOT}/utils/parse_options.sh\n"
                      'echo "$stage $nj $foo_bar $#"\n')
    return subprocess.run(["bash", str(script)] + args, capture_output=True, text=True)


def test_parse_options(tmp_path):
    assert parse(["--stage", "3", "--foo-bar=y z", "pos"], tmp_path).stdout == "3 4 y z 1\n"
    conf = tmp_path / "c.conf"
    conf.write_text("nj=8\n")
    assert parse(["--config", str(conf), "--stage", "2"], tmp_path).stdout == "2 8 x 0\n"
    r = parse(["--no-such", "1"], tmp_path)
    assert r.returncode != 0 and "invalid option --no-such" in r.stderr


def check(args, tmp_path):
    script = tmp_path / "c.sh"
    script.write_text(f"set -euo pipefail\nstage=0\nstop_stage=100\nnj=4\n. {ROOT}/utils/parse_options.sh\n"
                      f". {ROOT}/utils/check_run_options.sh 9\n" 'echo "$stage $stop_stage $nj $#"\n')
    return subprocess.run(["bash", str(script)] + args, capture_output=True, text=True)


def test_check_run_options_accepts_good_values(tmp_path):
    assert check([], tmp_path).stdout == "0 100 4 0\n"
    assert check(["--stage", "9", "--stop-stage", "9", "--nj", "1"], tmp_path).stdout == "9 9 1 0\n"
    assert check(["--stage", "-1", "--stop-stage", "0"], tmp_path).stdout == "-1 0 4 0\n"


BAD_OPTIONS = [  # options, message; --stage 9 keeps a recipe that did not check --nj from running stages 0-8
    (["--stage", "abc"], "--stage abc: not an integer"),
    (["--stop-stage", "4.5"], "--stop-stage 4.5: not an integer"),
    (["--stage", "9", "--nj", "two"], "--nj two: not an integer"),
    (["--stage", "99"], "--stage 99: the last stage is 9"),
    (["--stage", "5", "--stop-stage", "3"], "--stop-stage 3 is below --stage 5: no stage would run"),
    (["--stage", "-2", "--stop-stage", "-1"], "--stop-stage -1: the first stage is 0"),
    (["--stage", "9", "--nj", "0"], "--nj 0: the number of parallel jobs must be at least 1"),
]


@pytest.mark.parametrize("recipe", ["synth", "wsj", "kaldi_dir", "fsdd"])
def test_every_run_sh_refuses_bad_numeric_options(recipe, tmp_path):
    """egs/<recipe>/s5/run.sh stops at once with one line naming the option: nothing runs, nothing is written."""
    s5 = make_recipe_dir(tmp_path, recipe)
    for args, message in BAD_OPTIONS:
        r = subprocess.run(["./run.sh", *args], cwd=s5, capture_output=True, text=True,
                           env=dict(os.environ, KALDI_PY_PROGRESS="0"))
        assert (r.returncode, r.stdout, r.stderr) == (1, "", f"./run.sh: {message}\n"), (recipe, args)
    assert sorted(os.listdir(s5)) == ["cmd.sh", "conf", "local", "path.sh", "run.sh", "utils"]


def test_run_sh_ends_with_a_table_of_stage_times(tmp_path):
    """utils/stage_log.sh: every stage that ran gets a row (the one that stopped the run marked failed) and the
    table goes to exp/stage_times.txt too."""
    s5 = make_recipe_dir(tmp_path, "synth")
    r = subprocess.run(["./run.sh", "--stage", "9", "--stop-stage", "9"], cwd=s5, capture_output=True, text=True,
                       env=dict(os.environ, KALDI_PY_PROGRESS="0"))
    assert r.returncode == 1 and "no trained model" in r.stderr        # stage 9 with nothing trained
    table = r.stdout[r.stdout.index("Stage times of ./run.sh --stage 9 --stop-stage 9"):]
    rows = table.splitlines()[1:]
    assert rows[0].split()[:2] == ["install:", "tools/install.sh"]
    assert rows[1].startswith("  Stage 9: HTML reports") and rows[1].endswith("min  (failed)")
    assert rows[2].split()[0] == "total" and len(rows) == 3
    assert open(os.path.join(s5, "exp", "stage_times.txt")).read() == table
