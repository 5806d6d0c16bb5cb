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

from tqdm import tqdm

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

    def __iter__(self):
        return iter(self._f)

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


def write_json(path, obj):
    """Writes ``obj`` (numpy values allowed: to_json_value) as indented JSON, atomically."""
    with atomic_open(path) as f:
        json.dump(to_json_value(obj), f, indent=1)
        f.write("\n")


# ------------------------------------------------------------------------------------------ finished work
# A step that finished writes a stamp <out-dir>/.done.<step> last (atomically): the settings it ran with and the
# signature (size, mtime) of every input as it read them. A re-run whose stamp matches skips the step; a killed
# run leaves no stamp (start() removes the old one before anything is rewritten), so it never looks finished.
DONE_PREFIX = ".done."


def done_stamp(out_dir, step):
    """The stamp of ``step`` (a name such as "mkgraph") in ``out_dir``: <out_dir>/.done.<step>."""
    return os.path.join(out_dir, DONE_PREFIX + step)


def is_done_stamp(name):
    """True for the base name of a stamp (``.done.<step>``): not part of what the step made or read."""
    return name.startswith(DONE_PREFIX)


def input_signature(path):
    """What tells a changed input from an unchanged one: "<size> <mtime_ns>" of a file; of a directory "<number
    of files> <sha1 of their relative paths, sizes and mtimes>" over every file below it (stamps left out); None
    when ``path`` does not exist."""
    import hashlib
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    if not os.path.isdir(path):
        return f"{st.st_size} {st.st_mtime_ns}"
    digest, count = hashlib.sha1(), 0
    for root, dirs, files in os.walk(path):
        dirs.sort()
        for name in sorted(files):
            if is_done_stamp(name):
                continue
            f = os.path.join(root, name)
            try:
                fst = os.stat(f)
            except OSError as e:       # a broken link, or a file removed while the directory is read
                raise InputError(f"cannot read {f}, an input of this step: {e.strerror}") from None
            digest.update(f"{os.path.relpath(f, path)} {fst.st_size} {fst.st_mtime_ns}\n".encode("utf-8",
                                                                                                  "surrogateescape"))
            count += 1
    return f"{count} {digest.hexdigest()}"


def settings_of(args, ignore=("cmd",)):
    """The settings of a step that decide its outputs: the parsed options ``args`` (argparse.Namespace or dict)
    as a JSON-ready dict, without ``ignore`` (by default --cmd, which says where the jobs run, not what they
    make)."""
    items = vars(args).items() if isinstance(args, argparse.Namespace) else dict(args).items()
    return {k: to_json_value(v) for k, v in sorted(items) if k not in ignore}


def _changed_settings(old, new):
    """The names of the settings that differ between two settings dicts, each with its old and new value."""
    names = sorted(set(old) | set(new))
    return [f"{k} {old.get(k, '(unset)')!r} -> {new.get(k, '(unset)')!r}" for k in names if old.get(k) != new.get(k)]


def _changed_input_list(old, new):
    """How two collections of input paths differ, for the log: "now also X (and 2 more); no longer Y"."""
    def some(paths):
        return paths[0] + (f" (and {len(paths) - 1} more)" if len(paths) > 1 else "")
    added, gone = sorted(set(new) - set(old)), sorted(set(old) - set(new))
    return "; ".join(([f"now also {some(added)}"] if added else []) + ([f"no longer {some(gone)}"] if gone else []))


class Completion:
    """The record that one step finished with given inputs and settings (Kaldi's ``[ -f $dir/final.mdl ]`` and
    mkgraph.sh's "HCLG.fst is newer than its inputs", with the settings compared too).

    ``stamp``: the stamp file (done_stamp); ``inputs``: files or directories the outputs are made from;
    ``settings``: a JSON-ready dict of what else decides them (settings_of); ``outputs``: files that must exist
    for the work to count as done. Use: ``if skip_if_done(c, what, log): return`` at the step's start, and
    ``c.finish()`` once every output is written.
    """

    def __init__(self, stamp, inputs, settings, outputs=()):
        self.stamp, self.inputs = stamp, list(dict.fromkeys(inputs))
        self.settings, self.outputs = to_json_value(dict(settings)), list(outputs)
        self.finished_before = False   # set by stale_reason(): a stamp existed (of a run with other inputs)
        self._signatures = None

    def _current_signatures(self):
        self._signatures = {p: input_signature(p) for p in self.inputs}
        return self._signatures

    def stale_reason(self):
        """None when the step is done and up to date; otherwise why it is not (one phrase for the log)."""
        current = self._current_signatures()
        try:
            with open(self.stamp, encoding="utf-8") as f:
                record = json.load(f)
        except (OSError, ValueError):
            return f"no record of a finished run ({self.stamp})"
        self.finished_before = True
        missing = [p for p in self.outputs if not os.path.exists(p)]
        if missing:
            return f"{missing[0]} is missing"
        absent = [p for p, sig in current.items() if sig is None]
        if absent:
            return f"its input {absent[0]} is missing"
        old = record.get("inputs", {})
        if sorted(old) != sorted(current):
            return f"its inputs are other files than before ({_changed_input_list(old, current)})"
        changed = [p for p in self.inputs if old[p] != current[p]]
        if changed:
            return f"{changed[0]} changed since it was made" + (f" (and {len(changed) - 1} more inputs)"
                                                                 if len(changed) > 1 else "")
        diff = _changed_settings(record.get("settings", {}), self.settings)
        if diff:
            return "settings changed: " + "; ".join(diff)
        return None

    def start(self):
        """Removes the stamp before any output is rewritten, so that a run killed from here on is not taken for a
        finished one; keeps the signatures of the inputs as they are now, before the step reads them."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.stamp)
        self._current_signatures()

    def finish(self):
        """Writes the stamp (atomically, last): the settings and the input signatures taken by start(). An input
        changed while the step ran therefore makes the next run redo the step."""
        if self._signatures is None:
            self._current_signatures()
        missing = [p for p in self.outputs if not os.path.exists(p)]
        if missing:
            raise RuntimeError(f"{self.stamp}: output {missing[0]} was not written")
        with atomic_open(self.stamp) as f:
            json.dump({"settings": self.settings, "inputs": self._signatures, "outputs": self.outputs}, f,
                      indent=1, sort_keys=True)
            f.write("\n")


def skip_if_done(completion, what, log, before_start=None):
    """True (after logging "skipped: <what> is up to date") when ``completion`` says the step is done and up to
    date; otherwise logs why ``what`` is (re)made, calls ``before_start()`` if given (work that must happen while
    the old stamp still stands, e.g. removing the old run's resume points), then completion.start(), and returns
    False."""
    reason = completion.stale_reason()
    if reason is None:
        log.info(f"skipped: {what} is up to date")
        return True
    log.info(f"making {what}: {reason}")
    if before_start is not None:
        before_start()
    completion.start()
    return False
