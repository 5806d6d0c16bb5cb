"""Speakers of the synthetic corpus (TTS voice configurations) and their synthesis.

A speaker is one configuration of one engine: espeak-ng accent + variant + rate + pitch, flite voice + duration
stretch + F0 (or a sox pitch shift), festival voice + duration stretch / HTS speed + F0 (or a sox pitch shift).
``plan_speakers`` draws train/dev/eval speakers that are disjoint as configurations:
- espeak-ng: dev/eval use (accent, variant) pairs that no training speaker uses;
- flite/festival: every base voice is in training (at least ``min_train_spk_per_base_voice`` speakers), dev/eval
  speakers of that voice have other rates and pitches (a base voice never heard in training is hopeless).
``synthesize`` turns one speaker's sentences into 16 kHz float waveforms.
"""
import collections
import os
import subprocess
import tempfile

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

ENGINES = ("espeak", "flite", "festival")
SET_PREFIX = {"train": "tr", "dev": "dv", "eval": "ev"}


def read_voices(path):
    """Reads conf/synth_voices.txt into {kind: [(name, gender, pitch_control, weight), ...]} in file order."""
    kinds = collections.defaultdict(list)
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.split("#", 1)[0].split()
            if not line:
                continue
            if len(line) != 5 or line[0] not in ("accent", "variant", "flite", "festival"):
                raise ValueError(f"{path}:{n}: expected '<accent|variant|flite|festival> name gender pitch weight'")
            kind, name, gender, pitch, weight = line
            if kind in ("variant", "flite", "festival") and gender not in ("m", "f"):
                raise ValueError(f"{path}:{n}: gender must be m or f")
            if kind in ("flite", "festival") and pitch not in ("f0", "shift"):
                raise ValueError(f"{path}:{n}: pitch control must be f0 or shift")
            kinds[kind].append((name, gender, pitch, float(weight)))
    for kind in ("accent", "variant"):
        if not kinds[kind]:
            raise ValueError(f"{path}: no {kind} lines")
    return dict(kinds)


def largest_remainder(total, weights):
    """Splits the integer ``total`` in proportion to ``weights``; returns a list of ints summing to total."""
    w = np.asarray(weights, dtype=float)
    if total == 0 or w.sum() == 0:
        return [0] * len(w)
    exact = total * w / w.sum()
    out = np.floor(exact).astype(int)
    for i in np.argsort(-(exact - out), kind="stable")[: total - out.sum()]:
        out[i] += 1
    return out.tolist()


def _engine_counts(n, shares, minimum=None):
    """Speakers per engine for a set of n speakers; ``minimum`` ({engine: k}) is taken from espeak first."""
    counts = dict(zip(ENGINES, largest_remainder(n, [shares[e] for e in ENGINES])))
    for e in ("flite", "festival"):
        need = (minimum or {}).get(e, 0)
        while counts[e] < need:
            donor = max((d for d in ENGINES if counts[d] > (minimum or {}).get(d, 0)), key=lambda d: counts[d],
                        default=None)
            if donor is None:
                raise ValueError(f"{n} training speakers are too few to give every {e} voice {need} speakers")
            counts[donor] -= 1
            counts[e] += 1
    return counts


def _draw(rng, lo_hi):
    return float(rng.uniform(*lo_hi))


def _prosody(rng, conf, engine, gender, pitch_control):
    """Draws (rate, pitch) in the engine's own units (see speaker_options)."""
    if engine == "espeak":
        return int(round(_draw(rng, conf["espeak_wpm"]))), int(round(_draw(rng, conf["espeak_pitch"])))
    stretch = round(_draw(rng, conf["duration_stretch"]), 2)
    if pitch_control == "f0":
        return stretch, int(round(_draw(rng, conf["f0_female" if gender == "f" else "f0_male"])))
    return stretch, round(_draw(rng, conf["pitch_shift"]), 1)


