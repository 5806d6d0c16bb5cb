"""Uncompressed .npz files that can be memory-mapped: written from arrays or raw byte files without holding them in
memory (write_npz_from_raw), read member by member as read-only memory maps (load_npz_member)."""
import zipfile

import numpy as np

from steps_py.common import InputError, atomic_open


def write_npz_from_raw(path, members):
    """Writes an uncompressed .npz atomically. members: list of (name, dtype, shape, source) where source is a
    numpy array or the path of a raw little-endian C-order file holding exactly that array's bytes."""
    with atomic_open(path, "wb") as f:
        with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
            for name, dtype, shape, source in members:
                dtype = np.dtype(dtype)
                with zf.open(name + ".npy", "w", force_zip64=True) as out:
                    np.lib.format.write_array_header_2_0(
                        out, {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False,
                              "shape": tuple(int(s) for s in shape)})
                    if isinstance(source, np.ndarray):
                        out.write(np.ascontiguousarray(source, dtype=dtype).tobytes())
                    else:
                        expect = int(np.prod(shape)) * dtype.itemsize
                        got = 0
                        with open(source, "rb") as raw:
                            while True:
                                chunk = raw.read(1 << 24)
                                if not chunk:
                                    break
                                out.write(chunk)
                                got += len(chunk)
                        if got != expect:
                            raise RuntimeError(f"{source}: {got} bytes, expected {expect} for {name}{shape}")


def load_npz_member(path, name, mmap=True):
    """Array ``name`` of the .npz ``path``: memory-mapped read-only when the member is stored uncompressed,
    else read into memory."""
    with zipfile.ZipFile(path) as zf:
        try:
            info = zf.getinfo(name + ".npy")
        except KeyError:
            raise InputError(f"{path}: no array {name!r} (has {', '.join(n[:-4] for n in zf.namelist())})") \
                from None
        stored = info.compress_type == zipfile.ZIP_STORED
        if not (mmap and stored):
            with zf.open(info) as f:
                return np.lib.format.read_array(f, allow_pickle=False)
    with open(path, "rb") as f:
        f.seek(info.header_offset)
        local = f.read(30)
        name_len, extra_len = int.from_bytes(local[26:28], "little"), int.from_bytes(local[28:30], "little")
        f.seek(info.header_offset + 30 + name_len + extra_len)
        version = np.lib.format.read_magic(f)
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else \
            np.lib.format.read_array_header_2_0
        shape, fortran, dtype = read_header(f)
        offset = f.tell()
    if fortran or dtype.hasobject:
        raise InputError(f"{path}: array {name!r} is not a plain C-order array")
    if int(np.prod(shape)) == 0:
        return np.zeros(shape, dtype=dtype)
    return np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape)
