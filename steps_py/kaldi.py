"""The one module that imports the Kaldi bindings, plus Kaldi on-disk formats for GMM systems.

Import order matters: kaldi_hmm_gmm must be imported before kaldifst/kaldilm in a process (the other order can hang),
so every step imports the bindings through this module (``from steps_py.kaldi import khg, kaldifst``).

Formats written here are Kaldi's binary formats, byte for byte as Kaldi's Write() functions produce them:
- model files (``final.mdl``): ``\\0B`` + TransitionModel + AmDiagGmm, as gmm-init-mono/gmm-est write them;
- tree files: ``\\0B`` + ContextDependency (the bindings' pickle state is exactly Kaldi's binary ContextDependency);
- alignments (``ali.N.gz``): gzipped ark of int32 vectors in BasicVectorHolder format (what copy-int-vector and
  kaldiio read), keyed by utterance id.
"""
import gzip
import os
import struct

import kaldi_hmm_gmm as khg  # noqa: I001  (must come before kaldifst)
import _kaldi_hmm_gmm as _khg  # the extension module: mle_diag_gmm_update lives only here
import kaldifst
import numpy as np

from steps_py.common import InputError, atomic_open, atomic_path
from steps_py.lang_fst import read_symbol_table

__all__ = ["khg", "_khg", "kaldifst", "Lang", "read_lang", "write_model", "read_model", "write_tree", "read_tree",
           "write_int_vectors", "read_int_vectors", "tree_from_bytes", "tree_to_bytes"]


# ---------------------------------------------------------------------------------------------------------------
# Kaldi binary primitives (src/base/io-funcs.h, src/matrix/kaldi-vector.cc)

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

    def _fail(self, what):
        raise InputError(f"{self.name}: byte {self.pos}: {what}")

    def header(self):
        if self.data[self.pos:self.pos + 2] != b"\0B":
            self._fail("not a Kaldi binary file (no \\0B header)")
        self.pos += 2

    def peek(self, n=1):
        return self.data[self.pos:self.pos + n]

    def token(self):
        end = self.data.find(b" ", self.pos)
        if end < 0:
            self._fail("expected a token")
        tok = self.data[self.pos:end].decode("latin-1")
        self.pos = end + 1
        return tok

    def expect(self, tok):
        got = self.token()
        if got != tok:
            self._fail(f"expected {tok}, got {got}")

    def basic(self, fmt):
        size = self.data[self.pos]
        want = struct.calcsize(fmt)
        if size not in (want, 256 - want):
            self._fail(f"expected a {want}-byte value, size byte is {size}")
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
            self._fail("expected an int32 vector")
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
# HMM topology (src/hmm/hmm-topology.cc)

def parse_topo_text(text):
    """Parses Kaldi's text topology into [(phones, [(forward_pdf_class, self_loop_pdf_class, [(dst, prob)])])]."""
    toks = text.split()
    entries, i = [], 0

    def need(t):
        nonlocal i
        if toks[i] != t:
            raise InputError(f"topology: expected {t}, got {toks[i]}")
        i += 1
    need("<Topology>")
    while toks[i] == "<TopologyEntry>":
        i += 1
        need("<ForPhones>")
        phones = []
        while toks[i] != "</ForPhones>":
            phones.append(int(toks[i]))
            i += 1
        i += 1
        states = []
        while toks[i] == "<State>":
            i += 2  # <State> index
            fwd = slf = -1
            trans = []
            while toks[i] != "</State>":
                if toks[i] == "<PdfClass>":
                    fwd = slf = int(toks[i + 1])
                    i += 2
                elif toks[i] == "<ForwardPdfClass>":
                    fwd = int(toks[i + 1])
                    i += 2
                elif toks[i] == "<SelfLoopPdfClass>":
                    slf = int(toks[i + 1])
                    i += 2
                elif toks[i] == "<Transition>":
                    trans.append((int(toks[i + 1]), float(toks[i + 2])))
                    i += 3
                else:
                    raise InputError(f"topology: unexpected token {toks[i]}")
            i += 1
            states.append((fwd, slf, trans))
        need("</TopologyEntry>")
        entries.append((phones, states))
    need("</Topology>")
    return entries


