"""Usage: python -m steps_py.memvis.extract [decoding options] --extract-dir DIR [--extract-utts N]
           [--extract-ali-dir exp/tri2b_ali_<set>] [--extract-dtype float16]
           <graph-dir> <data-dir> <nnet-dir> <decode-dir>
  e.g. python -m steps_py.memvis.extract --nj 2 --extract-dir exp/nnet/lstm_2l/extract_dev \
           --extract-ali-dir exp/tri2b_ali_dev exp/tri2b/graph_tgpr data/dev_fbank exp/nnet/lstm_2l \
           exp/nnet/lstm_2l/decode_tgpr_dev

Memory extraction at decode time: decodes <data-dir> as steps_py.nnet.decode does (same options, same jobs, same
results) and keeps, for the first N utterances of the data dir (sorted ids), every layer's cells, gates and outputs
from the same forward pass that feeds the decoder, with the frame-level phone alignment (phone_ali.*.gz and
phones.txt of the alignment dir), the reference words and the input features, in the format of steps_py.memvis.data.
Each job writes a part (<decode-dir>/extract/part.JOB), merged into DIR at the end. A decode already done with the
same extraction is not redone: the whole step is skipped while the graph, the model, the data, the alignment and the
options are unchanged (stamp <decode-dir>/.done.decode, written after DIR and the scoring).
"""
import argparse
import os

import numpy as np

from steps_py.common import InputError, get_logger, run_main
from steps_py.data.datadir import read_map
from steps_py.decode.driver import decode_options, filter_words, skip_finished_decode
from steps_py.decode.scoring import best_for_dir, score
from steps_py.kaldi.io import read_alignments
from steps_py.kaldi.options import parse_args_with_config
from steps_py.memvis.data import CELL_QUANTITIES, Extraction, ExtractionWriter
from steps_py.nnet.hybrid import decode, decode_parser, hybrid_completion, run_job

log = get_logger("memvis.extract")


class Extractor:
    """Collects the internals of chosen utterances into a steps_py.memvis.data extraction (one job's part)."""

    def __init__(self, bundle, out_dir, utts, data_dir, ali_dir=None, dtype="float16"):
        self.utts = set(utts)
        text = read_map(os.path.join(data_dir, "text")) if os.path.exists(os.path.join(data_dir, "text")) else {}
        self.words = {u: text.get(u, "").split() for u in self.utts}
        self.phone_ali, phones = {}, None
        if ali_dir:
            self.phone_ali = read_alignments(ali_dir, "phone_ali")
            phones = os.path.join(ali_dir, "phones.txt")
            if not os.path.exists(phones):
                raise InputError(f"no such file {phones} (the phone table of {ali_dir}/phone_ali.*.gz)")
        cfg = bundle.cfg
        self.num_missing = 0
        self.writer = ExtractionWriter(
            out_dir, cfg.cell, cfg.num_layers, cfg.cell_dim, CELL_QUANTITIES[cfg.cell], dtype=dtype,
            meta={"model_dir": os.path.abspath(bundle.model_dir), "data_dir": os.path.abspath(data_dir),
                  "ali_dir": os.path.abspath(ali_dir) if ali_dir else None, "label_delay": cfg.label_delay},
            phones=phones)

    def add(self, utt, layers, feats):
        """One utterance's internals (list over layers of {name: [T, H]}) and features [T, D]."""
        ali = self.phone_ali.get(utt)
        if ali is not None and abs(len(ali) - len(feats)) <= 2:
            ali = np.concatenate([ali, np.full(max(0, len(feats) - len(ali)), -1, np.int32)])[:len(feats)]
        elif self.phone_ali:
            self.num_missing += 1
            log.warning(f"{utt}: no phone alignment of matching length; extracted without phones")
            ali = None
        self.writer.add(utt, layers, ali, self.words.get(utt), feats)

    def abort(self):
        self.writer.abort()

    def close(self):
        self.writer.close()
        if self.num_missing:
            log.warning(f"{self.num_missing} extracted utterances have no phone alignment")


def extract_utts(data_dir, num_utts):
    """The utterances to extract: the first ``num_utts`` ids of data_dir (C-sorted, as the data dir)."""
    return list(read_map(os.path.join(data_dir, "feats.scp")))[:num_utts]


