"""Usage: python -m steps_py.gmm.align_si [options] <data-dir> <lang-dir> <src-exp-dir> <ali-dir>

Forced alignment of a data dir with its transcripts using the GMM system in <src-exp-dir>, as Kaldi's
steps/align_si.sh: training graphs from the transcripts (OOV words map to lang/oov.int), Viterbi alignment at
--beam, retried at --retry-beam, silence boosted by --boost-silence. Features follow <src-exp-dir>: deltas, or
splicing + final.mat when the dir has final.mat (LDA/MLLT systems; final.mat, splice_opts are copied along).
Works for any data dir with a text file (train, dev, eval).

Outputs in <ali-dir>: ali.JOB.gz (gzipped ark of int32 transition ids, one vector per aligned utterance, as
gmm-align-compiled writes), phone_ali.JOB.gz (per-frame phone ids, as ali-to-phones --per-frame), final.mdl,
tree, phones.txt, num_jobs, cmvn_opts/delta_opts/splice_opts/final.mat when present, log/align.JOB.log.
Utterances that fail even at the retry beam are logged by name; the share aligned is logged at the end. A re-run
with the same data tables, lang dir, <src-exp-dir> files and options is skipped (stamp <ali-dir>/.done.align_si).
e.g.: python -m steps_py.gmm.align_si --nj 4 --cmd run.py data/train data/lang exp/tri1 exp/tri1_ali
"""
import argparse
import os
import re
import shutil
import time

from steps_py.common import InputError, get_logger, require_files, run_main, str2bool, write_lines
from steps_py.completion import Completion, done_stamp, settings_of, skip_if_done
from steps_py.data.datadir import data_dir_inputs, split_data
from steps_py.feats.pipeline import feature_type
from steps_py.gmm.trainer import job_argv, model_inputs
from steps_py.jobs import run_jobs
from steps_py.kaldi.options import parse_args_with_config

log = get_logger("gmm.align_si")


def get_parser():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--nj", type=int, default=4)
    p.add_argument("--cmd", default="run.py")
    p.add_argument("--config")
    p.add_argument("--beam", type=float, default=10.0)
    p.add_argument("--retry-beam", type=float, default=40.0)
    p.add_argument("--careful", type=str2bool, default=False)
    p.add_argument("--boost-silence", type=float, default=1.0)
    p.add_argument("data_dir")
    p.add_argument("lang_dir")
    p.add_argument("src_dir")
    p.add_argument("ali_dir")
    return p


def align_si(args):
    """align_si.sh (see the module docstring)."""
    data, lang_dir, src, d = args.data_dir, args.lang_dir, args.src_dir, args.ali_dir
    require_files(os.path.join(data, "text"), os.path.join(data, "feats.scp"), os.path.join(lang_dir, "oov.int"),
                  os.path.join(src, "tree"), os.path.join(src, "final.mdl"))
    inputs = data_dir_inputs(data) + [lang_dir] + model_inputs(src) + \
        [p for p in [os.path.join(src, "full.mat")] if os.path.exists(p)]
    outputs = [os.path.join(d, f) for f in ["final.mdl", "tree", "num_jobs"] + [f"ali.{j}.gz"
                                                                                 for j in range(1, args.nj + 1)]]
    done = Completion(done_stamp(d, "align_si"), inputs, settings_of(args), outputs)
    if skip_if_done(done, d, log):
        return 0
    t0 = time.time()
    os.makedirs(os.path.join(d, "log"), exist_ok=True)
    if os.path.abspath(src) != os.path.abspath(d):
        for name in ["tree", "final.mdl", "cmvn_opts", "delta_opts", "splice_opts", "final.mat", "full.mat"]:
            if os.path.exists(os.path.join(src, name)):
                shutil.copyfile(os.path.join(src, name), os.path.join(d, name))
    shutil.copyfile(os.path.join(lang_dir, "phones.txt"), os.path.join(d, "phones.txt"))
    write_lines(os.path.join(d, "num_jobs"), [str(args.nj)])
    log.info(f"feature type is {feature_type(d)}")
    split_dir = split_data(data, args.nj)
    log_pattern = os.path.join(d, "log", "align.JOB.log")
    run_jobs(args.cmd, args.nj, log_pattern,
             job_argv(os.path.join(split_dir, "JOB"), lang_dir, d, align="viterbi", beam=args.beam,
                      retry_beam=args.retry_beam, careful=args.careful, boost_silence=args.boost_silence,
                      ali_out=os.path.join(d, "ali.JOB.gz"), phone_ali_out=os.path.join(d, "phone_ali.JOB.gz")),
             what="alignment jobs")
    aligned = total = 0
    failed = []
    for j in range(1, args.nj + 1):
        text = open(log_pattern.replace("JOB", str(j)), encoding="utf-8").read()
        m = re.search(r"alignments: (\d+) of (\d+) utterances", text)
        if m:
            aligned += int(m.group(1))
            total += int(m.group(2))
        m = re.search(r"utterances without alignment \(\d+\): (.*)", text)
        if m:
            failed += m.group(1).split()
    log.info(f"aligned {aligned} of {total} utterances of {data} ({100.0 * aligned / max(total, 1):.2f}%) in "
             f"{time.time() - t0:.1f} s" + (f"; failed: {' '.join(failed)}" if failed else ""))
    done.finish()
    return 0


def main():
    args, _ = parse_args_with_config(get_parser())
    if args.nj < 1:
        raise InputError(f"--nj must be positive, got {args.nj}")
    return align_si(args)


if __name__ == "__main__":
    run_main(main)
