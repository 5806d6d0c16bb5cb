"""Finished work is skipped: a step that finished writes a stamp <out-dir>/.done.<step> last (atomically): the
settings it ran with and the signature (size, mtime) of every input as it read them. A re-run whose stamp matches
skips the step; a killed run leaves no stamp (Completion.start removes the old one before anything is rewritten),
so it never looks finished. Kaldi's ``[ -f $dir/final.mdl ]`` with the inputs and settings compared too."""
import argparse
import contextlib
import json
import os

from steps_py.common import InputError, atomic_open, to_json_value

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


# options that say where a step's work runs, not what it makes: the job runner and the torch device
WHERE_SETTINGS = ("cmd", "device")


def settings_of(args, ignore=WHERE_SETTINGS):
    """The settings of a step that decide its outputs: the parsed options ``args`` (argparse.Namespace or dict)
    as a JSON-ready dict, without ``ignore`` (by default WHERE_SETTINGS: --cmd and --device)."""
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


def inputs_change(old, current):
    """How the inputs recorded as ``old`` ({path: input_signature}) differ from ``current``, one phrase for the
    log ("its inputs are other files than before (...)", "X changed since it was made (and 2 more inputs)"); None
    when they are the same."""
    if sorted(old) != sorted(current):
        return f"its inputs are other files than before ({_changed_input_list(old, current)})"
    changed = [p for p in current if old[p] != current[p]]
    if changed:
        return f"{changed[0]} changed since it was made" + (f" (and {len(changed) - 1} more inputs)"
                                                             if len(changed) > 1 else "")
    return None


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
        changed = inputs_change(record.get("inputs", {}), current)
        if changed:
            return changed
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
