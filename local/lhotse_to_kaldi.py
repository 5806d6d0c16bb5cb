"""Usage: python local/lhotse_to_kaldi.py [options] (--cuts CUTS | --recordings RECS --supervisions SUPS) <data-dir>

Turns lhotse manifests (a CutSet, or a RecordingSet with its SupervisionSet; .jsonl/.jsonl.gz/.json as lhotse
writes them) into a Kaldi data dir for the recipe (egs/kaldi_dir/s5 --train <data-dir> ...): lhotse's own
export_to_kaldi writes wav.scp, segments, text, utt2spk, utt2dur, reco2dur (and spk2gender when the supervisions
carry a gender); the dir is then repaired and validated as every data dir here (fix_data_dir: utterances missing
from a table are dropped, each named and counted). Supervisions without text keep an empty transcript.

e.g.: python local/lhotse_to_kaldi.py --cuts data/manifests/cuts_train.jsonl.gz data/lhotse_train
"""
import argparse
import os
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, ROOT)

from steps_py.common import InputError, get_logger, run_main, str2bool  # noqa: E402
from steps_py.data.datadir import fix_data_dir, validate_data_dir  # noqa: E402

log = get_logger("lhotse_to_kaldi")


def load_manifests(cuts=None, recordings=None, supervisions=None):
    """(RecordingSet, SupervisionSet) from a CutSet file or from the two manifest files."""
    from lhotse import CutSet, RecordingSet, SupervisionSet
    paths = [p for p in (cuts, recordings, supervisions) if p]
    for p in paths:
        if not os.path.isfile(p):
            raise InputError(f"no such file {p}")
    try:
        if cuts:
            recs, sups, _ = CutSet.from_file(cuts).decompose()
        else:
            recs, sups = RecordingSet.from_file(recordings), SupervisionSet.from_file(supervisions)
    except Exception as e:           # lhotse raises many kinds on a bad manifest; name the files
        raise InputError(f"cannot read the lhotse manifest(s) {', '.join(paths)}: {type(e).__name__}: {e}") \
            from None
    if recs is None or sups is None or len(sups) == 0:
        raise InputError(f"{', '.join(paths)}: no recordings or no supervisions")
    return recs, sups


def convert(recs, sups, data_dir, prefix_spk_id=False):
    """Writes the Kaldi data dir; returns the number of utterances kept."""
    from lhotse import fastcopy
    from lhotse.kaldi import export_to_kaldi
    sups = sups.map(lambda s: fastcopy(s, text=" ".join((s.text or "").split()),
                                       speaker=s.speaker or s.recording_id))
    export_to_kaldi(recs, sups, data_dir, prefix_spk_id=prefix_spk_id)
    genders = {s.speaker: s.gender.lower()[0] for s in sups if s.gender}
    if genders and all(s.speaker in genders for s in sups):
        with open(os.path.join(data_dir, "spk2gender"), "w") as f:
            f.writelines(f"{k} {v}\n" for k, v in sorted(genders.items()))
    fix_data_dir(data_dir)
    n = validate_data_dir(data_dir, no_feats=True)
    log.info(f"{data_dir}: {n} utterances of {len(sups)} supervisions, {len(recs)} recordings")
    return n


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cuts", metavar="FILE", help="a lhotse CutSet manifest")
    p.add_argument("--recordings", metavar="FILE", help="a lhotse RecordingSet manifest (with --supervisions)")
    p.add_argument("--supervisions", metavar="FILE", help="a lhotse SupervisionSet manifest")
    p.add_argument("--prefix-spk-id", default="auto", metavar="auto|true|false",
                   help="prefix each utterance id with its speaker id, as Kaldi's sorting wants (auto: when some id "
                        "does not start with its speaker id)")
    p.add_argument("data_dir")
    a = p.parse_args()
    if bool(a.cuts) == bool(a.recordings or a.supervisions) or (not a.cuts and not (a.recordings and a.supervisions)):
        p.error("give --cuts, or --recordings and --supervisions")
    recs, sups = load_manifests(a.cuts, a.recordings, a.supervisions)
    prefix = (any(not s.id.startswith(s.speaker or s.recording_id) for s in sups) if a.prefix_spk_id == "auto"
              else str2bool(a.prefix_spk_id))
    convert(recs, sups, a.data_dir, prefix)


if __name__ == "__main__":
    run_main(main)
