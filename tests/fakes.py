"""Test fakes: small extraction dirs (steps_py.memvis.data format) with real or synthetic features and phone
alignments, and internals from a randomly initialised AcousticModel or synthetic ones with the value ranges of
trained cells."""
import os

import numpy as np
import torch

from steps_py.common import InputError
from steps_py.data.datadir import read_map
from steps_py.feats.pipeline import CmvnPipeline, iter_features
from steps_py.kaldi.io import read_alignments
from steps_py.memvis.data import CELL_QUANTITIES, Extraction, ExtractionWriter
from steps_py.memvis.phones import find_silence_phones, strip_position
from steps_py.nnet.config import NnetConfig
from steps_py.nnet.model import AcousticModel

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
    """Internals of a randomly initialised AcousticModel, one list of layer dicts per utterance."""
    torch.manual_seed(seed)
    cfg = NnetConfig(cell=cell, num_layers=num_layers, cell_dim=cell_dim)
    model = AcousticModel(cfg, feats_list[0].shape[1], 32).eval()
    out = []
    with torch.no_grad():
        for feats in feats_list:
            _, internals = model(torch.from_numpy(feats[None].astype(np.float32)), return_internals=True)
            out.append([{k: v[0].numpy() for k, v in layer.items()} for layer in internals])
    return out


def _cmvn_features(data_dir, num_utts):
    """The first ``num_utts`` (utt, feats [T, D] float32) of a data dir, through the networks' CMVN pipeline."""
    utts = list(read_map(os.path.join(data_dir, "feats.scp")))[:num_utts]
    return iter_features(data_dir, utts=utts, pipeline=CmvnPipeline())


def fake_extraction(out_dir, cell="lstm", num_layers=2, cell_dim=32, num_utts=6, seed=0, data_dir=None,
                    ali_dir=None, lang_dir=None, dtype="float32", use_model=True, max_frames=None):
    """Writes a small extraction for tests into ``out_dir`` and returns it loaded (Extraction).

    Features: from ``data_dir`` (a Kaldi data dir with feats.scp [+ cmvn.scp], e.g. data/train_fbank; the first
    ``num_utts`` utterances, CMVN'd per speaker) or, without one, synthetic 40-dim log-mel-like frames (150-300 per
    utterance) with silent stretches at both ends.
    Phone alignment: <ali_dir>/phone_ali.*.gz with <ali_dir>/phones.txt (silence from <lang_dir>/phones) when
    given, else fake_phone_alignment over fake_phone_table (low-energy frames become SIL).
    Internals: a randomly initialised AcousticModel when ``use_model``, else _synthetic_internals (heavy-tailed LSTM
    cells, as trained ones). ``max_frames`` cuts each utterance (keeps tests fast).
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
        alis = read_alignments(ali_dir, "phone_ali")
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
    if use_model:
        internals = _model_internals(cell, num_layers, cell_dim, feats_list, seed)
        source = "random-init AcousticModel"
    else:
        internals = [_synthetic_internals(cell, num_layers, cell_dim, f, rng) for f in feats_list]
        source = "synthetic"
    meta = {"model_dir": None, "source": "fake_extraction", "seed": seed, "internals": source,
            "features": data_dir or "synthetic", "alignment": ali_dir or "fake"}
    with ExtractionWriter(out_dir, cell, num_layers, cell_dim, quantities, dtype=dtype, meta=meta, phones=phones,
                          silence_phones=silence) as writer:
        for utt, feats, ali, layer_internals in zip(utts, feats_list, phone_list, internals):
            writer.add(utt, layer_internals, ali, words[utt], feats)
    return Extraction.load(out_dir)


def random_bundle(cell, seed=0):
    """A checkpoint.AcousticModelBundle around a randomly initialised model (no transition model needed)."""
    from steps_py.nnet.checkpoint import AcousticModelBundle
    torch.set_num_threads(1)
    torch.manual_seed(seed)
    cfg = NnetConfig(cell=cell, num_layers=2, cell_dim=16)
    model = AcousticModel(cfg, 40, 10).eval()
    return AcousticModelBundle(model, np.zeros(10, np.float32), cfg, CmvnPipeline(), None, None)