def topo_entries_to_text(entries):
    """The inverse of parse_topo_text (the text HmmTopology().read accepts)."""
    out = ["<Topology>"]
    for phones, states in entries:
        out += ["<TopologyEntry>", "<ForPhones>", " ".join(map(str, phones)), "</ForPhones>"]
        is_hmm = all(f == s for f, s, _ in states)
        for j, (fwd, slf, trans) in enumerate(states):
            s = f"<State> {j} "
            if fwd != -1:
                s += f"<PdfClass> {fwd} " if is_hmm else f"<ForwardPdfClass> {fwd} <SelfLoopPdfClass> {slf} "
            s += "".join(f"<Transition> {d} {p!r} " for d, p in trans)
            out.append(s + "</State>")
        out.append("</TopologyEntry>")
    out.append("</Topology>")
    return "\n".join(out) + "\n"


def topo_to_binary(entries):
    """HmmTopology::Write(binary=true) of parsed entries."""
    phones = sorted(p for ps, _ in entries for p in ps)
    phone2idx = np.full(max(phones) + 1, -1, dtype=np.int32)
    for i, (ps, _) in enumerate(entries):
        phone2idx[ps] = i
    is_hmm = all(f == s for _, states in entries for f, s, _ in states)
    b = bin_token("<Topology>") + bin_int_vector(phones) + bin_int_vector(phone2idx)
    if not is_hmm:
        b += bin_int32(-1)
    b += bin_int32(len(entries))
    for _, states in entries:
        b += bin_int32(len(states))
        for fwd, slf, trans in states:
            b += bin_int32(fwd) + (b"" if is_hmm else bin_int32(slf)) + bin_int32(len(trans))
            for dst, p in trans:
                b += bin_int32(dst) + b"\x04" + struct.pack("<f", p)
    return b + bin_token("</Topology>")


def topo_from_binary(r):
    """Reads HmmTopology binary from BinaryReader ``r`` into parsed entries."""
    r.expect("<Topology>")
    r.int_vector()
    phone2idx = r.int_vector()
    n = r.int32()
    is_hmm = n != -1
    if not is_hmm:
        n = r.int32()
    entries = []
    for i in range(n):
        states = []
        for _ in range(r.int32()):
            fwd = r.int32()
            slf = fwd if is_hmm else r.int32()
            trans = [(r.int32(), r.float32()) for _ in range(r.int32())]
            states.append((fwd, slf, trans))
        entries.append(([int(p) for p in np.flatnonzero(phone2idx == i)], states))
    r.expect("</Topology>")
    return entries


# ---------------------------------------------------------------------------------------------------------------
# Lang directory

class Lang:
    """The parts of a Kaldi lang dir (prepare_lang output) that GMM training needs. Integer ids as in phones.txt."""

    def __init__(self, lang_dir):
        def path(*p):
            f = os.path.join(lang_dir, *p)
            if not os.path.exists(f):
                raise InputError(f"no such file {f}")
            return f

        def ints(*p):
            return [int(x) for x in open(path(*p)).read().split()]

        def int_lines(*p):
            return [[int(x) for x in line.split()] for line in open(path(*p)) if line.strip()]
        self.dir = lang_dir
        self.phones = read_symbol_table(path("phones.txt"))        # name -> id
        self.words = read_symbol_table(path("words.txt"))
        self.id2phone = {i: p for p, i in self.phones.items()}
        self.topo_text = open(path("topo")).read()
        self.topo_entries = parse_topo_text(self.topo_text)
        self.topo = khg.HmmTopology()
        self.topo.read(self.topo_text)
        self.disambig_ids = ints("phones", "disambig.int")
        self.silence_ids = ints("phones", "silence.int")
        self.optional_silence_ids = ints("phones", "optional_silence.int")
        self.context_indep_ids = ints("phones", "context_indep.int")
        self.sets = int_lines("phones", "sets.int")
        self.extra_questions = int_lines("phones", "extra_questions.int") \
            if os.path.exists(os.path.join(lang_dir, "phones", "extra_questions.int")) else []
        self.roots = []                                          # [(shared, split, [phones])]
        for n, line in enumerate(open(path("phones", "roots.int")), 1):
            f = line.split()
            if not f:
                continue
            if len(f) < 3 or f[0] not in ("shared", "not-shared") or f[1] not in ("split", "not-split"):
                raise InputError(f"{path('phones', 'roots.int')}:{n}: bad line {line.strip()!r}")
            self.roots.append((f[0] == "shared", f[1] == "split", [int(x) for x in f[2:]]))
        self.oov_id = ints("oov.int")[0]
        self._L = None

    @property
    def L(self):
        """L.fst (the lexicon without disambiguation symbols), read once."""
        if self._L is None:
            f = os.path.join(self.dir, "L.fst")
            if not os.path.exists(f):
                raise InputError(f"no such file {f}")
            self._L = kaldifst.StdVectorFst.read(f)
        return self._L

    def words_to_ids(self, words):
        """Word strings -> ids, mapping unknown words to the OOV id (sym2int.pl --map-oov)."""
        return [self.words.get(w, self.oov_id) for w in words]


