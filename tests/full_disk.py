"""A full disk for tests: ``full_disk_open(room)`` is an ``open`` to monkeypatch into a module, whose files opened
for writing take ``room`` bytes each and then fail with ENOSPC, as on a real full disk (the bytes that fitted stay
in the file; the buffered bytes fail again when the file is closed)."""
import builtins
import errno
import io
import os


class FullDiskFile(io.FileIO):
    """A raw file with ``room`` bytes left on its disk."""

    def __init__(self, path, mode, room):
        super().__init__(path, mode)
        self.room = room

    def write(self, data):
        if self.room <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        written = super().write(bytes(data[:self.room]))
        self.room -= written
        return written


def full_disk_open(room=0):
    """An ``open`` whose files opened for writing (modes w, a, x) have ``room`` bytes each; reading is unchanged."""
    def fake_open(path, mode="r", buffering=-1, encoding=None, errors=None, newline=None, **kwargs):
        if not any(c in mode for c in "wax"):
            return builtins.open(path, mode, buffering, encoding, errors, newline, **kwargs)
        buffered = io.BufferedWriter(FullDiskFile(path, "a" if "a" in mode else "w", room))
        if "b" in mode:
            return buffered
        return io.TextIOWrapper(buffered, encoding=encoding or "utf-8", errors=errors, newline=newline)
    return fake_open
