"""The job runner (run.py, Kaldi's run.pl) and parse_options.sh."""
import os
import subprocess
import sys

from conftest import ROOT

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
