"""Small helpers shared by every step: Kaldi-style logging, errors, atomic writes, progress, text tables and conf
files, booleans, JSON."""
import argparse
import contextlib
import errno
import json
import logging
import math
import os
import shutil
import sys
import tempfile


_UMASK = os.umask(0)
os.umask(_UMASK)

LOG_FORMAT = "%(levelname)s (%(name)s[%(asctime)s]:%(funcName)s():%(filename)s:%(lineno)d) %(message)s"

# OSError numbers that say there is no room left to write: disk full, disk quota exceeded.
NO_SPACE_ERRNOS = (errno.ENOSPC, errno.EDQUOT)


class InputError(Exception):
    """Bad input that the user must fix. ``main`` wrappers print it as one line, without a traceback."""


class NoSpaceError(InputError):
    """A file could not be written for want of room (disk full, quota): printed as one line naming the file."""


@contextlib.contextmanager
def writing(what, own=()):
    """The context of a write to ``what`` (a file name, or words such as "the extraction in DIR"): an OSError in
    the block saying the disk or the quota is full becomes a NoSpaceError naming it, one line for the user instead
    of the chained tracebacks of the failed write and of the close that flushes it again. An error that names
    another file than ``what`` and its temporaries ``own`` (an open() of some other file in the block) names that
    file."""
    try:
        yield
    except OSError as e:
        if e.errno not in NO_SPACE_ERRNOS:
            raise
        other = e.filename is not None and os.fspath(e.filename) not in (os.fspath(what), *map(os.fspath, own))
        raise NoSpaceError(f"cannot write {e.filename if other else what}: {e.strerror}") from None


class _WritesNamed:
    """A file object whose write, writelines and flush run in writing(what): atomic_open yields it, so that a full
    disk met by the block's other work is not blamed on ``what``."""

    def __init__(self, f, what):
        self._f, self._what = f, what

    def write(self, data):
        with writing(self._what):
            return self._f.write(data)

    def writelines(self, lines):
        with writing(self._what):
            return self._f.writelines(lines)

    def flush(self):
        with writing(self._what):
            return self._f.flush()

    def __getattr__(self, name):
        return getattr(self._f, name)


def get_logger(name):
    """A logger printing Kaldi-like lines ``LOG (step[time]:func():file:line) message`` to stderr."""
    logging.addLevelName(logging.INFO, "LOG")
    if not logging.getLogger().handlers:
        logging.basicConfig(level=os.environ.get("KALDI_PY_LOGLEVEL", "INFO"), format=LOG_FORMAT,
                            datefmt="%H:%M:%S", stream=sys.stderr)
    return logging.getLogger(name)


def run_main(main):
    """Runs ``main()`` and turns an InputError, or an OSError saying the disk or quota is full, into a one-line
    message and exit status 1."""
    try:
        sys.exit(main())
    except InputError as e:
        _exit_with_error(e)
    except OSError as e:
        if e.errno not in NO_SPACE_ERRNOS:
            raise
        _exit_with_error(f"cannot write {e.filename}: {e.strerror}" if e.filename else
                         f"{e.strerror} (the file being written is not known; see the log above)")


def _exit_with_error(message):
    print(f"ERROR ({os.path.basename(sys.argv[0])}): {message}", file=sys.stderr)
    sys.exit(1)


def _discard(tmp):
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp)


@contextlib.contextmanager
def atomic_open(path, mode="w", **kwargs):
    """Opens a temporary file beside ``path`` and renames it to ``path`` only if the block finishes.

    On any exception the temporary file is removed and ``path`` is left as it was; a full disk or quota is raised
    as a NoSpaceError naming ``path``.
    """
    d = os.path.dirname(os.path.abspath(path))
    with writing(path):
        os.makedirs(d, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=d, prefix="." + os.path.basename(path) + ".", suffix=".tmp")
    try:
        os.close(fd)
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp creates 0600; give the file the mode open() would
        with writing(path, own=(tmp,)):
            f = open(tmp, mode, **kwargs)
        try:
            yield _WritesNamed(f, path)
        except BaseException:
            with contextlib.suppress(OSError):
                f.close()
            raise
        with writing(path, own=(tmp,)):
            f.close()                      # flushes what is buffered: on a full disk it fails too
        os.replace(tmp, path)
    except BaseException:
        _discard(tmp)
        raise


