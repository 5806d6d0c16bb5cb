"""HCLG as flat arrays for steps_py.decode.lattice: ``graph_arrays(fst)`` reads a kaldifst.StdVectorFst (its OpenFst
binary, parsed by numba; ``parse_vector_fst`` parses such a file's bytes) into per state ``final`` [S] (float32
cost, +inf where not final) and ``arc_start`` [S+1], per arc ``ilabel``, ``olabel``, ``weight``, ``nextstate``.
Input labels are transition ids; ``pdf_of_arcs`` gives the pdf of each arc's transition id (-1 on epsilon arcs).
"""
import dataclasses
import os
import tempfile

import numba
import numpy as np

FST_MAGIC = 2125659606

_njit = numba.njit(cache=True, nogil=True)   # compiled on first use, cached in __pycache__


@dataclasses.dataclass
class GraphArrays:
    """An FST as flat arrays (see the module docstring)."""
    start: int
    final: np.ndarray       # [S] float32
    arc_start: np.ndarray   # [S+1] int64
    ilabel: np.ndarray      # [A] int32
    olabel: np.ndarray      # [A] int32
    weight: np.ndarray      # [A] float32
    nextstate: np.ndarray   # [A] int32

    @property
    def num_states(self):
        return self.final.size

    @property
    def num_arcs(self):
        return self.ilabel.size


def _read_string(buf, pos):
    n = int(np.frombuffer(buf, np.int32, 1, pos)[0])
    return bytes(buf[pos + 4:pos + 4 + n]).decode("ascii", "replace"), pos + 4 + n


def parse_vector_fst(buf, what="FST"):
    """OpenFst binary of a VectorFst over the standard arc (bytes) -> GraphArrays. ValueError naming ``what`` for
    anything else (another FST type or arc type, symbol tables, a short file)."""
    buf = np.frombuffer(buf, np.uint8)
    if buf.size < 4 or int(np.frombuffer(buf, np.int32, 1, 0)[0]) != FST_MAGIC:
        raise ValueError(f"{what}: not an OpenFst binary FST")
    fst_type, pos = _read_string(buf, 4)
    arc_type, pos = _read_string(buf, pos)
    if fst_type != "vector" or arc_type != "standard":
        raise ValueError(f"{what}: a {fst_type} FST of {arc_type} arcs; expected a vector FST of standard arcs")
    _version, flags = np.frombuffer(buf, np.int32, 2, pos)
    pos += 8 + 8                                            # version, flags, properties (uint64)
    start, num_states = (int(v) for v in np.frombuffer(buf, np.int64, 2, pos))   # the header's arc count is 0
    pos += 24
    if flags & 3:
        raise ValueError(f"{what}: has symbol tables (not written by kaldifst)")
    num_arcs = _count_arcs(buf, pos, num_states)
    arrays = _parse_states(buf, pos, num_states, num_arcs) if num_arcs >= 0 else None
    if arrays is None:
        raise ValueError(f"{what}: truncated or inconsistent ({num_states} states in the header, {buf.size} "
                         "bytes)")
    final, arc_start, ilabel, olabel, weight, nextstate = arrays
    return GraphArrays(start, final, arc_start, ilabel, olabel, weight, nextstate)


@_njit
def _count_arcs(buf, pos, num_states):
    """The number of arcs of a VectorFst body (see _parse_states), -1 when it does not fit the buffer."""
    total = 0
    for _ in range(num_states):
        if pos + 12 > buf.size:
            return -1
        n = buf[pos + 4:pos + 12].view(np.int64)[0]
        if n < 0:
            return -1
        total += n
        pos += 12 + 16 * n
    return total if pos == buf.size else -1


@_njit
def _parse_states(buf, pos, num_states, num_arcs):
    """The body of a VectorFst binary: per state, final weight (float32), number of arcs (int64), then each arc's
    ilabel, olabel (int32), weight (float32), nextstate (int32). None when it does not fit the header."""
    final = np.empty(num_states, np.float32)
    arc_start = np.empty(num_states + 1, np.int64)
    ilabel = np.empty(num_arcs, np.int32)
    olabel = np.empty(num_arcs, np.int32)
    weight = np.empty(num_arcs, np.float32)
    nextstate = np.empty(num_arcs, np.int32)
    words = buf.size
    a = 0
    for s in range(num_states):
        if pos + 12 > words:
            return None
        final[s] = buf[pos:pos + 4].view(np.float32)[0]
        n = buf[pos + 4:pos + 12].view(np.int64)[0]
        pos += 12
        if n < 0 or a + n > num_arcs or pos + 16 * n > words:
            return None
        arc_start[s] = a
        block = buf[pos:pos + 16 * n]
        ints = block.view(np.int32)
        floats = block.view(np.float32)
        for k in range(n):
            ilabel[a + k] = ints[4 * k]
            olabel[a + k] = ints[4 * k + 1]
            weight[a + k] = floats[4 * k + 2]
            nextstate[a + k] = ints[4 * k + 3]
        a += n
        pos += 16 * n
    arc_start[num_states] = a
    if a != num_arcs:
        return None
    return final, arc_start, ilabel, olabel, weight, nextstate


def graph_arrays(fst):
    """A kaldifst.StdVectorFst -> GraphArrays (written to a temporary file in OpenFst binary and parsed)."""
    with tempfile.TemporaryDirectory(prefix="graph_arrays.") as tmp:
        path = os.path.join(tmp, "g.fst")
        fst.write(path)
        with open(path, "rb") as f:
            return parse_vector_fst(f.read(), what="graph")


def pdf_of_arcs(g, tid2pdf):
    """The pdf of every arc of GraphArrays ``g`` [A] (int64, -1 on epsilon arcs), from the transition-id -> pdf map
    tid2pdf [num_tids + 1]. ValueError for an input label that is no transition id."""
    bad = (g.ilabel < 0) | (g.ilabel >= tid2pdf.size)
    if bad.any():
        raise ValueError(f"graph arc {int(np.flatnonzero(bad)[0])} has input label {int(g.ilabel[bad][0])}, not a "
                         f"transition id of the model (1..{tid2pdf.size - 1})")
    return np.where(g.ilabel > 0, tid2pdf[g.ilabel], -1).astype(np.int64)