def read_lang(lang_dir):
    return Lang(lang_dir)


# ---------------------------------------------------------------------------------------------------------------
# Trees

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


def read_tree(path):
    try:
        data = open(path, "rb").read()
    except OSError as e:
        raise InputError(f"cannot read {path}: {e.strerror}") from None
    if data[:2] != b"\0B":
        raise InputError(f"{path}: not a binary Kaldi tree")
    return tree_from_bytes(data[2:])


# ---------------------------------------------------------------------------------------------------------------
# Models: TransitionModel + AmDiagGmm

def tm_tuples(tm):
    """[(phone, hmm_state, forward_pdf, self_loop_pdf)] per transition state (index 0 = transition state 1)."""
    return [tuple(t.__getstate__()) for t in tm.tuples]


def transition_model_to_binary(tm, topo_entries):
    tuples = tm_tuples(tm)
    is_hmm = all(f == s for _, states in topo_entries for f, s, _ in states)
    b = bin_token("<TransitionModel>") + topo_to_binary(topo_entries)
    b += bin_token("<Triples>" if is_hmm else "<Tuples>") + bin_int32(len(tuples))
    for phone, state, fwd, slf in tuples:
        b += bin_int32(phone) + bin_int32(state) + bin_int32(fwd) + (b"" if is_hmm else bin_int32(slf))
    b += bin_token("</Triples>" if is_hmm else "</Tuples>")
    b += bin_token("<LogProbs>") + bin_float_vector(np.asarray(tm.log_probs, dtype=np.float32))
    return b + bin_token("</LogProbs>") + bin_token("</TransitionModel>")


def am_to_binary(am):
    b = bin_token("<DIMENSION>") + bin_int32(am.dim) + bin_token("<NUMPDFS>") + bin_int32(am.num_pdfs)
    for p in range(am.num_pdfs):
        g = am.get_pdf(p)
        g.compute_gconsts()
        b += (bin_token("<DiagGMM>") + bin_token("<GCONSTS>") + bin_float_vector(g.gconsts)
              + bin_token("<WEIGHTS>") + bin_float_vector(g.weights)
              + bin_token("<MEANS_INVVARS>") + bin_float_matrix(g.means_invvars)
              + bin_token("<INV_VARS>") + bin_float_matrix(g.inv_vars) + bin_token("</DiagGMM>"))
    return b


def write_model(path, tm, am, topo_entries):
    """Writes a Kaldi binary GMM model file (TransitionModel + AmDiagGmm) atomically."""
    data = b"\0B" + transition_model_to_binary(tm, topo_entries) + am_to_binary(am)
    with atomic_open(path, "wb") as f:
        f.write(data)