def merge_extractions(parts, out_dir):
    """Concatenates the job parts (extraction dirs) into one extraction at out_dir, utterances in part order."""
    loaded = [Extraction.load(p) for p in parts]
    loaded = [e for e in loaded if e.utts]
    if not loaded:
        raise InputError(f"no utterance was extracted into {', '.join(parts)}")
    first = loaded[0]
    with ExtractionWriter(out_dir, first.cell, first.num_layers, first.cell_dim, first.quantities,
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
    """phones.txt of the alignment dir an extraction's phones came from (None when it has none)."""
    ali_dir = ext.meta.get("ali_dir")
    return os.path.join(ali_dir, "phones.txt") if ali_dir else None


def extract_part_dir(decode_dir, job):
    """<decode-dir>/extract/part.JOB: one job's extraction."""
    return os.path.join(decode_dir, "extract", f"part.{job}")


def alignment_inputs(ali_dir):
    """The files of an alignment dir that the Extractor reads: phones.txt and phone_ali.*.gz."""
    if not ali_dir:
        return []
    return [os.path.join(ali_dir, "phones.txt")] + sorted(
        os.path.join(ali_dir, f) for f in os.listdir(ali_dir) if f.startswith("phone_ali.") and f.endswith(".gz"))


def main():
    p = decode_parser(__doc__)
    p.add_argument("--extract-dir", help="where the extraction goes (steps_py.memvis.data format; required)")
    p.add_argument("--extract-utts", type=int, default=500, help="utterances to extract (default: 500)")
    p.add_argument("--extract-ali-dir", help="alignment dir with phone_ali.*.gz and phones.txt of this data dir "
                   "(e.g. exp/tri2b_ali_dev): the phone labels of the extracted frames")
    p.add_argument("--extract-dtype", default="float16", choices=["float16", "float32"],
                   help="storage type of the extracted values (default: float16)")
    p.add_argument("--extract-from", help=argparse.SUPPRESS)   # the unsplit data dir (chooses the utterances)
    a, config = parse_args_with_config(p, "conf/decode_nnet.conf")
    if not a.extract_dir:
        raise InputError("--extract-dir is required (on the command line or in the --config file)")
    opts = decode_options(a)
    if a.job is not None:
        part = extract_part_dir(a.decode_dir, a.job)
        utts = extract_utts(a.extract_from or a.data_dir, a.extract_utts)
        run_job(a.graph_dir, a.data_dir, a.nnet_dir, a.decode_dir, a.job, opts, a.iter, a.write_loglikes,
                a.num_threads, tap_outputs=[os.path.join(part, "index.json")],
                make_tap=lambda bundle: Extractor(bundle, part, utts, a.data_dir, a.extract_ali_dir, a.extract_dtype),
                device=a.device)
        return
    done = hybrid_completion(a, "steps_py.memvis.extract", alignment_inputs(a.extract_ali_dir),
                             outputs=[os.path.join(a.extract_dir, "index.json")])
    if skip_finished_decode(done):
        print(best_for_dir(a.decode_dir))
        return
    _, nj = decode(a, opts, config, module="steps_py.memvis.extract", skip_scoring=True,
                   extract_dir=a.extract_dir, extract_utts=a.extract_utts, extract_ali_dir=a.extract_ali_dir,
                   extract_dtype=a.extract_dtype, extract_from=a.data_dir)
    parts = [extract_part_dir(a.decode_dir, j) for j in range(1, nj + 1)]
    newest = max(os.path.getmtime(os.path.join(p, "index.json")) for p in parts)
    index = os.path.join(a.extract_dir, "index.json")
    if not os.path.exists(index) or os.path.getmtime(index) < newest:
        merge_extractions(parts, a.extract_dir)
    log.info(f"extraction of {a.data_dir} in {a.extract_dir}")
    best = score(a.data_dir, a.graph_dir, a.decode_dir, filter_words(a))   # after the merge: a failed scoring
    done.finish()                                                           # leaves the extraction
    print(best)


if __name__ == "__main__":
    run_main(main)