@contextlib.contextmanager
def atomic_path(path):
    """Yields a temporary path beside ``path`` for a writer that wants a file name; renamed on success.

    On any exception the temporary file is removed; a full disk or quota is raised as a NoSpaceError naming
    ``path``.
    """
    d = os.path.dirname(os.path.abspath(path))
    base = os.path.basename(path)
    stem, dot, ext = base.rpartition(".")
    tmp = os.path.join(d, f".{stem}.tmp.{ext}" if dot else f".{base}.tmp")
    with writing(path, own=(tmp,)):
        os.makedirs(d, exist_ok=True)
        try:
            yield tmp
            os.replace(tmp, path)
        except BaseException:
            _discard(tmp)
            raise


def keep_time_stamp_if_same(new, path):
    """Gives the file ``new`` (about to replace ``path``) the time stamps of ``path`` when both hold the same bytes;
    True when they did. Replacing a file by the same content then leaves its signature (input_signature) as it
    was, so what was made from it stays up to date."""
    import filecmp
    if not (os.path.isfile(path) and filecmp.cmp(new, path, shallow=False)):
        return False
    shutil.copystat(path, new)
    return True


def progress(iterable=None, **kwargs):
    """A progress bar on stderr when it is a terminal or KALDI_PY_PROGRESS=1; otherwise a plain iterator."""
    show = os.environ.get("KALDI_PY_PROGRESS", "1" if sys.stderr.isatty() else "0") == "1"
    from tqdm import tqdm       # here, not at the top: its import (0.1 s) would slow every job's start
    return tqdm(iterable, disable=not show, file=sys.stderr, mininterval=1.0, **kwargs)


def parse_bool(text):
    """A boolean option value as Kaldi's ParseOptions reads it (true/t/1 and false/f/0, any case; also yes/no; an
    empty value is true, as a bare ``--name``). Raises ValueError otherwise."""
    t = text.strip().lower()
    if t in ("true", "t", "1", "yes", ""):
        return True
    if t in ("false", "f", "0", "no"):
        return False
    raise ValueError(f"expected true or false, got {text!r}")


