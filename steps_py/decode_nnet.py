"""Hybrid decoding with a trained acoustic model: (log-posterior - log-prior) per pdf, then Kaldi's decoder.

Usage: python -m steps_py.decode_nnet [--nj N] [--cmd run.py] [--config conf/decode_nnet.conf]
           [--write-loglikes] [--iter final] <graph-dir> <data-dir> <nnet-dir> <decode-dir>
  e.g. python -m steps_py.decode_nnet --nj 2 exp/tri2b/graph_tgpr data/dev_fbank exp/nnet/lstm_2l \\
           exp/nnet/lstm_2l/decode_tgpr_dev

<nnet-dir> is what steps_py.train_nnet wrote: final.pt, prior.vec, cmvn_opts, and final.mdl + tree (the transition
model of the alignments the model was trained on; the graph must be built from the same tree). Jobs compute the
log-likelihoods of their utterances in length-sorted batches (one forward per batch, no per-frame Python loop),
then decode them with steps_py.decoding (kaldi-decoder) and are scored and summarised exactly like the GMM decodes
(<decode-dir>/wer_<LMWT>_<WIP>, best_wer). --write-loglikes also writes <decode-dir>/loglikes.JOB.{ark,scp}: Kaldi
float matrices [T, num_pdfs] that Kaldi's latgen-faster-mapped decodes (with the same final.mdl and HCLG.fst).

Memory extraction at decode time: --extract-dir DIR --extract-utts N [--extract-ali-dir exp/tri2b_ali_<set>]
keeps, for the first N utterances of the data dir (sorted ids), every layer's cells, gates and outputs from the
same forward pass that feeds the decoder, with the frame-level phone alignment (phone_ali.*.gz of the alignment
dir), the reference words and the input features, in the format of steps_py.memory_data (each job writes a part,
merged into DIR at the end).
"""
import argparse
import dataclasses
import os
import sys
import time

import numpy as np

from steps_py import decode as gmm_decode
from steps_py import decoding
from steps_py.common import InputError, atomic_path, get_logger, run_main
from steps_py.datadir import read_map

log = get_logger("decode_nnet")


# ----------------------------------------------------------------------------------------------- model application

def _pad_batch(feats_list, extra_frames):
    """[T_i, D] arrays -> padded float32 batch [B, max T_i + extra_frames, D]; each utterance's last frame repeated
    over its padding (the label-delay frames after the end see a steady input, as Kaldi's nnet3-compute pads)."""
    T = max(len(x) for x in feats_list) + extra_frames
    out = np.empty((len(feats_list), T, feats_list[0].shape[1]), np.float32)
    for b, x in enumerate(feats_list):
        out[b, :len(x)] = x
        out[b, len(x):] = x[-1]
    return out


