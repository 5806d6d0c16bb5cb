"""Usage: python local/kaldi_to_lhotse.py [options] <data-dir> <manifest-dir>

Exports a data dir of this recipe (and optionally a phone alignment of it) to lhotse manifests, for icefall and
lhotse users: lhotse's own load_kaldi_data_dir reads the dir; writes <manifest-dir>/{recordings,supervisions}.jsonl.gz
and cuts.jsonl.gz (one cut per utterance with its supervision). With --ali-dir (e.g. exp/tri2b_ali_dev: its
phone_ali.*.gz and phones.txt), every supervision carries a "phone" alignment: one AlignmentItem per run of frames
of a phone (start and duration in seconds, --frame-shift per frame, from the supervision's start; Kaldi's
position-dependent symbols such as AH_B kept as phones.txt has them). With --extract-dir (an extraction of
steps_py.memvis.extract, e.g. exp/nnet/lstm_2l/extract_dev), each extracted utterance's cut carries its memory as
lhotse TemporalArrays (custom fields layer<k>_<quantity>, e.g. layer1_c, [frames, cell_dim] float32, with the
extraction's frame shift), stored as .npy files under <manifest-dir>/memory/ by lhotse's NumpyFilesWriter; the
cuts' ids are the utterance ids (cut.load_custom("layer1_c") reads one back).

e.g.: python local/kaldi_to_lhotse.py --ali-dir exp/tri2b_ali_dev data/dev data/lhotse_dev
"""
import argparse
import os
import sys

import numpy as np

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, ROOT)

from steps_py.common import InputError, get_logger, run_main  # noqa: E402
from steps_py.data.audio import read_wav_scp_value  # noqa: E402
from steps_py.data.datadir import read_map, validate_data_dir  # noqa: E402
from steps_py.kaldi.io import read_alignments  # noqa: E402
from steps_py.kaldi.symbols import read_symbol_table  # noqa: E402

log = get_logger("kaldi_to_lhotse")


def phone_runs(ids, symbols, offset, frame_shift):
    """[(symbol, start s, duration s)] of the runs of equal ids in a per-frame phone alignment."""
    ids = np.asarray(ids)
    if len(ids) == 0:
        return []
    edges = np.flatnonzero(np.diff(ids)) + 1
    starts, ends = np.r_[0, edges], np.r_[edges, len(ids)]
    return [(symbols[int(ids[s])], round(offset + s * frame_shift, 4), round((e - s) * frame_shift, 4))
            for s, e in zip(starts, ends)]


def attach_memory(cuts, extract_dir, out_dir):
    """The cuts with the extraction's internals attached (see the module doc); returns (cuts, number attached)."""
    from lhotse import fastcopy
    from lhotse.features.io import NumpyFilesWriter
    from steps_py.memvis.data import Extraction
    ext = Extraction.load(extract_dir)
    wanted = set(ext.utts)
    attached, out = 0, []
    with NumpyFilesWriter(os.path.join(out_dir, "memory")) as writer:
        for cut in cuts:
            if cut.id in wanted:
                rows = ext.utt_slice(cut.id)
                custom = dict(cut.custom or {})
                for k in range(1, ext.num_layers + 1):
                    for q in ext.quantities:
                        custom[f"layer{k}_{q}"] = writer.store_array(
                            f"{cut.id}_layer{k}_{q}", ext.values(k, q, rows), frame_shift=ext.frame_shift,
                            temporal_dim=0, start=0)
                cut = fastcopy(cut, custom=custom)
                attached += 1
            out.append(cut)
    if attached < len(wanted):
        log.warning(f"{extract_dir}: {len(wanted) - attached} of {len(wanted)} extracted utterances are not in the "
                    f"data dir")
    return out, attached


def export(data_dir, out_dir, ali_dir=None, frame_shift=0.01, sampling_rate=None, extract_dir=None):
    """Writes the manifests; returns (number of supervisions, number with an alignment)."""
    from lhotse import CutSet, fastcopy
    from lhotse.kaldi import load_kaldi_data_dir
    from lhotse.supervision import AlignmentItem
    validate_data_dir(data_dir, no_feats=True)
    if sampling_rate is None:
        sampling_rate = read_wav_scp_value(next(iter(read_map(os.path.join(data_dir, "wav.scp")).values()))).rate
    recs, sups, _ = load_kaldi_data_dir(data_dir, sampling_rate=sampling_rate, frame_shift=frame_shift)
    aligned = 0
    if ali_dir:
        phones_txt = os.path.join(ali_dir, "phones.txt")
        if not os.path.isfile(phones_txt):
            raise InputError(f"no such file {phones_txt} (the phone table of {ali_dir}/phone_ali.*.gz)")
        symbols = read_symbol_table(phones_txt, by_id=True)
        ali = read_alignments(ali_dir, "phone_ali")

        def with_ali(s):
            if s.id not in ali:
                return s
            items = [AlignmentItem(symbol=p, start=t, duration=d)
                     for p, t, d in phone_runs(ali[s.id], symbols, s.start, frame_shift)]
            return fastcopy(s, alignment={"phone": items})
        sups = sups.map(with_ali)
        aligned = sum(1 for s in sups if s.alignment)
        if aligned < len(sups):
            log.warning(f"{ali_dir}: {len(sups) - aligned} of {len(sups)} utterances have no phone alignment")
    os.makedirs(out_dir, exist_ok=True)
    recs.to_file(os.path.join(out_dir, "recordings.jsonl.gz"))
    sups.to_file(os.path.join(out_dir, "supervisions.jsonl.gz"))
    cuts = [fastcopy(c, id=c.supervisions[0].id) for c in
            CutSet.from_manifests(recordings=recs, supervisions=sups).trim_to_supervisions(keep_overlapping=False)]
    if extract_dir:
        cuts, n = attach_memory(cuts, extract_dir, out_dir)
        log.info(f"{out_dir}/memory: the internals of {n} utterances of {extract_dir}")
    CutSet.from_cuts(cuts).to_file(os.path.join(out_dir, "cuts.jsonl.gz"))
    log.info(f"{out_dir}: {len(recs)} recordings, {len(sups)} supervisions ({aligned} with phone alignments)")
    return len(sups), aligned


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ali-dir", metavar="DIR", help="alignment dir with phone_ali.*.gz and phones.txt")
    p.add_argument("--extract-dir", metavar="DIR", help="an extraction dir whose internals the cuts carry")
    p.add_argument("--frame-shift", type=float, default=0.01, help="seconds per alignment frame (default 0.01)")
    p.add_argument("--sampling-rate", type=int, help="Hz (default: read from the first utterance's audio)")
    p.add_argument("data_dir")
    p.add_argument("manifest_dir")
    a = p.parse_args()
    export(a.data_dir, a.manifest_dir, a.ali_dir, a.frame_shift, a.sampling_rate, a.extract_dir)


if __name__ == "__main__":
    run_main(main)