def str2bool(text):
    """parse_bool for argparse ``type=``."""
    try:
        return parse_bool(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def require_files(*paths):
    """Raises InputError ``no such file X`` for the first of ``paths`` that does not exist."""
    for f in paths:
        if not os.path.exists(f):
            raise InputError(f"no such file {f}")


def replace_dir(tmp_dir, final_dir):
    """Moves a finished dir into place: the old one (if any) is renamed aside first and removed afterwards."""
    old = None
    if os.path.exists(final_dir):
        old = tempfile.mkdtemp(prefix="." + os.path.basename(final_dir) + ".old.",
                               dir=os.path.dirname(os.path.abspath(final_dir)))
        os.rmdir(old)
        os.rename(final_dir, old)
    os.rename(tmp_dir, final_dir)
    if old:
        shutil.rmtree(old)


class TextInput:
    """A UTF-8 text file opened for reading (open_input): iterate over its lines, or read() it whole.

    A line that is not UTF-8 raises InputError naming the file, the line and the byte (Python's own decoder would
    stop with a UnicodeDecodeError that names neither, somewhere in a block of the file).
    """

    def __init__(self, path, f):
        self.path, self._f = path, f

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        self._f.close()

    def __iter__(self):
        for n, line in enumerate(self._f, 1):
            yield checked_utf8(line, self.path, n)

    def read(self):
        return "".join(self)


def checked_utf8(line, path, n):
    """``line`` (line ``n`` of ``path``, decoded with errors="surrogateescape") if it was valid UTF-8; otherwise
    an InputError naming the file, the line and the first byte that is not UTF-8."""
    try:
        line.encode("utf-8")
    except UnicodeEncodeError as e:
        byte = ord(line[e.start]) - 0xDC00  # surrogateescape keeps an undecodable byte b as U+DC00 + b
        raise InputError(f"{path}:{n}: not UTF-8 (byte 0x{byte:02x} at character {e.start + 1}); convert the file "
                         f"with iconv -f <its encoding> -t utf-8") from None
    return line


def open_input(path):
    """Opens a UTF-8 text file for reading as a TextInput; a missing or unreadable file raises InputError naming
    it, and so does a line that is not UTF-8 (with its line number)."""
    try:
        return TextInput(path, open(path, encoding="utf-8", errors="surrogateescape"))
    except OSError as e:
        raise InputError(f"cannot read {path}: {e.strerror}") from None


def split_key(line):
    """(key, value) of one table line as Kaldi's readers split it: the key ends at the first run of whitespace
    (spaces or tabs), the value is the rest with the whitespace around it removed (a CR of a CRLF line included).
    An empty or blank line gives ("", "")."""
    parts = line.strip().split(None, 1)
    return (parts[0], parts[1].strip() if len(parts) > 1 else "") if parts else ("", "")


def read_table(path, min_fields=2, max_fields=None):
    """Reads a Kaldi text table ``key value...`` into a list of (key, [fields]) in file order.

    Raises InputError naming the file and line for lines with too few or too many fields. Blank lines are errors too
    (Kaldi's tools reject them).
    """
    rows = []
    with open_input(path) as f:
        for n, line in enumerate(f, 1):
            parts = line.split()
            if len(parts) < min_fields or (max_fields and len(parts) > max_fields):
                want = f"{min_fields}" + (f"-{max_fields}" if max_fields != min_fields else "") if max_fields else \
                    f"at least {min_fields}"
                raise InputError(f"{path}:{n}: expected {want} fields, got {len(parts)}: {line.rstrip()!r}")
            rows.append((parts[0], parts[1:]))
    return rows


def write_lines(path, lines):
    """Writes an iterable of strings, one per line, atomically."""
    with atomic_open(path) as f:
        for line in lines:
            f.write(line + "\n")


def read_shell_assignments(path):
    """The ``name=value`` lines of a shell-variable conf file (conf/gmm.conf, conf/nnet/*.conf; ``# comments``,
    shell quoting) -> [(line number, name, value)] in file order; InputError naming the file and line otherwise."""
    import shlex
    out = []
    with open_input(path) as f:
        for n, line in enumerate(f, 1):
            try:
                words = shlex.split(line, comments=True)
            except ValueError as e:
                raise InputError(f"{path}:{n}: {e}: {line.rstrip()!r}") from None
            if not words:
                continue
            name, eq, value = words[0].partition("=")
            if len(words) != 1 or not eq or not name.isidentifier():
                raise InputError(f"{path}:{n}: expected name=value, got {line.rstrip()!r}")
            out.append((n, name, value))
    return out


def read_shell_conf(path, defaults=None):
    """A shell-variable conf file (read_shell_assignments) -> {name: value text}, the last assignment winning.

    ``defaults`` (dict) supplies missing names and, when given, the allowed names: an unknown name is an InputError
    naming the file and line (a typo must not pass silently).
    """
    out = dict(defaults or {})
    for n, name, value in read_shell_assignments(path):
        if defaults is not None and name not in defaults:
            raise InputError(f"{path}:{n}: unknown setting {name!r} (known: {', '.join(sorted(defaults))})")
        out[name] = value
    return out


def read_json(path):
    """A JSON file -> its value; InputError naming the file when it is missing or not JSON."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except OSError as e:
        raise InputError(f"cannot read {path}: {e.strerror}") from None
    except ValueError as e:
        raise InputError(f"{path}: not JSON ({e})") from None


def to_json_value(x):
    """numpy scalars and arrays, tuples and dicts -> plain Python values for json (NaN and infinity -> None)."""
    import numpy as np
    if isinstance(x, dict):
        return {str(k): to_json_value(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [to_json_value(v) for v in x]
    if isinstance(x, np.ndarray):
        return to_json_value(x.tolist())
    if isinstance(x, (np.bool_, bool)):
        return bool(x)
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, (np.floating, float)):
        x = float(x)
        return x if math.isfinite(x) else None
    return x


def write_json(path, obj, keep_same=False):
    """Writes ``obj`` (numpy values allowed: to_json_value) as indented JSON, atomically. With ``keep_same``, a
    file that already holds the same JSON keeps its time stamps (keep_time_stamp_if_same), so what was made from
    it stays up to date. The temporary file has a fixed name (atomic_path): one writer per path at a time."""
    with atomic_path(path) as tmp:
        with open(tmp, "w") as f:
            json.dump(to_json_value(obj), f, indent=1)
            f.write("\n")
        if keep_same:
            keep_time_stamp_if_same(tmp, path)
