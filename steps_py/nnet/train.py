"""Frame-level cross-entropy training of an acoustic model on GMM alignments (Kaldi's steps/nnet3/train_rnn.py).

Usage: python -m steps_py.nnet.train [--nnet-conf conf/nnet/lstm_2l.conf] [--train-conf conf/nnet/train.conf]
           [--num-jobs N] [--set NAME=VALUE ...] <data-dir> <ali-dir> <exp-dir>
  e.g. python -m steps_py.nnet.train --nnet-conf conf/nnet/lstm_2l.conf data/train_fbank exp/tri2b_ali_train \\
           exp/nnet/lstm_2l

<data-dir>: features (feats.scp, cmvn.scp; 40-dim Fbank); <ali-dir>: ali.*.gz, final.mdl, tree of a GMM system
(ours or a real Kaldi's, e.g. exp/tri4b_ali_si284). Writes to <exp-dir>: nnet.conf, train.conf (copies),
cmvn_opts, final.mdl + tree (copies: the transition model decoding needs), prior.vec (pdf priors from the
alignment counts), <iter>.pt checkpoints (the last two kept) and final.pt, train_summary.json, log/train.log
lines (per iteration: lr, train CE, valid CE and frame accuracy), tensorboard/ event files.

Training as Kaldi's nnet3 recipes: chunks of ``chunk_width`` labelled frames with ``chunk_left_context`` extra
frames and the model's label delay (``chunk_width`` may be a schedule, one width per pass over the data, the last
repeated: e.g. 40,40,160,160 trains the last two epochs on chunks four times as long, with four times fewer chunks
per minibatch, so that the recurrence learns the horizon it is decoded at); ``num_valid_utts`` training
utterances held out for validation; learning rate decaying exponentially from initial_lr to final_lr over all
iterations; max-change per minibatch, per component (each affine transform; the output layer has its own) and for
the whole model; momentum; NSGD (steps_py.nnet.nsgd), plain SGD or Adam, on the per-frame mean CE (the frames
where edge chunks overlap split their weight, so each frame counts once). With num_jobs N > 1, N processes
(torch.distributed: gloo on the CPU, NCCL on GPUs) train on disjoint shards of the data and their models are
averaged after every iteration, with the learning rate scaled by N (Kaldi's parallel training). As in Kaldi,
where each iteration of each job is a new nnet3-train process, every iteration starts a fresh optimizer: momentum,
NSGD's Fisher estimates and Adam's moments are reset, nothing but the (averaged) model carries over. Under torchrun
(or srun + torchrun) the ranks come from the environment instead.
A killed run resumes from its last checkpoint with the same data order; a NaN/Inf loss stops with an error.
The train conf's ``device`` (steps_py.nnet.device: auto, cpu, cuda, cuda:N) says where the jobs train; with
cuda each job takes its own GPU, and checkpoints load on either device.
"""
import argparse
import json
import math
import os
import shutil
import time

import numpy as np

from steps_py.common import (InputError, atomic_open, atomic_path, get_logger, progress, read_json, require_files,
                             run_main, write_json)
from steps_py.completion import input_signature, inputs_change
from steps_py.data.datadir import read_map
from steps_py.feats.cmvn import read_cmvn_opts
from steps_py.feats.pipeline import CmvnPipeline, iter_features
from steps_py.kaldi.io import alignment_files, read_kaldi_vector, write_kaldi_vector
from steps_py.nnet import egs as nnet_egs
from steps_py.nnet.checkpoint import checkpoint_path, latest_checkpoint, read_checkpoint, save_checkpoint
from steps_py.nnet.config import NnetConfig, changed_settings, parse_setting, read_train_conf
from steps_py.nnet.device import dist_backend, resolve_device
from steps_py.nnet.model import AcousticModel, forward_utterances
from steps_py.nnet.nsgd import NSGD

log = get_logger("nnet.train")

