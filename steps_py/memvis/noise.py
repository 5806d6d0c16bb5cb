"""Usage: python -m steps_py.memvis.noise [options] <nnet-dir> <data-dir> <out-dir>

Memory robustness (Tang et al. 2017, Fig. 3): a segment of white noise is put into the audio of chosen utterances
and the network's memory (LSTM: cell c; GRU / rnn: h) of the noisy audio is compared with that of the clean audio,
frame by frame, in every layer.

For each utterance of <data-dir> (wav.scp, segments, utt2spk; e.g. data/dev_fbank):
  1. the audio is read and white noise of RMS = utterance RMS * 10^(noise_db / 20) is added to (--noise-mode add)
     or replaces (--noise-mode replace) the samples from --noise-start for --noise-dur seconds (seeded per utterance);
  2. Fbank features of clean and noisy audio are computed with the Fbank config (--fbank-config; default
     <data-dir>/conf/fbank.conf, else conf/fbank.conf), then CMVN with the *same* statistics for both: the speaker's
     stats of <data-dir>/cmvn.scp as in training (--cmvn speaker), or the clean utterance's own (--cmvn utterance);
     the options (--norm-means/--norm-vars) come from <nnet-dir>/cmvn_opts;
  3. bundle.internals (steps_py.nnet.checkpoint.load_acoustic_model(<nnet-dir>)) gives each layer's memory [T, H] for
     both; |delta| = |noisy - clean| per unit and frame, divided by the unit's natural frame-to-frame variation
     (the standard deviation of its clean c_t - c_{t-1} over the utterance; --normalise unit, the default), so that
     1 means "as large as one frame's ordinary change" whatever the unit's magnitude; the mean over units is the
     layer's delta curve [T] (--normalise none: raw |delta|, where a few large units dominate);
  4. memory persistence of a layer = the number of frames, counted from the first frame whose network input window
     no longer contains a noisy frame ("free frame" = noise end frame + splice - label delay, in the frame index of
     bundle.internals, which is shifted by the label delay), until the delta curve falls below the threshold
     (--threshold, default 1 on the normalised curve; with --normalise none, --threshold-rel times the curve's peak
     from the first frame whose input window holds noise) and stays below it for --hold frames. If it never does,
     the utterance's remaining frame count is taken and the value is marked censored (a lower bound): medians and
     the censored share are reported, as a mean of censored values says little.
  The frame index is that of the alignment (bundle.internals undoes the label delay); the memory at frame t has
  seen the input frames up to t + label_delay + splice, so the noise shows from noise_frames[0] - label_delay -
  splice on.

Outputs in <out-dir>: delta_<utt>.png/.svg for the first --plot-utts utterances (per layer: heat map of |delta|
units x frames, units ordered by their total |delta| after the noise; bottom panel: the curves of all layers, log
scale, with the noise span and the threshold), persistence.png/.svg (per layer: median over utterances with the
quartiles), decay.png/.svg (per layer: median delta curve over the utterances, frames after the free frame, with the
threshold), numbers.json:
  {"model_dir", "data_dir", "cell", "quantity", "num_layers", "frame_shift": 0.01,
   "noise": {"start", "dur", "db", "mode", "seed"}, "normalise": "unit|none",
   "threshold": {"value", "rel", "hold"}, "cmvn": "speaker|utterance",
   "utterances": {utt: {"num_frames", "noise_frames": [first, end) (feature frames overlapping the noise),
                        "noise_input_frames": [first, end) (frames of the internals whose input window holds a
                        noisy frame; end = "free_frame"), "free_frame",
                        "layers": {"1": {"peak", "threshold", "persistence_frames", "censored",
                                         "mean_delta_after"}, ...}}},
   "layers": {"1": {"persistence_frames_mean", "persistence_frames_median", "persistence_frames_q25",
                    "persistence_frames_q75", "persistence_frames_min", "persistence_frames_max", "num_censored",
                    "censored_share", "peak_mean"}, ...},
   "decay": {"1": {"median": [frames after the free frame], "num_utts": [...]}, ...},
   "persistence_frames_median": median over utterances of the mean over layers, "censored_share": share of
   (utterance, layer) values censored, "persistence_frames_mean": mean over layers and utterances}

Options:
  --utts LIST            comma-separated utterance ids (default: the first --num-utts long enough ones, C order)
  --num-utts N           (default 4)
  --noise-start S        seconds (default 1.0)      --noise-dur S   seconds (default 0.2)
  --noise-db DB          noise RMS relative to the utterance RMS (default 0)
  --noise-mode add|replace   (default add)          --seed N  (default 0)
  --normalise unit|none  (default unit)             --threshold T  (default 1.0: on the normalised curve)
  --threshold-rel R      with --normalise none: R times the peak (default 0.1)
  --hold N               frames the curve must stay below the threshold (default 5)
  --plot-utts N          utterances drawn one by one (default 4)  --decay-frames N  (default 300)
  --min-after S          seconds of audio needed after the noise for an utterance to be used (default 0.5)
  --cmvn speaker|utterance   (default speaker; utterance when <data-dir> has no cmvn.scp)
  --fbank-config FILE    --quantity NAME (default: c for LSTM, h otherwise)
  --device auto|cpu|cuda|cuda:N   where the network runs (default auto: the GPU when there is one)

e.g. python -m steps_py.memvis.noise --num-utts 8 --noise-db 0 exp/nnet/lstm_2l data/dev_fbank \
         exp/nnet/lstm_2l/memvis_dev/noise
"""
import argparse
import os
import zlib

