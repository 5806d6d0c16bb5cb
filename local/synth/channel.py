"""The recording channel of the synthetic corpus: silence padding, loudness, gain, reverberation, additive noise.

Pure numpy/scipy functions on float64 waveforms (shape [num_samples], 16 kHz, full scale = 1.0).  Every random
choice comes from the numpy Generator passed in, one per utterance, so parallel jobs give identical audio.
(lhotse.augmentation's reverberation and loudness tools need torchaudio / pyloudnorm, which the recipe does not
install, so the few lines needed are here.)
"""
import numpy as np
from scipy.signal import fftconvolve

FRAME = 400  # 25 ms at 16 kHz, for the active-speech level


def active_rms(audio, frame=FRAME, floor_db=-35.0):
    """RMS over the frames within ``floor_db`` of the loudest frame (speech level without pauses)."""
    n = len(audio) // frame
    if n == 0:
        return float(np.sqrt(np.mean(audio ** 2)) + 1e-12)
    energy = np.mean(audio[: n * frame].reshape(n, frame) ** 2, axis=1)
    keep = energy >= energy.max() * 10 ** (floor_db / 10)
    return float(np.sqrt(np.mean(energy[keep])) + 1e-12)


def white_noise(rng, num_samples):
    """Gaussian white noise, unit variance."""
    return rng.standard_normal(num_samples)


def pink_noise(rng, num_samples):
    """1/f noise (power falls 3 dB per octave) shaped in the frequency domain, unit variance."""
    spec = np.fft.rfft(rng.standard_normal(num_samples))
    f = np.arange(len(spec), dtype=float)
    f[0] = 1.0
    noise = np.fft.irfft(spec / np.sqrt(f), n=num_samples)
    return noise / (np.std(noise) + 1e-12)


def exponential_rir(rng, rt60, drr_db, sample_rate):
    """A synthetic room impulse response: a unit direct path and a Gaussian tail decaying by 60 dB in rt60 s.

    The tail starts 2.5 ms after the direct path and has energy ``drr_db`` dB below it.  Shape [num_taps].
    """
    start = int(0.0025 * sample_rate)
    t = np.arange(int(rt60 * sample_rate)) / sample_rate
    tail = rng.standard_normal(len(t)) * np.exp(-6.9078 * t / rt60)
    tail *= np.sqrt(10 ** (-drr_db / 10) / (np.sum(tail ** 2) + 1e-12))
    rir = np.zeros(start + len(t))
    rir[0] = 1.0
    rir[start:] += tail
    return rir


def crop(rng, source, num_samples):
    """A random segment of ``source`` of num_samples samples (looped if the source is shorter)."""
    if len(source) < num_samples:
        source = np.tile(source, num_samples // len(source) + 1)
    offset = int(rng.integers(0, len(source) - num_samples + 1))
    return source[offset: offset + num_samples]


def apply_channel(speech, rng, conf, babble_bank):
    """Turns a clean TTS waveform into a recording; returns (audio, params).

    speech: float64 [num_samples] at conf["sample_rate"].  babble_bank: list of float64 babble waveforms.
    Steps: pad with silence, normalise the active level to conf["level_dbfs"], reverberate (probability
    reverb_prob), add white/pink/babble noise at an SNR from snr_db (probability noise_prob) measured against
    the active speech level, apply a gain from gain_db, scale down if the peak would clip.  params records the
    choices (gain_db, rt60, drr_db, noise, snr_db, lead, trail; rt60/noise "none" when not applied).
    """
    sr = conf["sample_rate"]
    params = {}
    lead = int(rng.uniform(*conf["lead_silence"]) * sr)
    trail = int(rng.uniform(*conf["trail_silence"]) * sr)
    params["lead"], params["trail"] = round(lead / sr, 3), round(trail / sr, 3)
    audio = np.concatenate([np.zeros(lead), speech, np.zeros(trail)])
    audio *= 10 ** (conf["level_dbfs"] / 20) / active_rms(speech)

    if rng.random() < conf["reverb_prob"]:
        rt60 = rng.uniform(*conf["rt60"])
        drr = rng.uniform(*conf["drr_db"])
        level = active_rms(audio)
        audio = fftconvolve(audio, exponential_rir(rng, rt60, drr, sr))[: len(audio)]
        audio *= level / active_rms(audio)
        params["rt60"], params["drr_db"] = round(rt60, 3), round(drr, 1)
    else:
        params["rt60"] = "none"

    if rng.random() < conf["noise_prob"]:
        types = list(conf["noise_weights"])
        weights = np.array([conf["noise_weights"][t] for t in types], dtype=float)
        if not babble_bank and "babble" in types:
            weights[types.index("babble")] = 0.0
        kind = types[int(rng.choice(len(types), p=weights / weights.sum()))]
        snr = rng.uniform(*conf["snr_db"])
        if kind == "white":
            noise = white_noise(rng, len(audio))
        elif kind == "pink":
            noise = pink_noise(rng, len(audio))
        else:
            noise = crop(rng, babble_bank[int(rng.integers(len(babble_bank)))], len(audio))
        noise = noise * active_rms(audio) / (np.sqrt(np.mean(noise ** 2)) + 1e-12) * 10 ** (-snr / 20)
        audio = audio + noise
        params["noise"], params["snr_db"] = kind, round(snr, 1)
    else:
        params["noise"] = "none"

    gain = rng.uniform(*conf["gain_db"])
    audio *= 10 ** (gain / 20)
    params["gain_db"] = round(gain, 1)
    peak = np.max(np.abs(audio))
    if peak > 0.95:
        audio *= 0.95 / peak
        params["limited"] = 1
    return audio, params


def to_int16(audio):
    """Float [-1, 1] to int16 samples (rounded, saturated)."""
    return np.clip(np.round(audio * 32767), -32768, 32767).astype(np.int16)