def forward_utterances(model, feats_list, label_delay, return_internals=False, batch_frames=20000):
    """Applies ``model`` to whole utterances -> list of (log_posteriors [T_i, P] float32, internals or None).

    The output at position t predicts the label of frame t - label_delay, so each utterance is padded with
    label_delay frames and its outputs are shifted back: row t of the result belongs to frame t. Internals (per
    layer dict name -> [T_i, H] float32) get the same shift. Utterances are batched by length, at most
    ``batch_frames`` padded frames per forward.
    """
    import torch
    order = np.argsort([-len(x) for x in feats_list], kind="stable")
    results = [None] * len(feats_list)
    i = 0
    with torch.no_grad():
        while i < len(order):
            T0 = len(feats_list[order[i]]) + label_delay
            n = max(1, min(len(order) - i, batch_frames // max(T0, 1)))
            idx = order[i:i + n]
            batch = torch.from_numpy(_pad_batch([feats_list[j] for j in idx], label_delay))
            if return_internals:
                logits, internals = model(batch, return_internals=True)
            else:
                logits, internals = model(batch), None
            logp = torch.log_softmax(logits, dim=-1).numpy()
            for b, j in enumerate(idx):
                T = len(feats_list[j])
                sl = slice(label_delay, label_delay + T)
                layers = None
                if internals is not None:
                    layers = [{name: v[b, sl].numpy() for name, v in layer.items()} for layer in internals]
                results[j] = (logp[b, sl], layers)
            i += n
    return results


# ----------------------------------------------------------------------------------------------- model dir

def write_kaldi_vector(path, values):
    """A Kaldi text vector ``[ v1 v2 ... ]`` (readable by Kaldi's Vector::Read and kaldiio.load_mat)."""
    with atomic_path(path) as tmp, open(tmp, "w") as f:
        f.write("[ " + " ".join(f"{v:.8g}" for v in values) + " ]\n")


def read_kaldi_vector(path):
    try:
        text = open(path).read()
    except OSError as e:
        raise InputError(f"cannot read {path}: {e.strerror}") from None
    body = text.strip()
    if not (body.startswith("[") and body.endswith("]")):
        raise InputError(f"{path}: not a Kaldi text vector '[ ... ]'")
    return np.array(body[1:-1].split(), dtype=np.float64)


@dataclasses.dataclass
class AcousticModelBundle:
    """A trained model ready to score frames: model (eval mode), log_priors [P], cfg (NnetConfig), cmvn pipeline,
    transition model and tree of its targets."""
    model: object
    log_priors: np.ndarray
    cfg: object
    pipeline: object
    trans_model: object
    model_dir: str

    @property
    def label_delay(self):
        return self.cfg.label_delay

    def iter_features(self, data_dir, utts=None):
        """(utt, CMVN'd features [T, D]) of a data dir (feats.scp + cmvn.scp of the model's feature type)."""
        from steps_py.gmm import iter_features
        return iter_features(data_dir, utts=utts, pipeline=self.pipeline)

    def loglikes(self, feats):
        """feats [T, D] (CMVN'd) -> pdf log-likelihoods [T, P] float32 (log posterior - log prior)."""
        return self.loglikes_batch([feats])[0]

    def loglikes_batch(self, feats_list):
        out = forward_utterances(self.model, feats_list, self.label_delay)
        return [(logp - self.log_priors).astype(np.float32) for logp, _ in out]

    def internals(self, feats):
        """feats [T, D] -> (loglikes [T, P], internals: list over layers of dict name -> [T, H] float32)."""
        (logp, layers), = forward_utterances(self.model, [feats], self.label_delay, return_internals=True)
        return (logp - self.log_priors).astype(np.float32), layers


def load_checkpoint_model(path):
    """A checkpoint written by train_nnet -> (AcousticModel in eval mode, NnetConfig, checkpoint dict)."""
    import torch
    from steps_py.nnet_model import AcousticModel, NnetConfig
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except (OSError, RuntimeError, EOFError) as e:
        raise InputError(f"cannot read model {path}: {e}") from None
    cfg = NnetConfig.from_dict(ckpt["nnet_config"])
    model = AcousticModel(cfg, ckpt["input_dim"], ckpt["num_pdfs"])
    model.load_state_dict(ckpt["model"])
    model.eval()
    return model, cfg, ckpt


def load_acoustic_model(model_dir, iter_name="final", num_threads=None):
    """exp/nnet/<name> -> AcousticModelBundle (model <iter>.pt, prior.vec, cmvn_opts, final.mdl + tree)."""
    import torch
    from steps_py.nnet_egs import CmvnPipeline, read_cmvn_opts, read_transition_model
    if num_threads:
        torch.set_num_threads(num_threads)
    path = os.path.join(model_dir, f"{iter_name}.pt")
    if not os.path.exists(path):
        raise InputError(f"no such file {path} (train the model first: steps_py.train_nnet)")
    model, cfg, ckpt = load_checkpoint_model(path)
    priors = read_kaldi_vector(os.path.join(model_dir, "prior.vec"))
    if priors.size != ckpt["num_pdfs"]:
        raise InputError(f"{model_dir}/prior.vec has {priors.size} pdfs, the model {ckpt['num_pdfs']}")
    tm = read_transition_model(model_dir)
    if tm.num_pdfs != ckpt["num_pdfs"]:
        raise InputError(f"{model_dir}/final.mdl has {tm.num_pdfs} pdfs, the network {ckpt['num_pdfs']}")
    pipeline = CmvnPipeline(read_cmvn_opts(os.path.join(model_dir, "cmvn_opts")))
    return AcousticModelBundle(model, np.log(priors).astype(np.float32), cfg, pipeline, tm, model_dir)


# ----------------------------------------------------------------------------------------------- decoding jobs

def loglike_batches(bundle, data_dir, batch_utts=16, extract=None):
    """Yields (utt, loglikes [T, P]) for every utterance of data_dir, computed ``batch_utts`` at a time.

    extract: None, or an Extractor; its utterances are computed with the model's internals, which go to its
    writer (the same forward pass: the decoder gets the same log-likelihoods)."""
    def flush(pending):
        utts = [u for u, _ in pending]
        feats = [f for _, f in pending]
        if extract is not None and any(u in extract.utts for u in utts):
            out = forward_utterances(bundle.model, feats, bundle.label_delay, return_internals=True)
            for u, f, (_, layers) in zip(utts, feats, out):
                if u in extract.utts:
                    extract.add(u, layers, f)
            loglikes = [(logp - bundle.log_priors).astype(np.float32) for logp, _ in out]
        else:
            loglikes = bundle.loglikes_batch(feats)
        return zip(utts, loglikes)

    pending = []
    for utt, feats in bundle.iter_features(data_dir):
        pending.append((utt, feats))
        if len(pending) == batch_utts:
            yield from flush(pending)
            pending = []
    if pending:
        yield from flush(pending)


class Extractor:
    """Collects the internals of chosen utterances into a steps_py.memory_data extraction (one job's part)."""

    def __init__(self, bundle, out_dir, utts, data_dir, ali_dir=None, dtype="float16"):
        from steps_py import memory_data
        self.utts = set(utts)
        text = read_map(os.path.join(data_dir, "text")) if os.path.exists(os.path.join(data_dir, "text")) else {}
        self.words = {u: text.get(u, "").split() for u in self.utts}
        self.phone_ali, phones = {}, None
        if ali_dir:
            self.phone_ali = memory_data.read_phone_alignments(ali_dir)
            phones = os.path.join(ali_dir, "phones.txt")
            if not os.path.exists(phones):
                raise InputError(f"no such file {phones} (the phone table of {ali_dir}/phone_ali.*.gz)")
        cfg = bundle.cfg
        self.num_missing = 0
        self.writer = memory_data.ExtractionWriter(
            out_dir, cfg.cell, cfg.num_layers, cfg.cell_dim, memory_data.CELL_QUANTITIES[cfg.cell], dtype=dtype,
            meta={"model_dir": os.path.abspath(bundle.model_dir), "data_dir": os.path.abspath(data_dir),
                  "ali_dir": os.path.abspath(ali_dir) if ali_dir else None, "label_delay": cfg.label_delay},
            phones=phones)

    def add(self, utt, layers, feats):
        ali = self.phone_ali.get(utt)
        if ali is not None and abs(len(ali) - len(feats)) <= 2:
            ali = np.concatenate([ali, np.full(max(0, len(feats) - len(ali)), -1, np.int32)])[:len(feats)]
        elif self.phone_ali:
            self.num_missing += 1
            log.warning(f"{utt}: no phone alignment of matching length; extracted without phones")
            ali = None
        self.writer.add(utt, layers, ali, self.words.get(utt), feats)

    def close(self):
        self.writer.close()
        if self.num_missing:
            log.warning(f"{self.num_missing} extracted utterances have no phone alignment")


def extract_utts(data_dir, num_utts):
    """The utterances to extract: the first ``num_utts`` ids of data_dir (C-sorted, as the data dir)."""
    return list(read_map(os.path.join(data_dir, "feats.scp")))[:num_utts]


def merge_extractions(parts, out_dir):
    """Concatenates the job parts (extraction dirs) into one extraction at out_dir, utterances in part order."""
    from steps_py import memory_data
    loaded = [memory_data.Extraction.load(p) for p in parts]
    loaded = [e for e in loaded if e.utts]
    if not loaded:
        raise InputError(f"no utterance was extracted into {', '.join(parts)}")
    first = loaded[0]
    with memory_data.ExtractionWriter(out_dir, first.cell, first.num_layers, first.cell_dim, first.quantities,
                                      dtype=first.dtype, meta=first.meta, phones=_phone_table(first)) as w:
        for e in loaded:
            layers = [e.layer(k) for k in range(1, e.num_layers + 1)]
            for utt in e.utts:
                sl = e.utt_slice(utt)
                ids = e.kaldi_phone_ids[sl]
                w.add(utt, [{q: a[sl] for q, a in layer.items()} for layer in layers],
                      None if (ids < 0).all() else ids, e.words(utt), e.feats[sl])
    return out_dir


def _phone_table(ext):
    ali_dir = ext.meta.get("ali_dir")
    return os.path.join(ali_dir, "phones.txt") if ali_dir else None


def extract_part_dir(decode_dir, job):
    return os.path.join(decode_dir, "extract", f"part.{job}")


def run_one_job(graph_dir, data_dir, nnet_dir, decode_dir, job, opts, iter_name="final", write_loglikes=False,
                num_threads=1, extract=None):
    """One decoding job; ``extract``: None or dict(utts=[...], ali_dir=..., dtype=...) (see Extractor)."""
    done = os.path.join(gmm_decode.job_dir(decode_dir, job), "done")
    inputs = [os.path.join(graph_dir, "HCLG.fst"), os.path.join(nnet_dir, f"{iter_name}.pt"),
              os.path.join(data_dir, "feats.scp")]
    part = extract_part_dir(decode_dir, job)
    if os.path.exists(done) and all(os.path.getmtime(p) < os.path.getmtime(done) for p in inputs) and \
            all(os.path.exists(os.path.join(gmm_decode.job_dir(decode_dir, job), f"{lmwt}_{wip}.tra"))
                for lmwt, wip in opts.pairs()) and \
            (not write_loglikes or os.path.exists(os.path.join(decode_dir, f"loglikes.{job}.scp"))) and \
            (not extract or os.path.exists(os.path.join(part, "index.json"))):
        log.info(f"job {job} already done ({done}); skipping")
        return
    bundle = load_acoustic_model(nnet_dir, iter_name, num_threads=num_threads)
    graph = gmm_decode.load_graph(graph_dir, bundle.trans_model)
    extractor = None
    if extract:
        extractor = Extractor(bundle, part, extract["utts"], data_dir, extract.get("ali_dir"),
                              extract.get("dtype", "float16"))
    utt_loglikes = loglike_batches(bundle, data_dir, extract=extractor)
    if write_loglikes:
        utt_loglikes = _tee_to_ark(utt_loglikes, os.path.join(decode_dir, f"loglikes.{job}"))
    try:
        gmm_decode.decode_job(graph, utt_loglikes, opts, decode_dir, job)
    except BaseException:
        if extractor:
            extractor.writer.abort()
        raise
    if extractor:
        extractor.close()


def _tee_to_ark(items, stem):
    """Passes (utt, matrix) items through while writing them to <stem>.ark/.scp (binary Kaldi matrices);
    the files appear (renamed from temporaries) only when every item has been written."""
    import kaldiio
    ark, scp = stem + ".ark", stem + ".scp"
    with atomic_path(ark) as tmp_ark, atomic_path(scp) as tmp_scp:
        with kaldiio.WriteHelper(f"ark,scp:{tmp_ark},{tmp_scp}") as writer:
            for utt, m in items:
                writer(utt, m)
                yield utt, m
        text = open(tmp_scp).read().replace(tmp_ark, os.path.abspath(ark))
        open(tmp_scp, "w").write(text)


def decode(graph_dir, data_dir, nnet_dir, decode_dir, opts, nj=1, cmd="run.py", config=None, iter_name="final",
           write_loglikes=False, filter_words=None, num_threads=1, extract_dir=None, extract_num_utts=500,
           extract_ali_dir=None, extract_dtype="float16"):
    """steps/nnet3/decode.sh: split, parallel jobs, merge, score; returns the best %WER line."""
    from steps_py.split_data import split_data
    for f in [os.path.join(graph_dir, "HCLG.fst"), os.path.join(graph_dir, "words.txt"),
              os.path.join(nnet_dir, f"{iter_name}.pt"), os.path.join(data_dir, "feats.scp")]:
        if not os.path.exists(f):
            raise InputError(f"no such file {f}")
    os.makedirs(os.path.join(decode_dir, "log"), exist_ok=True)
    n_utts = len(read_map(os.path.join(data_dir, "feats.scp")))
    nj = max(1, min(nj, n_utts))
    split = split_data(data_dir, nj) if nj > 1 else None
    sub_data = os.path.join(split, "JOB") if split else data_dir
    argv = [sys.executable, "-m", "steps_py.decode_nnet", "--job", "JOB", "--iter", iter_name,
            "--num-threads", str(num_threads)] + (["--config", config] if config else []) + \
        gmm_decode.options_to_args(opts) + (["--write-loglikes"] if write_loglikes else []) + \
        (["--extract-dir", extract_dir, "--extract-utts", str(extract_num_utts), "--extract-dtype", extract_dtype,
          "--extract-from", data_dir] + (["--extract-ali-dir", extract_ali_dir] if extract_ali_dir else [])
         if extract_dir else []) + \
        [graph_dir, sub_data, nnet_dir, decode_dir]
    t0 = time.time()
    gmm_decode.run_jobs(cmd, nj, os.path.join(decode_dir, "log", "decode.JOB.log"), argv)
    log.info(f"decoded {data_dir} with {nj} jobs in {time.time() - t0:.1f} s")
    with open(os.path.join(decode_dir, "num_jobs"), "w") as f:
        f.write(f"{nj}\n")
    if extract_dir:
        parts = [extract_part_dir(decode_dir, j) for j in range(1, nj + 1)]
        newest = max(os.path.getmtime(os.path.join(p, "index.json")) for p in parts)
        index = os.path.join(extract_dir, "index.json")
        if not os.path.exists(index) or os.path.getmtime(index) < newest:
            merge_extractions(parts, extract_dir)
    return gmm_decode.merge_and_score(data_dir, graph_dir, decode_dir, nj, opts, filter_words)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", help="Kaldi option file (default: conf/decode_nnet.conf if it exists)")
    p.add_argument("--nj", type=int, default=1, help="number of parallel jobs (default: 1)")
    p.add_argument("--cmd", default="run.py", help="job runner, as $decode_cmd (default: run.py)")
    p.add_argument("--iter", default="final", help="model to decode: <nnet-dir>/<iter>.pt (default: final)")
    p.add_argument("--num-threads", type=int, default=1, help="torch threads per job (default: 1)")
    p.add_argument("--write-loglikes", action="store_true",
                   help="also write loglikes.JOB.{ark,scp} (Kaldi matrices for latgen-faster-mapped)")
    p.add_argument("--filter-words", default=None, help="comma-separated words removed before scoring")
    p.add_argument("--extract-dir", help="memory extraction: write the internals of the first --extract-utts "
                   "utterances here (steps_py.memory_data format)")
    p.add_argument("--extract-utts", type=int, default=500, help="utterances to extract (default: 500)")
    p.add_argument("--extract-ali-dir", help="alignment dir with phone_ali.*.gz and phones.txt of this data dir "
                   "(e.g. exp/tri2b_ali_dev): the phone labels of the extracted frames")
    p.add_argument("--extract-dtype", default="float16", choices=["float16", "float32"],
                   help="storage type of the extracted values (default: float16)")
    p.add_argument("--extract-from", help=argparse.SUPPRESS)   # the unsplit data dir (chooses the utterances)
    p.add_argument("--job", help=argparse.SUPPRESS)
    gmm_decode.add_decode_options(p)
    p.add_argument("graph_dir")
    p.add_argument("data_dir")
    p.add_argument("nnet_dir")
    p.add_argument("decode_dir")
    a, config = gmm_decode.parse_args_with_config(p, "conf/decode_nnet.conf")
    opts = gmm_decode.decode_options(a)
    if a.job is not None:
        extract = None
        if a.extract_dir:
            extract = {"utts": extract_utts(a.extract_from or a.data_dir, a.extract_utts),
                       "ali_dir": a.extract_ali_dir, "dtype": a.extract_dtype}
        run_one_job(a.graph_dir, a.data_dir, a.nnet_dir, a.decode_dir, a.job, opts, a.iter, a.write_loglikes,
                    a.num_threads, extract)
        return
    from steps_py.score import parse_word_list
    filter_words = None if a.filter_words is None else parse_word_list(a.filter_words)
    best = decode(a.graph_dir, a.data_dir, a.nnet_dir, a.decode_dir, opts, a.nj, a.cmd, config, a.iter,
                  a.write_loglikes, filter_words, a.num_threads, a.extract_dir, a.extract_utts, a.extract_ali_dir,
                  a.extract_dtype)
    if best:
        print(best)


if __name__ == "__main__":
    run_main(main)