import numpy as np

from steps_py.common import InputError, get_logger, progress, require_files, run_main
from steps_py.completion import Completion, done_stamp, settings_of, skip_if_done
from steps_py.data.audio import AudioError, UtteranceAudio
from steps_py.data.datadir import c_sorted, data_dir_inputs, read_map
from steps_py.feats.cmvn import cmvn_stats
from steps_py.feats.features import compute_features, load_feature_config
from steps_py.feats.pipeline import CmvnPipeline
from steps_py.memvis.analysis import NUMBERS, MEMORY_QUANTITY, save_figure, setup_matplotlib, write_numbers
from steps_py.nnet.device import add_device_option
from steps_py.nnet.hybrid import nnet_inputs

# The tables of <data-dir> the analysis reads (audio, speakers, CMVN stats, the stored features it checks against).
DATA_TABLES = ("wav.scp", "segments", "utt2spk", "spk2utt", "cmvn.scp", "feats.scp")

log = get_logger("memvis.noise")


# ---------------------------------------------------------------------------------------------------------------
# Pure functions

def add_white_noise(samples, rate, start, dur, level_db, rng, mode="add"):
    """``samples`` [N] (int16 scale) with white noise from ``start`` for ``dur`` seconds -> new array [N] float32.

    Noise RMS = RMS of the whole clean utterance * 10^(level_db / 20). mode "add" mixes the noise into the speech,
    "replace" puts it in place of the speech. Returns (noisy samples, (first sample, end sample)).
    """
    x = np.asarray(samples, dtype=np.float64)
    a = int(round(start * rate))
    b = min(len(x), int(round((start + dur) * rate)))
    if a < 0 or a >= b:
        raise InputError(f"noise span {start:g}-{start + dur:g} s lies outside the {len(x) / rate:.3f} s of audio")
    rms = np.sqrt(np.mean(x ** 2)) if len(x) else 0.0
    noise = rng.standard_normal(b - a) * rms * 10.0 ** (level_db / 20.0)
    y = x.copy()
    if mode == "add":
        y[a:b] += noise
    elif mode == "replace":
        y[a:b] = noise
    else:
        raise InputError(f"unknown noise mode {mode!r} (add or replace)")
    return np.clip(y, -32768.0, 32767.0).astype(np.float32), (a, b)