def plan_speakers(conf, voices, seed):
    """Draws the speakers of train, dev and eval.

    conf: parsed synth.conf for one size (see make_corpus.read_conf); voices: read_voices output.
    Returns a list of dicts {spk, set, engine, voice, variant, gender, pitch_control, rate, pitch}; ``rate`` is
    words per minute (espeak) or a duration stretch (>1 slower), ``pitch`` is espeak's 0-99, F0 in Hz (pitch
    control f0) or semitones (shift).
    """
    rng = np.random.default_rng([seed, 101])
    shares = {e: conf[f"share_{e}"] for e in ENGINES}
    base = {e: voices.get(e, []) for e in ("flite", "festival")}
    min_per = conf["min_train_spk_per_base_voice"]
    n_set = {s: conf[f"{s}_speakers"] for s in ("train", "dev", "eval")}
    counts = {s: _engine_counts(n_set[s], shares) for s in ("dev", "eval")}
    counts["train"] = _engine_counts(n_set["train"], shares, {e: min_per * len(base[e]) for e in base})

    # espeak (accent, variant) pairs: dev/eval pairs first, train never uses them.
    test_only = set(conf["test_only_accents"])
    accents = voices["accent"]
    variants = voices["variant"]
    unknown = test_only - {a[0] for a in accents}
    if unknown:
        raise ValueError(f"test_only_accents {sorted(unknown)} are not accents of {conf['voices']}")
    pairs = [(a, v) for a in accents for v in variants]
    pair_w = np.array([a[3] * v[3] for a, v in pairs])
    used = set()

    def draw_pairs(k, allowed):
        idx = [i for i, (a, v) in enumerate(pairs) if allowed(a[0]) and i not in used]
        if not idx:
            raise ValueError("no espeak accent/variant pair left")
        p = pair_w[idx] / pair_w[idx].sum()
        chosen = list(rng.choice(idx, size=min(k, len(idx)), replace=False, p=p))
        used.update(chosen)
        while len(chosen) < k:  # more speakers than pairs: reuse (train only) with other rates and pitches
            chosen.append(int(rng.choice(idx, p=p)))
        return [pairs[i] for i in chosen]

    espeak_pairs = {}
    for s in ("dev", "eval"):
        espeak_pairs[s] = draw_pairs(counts[s]["espeak"], lambda a: True)
    espeak_pairs["train"] = draw_pairs(counts["train"]["espeak"], lambda a: a not in test_only)

    speakers, seen = [], set()
    for s in ("train", "dev", "eval"):
        entries = []
        for (acc, _, _, _), (var, gender, _, _) in espeak_pairs[s]:
            entries.append(("espeak", acc, var, gender, "espeak"))
        for e in ("flite", "festival"):
            if not base[e] or counts[s][e] == 0:
                continue
            weights = [b[3] for b in base[e]]
            if s == "train":
                extra = largest_remainder(counts[s][e] - min_per * len(base[e]), weights)
                per_voice = [min_per + x for x in extra]
            else:  # in proportion to the weights, ties broken at random: dev/eval mirror the training mix
                jitter = rng.uniform(0, 1e-6, size=len(weights))
                per_voice = largest_remainder(counts[s][e], np.array(weights) + jitter)
            for (name, gender, pitch_control, _), k in zip(base[e], per_voice):
                entries += [(e, name, "", gender, pitch_control)] * k
        order = rng.permutation(len(entries))
        for i, j in enumerate(order, 1):
            engine, voice, variant, gender, pitch_control = entries[j]
            for _ in range(1000):
                rate, pitch = _prosody(rng, conf, engine, gender, pitch_control)
                key = (engine, voice, variant, rate, pitch)
                if key not in seen:
                    break
            seen.add(key)
            speakers.append({"spk": f"{SET_PREFIX[s]}{i:03d}", "set": s, "engine": engine, "voice": voice,
                             "variant": variant, "gender": gender, "pitch_control": pitch_control,
                             "rate": rate, "pitch": pitch})
    return speakers


