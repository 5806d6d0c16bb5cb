"""The extraction format: recurrent-layer internals, phone alignment and features of a set of utterances on disk.

An extraction dir (exp/nnet/<name>/extract_<set>/) holds

  index.json    utts (list, extraction order), num_frames (per utt), offsets (first frame of each utt in the
                concatenated arrays, plus the total at the end: len = num_utts + 1), words ({utt: [word, ...]}),
                cell (lstm | gru | rnn | dnn), num_layers, cell_dim, quantities (e.g. ["c", "h", "i", "f", "o"]),
                dtype (float32 | float16), frame_shift (0.01 s), total_frames, model_dir, meta (free dict given
                to the writer), format_version, files ({file name: size in bytes}; a reader refuses a dir whose
                files do not match, so a killed or overwritten extraction is never read half).
  layer<k>.npz  k = 1..num_layers: one [total_frames, cell_dim] array per quantity (name -> array), frames of all
                utterances concatenated in index order; stored uncompressed, so readers memory-map them.
  phones.npz    phone_ids [total_frames] int32: position-independent phone index per frame (index into
                phone_names; -1 = frame without alignment); kaldi_phone_ids [total_frames] int32 (the ids of
                phones.txt as the alignment gave them, -1 = none); phone_names [P] str (symbols without the
                _B/_E/_I/_S word-position suffix, sorted: silence phones first, then the others alphabetically);
                is_silence [P] bool; phone_of_id [max Kaldi id + 1] int32 (Kaldi phone id -> index into
                phone_names, -1 for <eps> and disambiguation symbols).
  feats.npz     feats [total_frames, feat_dim] float32 (the network input: CMVN'd 40-dim Fbank), for spectrograms.

Frames are 10 ms. Frame t of every array lines up with frame t of the phone alignment (the model's label delay is
undone before writing; decode_nnet.AcousticModelBundle.internals does that).

Writing: ``ExtractionWriter`` streams each utterance's arrays into hidden temp files in the dir and assembles
the .npz files at ``close()``, each renamed into place, index.json last. The old index.json is deleted when a
writer starts, so a killed run leaves no readable (half old, half new) extraction.

Reading: ``Extraction.load(dir)``; ``ext.layer(k)`` -> {name: [N, H] array} (memory-mapped, read-only),
``ext.utt_slice(utt)``, ``ext.phone_ids``, ``ext.phone_names``, ``ext.feats``, ``ext.words(utt)``.

Tests: ``fake_extraction(...)`` writes a small extraction from a randomly initialised
steps_py.nnet_model.AcousticModel (or, when that module is unavailable, from synthetic arrays with the value
ranges of trained cells) with real or synthetic features and phone alignments.
"""
import json
import os
import re
import zipfile

import numpy as np

from steps_py.common import InputError, atomic_open, get_logger

log = get_logger("memory_data")

FORMAT_VERSION = 1
FRAME_SHIFT = 0.01
INDEX = "index.json"
POSITION_SUFFIX = re.compile(r"_[BEIS]$")
# Position-independent silence phone symbols assumed when no lang dir tells (Kaldi WSJ: SIL, SPN, NSN).
DEFAULT_SILENCE = ("SIL", "SPN", "NSN", "sil", "spn", "nsn", "<sil>", "<SIL>")
# Quantities of each cell type as steps_py.nnet_model returns them.
CELL_QUANTITIES = {"lstm": ("c", "h", "i", "f", "o"), "gru": ("h", "z", "r", "n"), "rnn": ("h",), "dnn": ("h",)}


# ---------------------------------------------------------------------------------------------------------------
# Phone tables