def noisy_frame_span(first_sample, end_sample, window, shift, num_frames):
    """Frames (snip-edges framing: frame t covers samples [t*shift, t*shift + window)) that overlap samples
    [first_sample, end_sample) -> (first frame, end frame), clipped to [0, num_frames]."""
    first = max(0, -(-(first_sample - window + 1) // shift))
    end = min(num_frames, -(-end_sample // shift))
    return first, max(first, end)


def input_window_span(noise_frames, splice, label_delay, num_frames):
    """Frames of bundle.internals (shifted back by the label delay) whose network input window (frames
    t + label_delay - splice .. t + label_delay + splice) contains a noisy frame of ``noise_frames`` (first, end)
    -> (first, end), clipped to [0, num_frames]. ``end`` is the "free frame": from there on only memory carries
    the noise."""
    first = min(num_frames, max(0, noise_frames[0] - splice - label_delay))
    end = min(num_frames, max(0, noise_frames[1] + splice - label_delay))
    return first, max(first, end)


def memory_delta(clean, noisy):
    """|noisy - clean| per frame and unit: [T, H] (both [T, H]; the shorter length is used if they differ)."""
    n = min(len(clean), len(noisy))
    return np.abs(np.asarray(noisy[:n], dtype=np.float64) - np.asarray(clean[:n], dtype=np.float64))


def delta_curve(delta):
    """Mean |delta| over units per frame: [T, H] -> [T]."""
    return np.asarray(delta, dtype=np.float64).mean(axis=1)


def natural_variation(clean):
    """Each unit's ordinary frame-to-frame change: the standard deviation of clean[t] - clean[t-1] over the
    utterance, [T, H] -> [H]; floored at 1e-3 of the median unit's, so that a unit that never moves does not
    divide by zero."""
    c = np.asarray(clean, dtype=np.float64)
    sigma = np.diff(c, axis=0).std(0) if len(c) > 1 else np.zeros(c.shape[1])
    floor = 1e-3 * float(np.median(sigma)) if np.median(sigma) > 0 else 1e-12
    return np.maximum(sigma, floor)


def persistence(curve, free_frame, peak_from=0, threshold_rel=0.1, threshold_abs=None, hold=1):
    """Frames from ``free_frame`` until ``curve`` [T] falls below the threshold and stays below it ``hold`` frames.

    threshold = threshold_abs if given, else threshold_rel * max(curve[peak_from:]). Returns a dict
    {"persistence_frames", "censored", "peak", "threshold"}: censored is True when the curve never settles below
    the threshold (persistence_frames is then T - free_frame, a lower bound).
    """
    curve = np.asarray(curve, dtype=np.float64)
    T = len(curve)
    free_frame = int(min(max(free_frame, 0), T))
    peak = float(curve[peak_from:].max()) if T > peak_from else 0.0
    thr = float(threshold_abs) if threshold_abs is not None else threshold_rel * peak
    below = curve < thr if thr > 0 else curve <= 0
    hold = max(1, int(hold))
    for t in range(free_frame, T):
        if below[t:t + hold].all():  # near the end: the frames that are left
            return {"persistence_frames": t - free_frame, "censored": False, "peak": peak, "threshold": thr}
    return {"persistence_frames": T - free_frame, "censored": True, "peak": peak, "threshold": thr}


def summarise_layers(per_utt):
    """Per-layer summary over utterances of ``{utt: {"layers": {layer: persistence dict + peak}}}``."""
    layers = {}
    for u in per_utt.values():
        for k, r in u["layers"].items():
            layers.setdefault(k, []).append(r)
    out = {}
    for k, rs in sorted(layers.items(), key=lambda kv: int(kv[0])):
        p = np.array([r["persistence_frames"] for r in rs], dtype=np.float64)
        num_censored = int(sum(r["censored"] for r in rs))
        out[k] = {"persistence_frames_mean": float(p.mean()), "persistence_frames_median": float(np.median(p)),
                  "persistence_frames_q25": float(np.percentile(p, 25)),
                  "persistence_frames_q75": float(np.percentile(p, 75)),
                  "persistence_frames_min": float(p.min()), "persistence_frames_max": float(p.max()),
                  "num_censored": num_censored, "censored_share": num_censored / len(rs),
                  "peak_mean": float(np.mean([r["peak"] for r in rs])), "num_utts": len(rs)}
    return out


def decay_curves(curves, decay_frames=300):
    """Per layer, the median over utterances of the delta curves from each one's free frame on: {layer: [(curve
    [T], free frame), ...]} -> {layer: {"median": [<= decay_frames], "num_utts": [...]}} (frame n: the utterances
    that last that long)."""
    out = {}
    for k, cs in curves.items():
        m = np.full((len(cs), decay_frames), np.nan)
        for i, (c, f) in enumerate(cs):
            seg = np.asarray(c[f:f + decay_frames], dtype=np.float64)
            m[i, :len(seg)] = seg
        n = (~np.isnan(m)).sum(0)
        keep = int((n > 0).sum())
        with np.errstate(all="ignore"):
            med = np.nanmedian(m[:, :keep], axis=0) if keep else np.zeros(0)
        out[k] = {"median": np.round(med, 5), "num_utts": n[:keep]}
    return out


def analyse_utterance(clean_layers, noisy_layers, noise_frames, free_frame, threshold=1.0, hold=5,
                      normalise="unit", threshold_rel=0.1):
    """Per layer (lists of [T, H] memory arrays, clean and noisy) -> ({layer: result dict}, [delta [T, H]],
    [delta curve [T]]). normalise "unit": delta / natural_variation(clean) and the threshold ``threshold``;
    "none": raw delta and threshold_rel times the peak."""
    results, deltas, curves = {}, [], []
    for k, (c, n) in enumerate(zip(clean_layers, noisy_layers), 1):
        d = memory_delta(c, n)
        if normalise == "unit":
            d = d / natural_variation(c[:len(d)])
            r = persistence(delta_curve(d), free_frame, peak_from=noise_frames[0], threshold_abs=threshold, hold=hold)
        else:
            r = persistence(delta_curve(d), free_frame, peak_from=noise_frames[0], threshold_rel=threshold_rel,
                            hold=hold)
        curve = delta_curve(d)
        r["mean_delta_after"] = float(curve[free_frame:].mean()) if free_frame < len(curve) else 0.0
        results[str(k)] = r
        deltas.append(d)
        curves.append(curve)
    return results, deltas, curves


# ---------------------------------------------------------------------------------------------------------------
# Figures

def plot_utterance(out_dir, utt, deltas, results, noise_frames, free_frame):
    pyplot = setup_matplotlib()
    L = len(deltas)
    fig, axes = pyplot.subplots(L + 1, 1, figsize=(10, 2.2 * (L + 1)), squeeze=False)
    axes = axes[:, 0]
    for k, d in enumerate(deltas):
        order = np.argsort(-d[free_frame:].sum(0)) if free_frame < len(d) else np.arange(d.shape[1])
        im = axes[k].imshow(d[:, order].T, aspect="auto", origin="lower", cmap="magma", interpolation="nearest")
        axes[k].set_ylabel(f"layer {k + 1}\nunit (sorted)")
        for x in (noise_frames[0], noise_frames[1]):
            axes[k].axvline(x - 0.5, color="cyan", lw=0.8)
        fig.colorbar(im, ax=axes[k], pad=0.01, label="|delta|")
    ax = axes[-1]
    for k, d in enumerate(deltas):
        r = results[str(k + 1)]
        line, = ax.semilogy(np.maximum(delta_curve(d), 1e-8), label=f"layer {k + 1}: {r['persistence_frames']} fr"
                            + (" (censored)" if r["censored"] else ""))
        ax.axhline(max(r["threshold"], 1e-8), color=line.get_color(), ls=":", lw=0.8)
    ax.axvspan(noise_frames[0] - 0.5, noise_frames[1] - 0.5, color="grey", alpha=0.3,
               label="noise in the input window")
    ax.axvline(free_frame - 0.5, color="k", ls="--", lw=0.8, label="first noise-free input window")
    ax.set_xlim(0, len(deltas[0]))
    ax.set_xlabel("frame (10 ms)")
    ax.set_ylabel("mean |delta|")
    ax.legend(fontsize=7, loc="upper right")
    fig.suptitle(f"{utt}: memory difference noisy - clean")
    return save_figure(fig, out_dir, f"delta_{utt}")


def plot_persistence(out_dir, layers):
    pyplot = setup_matplotlib()
    ks = sorted(layers, key=int)
    med = [layers[k]["persistence_frames_median"] for k in ks]
    lo = [layers[k]["persistence_frames_median"] - layers[k]["persistence_frames_q25"] for k in ks]
    hi = [layers[k]["persistence_frames_q75"] - layers[k]["persistence_frames_median"] for k in ks]
    fig, ax = pyplot.subplots(figsize=(1.2 * len(ks) + 2, 3))
    ax.bar([int(k) for k in ks], med, yerr=[lo, hi], capsize=4, color="tab:blue")
    for x, k in zip([int(k) for k in ks], ks):
        ax.annotate(f"{100 * layers[k]['censored_share']:.0f}% censored", (x, med[ks.index(k)]), ha="center",
                    va="bottom", fontsize=7)
    ax.set_xlabel("layer")
    ax.set_ylabel("memory persistence (frames)\nmedian, quartiles")
    ax.set_xticks([int(k) for k in ks])
    return save_figure(fig, out_dir, "persistence")


def plot_decay(out_dir, decay, threshold, normalise):
    pyplot = setup_matplotlib()
    fig, ax = pyplot.subplots(figsize=(7, 3))
    for k in sorted(decay, key=int):
        ax.semilogy(np.maximum(decay[k]["median"], 1e-6), label=f"layer {k}")
    if normalise == "unit":
        ax.axhline(threshold, color="k", ls=":", lw=0.8, label="threshold")
    ax.set_xlabel("frames after the first noise-free input window")
    ax.set_ylabel("median delta" + (" / natural variation" if normalise == "unit" else ""))
    ax.legend(fontsize=7)
    return save_figure(fig, out_dir, "decay")


# ---------------------------------------------------------------------------------------------------------------
# I/O

def _memory_layers(internals, quantity):
    """bundle.internals' per-layer list of dicts -> list of [T, H] arrays of ``quantity``."""
    out = []
    for k, d in enumerate(internals, 1):
        if quantity not in d:
            raise InputError(f"layer {k} has no internal {quantity!r} (has: {', '.join(sorted(d))})")
        out.append(np.asarray(d[quantity]))
    return out


def run_noise(bundle, data_dir, out_dir, utts=None, num_utts=4, noise_start=1.0, noise_dur=0.2, noise_db=0.0,
              noise_mode="add", seed=0, threshold=1.0, threshold_rel=0.1, normalise="unit", hold=5, min_after=0.5,
              cmvn="speaker", fbank_config=None, cmvn_opts=None, model_dir=None, quantity=None, plot_utts=4,
              decay_frames=300):
    """The whole analysis with an already loaded ``bundle`` (anything with ``.cfg`` and ``.internals(feats)``)."""
    import kaldiio

    cfg = getattr(bundle, "cfg", None)
    cell = getattr(cfg, "cell", "lstm")
    quantity = quantity or MEMORY_QUANTITY.get(cell, "h")
    splice = int(getattr(cfg, "splice", 0) or 0)
    label_delay = int(getattr(cfg, "label_delay", 0) or 0)
    pipeline = getattr(bundle, "pipeline", None) or CmvnPipeline(cmvn_opts)   # the model's CMVN (its cmvn_opts)
    cmvn_opts = pipeline.cmvn
    if fbank_config is None:
        cand = os.path.join(data_dir, "conf", "fbank.conf")
        fbank_config = cand if os.path.exists(cand) else os.path.join("conf", "fbank.conf")
    fconf = load_feature_config("fbank", fbank_config)
    knf_opts = fconf.knf_options()
    window, shift = fconf.window_size(), fconf.window_shift()
    rate = fconf.sample_rate

    source = UtteranceAudio.from_data_dir(data_dir)
    utt2spk = read_map(os.path.join(data_dir, "utt2spk")) if os.path.exists(os.path.join(data_dir, "utt2spk")) \
        else {}
    cmvn_path = os.path.join(data_dir, "cmvn.scp")
    if cmvn == "speaker" and not os.path.exists(cmvn_path):
        log.warning(f"no {cmvn_path}: using each utterance's own CMVN stats (computed on the clean audio)")
        cmvn = "utterance"
    spk_cmvn = read_map(cmvn_path) if cmvn == "speaker" else {}
    stored = {}
    feats_scp = os.path.join(data_dir, "feats.scp")
    if os.path.exists(feats_scp):
        stored = read_map(feats_scp)

    candidates = utts if utts else c_sorted(source.utterances())
    need = noise_start + noise_dur + min_after
    chosen, per_utt, skipped, curves = [], {}, 0, {}
    log.info(f"noise {noise_db:g} dB re utterance RMS, {noise_mode} at {noise_start:g}-{noise_start + noise_dur:g} s;"
             f" memory {quantity!r} of {cell}; CMVN {cmvn} {cmvn_opts}; Fbank config {fbank_config}")
    for utt in candidates:
        if not utts and len(chosen) >= num_utts:
            break
        try:
            audio = source.get(utt)
        except AudioError as e:
            if utts:
                raise
            log.warning(f"utterance {utt}: skipped ({e})")
            skipped += 1
            continue
        samples = audio.samples[0]
        if audio.rate != rate:
            raise InputError(f"utterance {utt}: {audio.rate} Hz audio, the Fbank config wants {rate:g} Hz")
        if len(samples) / rate < need:
            msg = f"utterance {utt}: {len(samples) / rate:.2f} s is shorter than noise end + --min-after ({need:g} s)"
            if utts:
                raise InputError(msg)
            log.info(msg + "; skipped")
            skipped += 1
            continue
        chosen.append((utt, samples))
    if not chosen:
        raise InputError(f"no utterance of {data_dir} is long enough ({need:g} s) for the noise insertion "
                         f"({skipped} skipped)")
    for i, (utt, samples) in enumerate(progress(chosen, desc="utterances")):
        rng = np.random.default_rng([seed, zlib.crc32(utt.encode())])
        noisy, (a, b) = add_white_noise(samples, rate, noise_start, noise_dur, noise_db, rng, noise_mode)
        clean_f = compute_features(samples, fconf, knf_opts)
        noisy_f = compute_features(noisy, fconf, knf_opts)
        if utt in stored:
            ref = kaldiio.load_mat(stored[utt])
            if ref.shape != clean_f.shape or np.abs(ref - clean_f).max() > 1e-2:
                log.warning(f"utterance {utt}: features recomputed from the audio differ from {feats_scp} "
                            f"(another Fbank config?)")
        if cmvn == "speaker":
            spk = utt2spk.get(utt)
            if spk not in spk_cmvn:
                raise InputError(f"{cmvn_path}: no CMVN stats for speaker {spk} of utterance {utt}")
            stats = kaldiio.load_mat(spk_cmvn[spk])
        else:
            stats = cmvn_stats(clean_f)
        clean_f, noisy_f = pipeline(clean_f, stats), pipeline(noisy_f, stats)
        _, clean_int = bundle.internals(clean_f)
        _, noisy_int = bundle.internals(noisy_f)
        clean_layers = _memory_layers(clean_int, quantity)
        noisy_layers = _memory_layers(noisy_int, quantity)
        T = min(len(clean_layers[0]), len(noisy_layers[0]))
        noise_frames = noisy_frame_span(a, b, window, shift, T)
        seen = input_window_span(noise_frames, splice, label_delay, T)
        free_frame = seen[1]
        results, deltas, layer_curves = analyse_utterance(clean_layers, noisy_layers, seen, free_frame, threshold,
                                                          hold, normalise, threshold_rel)
        per_utt[utt] = {"num_frames": T, "noise_frames": list(noise_frames), "noise_input_frames": list(seen),
                        "free_frame": free_frame, "layers": results}
        for k, c in enumerate(layer_curves, 1):
            curves.setdefault(str(k), []).append((c, free_frame))
        if i < plot_utts:
            plot_utterance(out_dir, utt, deltas, results, seen, free_frame)
        log.info(f"{utt}: persistence per layer (frames): " + ", ".join(
            f"{k}: {r['persistence_frames']}{'+' if r['censored'] else ''}" for k, r in results.items()))
    layers = summarise_layers(per_utt)
    plot_persistence(out_dir, layers)
    decay = decay_curves(curves, decay_frames)
    plot_decay(out_dir, decay, threshold, normalise)
    all_p = [r["persistence_frames"] for u in per_utt.values() for r in u["layers"].values()]
    per_utt_mean = [np.mean([r["persistence_frames"] for r in u["layers"].values()]) for u in per_utt.values()]
    censored = [r["censored"] for u in per_utt.values() for r in u["layers"].values()]
    numbers = {"model_dir": model_dir, "data_dir": data_dir, "cell": cell, "quantity": quantity,
               "num_layers": len(layers), "frame_shift": fconf.values["frame-shift"] / 1000.0,
               "splice": splice, "label_delay": label_delay,
               "noise": {"start": noise_start, "dur": noise_dur, "db": noise_db, "mode": noise_mode, "seed": seed},
               "normalise": normalise,
               "threshold": {"value": threshold if normalise == "unit" else None,
                             "rel": threshold_rel if normalise != "unit" else None, "hold": hold}, "cmvn": cmvn,
               "cmvn_opts": cmvn_opts, "fbank_config": fbank_config, "utterances": per_utt, "layers": layers,
               "decay": decay, "persistence_frames_median": float(np.median(per_utt_mean)),
               "censored_share": float(np.mean(censored)), "persistence_frames_mean": float(np.mean(all_p))}
    write_numbers(out_dir, numbers)
    log.info(f"wrote {out_dir}/numbers.json: median persistence per layer " + ", ".join(
        f"{k}: {v['persistence_frames_median']:.1f} ({100 * v['censored_share']:.0f}% censored)"
        for k, v in layers.items()) + f" frames ({len(per_utt)} utts)")
    return numbers


def main():
    p = argparse.ArgumentParser(usage=__doc__.split("\n")[0][len("Usage: "):], description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--utts", default="")
    p.add_argument("--num-utts", type=int, default=4)
    p.add_argument("--noise-start", type=float, default=1.0)
    p.add_argument("--noise-dur", type=float, default=0.2)
    p.add_argument("--noise-db", type=float, default=0.0)
    p.add_argument("--noise-mode", choices=("add", "replace"), default="add")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--normalise", choices=("unit", "none"), default="unit")
    p.add_argument("--threshold", type=float, default=1.0)
    p.add_argument("--threshold-rel", type=float, default=0.1)
    p.add_argument("--plot-utts", type=int, default=4)
    p.add_argument("--decay-frames", type=int, default=300)
    p.add_argument("--hold", type=int, default=5)
    p.add_argument("--min-after", type=float, default=0.5)
    p.add_argument("--cmvn", choices=("speaker", "utterance"), default="speaker")
    p.add_argument("--fbank-config", default=None)
    p.add_argument("--quantity", default=None, help="internal to compare (default: c for LSTM, h otherwise)")
    add_device_option(p)
    p.add_argument("nnet_dir")
    p.add_argument("data_dir")
    p.add_argument("out_dir")
    a = p.parse_args()
    for d in (a.nnet_dir, a.data_dir):
        if not os.path.isdir(d):
            raise InputError(f"no such directory {d}")
    require_files(os.path.join(a.data_dir, "wav.scp"))
    inputs = nnet_inputs(a.nnet_dir) + data_dir_inputs(a.data_dir, DATA_TABLES) + \
        ([a.fbank_config] if a.fbank_config else [])
    done = Completion(done_stamp(a.out_dir, "noise"), inputs, settings_of(a), [os.path.join(a.out_dir, NUMBERS)])
    if skip_if_done(done, a.out_dir, log):
        return 0
    from steps_py.nnet.checkpoint import load_acoustic_model   # torch: imported once the work is to be done
    bundle = load_acoustic_model(a.nnet_dir, device=a.device)
    run_noise(bundle, a.data_dir, a.out_dir, utts=[u for u in a.utts.split(",") if u], num_utts=a.num_utts,
              noise_start=a.noise_start, noise_dur=a.noise_dur, noise_db=a.noise_db, noise_mode=a.noise_mode,
              seed=a.seed, threshold=a.threshold, threshold_rel=a.threshold_rel, normalise=a.normalise, hold=a.hold,
              min_after=a.min_after, cmvn=a.cmvn, fbank_config=a.fbank_config,
              model_dir=a.nnet_dir, quantity=a.quantity, plot_utts=a.plot_utts, decay_frames=a.decay_frames)
    done.finish()
    return 0


if __name__ == "__main__":
    run_main(main)
