"""Kaldi's on-disk primitives: binary and text tokens, int32-vector arks (alignments), text vectors, matrices,
and ark+scp pairs written atomically.

Binary values are written byte for byte as Kaldi's Write() functions produce them (src/base/io-funcs.h,
src/matrix/kaldi-vector.cc); alignments (``ali.N.gz``) are gzipped arks of int32 vectors in BasicVectorHolder
format (what copy-int-vector and kaldiio read), keyed by utterance id.
"""
import contextlib
import glob
import gzip
import os
import struct

import numpy as np

from steps_py.common import InputError, atomic_path, writing


# ---------------------------------------------------------------------------------------------------------------
# Binary primitives

def bin_token(tok):
    """WriteToken: the token followed by one space."""
    return tok.encode() + b" "


def bin_int32(v):
    """WriteBasicType<int32>: size byte 4, then little-endian int32."""
    return b"\x04" + struct.pack("<i", int(v))


def bin_uint32(v):
    """WriteBasicType<uint32>: size byte -4 (unsigned), then little-endian uint32."""
    return b"\xfc" + struct.pack("<I", int(v))


def bin_int_vector(v):
    """WriteIntegerVector<int32>: element size byte, int32 count (no size byte), raw data."""
    v = np.asarray(v, dtype="<i4")
    return b"\x04" + struct.pack("<i", len(v)) + v.tobytes()


def bin_float_vector(v):
    """Vector<float>::Write binary: ``FV `` + int32 dim + raw float32."""
    v = np.ascontiguousarray(v, dtype="<f4").ravel()
    return b"FV " + bin_int32(len(v)) + v.tobytes()


def bin_float_matrix(m):
    """Matrix<float>::Write binary: ``FM `` + int32 rows + int32 cols + raw float32 row-major."""
    m = np.ascontiguousarray(m, dtype="<f4")
    return b"FM " + bin_int32(m.shape[0]) + bin_int32(m.shape[1]) + m.tobytes()


class BinaryReader:
    """Reads Kaldi binary primitives from a bytes object; ``name`` is used in error messages."""

    def __init__(self, data, name="<bytes>"):
        self.data, self.pos, self.name = data, 0, name

    def fail(self, what):
        raise InputError(f"{self.name}: byte {self.pos}: {what}")

    def header(self):
        if self.data[self.pos:self.pos + 2] != b"\0B":
            self.fail("not a Kaldi binary file (no \\0B header)")
        self.pos += 2

    def peek(self, n=1):
        return self.data[self.pos:self.pos + n]

    def token(self):
        end = self.data.find(b" ", self.pos)
        if end < 0:
            self.fail("expected a token")
        tok = self.data[self.pos:end].decode("latin-1")
        self.pos = end + 1
        return tok

    def expect(self, tok):
        got = self.token()
        if got != tok:
            self.fail(f"expected {tok}, got {got}")

    def basic(self, fmt):
        size = self.data[self.pos]
        want = struct.calcsize(fmt)
        if size not in (want, 256 - want):
            self.fail(f"expected a {want}-byte value, size byte is {size}")
        (v,) = struct.unpack_from("<" + fmt, self.data, self.pos + 1)
        self.pos += 1 + want
        return v

    def int32(self):
        return self.basic("i")

    def uint32(self):
        return self.basic("I")

    def float32(self):
        return self.basic("f")

    def int_vector(self):
        if self.data[self.pos] != 4:
            self.fail("expected an int32 vector")
        (n,) = struct.unpack_from("<i", self.data, self.pos + 1)
        v = np.frombuffer(self.data, dtype="<i4", count=n, offset=self.pos + 5).astype(np.int32)
        self.pos += 5 + 4 * n
        return v

    def float_vector(self):
        self.expect("FV")
        n = self.int32()
        v = np.frombuffer(self.data, dtype="<f4", count=n, offset=self.pos).astype(np.float32)
        self.pos += 4 * n
        return v

    def float_matrix(self):
        self.expect("FM")
        r, c = self.int32(), self.int32()
        m = np.frombuffer(self.data, dtype="<f4", count=r * c, offset=self.pos).astype(np.float32).reshape(r, c)
        self.pos += 4 * r * c
        return m


