"""Kaldi tree files (ContextDependency), binary and text (``copy-tree --binary=false``).

The bindings' pickle state of a khg.ContextDependency is exactly Kaldi's binary ContextDependency, so a tree file is
``\\0B`` + those bytes; text trees are converted to the binary form token by token (src/tree/event-map.cc).
"""
import numpy as np

from steps_py.common import InputError, atomic_open
from steps_py.kaldi.bindings import khg
from steps_py.kaldi.io import BinaryReader, TextReader, bin_int32, bin_int_vector, bin_token, is_binary, read_bytes


def tree_to_bytes(tree):
    """Kaldi binary ContextDependency (no \\0B header) of a khg.ContextDependency."""
    return np.asarray(tree.__getstate__()[0], dtype=np.int8).tobytes()


def tree_from_bytes(data):
    """khg.ContextDependency from Kaldi binary ContextDependency bytes (without the \\0B header)."""
    tree = khg.ContextDependency.__new__(khg.ContextDependency)
    tree.__setstate__((np.frombuffer(data, dtype=np.int8).tolist(),))
    return tree


def write_tree(path, tree_or_bytes):
    data = tree_or_bytes if isinstance(tree_or_bytes, bytes) else tree_to_bytes(tree_or_bytes)
    with atomic_open(path, "wb") as f:
        f.write(b"\0B" + data)


def _event_map_text_to_binary(r):
    """One EventMap from TextReader ``r`` -> Kaldi binary bytes (src/tree/event-map.cc Write(binary=true))."""
    tok = r.token()
    if tok == "NULL":
        return bin_token("NULL")
    if tok == "CE":
        return bin_token("CE") + bin_int32(r.int32())
    if tok == "TE":
        key, size = r.int32(), r.int32()
        r.expect("(")
        parts = [_event_map_text_to_binary(r) for _ in range(size)]
        r.expect(")")
        return bin_token("TE") + bin_int32(key) + b"\xfc" + int(size).to_bytes(4, "little") + bin_token("(") \
            + b"".join(parts) + bin_token(")")
    if tok == "SE":
        key = r.int32()
        yes_set = r.int_vector()
        r.expect("{")
        yes = _event_map_text_to_binary(r)
        no = _event_map_text_to_binary(r)
        r.expect("}")
        return bin_token("SE") + bin_int32(key) + bin_int_vector(yes_set) + bin_token("{") + yes + no \
            + bin_token("}")
    r.i -= 1
    r.fail(f"expected an event map (NULL, CE, TE or SE), got {tok}")


def tree_text_to_binary(text, name="<tree>"):
    """Kaldi text ContextDependency (``ContextDependency 3 1 ToPdf TE ... EndContextDependency``) -> the binary
    ContextDependency bytes (without the \\0B header) that tree_from_bytes loads."""
    r = TextReader(text, name)
    r.expect("ContextDependency")
    width, central = r.int32(), r.int32()
    r.expect("ToPdf")
    body = _event_map_text_to_binary(r)
    r.expect("EndContextDependency")
    return (bin_token("ContextDependency") + bin_int32(width) + bin_int32(central) + bin_token("ToPdf") + body
            + bin_token("EndContextDependency"))


def _event_map_binary_to_text(r, out):
    tok = r.token()
    if tok == "NULL":
        out.append("NULL")
    elif tok == "CE":
        out.append(f"CE {r.int32()}")
    elif tok == "TE":
        key, size = r.int32(), r.uint32()
        r.expect("(")
        out.append(f"TE {key} {size} (")
        for _ in range(size):
            _event_map_binary_to_text(r, out)
        r.expect(")")
        out.append(")\n")
    elif tok == "SE":
        key = r.int32()
        yes_set = r.int_vector()
        r.expect("{")
        out.append(f"SE {key} [ {' '.join(map(str, yes_set))} ]\n{{")
        _event_map_binary_to_text(r, out)
        _event_map_binary_to_text(r, out)
        r.expect("}")
        out.append("}\n")
    else:
        r.fail(f"expected an event map, got {tok}")


def tree_to_text(tree):
    """khg.ContextDependency -> Kaldi text form (what ``copy-tree --binary=false`` prints)."""
    r = BinaryReader(tree_to_bytes(tree), "<tree>")
    r.expect("ContextDependency")
    out = [f"ContextDependency {r.int32()} {r.int32()}"]
    r.expect("ToPdf")
    out.append("ToPdf")
    _event_map_binary_to_text(r, out)
    r.expect("EndContextDependency")
    return " ".join(out) + " EndContextDependency \n"


def read_tree(path):
    """A Kaldi tree file, binary or text (``copy-tree --binary=false``) -> khg.ContextDependency."""
    data = read_bytes(path)
    if is_binary(data):
        return tree_from_bytes(data[2:])
    text = data.decode("latin-1")
    if not text.lstrip().startswith("ContextDependency"):
        raise InputError(f"{path}: not a Kaldi tree (neither binary nor text ContextDependency)")
    return tree_from_bytes(tree_text_to_binary(text, path))