def _non_self_loop_log_probs(tuples, state2id, log_probs, topo_entries):
    """TransitionModel::ComputeDerivedOfProbs: log(1 - self-loop prob) per transition state (index 0 unused)."""
    phone2states = {p: states for phones, states in topo_entries for p in phones}
    out = [0.0] * (len(tuples) + 1)
    for s, (phone, hmm_state, _, _) in enumerate(tuples, 1):
        for k, (dst, _) in enumerate(phone2states[phone][hmm_state][2]):
            if dst == hmm_state:
                out[s] = float(np.log1p(-np.exp(log_probs[state2id[s] + k])))
    return out


def parse_transition_model(r, read_topology=None):
    """Reads ``<TransitionModel> ... </TransitionModel>`` from a reader (BinaryReader, or a text reader with the
    same methods) -> (topology entries, tuples [(phone, hmm_state, forward_pdf, self_loop_pdf)], log_probs).
    ``read_topology(r)``: how the topology is read (default: binary)."""
    r.expect("<TransitionModel>")
    entries = (read_topology or topo_from_binary)(r)
    tag = r.token()
    if tag not in ("<Triples>", "<Tuples>"):
        r._fail(f"expected <Triples> or <Tuples>, got {tag}")
    is_hmm = tag == "<Triples>"
    tuples = []
    for _ in range(r.int32()):
        phone, state, fwd = r.int32(), r.int32(), r.int32()
        tuples.append((phone, state, fwd, fwd if is_hmm else r.int32()))
    r.expect("</Triples>" if is_hmm else "</Tuples>")
    r.expect("<LogProbs>")
    log_probs = r.float_vector()
    r.expect("</LogProbs>")
    r.expect("</TransitionModel>")
    return entries, tuples, log_probs


def read_model(path, tree):
    """Reads a Kaldi binary model file written by write_model (or Kaldi) -> (TransitionModel, AmDiagGmm, topo_entries).

    The transition model is rebuilt from ``tree`` and the file's topology, checked against the file's tuples and
    given the file's transition log-probabilities.
    """
    try:
        data = open(path, "rb").read()
    except OSError as e:
        raise InputError(f"cannot read {path}: {e.strerror}") from None
    r = BinaryReader(data, path)
    r.header()
    entries, tuples, log_probs = parse_transition_model(r)
    topo = khg.HmmTopology()
    topo.read(topo_entries_to_text(entries))
    tm = khg.TransitionModel(ctx_dep=tree, hmm_topo=topo)
    if tm_tuples(tm) != tuples:
        raise InputError(f"{path}: the model does not match the tree (different transition states)")
    state = list(tm.__getstate__())
    if len(state[6]) != len(log_probs):
        raise InputError(f"{path}: {len(log_probs)} transition log-probs, expected {len(state[6])}")
    state[6] = log_probs.tolist()
    state[7] = _non_self_loop_log_probs(tuples, state[2], log_probs, entries)
    tm = khg.TransitionModel.__new__(khg.TransitionModel)
    tm.__setstate__(tuple(state))
    r.expect("<DIMENSION>")
    r.int32()
    r.expect("<NUMPDFS>")
    num_pdfs = r.int32()
    pdfs = []
    for _ in range(num_pdfs):
        tok = r.token()
        if tok not in ("<DiagGMM>", "<DiagGMMBegin>"):
            r._fail(f"expected <DiagGMM>, got {tok}")
        parts = {}
        while True:
            tok = r.token()
            if tok in ("</DiagGMM>", "<DiagGMMEnd>"):
                break
            parts[tok] = r.float_vector() if r.peek(2) == b"FV" else r.float_matrix()
        pdfs.extend([parts["<WEIGHTS>"], parts["<INV_VARS>"], parts["<MEANS_INVVARS>"]])
    am = khg.AmDiagGmm.__new__(khg.AmDiagGmm)
    am.__setstate__(tuple(pdfs))
    am.compute_gconsts()
    return tm, am, entries


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
    """Writes {key: int vector} as a (gzipped if path ends in .gz) binary Kaldi ark, keys in the table's order."""
    with atomic_path(path) as tmp:
        opener = gzip.open if path.endswith(".gz") else open
        with opener(tmp, "wb") as f:
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