def speaker_description(spk):
    """One line describing a speaker, e.g. ``tr001 train espeak en-gb+m3 m rate=160 pitch=40``."""
    name = spk["voice"] + (f"+{spk['variant']}" if spk["variant"] else "")
    unit = {"espeak": "", "f0": "Hz", "shift": "st"}[spk["pitch_control"]]
    return (f"{spk['spk']} {spk['set']} {spk['engine']} {name} {spk['gender']} rate={spk['rate']} "
            f"pitch={spk['pitch']}{unit}")


def _run(cmd, **kwargs):
    res = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs)
    if res.returncode != 0:
        raise RuntimeError(f"command failed ({res.returncode}): {' '.join(cmd)[:300]}\n"
                           f"{res.stderr.decode(errors='replace')[-1000:]}")
    return res


def _read_16k(path, sample_rate):
    """Reads a wav file as float64 mono and resamples it to ``sample_rate``."""
    audio, sr = sf.read(path, dtype="float64", always_2d=True)
    audio = audio[:, 0]
    if sr != sample_rate:
        g = np.gcd(int(sr), int(sample_rate))
        audio = resample_poly(audio, sample_rate // g, sr // g)
    return audio


def _festival_script(spk, jobs):
    """Scheme for festival -b: select the voice, set its prosody, synthesize each (text, wav) job."""
    lines = [f"(voice_{spk['voice']})"]
    if spk["voice"].endswith("_hts"):
        lines.append(f"(set! hts_engine_params (append {spk['voice']}::hts_engine_params "
                     f"(list (list \"-r\" {1.0 / spk['rate']:.4f}))))")
    else:
        lines.append(f"(Parameter.set 'Duration_Stretch {spk['rate']})")
    if spk["pitch_control"] == "f0":
        std = max(8, round(0.15 * spk["pitch"]))
        lines.append(f"(set! int_lr_params '((target_f0_mean {spk['pitch']}) (target_f0_std {std}) "
                     "(model_f0_mean 170) (model_f0_std 34)))")
    for text, wav in jobs:
        lines.append(f"(utt.save.wave (utt.synth (Utterance Text \"{text}\")) \"{wav}\" 'riff)")
    return "\n".join(lines) + "\n"


def synthesize(spk, sentences, sample_rate=16000):
    """Synthesizes sentences (lists of upper-case words) with speaker ``spk``; returns float64 waveforms at
    ``sample_rate`` (raw engine level; loudness is normalised by the channel)."""
    with tempfile.TemporaryDirectory(prefix="synth.") as tmp:
        texts = [" ".join(words).lower() for words in sentences]
        wavs = [os.path.join(tmp, f"{i}.wav") for i in range(len(texts))]
        if spk["engine"] == "espeak":
            voice = spk["voice"] + (f"+{spk['variant']}" if spk["variant"] else "")
            for text, wav in zip(texts, wavs):
                _run(["espeak-ng", "-v", voice, "-s", str(spk["rate"]), "-p", str(spk["pitch"]), "-w", wav, text])
        elif spk["engine"] == "flite":
            for text, wav in zip(texts, wavs):
                cmd = ["flite", "-voice", spk["voice"], "--setf", f"duration_stretch={spk['rate']}"]
                if spk["pitch_control"] == "f0":
                    cmd += ["--setf", f"int_f0_target_mean={spk['pitch']}"]
                _run(cmd + ["-t", text, "-o", wav])
        elif spk["engine"] == "festival":
            script = os.path.join(tmp, "synth.scm")
            with open(script, "w") as f:
                f.write(_festival_script(spk, list(zip(texts, wavs))))
            _run(["festival", "-b", script])
        else:
            raise ValueError(f"unknown engine {spk['engine']}")
        out = []
        for wav in wavs:
            if spk["pitch_control"] == "shift" and spk["pitch"] != 0:
                shifted = wav[:-4] + ".shift.wav"
                # float output: sox dithers (randomly) when it writes 16-bit samples
                _run(["sox", wav, "-b", "32", "-e", "floating-point", shifted, "pitch", f"{100 * spk['pitch']:.0f}"])
                wav = shifted
            if not os.path.exists(wav):
                raise RuntimeError(f"{spk['engine']} wrote no audio for speaker {spk['spk']}")
            out.append(_read_16k(wav, sample_rate))
    return out