def read_phone_table(phones):
    """phones.txt (path) or a {kaldi_id: symbol} dict -> {kaldi_id: symbol}."""
    if isinstance(phones, dict):
        return {int(k): str(v) for k, v in phones.items()}
    table = {}
    try:
        lines = open(phones, encoding="utf-8").read().splitlines()
    except OSError as e:
        raise InputError(f"cannot read {phones}: {e.strerror}") from None
    for n, line in enumerate(lines, 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 2 or not parts[1].lstrip("-").isdigit():
            raise InputError(f"{phones}:{n}: expected 'symbol id', got {line!r}")
        table[int(parts[1])] = parts[0]
    return table


def strip_position(symbol):
    """AA_B -> AA; SIL -> SIL (Kaldi word-position suffixes _B/_E/_I/_S removed)."""
    return POSITION_SUFFIX.sub("", symbol)


def find_silence_phones(phones):
    """Position-independent silence symbols: <dir of phones.txt>/phones/silence.txt when it exists (a lang dir),
    else the DEFAULT_SILENCE names. ``phones`` is the path given to the writer (or a dict: defaults)."""
    if isinstance(phones, str):
        path = os.path.join(os.path.dirname(os.path.abspath(phones)), "phones", "silence.txt")
        if os.path.exists(path):
            return sorted({strip_position(line.split()[0]) for line in open(path) if line.strip()})
    return list(DEFAULT_SILENCE)


def position_independent_table(table, silence_phones):
    """{kaldi_id: symbol} -> (phone_names [P] list, is_silence [P] bool, phone_of_id [max_id + 1] int32).

    <eps> and disambiguation symbols (#0, #1, ...) map to -1. phone_names lists silence phones first, then the
    other phones alphabetically."""
    silence = set(silence_phones)
    names = {strip_position(s) for k, s in table.items() if k > 0 and not s.startswith("#") and s != "<eps>"}
    phone_names = sorted(n for n in names if n in silence) + sorted(n for n in names if n not in silence)
    index = {n: i for i, n in enumerate(phone_names)}
    phone_of_id = np.full(max(table) + 1 if table else 1, -1, dtype=np.int32)
    for k, s in table.items():
        if k > 0 and strip_position(s) in index:
            phone_of_id[k] = index[strip_position(s)]
    is_silence = np.array([n in silence for n in phone_names], dtype=bool)
    return phone_names, is_silence, phone_of_id


def read_phone_alignments(ali_dir):
    """{utt: per-frame Kaldi phone ids (int32)} from <ali_dir>/phone_ali.*.gz (as align_si writes them)."""
    from steps_py.kaldi import read_int_vectors
    files = sorted(f for f in os.listdir(ali_dir) if re.fullmatch(r"phone_ali\.\d+\.gz", f))
    if not files:
        raise InputError(f"{ali_dir}: no phone_ali.*.gz files")
    out = {}
    for f in files:
        out.update(read_int_vectors(os.path.join(ali_dir, f)))
    return out


# ---------------------------------------------------------------------------------------------------------------
# Uncompressed .npz that can be memory-mapped

def _write_npz_from_raw(path, members):
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


# ---------------------------------------------------------------------------------------------------------------
# Writer

class ExtractionWriter:
    """Writes an extraction dir (format: module docstring) one utterance at a time.

    out_dir      the extraction dir (created; an existing extraction there is replaced at close()).
    cell         lstm | gru | rnn | dnn;  num_layers, cell_dim: the model's recurrent layers and units per layer.
    quantities   names to keep from each layer's internals, e.g. ("c", "h", "i", "f", "o") for LSTM.
    dtype        'float32' or 'float16' (layer arrays; feats stay float32).
    meta         dict stored in index.json (model_dir, data_dir, ...; 'model_dir' is also copied to the top level).
    phones       phones.txt path (or {kaldi_id: symbol}) of the phone alignment's ids; needed when add() gets
                 phone ids.  silence_phones: position-independent silence symbols (default: find_silence_phones).

    Use as a context manager (close() on success, abort() on an exception), or call close() yourself.
    """

    def __init__(self, out_dir, cell, num_layers, cell_dim, quantities, dtype="float32", meta=None, phones=None,
                 silence_phones=None):
        if dtype not in ("float32", "float16"):
            raise InputError(f"dtype must be float32 or float16, got {dtype!r}")
        self.out_dir, self.cell, self.num_layers, self.cell_dim = out_dir, cell, int(num_layers), int(cell_dim)
        self.quantities, self.dtype, self.meta = list(quantities), np.dtype(dtype), dict(meta or {})
        self.phones = phones
        self.phone_table = read_phone_table(phones) if phones is not None else {}
        self.silence_phones = list(silence_phones) if silence_phones is not None else find_silence_phones(phones)
        self.utts, self.num_frames, self.words = [], [], {}
        self.feat_dim = None
        self._seen = set()
        os.makedirs(out_dir, exist_ok=True)
        index = os.path.join(out_dir, INDEX)
        if os.path.exists(index):
            os.unlink(index)  # from now on the dir holds no readable extraction until close() finishes
        self._raw = {}
        for k in range(1, self.num_layers + 1):
            for q in self.quantities:
                self._raw[(k, q)] = self._tmp(f"layer{k}.{q}")
        self._raw["feats"] = self._tmp("feats")
        self._raw["kaldi_phone_ids"] = self._tmp("kaldi_phone_ids")
        self._files = {key: open(path, "wb") for key, path in self._raw.items()}

    def _tmp(self, name):
        return os.path.join(self.out_dir, f".{name}.{os.getpid()}.raw.tmp")

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def add(self, utt, internals, phone_ids, words, feats):
        """Appends one utterance.

        internals  list over layers 1..L of {name: array [T, cell_dim]} (numpy or torch; extra names ignored).
        phone_ids  [T] Kaldi phone ids (of ``phones``) per frame, or None (no alignment: stored as -1).
        words      list of words (the transcript) or None.
        feats      [T, feat_dim] features (the network input).
        """
        if utt in self._seen:
            raise InputError(f"utterance {utt} added twice")
        feats = np.asarray(feats, dtype=np.float32)
        if feats.ndim != 2:
            raise InputError(f"{utt}: feats must be [T, dim], got shape {feats.shape}")
        num_frames = feats.shape[0]
        if self.feat_dim is None:
            self.feat_dim = feats.shape[1]
        elif feats.shape[1] != self.feat_dim:
            raise InputError(f"{utt}: feature dim {feats.shape[1]}, earlier utterances {self.feat_dim}")
        if len(internals) != self.num_layers:
            raise InputError(f"{utt}: internals of {len(internals)} layers, expected {self.num_layers}")
        arrays = {}
        for k, layer in enumerate(internals, 1):
            for q in self.quantities:
                if q not in layer:
                    raise InputError(f"{utt}: layer {k} has no {q!r} (has {', '.join(layer)})")
                a = layer[q]
                if hasattr(a, "detach"):
                    a = a.detach().cpu().numpy()
                a = np.asarray(a)
                if a.ndim == 3 and a.shape[0] == 1:
                    a = a[0]
                if a.shape != (num_frames, self.cell_dim):
                    raise InputError(f"{utt}: layer {k} {q} has shape {a.shape}, expected "
                                     f"({num_frames}, {self.cell_dim})")
                arrays[(k, q)] = a
        if phone_ids is None:
            kaldi_ids = np.full(num_frames, -1, dtype=np.int32)
        else:
            kaldi_ids = np.asarray(phone_ids, dtype=np.int32)
            if kaldi_ids.shape != (num_frames,):
                raise InputError(f"{utt}: phone alignment has {kaldi_ids.size} frames, features {num_frames}")
            if not self.phone_table:
                raise InputError(f"{utt}: phone ids given but the writer has no phone table (phones=...)")
            unknown = set(np.unique(kaldi_ids).tolist()) - set(self.phone_table) - {-1}
            if unknown:
                raise InputError(f"{utt}: phone ids {sorted(unknown)[:5]} not in {self.phones}")
        for key, a in arrays.items():
            self._files[key].write(np.ascontiguousarray(a, dtype=self.dtype.newbyteorder("<")).tobytes())
        self._files["feats"].write(np.ascontiguousarray(feats, dtype="<f4").tobytes())
        self._files["kaldi_phone_ids"].write(kaldi_ids.astype("<i4").tobytes())
        self._seen.add(utt)
        self.utts.append(utt)
        self.num_frames.append(int(num_frames))
        self.words[utt] = list(words or [])

    def abort(self):
        """Closes and deletes the temp files (nothing readable is left)."""
        for f in self._files.values():
            f.close()
        for path in self._raw.values():
            if os.path.exists(path):
                os.unlink(path)

    def close(self):
        """Writes layer<k>.npz, phones.npz, feats.npz and finally index.json (each atomically)."""
        for f in self._files.values():
            f.close()
        try:
            self._finish()
        finally:
            for path in self._raw.values():
                if os.path.exists(path):
                    os.unlink(path)

    def _finish(self):
        total = int(sum(self.num_frames))
        d = self.out_dir
        files = []
        for k in range(1, self.num_layers + 1):
            _write_npz_from_raw(os.path.join(d, f"layer{k}.npz"),
                                [(q, self.dtype.newbyteorder("<"), (total, self.cell_dim), self._raw[(k, q)])
                                 for q in self.quantities])
            files.append(f"layer{k}.npz")
        for stale in os.listdir(d):  # layers of an earlier, deeper extraction in the same dir
            m = re.fullmatch(r"layer(\d+)\.npz", stale)
            if m and int(m.group(1)) > self.num_layers:
                os.unlink(os.path.join(d, stale))
        kaldi_ids = np.fromfile(self._raw["kaldi_phone_ids"], dtype="<i4")
        phone_names, is_silence, phone_of_id = position_independent_table(self.phone_table, self.silence_phones)
        phone_ids = np.where(kaldi_ids >= 0, phone_of_id[np.clip(kaldi_ids, 0, None)], -1).astype(np.int32)
        if np.any((kaldi_ids > 0) & (phone_ids < 0)):
            bad = sorted(set(kaldi_ids[(kaldi_ids > 0) & (phone_ids < 0)].tolist()))
            raise InputError(f"alignment holds ids {bad[:5]} that are not phones in {self.phones}")
        names = np.array(phone_names if phone_names else [], dtype=str)
        _write_npz_from_raw(os.path.join(d, "phones.npz"), [
            ("phone_ids", "<i4", phone_ids.shape, phone_ids),
            ("kaldi_phone_ids", "<i4", kaldi_ids.shape, kaldi_ids),
            ("phone_names", names.dtype, names.shape, names),
            ("is_silence", "|b1", is_silence.shape, is_silence),
            ("phone_of_id", "<i4", phone_of_id.shape, phone_of_id)])
        files.append("phones.npz")
        _write_npz_from_raw(os.path.join(d, "feats.npz"),
                            [("feats", "<f4", (total, self.feat_dim or 0), self._raw["feats"])])
        files.append("feats.npz")
        offsets = np.concatenate([[0], np.cumsum(self.num_frames, dtype=np.int64)]).tolist()
        index = {
            "format_version": FORMAT_VERSION, "cell": self.cell, "num_layers": self.num_layers,
            "cell_dim": self.cell_dim, "quantities": self.quantities, "dtype": self.dtype.name,
            "frame_shift": FRAME_SHIFT, "feat_dim": self.feat_dim or 0, "total_frames": total,
            "model_dir": self.meta.get("model_dir"), "meta": self.meta,
            "utts": self.utts, "num_frames": self.num_frames, "offsets": offsets, "words": self.words,
            "files": {f: os.path.getsize(os.path.join(d, f)) for f in files},
        }
        with atomic_open(os.path.join(d, INDEX)) as f:
            json.dump(index, f, indent=1)
        log.info(f"wrote {d}: {len(self.utts)} utterances, {total} frames, {self.num_layers} layers x "
                 f"{self.cell_dim} {self.cell} units ({', '.join(self.quantities)}), {self.dtype.name}")


# ---------------------------------------------------------------------------------------------------------------
# Reader

class Extraction:
    """A loaded extraction dir (see the module docstring). Build with ``Extraction.load(dir)``.

    Attributes: dir, utts (list), num_frames (int64 [U]), offsets (int64 [U + 1]), total_frames, cell,
    num_layers, cell_dim, quantities, dtype, frame_shift (s), feat_dim, model_dir, meta, index (the raw dict).
    Arrays (loaded on first use, memory-mapped where possible, read-only):
      layer(k) -> {name: [N, H]} (k = 1..num_layers);  feats [N, feat_dim];
      phone_ids [N] int32 (index into phone_names, -1 = no alignment); kaldi_phone_ids [N] int32;
      phone_names (list of P position-independent symbols); is_silence [P] bool; phone_of_id (Kaldi id -> index).
    Derived per frame: utt_index [N] (index into utts), relative_position [N] (t / (T - 1) in [0, 1]),
    silence_frames [N] bool, aligned_frames [N] bool.
    """

    def __init__(self, directory, index):
        self.dir, self.index = directory, index
        self.utts = list(index["utts"])
        self.num_frames = np.asarray(index["num_frames"], dtype=np.int64)
        self.offsets = np.asarray(index["offsets"], dtype=np.int64)
        self.total_frames = int(index["total_frames"])
        self.cell, self.num_layers, self.cell_dim = index["cell"], int(index["num_layers"]), int(index["cell_dim"])
        self.quantities, self.dtype = list(index["quantities"]), index["dtype"]
        self.frame_shift, self.feat_dim = float(index["frame_shift"]), int(index.get("feat_dim", 0))
        self.model_dir, self.meta = index.get("model_dir"), index.get("meta", {})
        self._utt_pos = {u: i for i, u in enumerate(self.utts)}
        self._layers, self._phones, self._feats = {}, None, None

    @classmethod
    def load(cls, directory):
        """Opens an extraction dir; InputError when index.json is missing or a file does not match it."""
        path = os.path.join(directory, INDEX)
        if not os.path.exists(path):
            raise InputError(f"{directory}: no {INDEX} (not an extraction, or its writing did not finish)")
        try:
            index = json.load(open(path, encoding="utf-8"))
        except ValueError as e:
            raise InputError(f"{path}: {e}") from None
        if index.get("format_version") != FORMAT_VERSION:
            raise InputError(f"{path}: format_version {index.get('format_version')}, expected {FORMAT_VERSION}")
        for name, size in index["files"].items():
            f = os.path.join(directory, name)
            if not os.path.exists(f) or os.path.getsize(f) != size:
                raise InputError(f"{f}: missing or not the size index.json records ({size} bytes); "
                                 "the extraction is incomplete, re-run it")
        return cls(directory, index)

    def __repr__(self):
        return (f"Extraction({self.dir!r}: {len(self.utts)} utts, {self.total_frames} frames, {self.num_layers} x "
                f"{self.cell_dim} {self.cell}, {self.quantities})")

    # -- arrays
    def layer(self, k):
        """{quantity: [N, cell_dim] array} of layer k (1-based), memory-mapped."""
        if not 1 <= k <= self.num_layers:
            raise InputError(f"{self.dir}: layer {k} out of range 1..{self.num_layers}")
        if k not in self._layers:
            path = os.path.join(self.dir, f"layer{k}.npz")
            self._layers[k] = {q: load_npz_member(path, q) for q in self.quantities}
        return self._layers[k]

    def values(self, k, quantity, frames=None, dtype=np.float32):
        """layer(k)[quantity] (rows ``frames``: slice, index array or None for all) as an in-memory ``dtype``
        array [n, cell_dim]."""
        a = self.layer(k)[quantity]
        return np.asarray(a if frames is None else a[frames], dtype=dtype)

    def _load_phones(self):
        if self._phones is None:
            path = os.path.join(self.dir, "phones.npz")
            with np.load(path, allow_pickle=False) as z:
                self._phones = {n: z[n] for n in z.files}
        return self._phones

    @property
    def phone_ids(self):
        return self._load_phones()["phone_ids"]

    @property
    def kaldi_phone_ids(self):
        return self._load_phones()["kaldi_phone_ids"]

    @property
    def phone_names(self):
        return [str(s) for s in self._load_phones()["phone_names"]]

    @property
    def is_silence(self):
        return self._load_phones()["is_silence"]

    @property
    def phone_of_id(self):
        return self._load_phones()["phone_of_id"]

    @property
    def has_phones(self):
        """True when at least one frame has a phone alignment."""
        return bool(np.any(self.phone_ids >= 0))

    @property
    def aligned_frames(self):
        """[N] bool: frames with a phone."""
        return self.phone_ids >= 0

    @property
    def silence_frames(self):
        """[N] bool: frames aligned to a silence phone (SIL, SPN, NSN, ... as phones/silence.txt says)."""
        ids = self.phone_ids
        return (ids >= 0) & self.is_silence[np.clip(ids, 0, None)] if len(self.is_silence) else ids < -1

    @property
    def feats(self):
        if self._feats is None:
            self._feats = load_npz_member(os.path.join(self.dir, "feats.npz"), "feats")
        return self._feats

    # -- utterances
    def utt_slice(self, utt):
        """slice of ``utt``'s frames in the concatenated arrays."""
        try:
            i = self._utt_pos[utt]
        except KeyError:
            raise InputError(f"{self.dir}: no utterance {utt}") from None
        return slice(int(self.offsets[i]), int(self.offsets[i + 1]))

    def words(self, utt):
        """The utterance's transcript, a list of words (empty when none was given)."""
        self.utt_slice(utt)
        return list(self.index["words"].get(utt, []))

    @property
    def utt_index(self):
        """[N] int32: index (into utts) of each frame's utterance."""
        return np.repeat(np.arange(len(self.utts), dtype=np.int32), self.num_frames)

    @property
    def relative_position(self):
        """[N] float32: t / (T - 1) of each frame within its utterance (0 at the start, 1 at the end)."""
        t = np.arange(self.total_frames, dtype=np.int64) - np.repeat(self.offsets[:-1], self.num_frames)
        denom = np.repeat(np.maximum(self.num_frames - 1, 1), self.num_frames)
        return (t / denom).astype(np.float32)

    def phone_segments(self, utt):
        """[(start, end, phone_name)] runs of equal position-independent phone in ``utt`` (frames relative to the
        utterance start, end exclusive; name None for frames without alignment)."""
        ids = self.phone_ids[self.utt_slice(utt)]
        names = self.phone_names
        return [(s, e, names[p] if p >= 0 else None) for s, e, p in runs(ids)]


def runs(values):
    """[(start, end, value)] of the runs of equal values in a 1-D array (end exclusive)."""
    values = np.asarray(values)
    if values.size == 0:
        return []
    change = np.flatnonzero(values[1:] != values[:-1]) + 1
    starts = np.concatenate([[0], change])
    ends = np.concatenate([change, [values.size]])
    return [(int(s), int(e), values[s].item()) for s, e in zip(starts, ends)]


# ---------------------------------------------------------------------------------------------------------------
# Small extractions for tests

FAKE_PHONES = ["SIL", "SPN", "AA", "AE", "AH", "B", "D", "EH", "IY", "K", "L", "M", "N", "S", "T", "UW"]


def fake_phone_table():
    """{kaldi_id: symbol} of a small Kaldi-style phone set (silence phones plain + _B/_E/_I/_S, the others with
    position suffixes only, then #0, #1) as prepare_lang would number it."""
    table, k = {0: "<eps>"}, 1
    for p in FAKE_PHONES:
        for s in ([p] if p in ("SIL", "SPN") else []) + [f"{p}_{x}" for x in "BEIS"]:
            table[k] = s
            k += 1
    for d in ("#0", "#1"):
        table[k] = d
        k += 1
    return table


def fake_phone_alignment(num_frames, table, rng, silence_frames=None):
    """Per-frame Kaldi phone ids [T]: leading and trailing SIL, then phone segments of 3-12 frames; frames marked
    in ``silence_frames`` (bool [T]) become SIL too."""
    by_name = {}
    for k, s in table.items():
        by_name.setdefault(strip_position(s), []).append(k)
    speech = [p for p in FAKE_PHONES if p not in ("SIL", "SPN")]
    sil = next(k for k, s in table.items() if s == "SIL")
    ids = np.full(num_frames, sil, dtype=np.int32)
    lead = min(num_frames // 4, int(rng.integers(5, 20)))
    t = lead
    while t < num_frames - lead:
        n = int(rng.integers(3, 13))
        phone = speech[int(rng.integers(len(speech)))] if rng.random() > 0.05 else "SIL"
        ids[t:min(t + n, num_frames - lead)] = by_name[phone][int(rng.integers(len(by_name[phone])))]
        t += n
    if silence_frames is not None:
        ids[np.asarray(silence_frames, dtype=bool)] = sil
    return ids


def _synthetic_internals(cell, num_layers, cell_dim, feats, rng):
    """Arrays with the value ranges of trained cells, driven by the features: LSTM c heavy-tailed (a leaky sum of
    input projections, some units with large gain), gates in (0, 1); GRU h in [-1, 1] piling up near +-1."""
    num_frames = feats.shape[0]
    x = (feats - feats.mean(0)) / (feats.std(0) + 1e-3)
    out = []
    for _ in range(num_layers):
        proj = x @ rng.normal(0, 1 / np.sqrt(x.shape[1]), (x.shape[1], cell_dim))
        leak = rng.uniform(0.5, 0.99, cell_dim)
        state = np.zeros((num_frames, cell_dim))
        s = np.zeros(cell_dim)
        for t in range(num_frames):
            s = leak * s + proj[t]
            state[t] = s
        sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
        if cell == "lstm":
            gain = np.where(rng.random(cell_dim) < 0.1, rng.uniform(5, 30, cell_dim), rng.uniform(0.2, 1.5, cell_dim))
            c = state * gain / np.sqrt(1 / (1 - leak ** 2))
            layer = {"c": c, "h": np.tanh(c) * sig(proj), "i": sig(2 * proj), "f": sig(3 * leak - 1 + 0 * proj),
                     "o": sig(proj + 1)}
        elif cell == "gru":
            h = np.tanh(3 * state / np.sqrt(1 / (1 - leak ** 2)))
            layer = {"h": h, "z": sig(2 * proj), "r": sig(proj), "n": np.tanh(proj)}
        else:
            layer = {"h": np.tanh(proj)}
        out.append({k: v.astype(np.float32) for k, v in layer.items()})
        x = out[-1]["h"]
    return out


def _model_internals(cell, num_layers, cell_dim, feats_list, seed):
    """Internals of a randomly initialised steps_py.nnet_model.AcousticModel (None if the module is missing or its
    interface differs)."""
    try:
        import torch

        from steps_py import nnet_model
        torch.manual_seed(seed)
        cfg = nnet_model.NnetConfig(cell=cell, num_layers=num_layers, cell_dim=cell_dim)
        model = nnet_model.AcousticModel(cfg, feats_list[0].shape[1], 32).eval()
        out = []
        with torch.no_grad():
            for feats in feats_list:
                _, internals = model(torch.from_numpy(feats[None].astype(np.float32)), return_internals=True)
                out.append([{k: v[0].numpy() for k, v in layer.items()} for layer in internals])
        return out
    except Exception as e:  # noqa: BLE001  (the model module is optional here)
        log.info(f"no random-init model ({type(e).__name__}: {e}); using synthetic cell values")
        return None


def _cmvn_features(data_dir, num_utts):
    """The first ``num_utts`` (utt, feats [T, D] float32) of a data dir, mean-normalised per speaker with cmvn.scp
    (as the networks' default cmvn_opts) when it exists."""
    import kaldiio

    from steps_py.datadir import read_map
    scp = read_map(os.path.join(data_dir, "feats.scp"))
    cmvn_scp = os.path.join(data_dir, "cmvn.scp")
    cmvn = read_map(cmvn_scp) if os.path.exists(cmvn_scp) else {}
    utt2spk = read_map(os.path.join(data_dir, "utt2spk")) if cmvn else {}
    for utt in list(scp)[:num_utts]:
        feats = np.asarray(kaldiio.load_mat(scp[utt]), dtype=np.float32)
        spk = utt2spk.get(utt)
        if spk in cmvn:
            stats = np.asarray(kaldiio.load_mat(cmvn[spk]), dtype=np.float64)
            feats = (feats - stats[0, :-1] / stats[0, -1]).astype(np.float32)
        yield utt, feats


def fake_extraction(out_dir, cell="lstm", num_layers=2, cell_dim=32, num_utts=6, seed=0, data_dir=None,
                    ali_dir=None, lang_dir=None, dtype="float32", use_model=True, max_frames=None):
    """Writes a small extraction for tests into ``out_dir`` and returns it loaded (Extraction).

    Features: from ``data_dir`` (a Kaldi data dir with feats.scp [+ cmvn.scp], e.g. data/train_fbank; the first
    ``num_utts`` utterances, CMVN'd per speaker) or, without one, synthetic 40-dim log-mel-like frames (150-300 per
    utterance) with silent stretches at both ends.
    Phone alignment: <ali_dir>/phone_ali.*.gz with <ali_dir>/phones.txt (silence from <lang_dir>/phones) when
    given, else fake_phone_alignment over fake_phone_table (low-energy frames become SIL).
    Internals: a randomly initialised steps_py.nnet_model.AcousticModel when ``use_model`` and the module works,
    else _synthetic_internals. ``max_frames`` cuts each utterance (keeps tests fast).
    """
    rng = np.random.default_rng(seed)
    utts, feats_list, words = [], [], {}
    if data_dir:
        for utt, feats in _cmvn_features(data_dir, num_utts):
            utts.append(utt)
            feats_list.append(feats[:max_frames] if max_frames else feats)
        text = os.path.join(data_dir, "text")
        if os.path.exists(text):
            for line in open(text, encoding="utf-8"):
                parts = line.split()
                if parts and parts[0] in utts:
                    words[parts[0]] = parts[1:]
    else:
        for u in range(num_utts):
            num_frames = int(rng.integers(150, 301))
            if max_frames:
                num_frames = min(num_frames, max_frames)
            energy = np.ones(num_frames)
            lead = min(num_frames // 5, 15)
            energy[:lead] = energy[num_frames - lead:] = 0.1
            bands = np.cumsum(rng.normal(0, 0.3, (num_frames, 40)), axis=0) * 0.2 + rng.normal(0, 1, 40)
            feats = (bands + rng.normal(0, 0.5, (num_frames, 40))) * energy[:, None] + 5 * energy[:, None]
            feats -= feats.mean(0)  # as after CMVN
            utts.append(f"fake{u:03d}")
            feats_list.append(feats.astype(np.float32))
            words[utts[-1]] = ["WORD", f"W{u}"]
    if ali_dir:
        phones = os.path.join(ali_dir, "phones.txt")
        silence = find_silence_phones(os.path.join(lang_dir, "phones.txt")) if lang_dir else None
        alis = read_phone_alignments(ali_dir)
        phone_list = []
        for utt, feats in zip(utts, feats_list):
            ali = alis.get(utt)
            if ali is not None and len(ali) >= len(feats):
                ali = ali[:len(feats)]
            elif ali is not None:
                raise InputError(f"{ali_dir}: alignment of {utt} has {len(ali)} frames, features {len(feats)}")
            phone_list.append(ali)
    else:
        phones, silence = fake_phone_table(), None
        phone_list = []
        for feats in feats_list:
            e = feats.mean(1)
            phone_list.append(fake_phone_alignment(len(feats), phones, rng,
                                                   silence_frames=e < np.percentile(e, 10)))
    quantities = CELL_QUANTITIES[cell]
    internals = _model_internals(cell, num_layers, cell_dim, feats_list, seed) if use_model else None
    source = "random-init AcousticModel"
    if internals is None:
        internals = [_synthetic_internals(cell, num_layers, cell_dim, f, rng) for f in feats_list]
        source = "synthetic"
    meta = {"model_dir": None, "source": "fake_extraction", "seed": seed, "internals": source,
            "features": data_dir or "synthetic", "alignment": ali_dir or "fake"}
    with ExtractionWriter(out_dir, cell, num_layers, cell_dim, quantities, dtype=dtype, meta=meta, phones=phones,
                          silence_phones=silence) as writer:
        for utt, feats, ali, layer_internals in zip(utts, feats_list, phone_list, internals):
            writer.add(utt, layer_internals, ali, words[utt], feats)
    return Extraction.load(out_dir)
