"""Kaldi option files (``--config``): one ``--name=value`` per line, read before the command line.

As ParseOptions::ReadConfigFile: ``#`` starts a comment, blank lines are skipped, every other line is ``--name=value``
or ``--name`` (a boolean set to true); the value is the rest of the line (one pair of quotes around it is removed,
as a shell would), and underscores in names read as dashes.
"""
import os
import sys

from steps_py.common import InputError, open_input, parse_bool


def read_config(path):
    """A Kaldi option file -> [(line number, name, value or None)] in file order; InputError naming the file and
    line for a line that is not ``--name[=value]``."""
    entries = []
    with open_input(path) as f:
        for n, line in enumerate(f, 1):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            name, eq, value = line[2:].partition("=")
            if not line.startswith("--") or not name or any(c.isspace() for c in name):
                raise InputError(f"{path}:{n}: expected --name=value, got {line!r}")
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
                value = value[1:-1]
            entries.append((n, name.replace("_", "-"), value if eq else None))
    return entries


def config_argv(path):
    """The options of a Kaldi option file as command-line words: ``--name=value`` (or ``--name``) each."""
    return [f"--{name}" if value is None else f"--{name}={value}" for _, name, value in read_config(path)]


def parse_args_with_config(parser, default_config=None, argv=None):
    """Parses ``argv`` (default sys.argv[1:]) with ``parser`` after the options of the file named by ``--config``
    (or ``default_config`` when it exists), so the command line overrides the file. The parser must have a
    --config option. Returns (args, the config file used or None)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    known, _ = parser.parse_known_args(argv)
    config = known.config or (default_config if default_config and os.path.exists(default_config) else None)
    if known.config and not os.path.exists(known.config):
        raise InputError(f"no such file {known.config}")
    return parser.parse_args((config_argv(config) if config else []) + argv), config


def parse_option_string(text, defaults, what="options"):
    """Options as Kaldi's scripts keep them in small files (cmvn_opts, delta_opts, splice_opts:
    ``--norm-vars=true``, ``--left-context=3 --right-context=3``) -> {name with underscores: value}.

    ``defaults``: {name: default value}; each value gets the type of its default (bool: parse_bool, int, float,
    str). An unknown option or a bad value is an InputError naming ``what`` (a file name, say)."""
    out = dict(defaults)
    for word in text.split():
        name, eq, value = word.lstrip("-").partition("=")
        name = name.replace("-", "_")
        if not word.startswith("--") or name not in defaults:
            known = ", ".join("--" + k.replace("_", "-") for k in defaults)
            raise InputError(f"{what}: unsupported option {word!r} (known: {known})")
        kind = type(defaults[name])
        try:
            out[name] = parse_bool(value if eq else "") if kind is bool else kind(value)
        except ValueError as e:
            raise InputError(f"{what}: bad value in {word!r}: {e}") from None
    return out


def read_option_file(path, defaults):
    """parse_option_string of a file's text; ``defaults`` when the file does not exist."""
    if not path or not os.path.exists(path):
        return dict(defaults)
    with open_input(path) as f:
        return parse_option_string(f.read(), defaults, path)