def lr_at(it, num_iters, initial, final):
    """Exponential decay from initial (iteration 0) to final (last iteration)."""
    if num_iters <= 1:
        return initial
    return initial * math.exp(it / (num_iters - 1) * math.log(final / initial))


# ----------------------------------------------------------------------------------------------- data

def split_valid(utts, num_valid, seed):
    """Sorted utterance ids -> (train utts, valid utts): ``num_valid`` utterances drawn with ``seed``."""
    rng = np.random.default_rng(seed)
    num_valid = min(num_valid, len(utts) // 10)
    valid = set(rng.choice(len(utts), size=num_valid, replace=False).tolist()) if num_valid else set()
    return [u for i, u in enumerate(utts) if i not in valid], [u for i, u in enumerate(utts) if i in valid]


def minibatch_stream(frames, widths, left_context, label_delay, minibatch_size, seed, rank):
    """Endless (inputs [B, L] frame indices, targets [B, W], weights [B, W]) minibatches: epoch e tiles the
    utterances into chunks of widths[min(e, last)] labelled frames with offsets from rng(seed, rank, e) and shuffles
    them; a minibatch holds minibatch_size * widths[0] / W chunks (the same number of frames whatever the width).
    Deterministic, so a resumed run can skip ahead."""
    epoch = 0
    while True:
        rng = np.random.default_rng([seed, rank, epoch])
        geom = nnet_egs.ChunkGeometry(widths[min(epoch, len(widths) - 1)], left_context, label_delay)
        inputs, targets, weights = nnet_egs.make_chunks(frames, geom, rng)
        chunks_per_mb = max(1, round(minibatch_size * widths[0] / geom.width))
        for idx in nnet_egs.minibatches(len(inputs), chunks_per_mb, rng):
            yield inputs[idx], targets[idx], weights[idx]
        epoch += 1


# ----------------------------------------------------------------------------------------------- optimisation

def component_max_changes(model, tc):
    """Kaldi's per-component max-change, one value per affine record of the model (the output layer last)."""
    return [tc["max_change_per_component"]] * (len(model.affine_records()) - 1) + [tc["max_change_output"]]


def make_optimizer(model, tc, num_jobs):
    """(optimizer, lr multiplier): NSGD, SGD or Adam from the train conf. The lr of SGD/NSGD is scaled by the
    number of jobs (models are averaged, as in Kaldi); Adam's by adam_lr_scale."""
    import torch
    if tc["optimizer"] == "nsgd":
        records = model.affine_records()
        in_records = {id(p) for r in records for p in (r.weight, r.bias) if p is not None}
        others = [p for p in model.parameters() if id(p) not in in_records]
        opt = NSGD(records, others, lr=tc["initial_lr"], momentum=tc["momentum"], max_change=tc["max_change"],
                   max_change_per_record=component_max_changes(model, tc),
                   rank_in=tc["nsgd_rank_in"], rank_out=tc["nsgd_rank_out"],
                   update_period=tc["nsgd_update_period"], num_samples_history=tc["nsgd_num_samples_history"],
                   alpha=tc["nsgd_alpha"])
        return opt, num_jobs
    if tc["optimizer"] == "sgd":
        # dampening = momentum: the change is scaled by 1 - momentum as in Kaldi (and NSGD), so lr means the same
        return torch.optim.SGD(model.parameters(), lr=tc["initial_lr"], momentum=tc["momentum"],
                               dampening=tc["momentum"]), num_jobs
    return torch.optim.Adam(model.parameters(), lr=tc["initial_lr"] * tc["adam_lr_scale"]), tc["adam_lr_scale"]


def set_lr(opt, lr):
    if hasattr(opt, "param_groups"):
        for g in opt.param_groups:
            g["lr"] = lr
    else:
        opt.lr = lr


def limit_change(model, lr, tc):
    """Plain SGD/Adam: Kaldi's max-change, per component (each affine record) and then for the whole model, as
    gradient-norm limits (change = lr * grad). Returns (components limited, whole model limited)."""
    import torch
    lr = max(lr, 1e-12)
    n_components = 0
    for rec, limit in zip(model.affine_records(), component_max_changes(model, tc)):
        params = [p for p in (rec.weight, rec.bias) if p is not None and p.grad is not None]
        if limit > 0 and params:
            n_components += bool(torch.nn.utils.clip_grad_norm_(params, limit / lr) * lr > limit)
    if tc["max_change"] <= 0:
        return n_components, False
    norm = torch.nn.utils.clip_grad_norm_(model.parameters(), tc["max_change"] / lr)
    return n_components, bool(norm * lr > tc["max_change"])


def evaluate(model, frames, label_delay, batch_frames=20000):
    """Whole-utterance CE (nats per frame) and frame accuracy of ``model`` on Frames."""
    feats = [frames.feats[s:s + n] for s, n in zip(frames.starts, frames.lengths)]
    model.eval()
    outs = forward_utterances(model, feats, label_delay, batch_frames=batch_frames)
    model.train()
    tot_ce, tot_ok, tot_n = 0.0, 0, 0
    for (logp, _), s, n in zip(outs, frames.starts, frames.lengths):
        y = frames.targets[s:s + n]
        keep = y != nnet_egs.IGNORE
        y = y[keep]
        lp = logp[keep]
        tot_ce -= float(lp[np.arange(len(y)), y].sum())
        tot_ok += int((lp.argmax(1) == y).sum())
        tot_n += len(y)
    return tot_ce / max(tot_n, 1), tot_ok / max(tot_n, 1)


def max_change_shares(n_limited, n_comp_limited, num_minibatches, num_components):
    """(share of the minibatches whose whole-model change max_change limited, share of the (minibatch, component)
    updates a per-component max-change limited), each in [0, 1]: Kaldi's "max-change was active" percentages."""
    return n_limited / max(num_minibatches, 1), n_comp_limited / max(num_minibatches * num_components, 1)


def prior_ce(priors, targets):
    """Cross-entropy (nats per frame) of always predicting the pdf ``priors`` [P] on ``targets`` [N] (IGNORE
    skipped): what a model that has learnt nothing from its input scores."""
    y = targets[targets != nnet_egs.IGNORE]
    return float(-np.log(priors[y]).mean()) if len(y) else float("nan")


def diverged(valid_ce, chance_ce):
    """True when a validation CE (nats per frame) is not finite or no better than ``chance_ce`` (prior_ce); train
    checks it from the end of the first epoch on."""
    return not math.isfinite(valid_ce) or valid_ce >= chance_ce


def train_rank(rank, world, args, cfg, tc, shards, valid_utts, num_pdfs, input_dim, num_iters):
    """The training loop of one process (rank) over its shard; rank 0 validates, logs and checkpoints."""
    import torch
    import torch.nn.functional as F
    dist = None
    device = resolve_device(tc["device"], int(os.environ.get("LOCAL_RANK", rank)), what="train conf: device")
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if world > 1:
        import torch.distributed as dist
        if not dist.is_initialized():
            dist.init_process_group(dist_backend(device), init_method=args.init_method, rank=rank,
                                    world_size=world)
    threads = tc["num_threads"] or max(1, (os.cpu_count() or 1) // world)
    torch.set_num_threads(threads)
    targets, _ = nnet_egs.read_pdf_alignments(args.ali_dir)
    pipeline = CmvnPipeline(read_cmvn_opts(os.path.join(args.exp_dir, "cmvn_opts")))
    frames = nnet_egs.load_frames(iter_features(args.data_dir, utts=shards[rank], pipeline=pipeline), targets,
                                  what=f"train shard {rank + 1}/{world}")
    valid = None
    if rank == 0 and valid_utts:
        valid = nnet_egs.load_frames(iter_features(args.data_dir, utts=valid_utts, pipeline=pipeline), targets,
                                     what="valid")
        chance_ce = prior_ce(read_kaldi_vector(os.path.join(args.exp_dir, "prior.vec")), valid.targets)
    del targets
    widths = tc["chunk_width"]
    mb_per_iter = max(1, round(tc["frames_per_iter"] / (tc["minibatch_size"] * widths[0])))

    torch.manual_seed(tc["seed"])
    model = AcousticModel(cfg, input_dim, num_pdfs)
    start, history = latest_checkpoint(args.exp_dir), []
    if start:
        ckpt = read_checkpoint(checkpoint_path(args.exp_dir, start))
        model.load_state_dict(ckpt["model"])
        history = ckpt["history"]
        if rank == 0:
            log.info(f"resuming from {checkpoint_path(args.exp_dir, start)} (iteration {start} of {num_iters})")
    model.to(device)      # initialised (or loaded) on the CPU: the same starting model on every device
    model.train()
    model.record_affine = tc["optimizer"] == "nsgd"
    stream = minibatch_stream(frames, widths, tc["chunk_left_context"], cfg.label_delay, tc["minibatch_size"],
                              tc["seed"], rank)
    for _ in range(start * mb_per_iter):
        next(stream)
    feats_all = torch.from_numpy(frames.feats)   # on the CPU; each minibatch is copied to the device
    offset = tc["chunk_left_context"] + cfg.label_delay
    writer = None
    if rank == 0:
        from torch.utils.tensorboard import SummaryWriter
        writer = SummaryWriter(os.path.join(args.exp_dir, "tensorboard"))
        log.info(f"{cfg.cell} x {cfg.num_layers} layers of {cfg.cell_dim}: {model.num_params()} parameters; "
                 f"{world} job(s) x {threads} thread(s) on {device}; {num_iters} iterations of {mb_per_iter} "
                 f"minibatches of "
                 f"{tc['minibatch_size']} chunks ({','.join(map(str, widths))} frames + "
                 f"{tc['chunk_left_context']} left context, label delay {cfg.label_delay}); optimizer {tc['optimizer']}, lr {tc['initial_lr']} -> {tc['final_lr']}")

    t_start = time.time()
    first_epoch_end = num_iters / tc["num_epochs"] if tc["num_epochs"] > 0 else math.inf   # in iterations
    for it in range(start, num_iters):
        # every job starts each iteration from the averaged model with a fresh optimizer (momentum, NSGD's Fisher
        # estimates, Adam's moments), as each iteration of Kaldi's train_rnn.py is a new nnet3-train process
        opt, lr_mult = make_optimizer(model, tc, world)
        lr = lr_at(it, num_iters, tc["initial_lr"], tc["final_lr"]) * lr_mult
        set_lr(opt, lr)
        torch.manual_seed(tc["seed"] * 100003 + it * 101 + rank)
        tot_loss, tot_frames, n_limited, n_comp_limited, t0 = 0.0, 0.0, 0, 0, time.time()
        bar = progress(range(mb_per_iter), desc=f"iter {it + 1}/{num_iters}", unit="mb") \
            if rank == 0 else range(mb_per_iter)
        for _ in bar:
            idx, tgt, wgt = next(stream)
            x = feats_all[torch.from_numpy(idx)].to(device)
            y = torch.from_numpy(tgt).reshape(-1).to(device)
            w = torch.from_numpy(wgt).reshape(-1).to(device)
            logits = model(x)[:, offset:offset + tgt.shape[1]]
            ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y, ignore_index=nnet_egs.IGNORE,
                                 reduction="none")
            n = float(w.sum())
            loss = (ce * w).sum() / max(n, 1e-12)      # per-frame mean CE, each frame counted once
            if not torch.isfinite(loss):
                last = f"{checkpoint_path(args.exp_dir, it)} is the last good model" if it else "no model saved"
                raise InputError(f"training diverged at iteration {it + 1} (loss {loss.item()}); lower initial_lr "
                                 f"or max_change in the train conf ({last})")
            opt.zero_grad()
            loss.backward()
            if tc["optimizer"] != "nsgd":
                comp, whole = limit_change(model, lr, tc)
                n_comp_limited += comp
                n_limited += whole
            opt.step()
            for rec in model.affine_records():     # the minibatch's inputs and derivatives: not kept past the step
                rec.inputs = rec.out_grads = None
            tot_loss += loss.item() * n
            tot_frames += n
        if tc["optimizer"] == "nsgd":
            n_limited, n_comp_limited = opt.num_max_change_applied, sum(opt.num_max_change_per_record_applied)
        stats = torch.tensor([tot_loss, tot_frames], dtype=torch.float64, device=device)   # NCCL: on the GPU
        if dist is not None:
            with torch.no_grad():
                for p in model.parameters():
                    dist.all_reduce(p.data, op=dist.ReduceOp.SUM)
                    p.data /= world
                for b in model.buffers():
                    if b.is_floating_point():
                        dist.all_reduce(b.data, op=dist.ReduceOp.SUM)
                        b.data /= world
            dist.all_reduce(stats, op=dist.ReduceOp.SUM)
        stats = stats.cpu()
        train_ce = float(stats[0] / max(stats[1], 1))
        if rank == 0:
            valid_ce, valid_acc = evaluate(model, valid, cfg.label_delay) if valid is not None else (float("nan"),) * 2
            secs = time.time() - t0
            history.append({"iter": it + 1, "lr": lr, "train_ce": train_ce, "valid_ce": valid_ce,
                            "valid_acc": valid_acc, "frames": round(float(stats[1])), "seconds": secs,
                            "max_change_applied": int(n_limited),
                            "max_change_per_component_applied": int(n_comp_limited)})
            whole, comp = max_change_shares(n_limited, n_comp_limited, mb_per_iter, len(model.affine_records()))
            log.info(f"iter {it + 1}/{num_iters}: lr {lr:.4g}, train CE {train_ce:.4f}, valid CE {valid_ce:.4f}, "
                     f"valid frame acc {valid_acc:.4f}; {float(stats[1]):.0f} frames in {secs:.1f} s "
                     f"({stats[1] / secs:.0f} frames/s); max-change active for the whole model in {n_limited} "
                     f"of {mb_per_iter} minibatches ({100 * whole:.0f}%), per component in {100 * comp:.0f}% "
                     f"of the updates")
            if whole > tc["warn_max_change_share"]:
                log.warning(f"iter {it + 1}: max_change ({tc['max_change']}) limited the whole model in "
                            f"{100 * whole:.0f}% of the minibatches: the steps are the limit's, not the gradient's; "
                            f"lower initial_lr/final_lr (now {lr:.4g} at this iteration) in the train conf")
            # after stop_after_epochs passes over the data a model must beat the priors (before, a slow start is
            # no failure); a non-finite valid CE stops it at once
            check = tc["stop_after_epochs"] > 0 and it + 1 >= first_epoch_end * tc["stop_after_epochs"]
            if valid is not None and (not math.isfinite(valid_ce) or check and diverged(valid_ce, chance_ce)):
                last = f"{checkpoint_path(args.exp_dir, it)} is the last model" if it else "no model saved"
                raise InputError(f"training diverged at iteration {it + 1}: valid CE {valid_ce:.4g} is no better "
                                 f"than predicting the pdf priors ({chance_ce:.4g}); lower initial_lr or max_change "
                                 f"in the train conf and train again with --force ({last})")
            for k in ("lr", "train_ce", "valid_ce", "valid_acc"):
                writer.add_scalar(k, history[-1][k], it + 1)
            writer.flush()
            save_checkpoint(checkpoint_path(args.exp_dir, it + 1), model, cfg, input_dim, num_pdfs, it + 1, history)
            old = it + 1 - tc["keep_checkpoints"]
            if old > 0 and os.path.exists(checkpoint_path(args.exp_dir, old)):
                os.unlink(checkpoint_path(args.exp_dir, old))
        if dist is not None:
            dist.barrier()
    if rank == 0:
        if writer:
            writer.close()
        final = checkpoint_path(args.exp_dir, num_iters)
        with atomic_path(os.path.join(args.exp_dir, "final.pt")) as tmp:
            shutil.copyfile(final, tmp)
        last = history[-1] if history else {}
        summary = {"num_params": model.num_params(), "num_iters": num_iters, "epochs": tc["num_epochs"],
                   "num_jobs": world, "seed": tc["seed"], "chunk_width": tc["chunk_width"],
                   "chunk_left_context": tc["chunk_left_context"], "label_delay": cfg.label_delay,
                   "horizon_frames": tc["chunk_left_context"] + max(tc["chunk_width"]) + cfg.label_delay,
                   "optimizer": tc["optimizer"], "final_train_ce": last.get("train_ce"),
                   "final_valid_ce": last.get("valid_ce"), "final_valid_acc": last.get("valid_acc"),
                   "train_seconds": sum(h["seconds"] for h in history), "history": history}
        with atomic_open(os.path.join(args.exp_dir, "train_summary.json")) as f:
            json.dump(summary, f, indent=1)
        log.info(f"done in {time.time() - t_start:.0f} s: final train CE {summary['final_train_ce']:.4f}, valid "
                 f"CE {summary['final_valid_ce']:.4f}, valid frame acc {summary['final_valid_acc']:.4f}")
    if dist is not None:
        dist.destroy_process_group()


def _spawned(rank, world, *rest):
    run_main(lambda: train_rank(rank, world, *rest))


# ----------------------------------------------------------------------------------------------- driver

def prepare(args, cfg, tc):
    """Copies the confs and the transition model, writes priors; returns (shards, valid utts, num_pdfs, input_dim,
    num_iters)."""
    import kaldiio
    d = args.exp_dir
    os.makedirs(os.path.join(d, "log"), exist_ok=True)
    require_files(os.path.join(args.ali_dir, "final.mdl"), os.path.join(args.ali_dir, "tree"))
    for src, name in ((args.ali_dir + "/final.mdl", "final.mdl"), (args.ali_dir + "/tree", "tree"),
                      (args.nnet_conf, "nnet.conf"), (args.train_conf, "train.conf")):
        if src and os.path.exists(src):
            with atomic_path(os.path.join(d, name)) as tmp:
                shutil.copyfile(src, tmp)
    if args.overrides:      # the copy says what was trained: the command line's settings win, as the last lines
        with open(os.path.join(d, "train.conf"), "a") as f:
            f.write("\n# set on the command line\n" + "".join(f"{n}={v}\n" for n, v in args.overrides))
    cmvn_src = os.path.join(args.ali_dir, "cmvn_opts")
    cmvn_opts = open(cmvn_src).read().strip() if os.path.exists(cmvn_src) else "--norm-means=true --norm-vars=false"
    with atomic_open(os.path.join(d, "cmvn_opts")) as f:
        f.write(cmvn_opts + "\n")
    targets, num_pdfs = nnet_egs.read_pdf_alignments(args.ali_dir)
    scp = read_map(os.path.join(args.data_dir, "feats.scp"))
    utts = sorted(u for u in scp if u in targets)
    if len(utts) < len(scp):
        log.warning(f"{len(scp) - len(utts)} of {len(scp)} utterances of {args.data_dir} have no alignment in "
                    f"{args.ali_dir}; they are not used")
    if not utts:
        raise InputError(f"no utterance of {args.data_dir}/feats.scp has an alignment in {args.ali_dir}")
    train_utts, valid_utts = split_valid(utts, tc["num_valid_utts"], tc["valid_seed"])
    counts = nnet_egs.pdf_counts({u: targets[u] for u in train_utts}, num_pdfs)
    write_kaldi_vector(os.path.join(d, "prior.vec"), nnet_egs.priors_from_counts(counts))
    unseen = int((counts == 0).sum())
    if unseen:
        log.warning(f"{unseen} of {num_pdfs} pdfs never occur in the training alignments (prior smoothed)")
    world = args.world
    shards = [train_utts[r::world] for r in range(world)]
    input_dim = kaldiio.load_mat(scp[utts[0]]).shape[1]
    frames_per_job = sum(len(targets[u]) for u in train_utts) / world
    chunks = frames_per_job / tc["chunk_width"][0]
    mb_per_iter = max(1, round(tc["frames_per_iter"] / (tc["minibatch_size"] * tc["chunk_width"][0])))
    num_iters = max(1, math.ceil(tc["num_epochs"] * chunks / tc["minibatch_size"] / mb_per_iter))
    log.info(f"{len(train_utts)} training utterances ({frames_per_job * world / 360000:.2f} h), {len(valid_utts)} "
             f"held out for validation; {num_pdfs} pdfs; {input_dim}-dim input; {world} job(s)")
    return shards, valid_utts, num_pdfs, input_dim, num_iters


INPUTS_RECORD = "train_inputs.json"


def training_inputs(data_dir, ali_dir):
    """{path: input_signature} of what a training run reads: the features' scp, the alignments, the alignment dir's
    final.mdl and tree. Written to <exp>/train_inputs.json when a run starts from scratch."""
    paths = [os.path.join(data_dir, "feats.scp"), os.path.join(ali_dir, "final.mdl"), os.path.join(ali_dir, "tree")]
    return {p: input_signature(p) for p in paths + alignment_files(ali_dir)}


def train(args):
    cfg = NnetConfig.from_file(args.nnet_conf)
    args.overrides = [parse_setting(t) for t in args.set or ()]
    for name, value in (("num_jobs", args.num_jobs or None), ("optimizer", args.optimizer),
                        ("num_epochs", args.num_epochs or None), ("seed", args.seed)):
        if value is not None:
            args.overrides.append((name, str(value)))
    tc = read_train_conf(args.train_conf, args.overrides)
    device_from = "--set" if any(n == "device" for n, _ in args.overrides) else args.train_conf
    device = resolve_device(tc["device"], what=f"{device_from}: device")   # a missing GPU: refused before work
    jobs = int(os.environ.get("WORLD_SIZE", "0")) or max(1, tc["num_jobs"])
    if device.type == "cuda" and jobs > 1 and "LOCAL_RANK" not in os.environ:
        import torch
        if ":" in tc["device"] or jobs > torch.cuda.device_count():
            raise InputError(f"{device_from}: device={tc['device']} with {jobs} jobs: each job needs a GPU of its "
                             f"own (NCCL), and torch sees {torch.cuda.device_count()}; use device=cuda with at "
                             f"most that many jobs, or device=cpu")
    env_world = int(os.environ.get("WORLD_SIZE", "1"))
    old_conf = os.path.join(args.exp_dir, "nnet.conf")
    if os.path.exists(old_conf) and not args.force and \
            NnetConfig.from_file(old_conf) != NnetConfig.from_file(args.nnet_conf):   # the settings, not comments
        raise InputError(f"{args.nnet_conf} differs from {old_conf}, the conf {args.exp_dir} was trained with: "
                         f"remove {args.exp_dir}, train into another dir, or use --force")
    old_train = os.path.join(args.exp_dir, "train.conf")
    if os.path.exists(old_train) and not args.force and \
            (latest_checkpoint(args.exp_dir) > 0 or os.path.exists(os.path.join(args.exp_dir, "final.pt"))):
        changed = changed_settings(read_train_conf(old_train), tc)
        if changed:
            raise InputError(f"{args.exp_dir} was trained with other settings than {args.train_conf} and the "
                             f"command line give ({changed}; {old_train} holds them): remove {args.exp_dir}, train "
                             f"into another dir, or use --force")
    record = os.path.join(args.exp_dir, INPUTS_RECORD)
    inputs = training_inputs(args.data_dir, args.ali_dir)
    started = os.path.isdir(args.exp_dir) and \
        (latest_checkpoint(args.exp_dir) > 0 or os.path.exists(os.path.join(args.exp_dir, "final.pt")))
    if started and not args.force and os.path.exists(record):
        changed = inputs_change(read_json(record), inputs)
        if changed:
            raise InputError(f"{args.exp_dir} was trained on other inputs than {args.data_dir} and {args.ali_dir} "
                             f"hold now ({changed}; {record} lists what the training read): remove "
                             f"{args.exp_dir}, train into another dir, or use --force")
    if os.path.exists(os.path.join(args.exp_dir, "final.pt")) and not args.force:
        log.info(f"{args.exp_dir}/final.pt exists; nothing to do (--force to retrain)")
        return
    if args.force and os.path.isdir(args.exp_dir):
        for f in os.listdir(args.exp_dir):
            if f.endswith(".pt"):
                os.unlink(os.path.join(args.exp_dir, f))
        started = False
    if (not started or not os.path.exists(record)) and int(os.environ.get("RANK", "0")) == 0:
        os.makedirs(args.exp_dir, exist_ok=True)
        write_json(record, inputs)
    if env_world > 1:   # torchrun / srun: this process is one rank
        rank = int(os.environ["RANK"])
        args.world, args.init_method = env_world, "env://"
        rest = prepare(args, cfg, tc)
        train_rank(rank, env_world, args, cfg, tc, *rest)
        return
    args.world = max(1, tc["num_jobs"])
    rest = prepare(args, cfg, tc)
    if args.world == 1:
        train_rank(0, 1, args, cfg, tc, *rest)
        return
    import torch.multiprocessing as mp
    init_file = os.path.join(os.path.abspath(args.exp_dir), ".dist_init")
    if os.path.exists(init_file):
        os.unlink(init_file)
    args.init_method = f"file://{init_file}"
    try:
        mp.spawn(_spawned, args=(args.world, args, cfg, tc) + tuple(rest), nprocs=args.world, join=True)
    except mp.ProcessExitedException as e:
        raise InputError(f"training job {e.error_index + 1} of {args.world} failed (exit code {e.exit_code}); "
                         f"its error is printed above") from None
    except mp.ProcessRaisedException as e:
        raise InputError(f"a training job failed:\n{e}") from None


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--nnet-conf", default="conf/nnet/lstm_2l.conf", help="model conf (default: %(default)s)")
    p.add_argument("--train-conf", default="conf/nnet/train.conf", help="training conf (default: %(default)s)")
    p.add_argument("--num-jobs", type=int, default=0, help="parallel jobs (default: num_jobs of the train conf)")
    p.add_argument("--optimizer", choices=["nsgd", "sgd", "adam"], help="override the train conf's optimizer")
    p.add_argument("--num-epochs", type=float, default=0, help="override the train conf's num_epochs")
    p.add_argument("--seed", type=int, help="override the train conf's seed (initialisation and data order)")
    p.add_argument("--set", action="append", metavar="NAME=VALUE",
                   help="override a setting of the train conf (repeatable), e.g. --set initial_lr=4")
    p.add_argument("--force", action="store_true", help="train again even if final.pt exists")
    p.add_argument("data_dir")
    p.add_argument("ali_dir")
    p.add_argument("exp_dir")
    args = p.parse_args()
    require_files(*[f for f in (args.nnet_conf, args.train_conf) if f])
    train(args)


if __name__ == "__main__":
    run_main(main)
