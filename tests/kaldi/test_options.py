"""Kaldi option files and option strings (steps_py.kaldi.options)."""
import argparse

import pytest

from steps_py.common import InputError, str2bool
from steps_py.kaldi.options import config_argv, parse_args_with_config, parse_option_string, read_config


def test_read_config(tmp_path):
    conf = tmp_path / "x.conf"
    conf.write_text("# a comment\n\n--beam=13.0   # trailing comment\n--max_active=7000\n--careful\n"
                    "--filter-words=\"<NOISE>,<SPOKEN_NOISE>\"\n--splice-opts=--left-context=3 --right-context=3\n")
    assert read_config(str(conf)) == [(3, "beam", "13.0"), (4, "max-active", "7000"), (5, "careful", None),
                                      (6, "filter-words", "<NOISE>,<SPOKEN_NOISE>"),
                                      (7, "splice-opts", "--left-context=3 --right-context=3")]
    assert config_argv(str(conf))[:3] == ["--beam=13.0", "--max-active=7000", "--careful"]
    for bad in ("beam=13\n", "--beam 13\n", "--=1\n"):
        conf.write_text("--nj=2\n" + bad)
        with pytest.raises(InputError, match=r"x.conf:2: expected --name=value"):
            read_config(str(conf))
    with pytest.raises(InputError, match="cannot read"):
        read_config(str(tmp_path / "missing.conf"))


def test_command_line_overrides_the_config(tmp_path, monkeypatch):
    p = argparse.ArgumentParser()
    p.add_argument("--config")
    p.add_argument("--beam", type=float, default=10.0)
    p.add_argument("--careful", type=str2bool, default=False)
    p.add_argument("--splice-opts", default="")
    p.add_argument("dir")
    (tmp_path / "d.conf").write_text("--beam=13\n--careful=true\n--splice-opts=--left-context=2\n")
    a, used = parse_args_with_config(p, None, ["--config", str(tmp_path / "d.conf"), "--beam", "9", "x"])
    assert (a.beam, a.careful, a.splice_opts, a.dir, used) == (9.0, True, "--left-context=2", "x",
                                                                 str(tmp_path / "d.conf"))
    monkeypatch.chdir(tmp_path)
    a, used = parse_args_with_config(p, "d.conf", ["y"])       # the default config, when it exists
    assert (a.beam, used) == (13.0, "d.conf")
    a, used = parse_args_with_config(p, "none.conf", ["y"])
    assert (a.beam, used) == (10.0, None)
    with pytest.raises(InputError, match="no such file nope.conf"):
        parse_args_with_config(p, None, ["--config", "nope.conf", "y"])


def test_option_strings():
    defaults = {"norm_means": True, "norm_vars": False, "left_context": 4, "scale": 1.0}
    assert parse_option_string("--norm-vars=true --left-context=3 --scale=0.5", defaults, "f") == \
        {"norm_means": True, "norm_vars": True, "left_context": 3, "scale": 0.5}
    assert parse_option_string("--norm-means=false --norm-vars", defaults)["norm_vars"] is True
    with pytest.raises(InputError, match="f: unsupported option '--center=true'"):
        parse_option_string("--center=true", defaults, "f")
    with pytest.raises(InputError, match="bad value in '--left-context=x'"):
        parse_option_string("--left-context=x", defaults, "f")
