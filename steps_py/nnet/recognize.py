"""Usage: python -m steps_py.nnet.recognize [options] <audio-file>...

Recognises audio files with a trained hybrid model and prints one line ``<file> <words>`` per file, e.g.

  python -m steps_py.nnet.recognize --nnet-dir exp/nnet/lstm_2l --graph-dir exp/tri2b/graph_tgpr a.wav b.wav

Per file: audio (steps_py.data.audio: WAV/FLAC/SPHERE; the first channel) -> Fbank with --feat-config (default
conf/fbank.conf, as data/*_fbank; a file at another sample rate is refused unless that config allows resampling)
-> CMVN over the utterance itself (no speaker statistics exist for a single file; cmvn_opts of the model dir say
whether means/variances are normalised) -> the model's pdf log-likelihoods (steps_py.nnet.checkpoint
load_acoustic_model / loglikes: log posterior - log prior) -> best path through <graph-dir>/HCLG.fst at acoustic
scale 1/LMWT with word insertion penalty WIP (kaldi-decoder FasterDecoder) -> words of <graph-dir>/words.txt.

LMWT and WIP: --lmwt/--wip if given, else the best pair of --decode-dir (default <nnet-dir>/decode_tgpr_dev: its
scoring_kaldi/best_wer, or the lowest of its wer_<LMWT>_<WIP> files), else LMWT 12 and WIP 0. Beam, max-active
and min-active come from --config (default conf/decode_nnet.conf when it exists), and so does --device (where the
network runs: auto, cpu, cuda; the search runs on the CPU). A file that cannot be read or
decoded is reported on stderr and counted; the exit status is 1 if any failed.
"""
import argparse
import os
import re
import sys
import time

from steps_py.common import InputError, get_logger, require_files, run_main
from steps_py.data.audio import conform_rate, read_audio_file, select_channel
from steps_py.decode import search
from steps_py.decode.driver import add_decode_options, decode_options, load_graph
from steps_py.decode.scoring import best_wer
from steps_py.feats.cmvn import cmvn_stats, normalise
from steps_py.feats.features import compute_features, load_feature_config
from steps_py.kaldi.options import parse_args_with_config
from steps_py.kaldi.symbols import read_symbol_table
from steps_py.nnet.checkpoint import load_acoustic_model
from steps_py.nnet.device import add_device_option

log = get_logger("nnet.recognize")

DEFAULT_LMWT = 12
WER_NAME_RE = re.compile(r"wer_(\d+)_(\d+(?:\.\d+)?)$")


def best_lmwt_wip(decode_dir):
    """(LMWT, WIP) of the best wer file of a decode dir, or None if it has none."""
    if not decode_dir or not os.path.isdir(decode_dir):
        return None
    best_file = os.path.join(decode_dir, "scoring_kaldi", "best_wer")
    line = None
    if os.path.exists(best_file):
        line = open(best_file, encoding="utf-8").read().strip()
    else:
        _, line = best_wer(decode_dir)
    m = WER_NAME_RE.search(line.split()[-1]) if line else None
    return (int(m.group(1)), float(m.group(2))) if m else None


class Recognizer:
    """A trained model + graph: ``words(path) -> list of words``. Keeps the model, the graph and the decoder
    settings loaded between files."""

    def __init__(self, nnet_dir, graph_dir, feat_config, opts, lmwt, wip, device="cpu"):
        self.bundle = load_acoustic_model(nnet_dir, device=device)
        self.graph = load_graph(graph_dir, self.bundle.trans_model)
        words_path = os.path.join(graph_dir, "words.txt")
        require_files(words_path)
        self.id2word = read_symbol_table(words_path, by_id=True)
        self.feat_config = load_feature_config("fbank", feat_config)
        self.knf_opts = self.feat_config.knf_options()
        self.opts, self.lmwt, self.wip = opts, lmwt, wip

    def features(self, path):
        """Fbank [T, D] of an audio file, CMVN'd over the file."""
        job = self.feat_config.job
        audio = read_audio_file(path)
        samples = select_channel(audio, job["channel"], path)
        samples = conform_rate(samples, audio.rate, self.feat_config.sample_rate, path,
                               job["allow_downsample"], job["allow_upsample"])
        feats = compute_features(samples, self.feat_config, self.knf_opts)
        if feats.shape[0] == 0:
            raise InputError(f"{path}: shorter than one frame ({samples.size} samples)")
        return normalise(feats, cmvn_stats(feats), self.bundle.pipeline.cmvn)

    def words(self, path):
        loglikes = self.bundle.loglikes(self.features(path))
        best = search.best_path(self.graph, loglikes, 1.0 / self.lmwt, self.opts, wip=self.wip)
        if not best.tids:
            raise RuntimeError("no path survived the beam")
        if not best.reached_final:
            log.warning(f"{path}: no final state reached; printing the best partial path")
        return [self.id2word[w] for w in best.words]


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--nnet-dir", default="exp/nnet/lstm_2l", help="trained model dir (default: exp/nnet/lstm_2l)")
    p.add_argument("--graph-dir", default="exp/tri2b/graph_tgpr", help="graph dir with HCLG.fst and words.txt "
                   "built with the model's tree (default: exp/tri2b/graph_tgpr)")
    p.add_argument("--feat-config", default="conf/fbank.conf", help="Fbank options (default: conf/fbank.conf)")
    p.add_argument("--config", help="decoder options (default: conf/decode_nnet.conf if it exists)")
    p.add_argument("--decode-dir", help="decode dir whose best LMWT/WIP is used "
                                        "(default: <nnet-dir>/decode_tgpr_dev)")
    p.add_argument("--lmwt", type=int, help="LM weight (acoustic scale 1/LMWT); overrides --decode-dir")
    p.add_argument("--wip", type=float, help="word insertion penalty; overrides --decode-dir")
    add_decode_options(p)
    add_device_option(p)
    p.add_argument("--filter-words", help=argparse.SUPPRESS)   # accepted in the shared decode configs
    p.add_argument("audio", nargs="+", help="audio files")
    a, _ = parse_args_with_config(p, "conf/decode_nnet.conf")
    opts = decode_options(a)
    best = best_lmwt_wip(a.decode_dir or os.path.join(a.nnet_dir, "decode_tgpr_dev"))
    lmwt = a.lmwt if a.lmwt is not None else (best[0] if best else DEFAULT_LMWT)
    wip = a.wip if a.wip is not None else (best[1] if best else 0.0)
    if lmwt < 1:
        raise InputError(f"--lmwt must be >= 1, got {lmwt}")
    log.info(f"LMWT {lmwt}, WIP {wip}" + ("" if best or a.lmwt is not None else " (no decode dir: default)"))
    rec = Recognizer(a.nnet_dir, a.graph_dir, a.feat_config, opts, lmwt, wip, a.device)
    failed, t0 = 0, time.time()
    for path in a.audio:
        try:
            words = rec.words(path)
        except (InputError, RuntimeError) as e:
            log.error(f"{path}: {e}")
            failed += 1
            continue
        print(f"{path} {' '.join(words)}".rstrip(), flush=True)
    log.info(f"{len(a.audio) - failed} of {len(a.audio)} files recognised in {time.time() - t0:.1f} s")
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    run_main(main)
