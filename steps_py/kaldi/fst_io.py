"""OpenFst binaries of the standard (tropical) arc as flat arrays, and FST files as Kaldi writes them.

GraphArrays: per state ``final`` [S] (float32 cost, +inf where not final) and ``arc_start`` [S+1]; per arc
``ilabel``, ``olabel``, ``weight``, ``nextstate``. ``parse_fst(bytes)`` reads a VectorFst binary (what kaldifst and
OpenFst's default write; parsed by numba) or a ConstFst binary (what Kaldi's mkgraph.sh writes, after
``fstconvert --fst_type=const``; the kaldifst bindings cannot read those); ``graph_arrays(fst)`` gives the arrays of
a kaldifst.StdVectorFst; ``read_fst(path)`` reads either kind of file as a kaldifst.StdVectorFst.
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


def parse_fst(buf, what="FST"):
    """OpenFst binary of a VectorFst or ConstFst over the standard arc (bytes) -> GraphArrays. ValueError naming
    ``what`` for anything else (another FST type or arc type, symbol tables, a short or inconsistent file)."""
    buf = np.frombuffer(buf, np.uint8)
    if buf.size < 4 or int(np.frombuffer(buf, np.int32, 1, 0)[0]) != FST_MAGIC:
        raise ValueError(f"{what}: not an OpenFst binary FST")
    fst_type, pos = _read_string(buf, 4)
    arc_type, pos = _read_string(buf, pos)
    if fst_type not in ("vector", "const") or arc_type != "standard":
        raise ValueError(f"{what}: a {fst_type} FST of {arc_type} arcs; expected a vector or const FST of standard "
                         "arcs")
    _version, flags = np.frombuffer(buf, np.int32, 2, pos)
    pos += 8 + 8                                            # version, flags, properties (uint64)
    start, num_states, header_arcs = (int(v) for v in np.frombuffer(buf, np.int64, 3, pos))
    pos += 24
    if flags & 3:
        raise ValueError(f"{what}: has symbol tables (not written by kaldifst or Kaldi)")
    if fst_type == "const":
        return _parse_const(buf, pos, start, num_states, header_arcs, bool(flags & 4), what)
    num_arcs = _count_arcs(buf, pos, num_states)     # a VectorFst's header counts no arcs
    arrays = _parse_states(buf, pos, num_states, num_arcs) if num_arcs >= 0 else None
    if arrays is None:
        raise ValueError(f"{what}: truncated or inconsistent ({num_states} states in the header, {buf.size} "
                         "bytes)")
    return _checked(GraphArrays(start, *arrays), what)


CONST_STATE = np.dtype([("final", "<f4"), ("pos", "<u4"), ("narcs", "<u4"), ("niepsilons", "<u4"),
                        ("noepsilons", "<u4")])
STD_ARC = np.dtype([("ilabel", "<i4"), ("olabel", "<i4"), ("weight", "<f4"), ("nextstate", "<i4")])


def _parse_const(buf, pos, start, num_states, num_arcs, aligned, what):
    """The body of a ConstFst<StdArc, uint32> binary: the states (final weight, first arc, arcs, input and output
    epsilons), then the arcs, each array at a multiple of 16 bytes when the header says aligned."""
    def align(p):
        return -(-p // 16) * 16 if aligned else p
    pos = align(pos)
    end_states = pos + num_states * CONST_STATE.itemsize
    arcs_at = align(end_states)
    if num_states < 0 or num_arcs < 0 or arcs_at + num_arcs * STD_ARC.itemsize > buf.size:
        raise ValueError(f"{what}: truncated or inconsistent ({num_states} states, {num_arcs} arcs in the header, "
                         f"{buf.size} bytes)")
    states = np.frombuffer(buf, CONST_STATE, num_states, pos)
    arcs = np.frombuffer(buf, STD_ARC, num_arcs, arcs_at)
    arc_start = np.append(states["pos"].astype(np.int64), num_arcs)
    if np.any(np.diff(arc_start) != states["narcs"]):
        raise ValueError(f"{what}: the states' arc ranges are inconsistent")
    return _checked(GraphArrays(start, states["final"].copy(), arc_start, arcs["ilabel"].copy(),
                                arcs["olabel"].copy(), arcs["weight"].copy(), arcs["nextstate"].copy()), what)


def _checked(g, what):
    """g, or ValueError naming ``what`` when its start or an arc's next state is no state of it."""
    if g.num_states and not 0 <= g.start < g.num_states or \
            g.num_arcs and (g.nextstate.min() < 0 or g.nextstate.max() >= g.num_states):
        raise ValueError(f"{what}: the start state or a next state is outside 0..{g.num_states - 1}")
    return g


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
            return parse_fst(f.read(), what="graph")


def to_vector_fst(g):
    """GraphArrays -> kaldifst.StdVectorFst (about 2 microseconds per arc)."""
    from steps_py.kaldi.bindings import kaldifst
    fst = kaldifst.StdVectorFst()
    for _ in range(g.num_states):
        fst.add_state()
    if g.num_states:
        fst.start = g.start
    for s in range(g.num_states):
        if np.isfinite(g.final[s]):
            fst.set_final(s, float(g.final[s]))
        for a in range(g.arc_start[s], g.arc_start[s + 1]):
            fst.add_arc(s, kaldifst.StdArc(int(g.ilabel[a]), int(g.olabel[a]), float(g.weight[a]),
                                           int(g.nextstate[a])))
    return fst


def read_fst(path):
    """An FST file (VectorFst or Kaldi's ConstFst, standard arcs) -> kaldifst.StdVectorFst; InputError naming the
    file when it is neither."""
    from steps_py.common import InputError
    from steps_py.kaldi.bindings import kaldifst
    with open(path, "rb") as f:
        head = f.read(64)
    if b"vector" in head[:24]:
        fst = kaldifst.StdVectorFst.read(path)
        if fst is not None:
            return fst
    try:
        with open(path, "rb") as f:
            return to_vector_fst(parse_fst(f.read(), what=path))
    except ValueError as e:
        raise InputError(f"cannot read {path}: {e}") from None