# ---------------------------------------------------------------------------------------------------------------
# Alignments and other int32-vector tables

def int_vector_record(key, values):
    """One ark record ``key \\0B`` + BasicVectorHolder binary (size byte before the count and before every element)."""
    v = np.asarray(values, dtype=np.int32)
    rec = np.empty(len(v), dtype=[("s", "u1"), ("v", "<i4")])
    rec["s"] = 4
    rec["v"] = v
    return key.encode() + b" \0B\x04" + struct.pack("<i", len(v)) + rec.tobytes()


def write_int_vectors(path, table):
    """Writes {key: int vector} as a (gzipped if path ends in .gz) binary Kaldi ark, keys in the table's order.

    The gzip header holds no file name and time stamp, so the same table always gives the same bytes."""
    with atomic_path(path) as tmp, open(tmp, "wb") as raw:
        with (gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) if path.endswith(".gz") else raw) as f:
            for key, values in table.items():
                f.write(int_vector_record(key, values))


def read_int_vectors(path):
    """Reads a (gzipped) ark of int32 vectors, binary or text records, into {key: np.int32 array} in file order."""
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise InputError(f"cannot read {path}: {e}") from None
    out, pos = {}, 0
    while pos < len(data):
        if data[pos:pos + 1].isspace():
            pos += 1
            continue
        sp = data.find(b" ", pos)
        if sp < 0:
            raise InputError(f"{path}: byte {pos}: key without a value")
        key = data[pos:sp].decode()
        pos = sp + 1
        if data[pos:pos + 3] == b"\0B\x04":
            (n,) = struct.unpack_from("<i", data, pos + 3)
            rec = np.frombuffer(data, dtype=[("s", "u1"), ("v", "<i4")], count=n, offset=pos + 7)
            if n and not np.all(rec["s"] == 4):
                raise InputError(f"{path}: record {key}: not an int32 vector")
            out[key] = rec["v"].astype(np.int32)
            pos += 7 + 5 * n
        else:
            end = data.find(b"\n", pos)
            end = len(data) if end < 0 else end
            out[key] = np.array(data[pos:end].split(), dtype=np.int32)
            pos = end + 1
    return out


def alignment_files(ali_dir, prefix="ali"):
    """<prefix>.N.gz of a Kaldi alignment dir (ali.N.gz, phone_ali.N.gz), N = 1..num_jobs when the dir has a
    num_jobs file (a missing one is an error), else all that are present; in job order."""
    nj_path = os.path.join(ali_dir, "num_jobs")
    if os.path.exists(nj_path):
        nj = int(open(nj_path).read().split()[0])
        files = [os.path.join(ali_dir, f"{prefix}.{j}.gz") for j in range(1, nj + 1)]
        missing = [f for f in files if not os.path.exists(f)]
        if missing:
            raise InputError(f"{nj_path} says {nj} jobs but {missing[0]} is missing")
        return files
    files = glob.glob(os.path.join(ali_dir, f"{prefix}.*.gz"))
    return sorted((f for f in files if f.split(".")[-2].isdigit()), key=lambda p: int(p.split(".")[-2]))


def read_alignments(ali_dir, prefix="ali"):
    """{utt: int32 vector} of all <prefix>.N.gz of an alignment dir (alignment_files); InputError if it has none."""
    files = alignment_files(ali_dir, prefix)
    if not files:
        raise InputError(f"{ali_dir}: no {prefix}.*.gz files")
    out = {}
    for path in files:
        out.update(read_int_vectors(path))
    return out


# ---------------------------------------------------------------------------------------------------------------
# Text format

