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
undone before writing; steps_py.nnet.checkpoint.AcousticModelBundle.internals does that).

Writing: ``ExtractionWriter`` streams each utterance's arrays into hidden temp files in the dir and assembles
the .npz files at ``close()``, each renamed into place, index.json last. The old index.json is deleted when a
writer starts, so a killed run leaves no readable (half old, half new) extraction.

Reading: ``Extraction.load(dir)``; ``ext.layer(k)`` -> {name: [N, H] array} (memory-mapped, read-only),
``ext.utt_slice(utt)``, ``ext.phone_ids``, ``ext.phone_names``, ``ext.feats``, ``ext.words(utt)``.

Phone tables are steps_py.memvis.phones', the memory-mapped .npz files steps_py.memvis.npz's.
"""
import contextlib
import json
import os
import re

import numpy as np

from steps_py.common import InputError, atomic_open, get_logger, read_json, writing
from steps_py.kaldi.symbols import read_symbol_table
from steps_py.memvis.npz import load_npz_member, write_npz_from_raw
from steps_py.memvis.phones import find_silence_phones, position_independent_table

log = get_logger("memvis.data")

FORMAT_VERSION = 1
FRAME_SHIFT = 0.01
INDEX = "index.json"
# Quantities of each cell type as steps_py.nnet.model returns them.
CELL_QUANTITIES = {"lstm": ("c", "h", "i", "f", "o"), "gru": ("h", "z", "r", "n"), "rnn": ("h",), "dnn": ("h",)}


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
        self.phone_table = ({int(k): str(v) for k, v in phones.items()} if isinstance(phones, dict) else
                            read_symbol_table(phones, by_id=True) if phones is not None else {})
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
        with writing(f"the extraction in {self.out_dir}"):
            for key, a in arrays.items():
                self._files[key].write(np.ascontiguousarray(a, dtype=self.dtype.newbyteorder("<")).tobytes())
            self._files["feats"].write(np.ascontiguousarray(feats, dtype="<f4").tobytes())
            self._files["kaldi_phone_ids"].write(kaldi_ids.astype("<i4").tobytes())
        self._seen.add(utt)
        self.utts.append(utt)
        self.num_frames.append(int(num_frames))
        self.words[utt] = list(words or [])

    def abort(self):
        """Closes and deletes the temp files (nothing readable is left), also when a close fails (on a full disk
        the flush of the last bytes does)."""
        for f in self._files.values():
            with contextlib.suppress(OSError):
                f.close()
        for path in self._raw.values():
            if os.path.exists(path):
                os.unlink(path)

    def close(self):
        """Writes layer<k>.npz, phones.npz, feats.npz and finally index.json (each atomically); the temp files are
        deleted whether that succeeds or not."""
        try:
            with writing(f"the extraction in {self.out_dir}"):
                for f in self._files.values():
                    f.close()
            self._finish()
        finally:
            self.abort()

    def _finish(self):
        total = int(sum(self.num_frames))
        d = self.out_dir
        files = []
        for k in range(1, self.num_layers + 1):
            write_npz_from_raw(os.path.join(d, f"layer{k}.npz"),
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
        write_npz_from_raw(os.path.join(d, "phones.npz"), [
            ("phone_ids", "<i4", phone_ids.shape, phone_ids),
            ("kaldi_phone_ids", "<i4", kaldi_ids.shape, kaldi_ids),
            ("phone_names", names.dtype, names.shape, names),
            ("is_silence", "|b1", is_silence.shape, is_silence),
            ("phone_of_id", "<i4", phone_of_id.shape, phone_of_id)])
        files.append("phones.npz")
        write_npz_from_raw(os.path.join(d, "feats.npz"),
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
        index = read_json(path)
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
