"""Usage: python -m steps_py.nnet.decode [--nj N] [--cmd run.py] [--config conf/decode_nnet.conf]
           [--write-loglikes] [--iter final] [--device auto|cpu|cuda] <graph-dir> <data-dir> <nnet-dir> <decode-dir>
  e.g. python -m steps_py.nnet.decode --nj 2 exp/tri2b/graph_tgpr data/dev_fbank exp/nnet/lstm_2l \\
           exp/nnet/lstm_2l/decode_tgpr_dev

Hybrid decoding with a trained acoustic model, as Kaldi's steps/nnet3/decode.sh: (log-posterior - log-prior) per
pdf, then Kaldi's decoder. <nnet-dir> is what steps_py.nnet.train wrote: final.pt, prior.vec, cmvn_opts, and
final.mdl + tree (the transition model of the alignments the model was trained on; the graph must be built from the
same tree). Jobs compute the log-likelihoods of their utterances in length-sorted batches (one forward per batch, no
per-frame Python loop), then decode them with steps_py.decode.search (kaldi-decoder); they are scored and summarised
exactly like the GMM decodes (<decode-dir>/wer_<LMWT>_<WIP>, best_wer). --write-loglikes also writes
<decode-dir>/loglikes.JOB.{ark,scp}: Kaldi float matrices [T, num_pdfs] that Kaldi's latgen-faster-mapped decodes
(with the same final.mdl and HCLG.fst). Finished jobs are not re-run; a finished decode is skipped while its graph,
model, data and options are unchanged (stamp <decode-dir>/.done.decode).

Decoding that also keeps the memory of chosen utterances: steps_py.memvis.extract.
"""
from steps_py.common import run_main
from steps_py.decode.driver import decode_options, skip_finished_decode
from steps_py.decode.scoring import best_for_dir
from steps_py.kaldi.options import parse_args_with_config
from steps_py.nnet.hybrid import decode, decode_parser, hybrid_completion, run_job


def main():
    a, config = parse_args_with_config(decode_parser(__doc__), "conf/decode_nnet.conf")
    opts = decode_options(a)
    if a.job is not None:
        run_job(a.graph_dir, a.data_dir, a.nnet_dir, a.decode_dir, a.job, opts, a.iter, a.write_loglikes,
                a.num_threads, device=a.device)
        return
    done = hybrid_completion(a, "steps_py.nnet.decode")
    if skip_finished_decode(done):
        print(best_for_dir(a.decode_dir))
        return
    best, _ = decode(a, opts, config)
    done.finish()
    if best:
        print(best)


if __name__ == "__main__":
    run_main(main)