class TextReader:
    """Reads Kaldi text-format objects (``--binary=false``) token by token; ``name`` is used in error messages."""

    def __init__(self, text, name="<text>"):
        self.toks = text.split()
        self.i = 0
        self.name = name

    def fail(self, what):
        raise InputError(f"{self.name}: token {self.i}: {what}")

    def at_end(self):
        return self.i >= len(self.toks)

    def peek_token(self):
        return None if self.at_end() else self.toks[self.i]

    def token(self):
        if self.at_end():
            self.fail("unexpected end of file")
        self.i += 1
        return self.toks[self.i - 1]

    def expect(self, tok):
        got = self.token()
        if got != tok:
            self.i -= 1
            self.fail(f"expected {tok}, got {got}")

    def int32(self):
        tok = self.token()
        try:
            return int(tok)
        except ValueError:
            self.i -= 1
            self.fail(f"expected an integer, got {tok}")

    def float32(self):
        tok = self.token()
        try:
            return float(tok)
        except ValueError:
            self.i -= 1
            self.fail(f"expected a number, got {tok}")

    def _bracketed(self):
        self.expect("[")
        out = []
        while self.peek_token() != "]":
            out.append(self.token())
        self.i += 1
        return out

    def int_vector(self):
        """WriteIntegerVector text form: ``[ 1 2 3 ]``."""
        return np.array(self._bracketed(), dtype=np.int32)

    def float_vector(self):
        """Vector<float> text form: ``[ 0.1 0.2 ]``."""
        return np.array(self._bracketed(), dtype=np.float32)


# ---------------------------------------------------------------------------------------------------------------
# Vectors, matrices, ark+scp pairs

def write_kaldi_vector(path, values):
    """A Kaldi text vector ``[ v1 v2 ... ]`` (readable by Kaldi's Vector::Read and kaldiio.load_mat)."""
    with atomic_path(path) as tmp, open(tmp, "w") as f:
        f.write("[ " + " ".join(f"{v:.8g}" for v in values) + " ]\n")


def read_kaldi_vector(path):
    """A Kaldi text vector file -> float64 array."""
    try:
        text = open(path).read()
    except OSError as e:
        raise InputError(f"cannot read {path}: {e.strerror}") from None
    body = text.strip()
    if not (body.startswith("[") and body.endswith("]")):
        raise InputError(f"{path}: not a Kaldi text vector '[ ... ]'")
    return np.array(body[1:-1].split(), dtype=np.float64)


def write_kaldi_matrix(path, mat):
    """Writes a Kaldi binary float matrix (``\\0BFM ...``, what est-lda/compose-transforms write), atomically."""
    import kaldiio
    with atomic_path(path) as tmp:
        kaldiio.save_mat(tmp, np.ascontiguousarray(mat, dtype=np.float32))


def read_kaldi_matrix(path):
    """A Kaldi matrix file (binary or text) -> float64 array."""
    import kaldiio
    try:
        return np.asarray(kaldiio.load_mat(path), dtype=np.float64)
    except (OSError, ValueError) as e:
        raise InputError(f"cannot read matrix {path}: {e}") from None


def is_binary(data):
    """True for the contents of a Kaldi binary file (``\\0B`` header)."""
    return data[:2] == b"\0B"


def read_bytes(path):
    """The bytes of a file; InputError naming it when it cannot be read."""
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise InputError(f"cannot read {path}: {e.strerror}") from None


@contextlib.contextmanager
def ark_scp_writer(ark_path, scp_path):
    """Writes a binary ark of matrices and its scp atomically: yields ``write(key, matrix)``.

    Both are written under temporary names; when the block finishes, the ark is renamed into place first, then the
    scp (pointing at the final, absolute ark path), so an existing scp means a complete ark. On an exception both
    temporaries are removed and nothing is renamed; a full disk or quota is a NoSpaceError naming the ark.
    """
    import kaldiio
    ark_path, scp_path = os.path.abspath(ark_path), os.path.abspath(scp_path)
    os.makedirs(os.path.dirname(ark_path), exist_ok=True)
    tmp_ark, tmp_scp = f"{ark_path}.tmp{os.getpid()}", f"{scp_path}.tmp{os.getpid()}"
    try:
        with writing(ark_path), kaldiio.WriteHelper(f"ark,scp:{tmp_ark},{tmp_scp}") as writer:
            yield writer
        with open(tmp_scp) as f:
            lines = [line.split(None, 1) for line in f.read().splitlines()]
        os.replace(tmp_ark, ark_path)
        with atomic_path(scp_path) as tmp, open(tmp, "w") as f:
            for key, location in lines:
                f.write(f"{key} {ark_path}:{location.rsplit(':', 1)[1]}\n")
    finally:
        for p in (tmp_ark, tmp_scp):
            if os.path.exists(p):
                os.unlink(p)
