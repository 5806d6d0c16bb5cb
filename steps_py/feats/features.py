"""Feature configs and extraction: Kaldi's compute-mfcc-feats / compute-fbank-feats options, read from Kaldi
option files (conf/mfcc.conf, conf/fbank.conf) onto kaldi-native-fbank (knf), and the features of one utterance.

Options not set take Kaldi's defaults (not knf's: e.g. --dither=1.0 on int16-scale samples). Unknown options, and
Kaldi options this code cannot honour (--vtln-map, --utt2spk, --vtln-warp other than 1, --output-format=htk), are
refused with the file and line. Frames are ``--frame-shift`` ms (10 ms by default).
"""
from dataclasses import dataclass, field

import numpy as np

from steps_py.common import InputError, parse_bool
from steps_py.kaldi.options import read_config

FEATURE_TYPES = ("mfcc", "fbank")


# Kaldi option name -> (value type, where it goes). "frame.x" / "mel.x" / "x" are attributes of knf's FrameExtraction
# / MelBanks / Mfcc-or-Fbank options; "job.x" are handled by this program (FeatureConfig.job).
_FRAME_AND_MEL = {
    "sample-frequency": (float, "frame.samp_freq"),
    "frame-length": (float, "frame.frame_length_ms"),
    "frame-shift": (float, "frame.frame_shift_ms"),
    "preemphasis-coefficient": (float, "frame.preemph_coeff"),
    "remove-dc-offset": (bool, "frame.remove_dc_offset"),
    "dither": (float, "frame.dither"),
    "window-type": (str, "frame.window_type"),
    "blackman-coeff": (float, "frame.blackman_coeff"),
    "round-to-power-of-two": (bool, "frame.round_to_power_of_two"),
    "snip-edges": (bool, "frame.snip_edges"),
    "allow-downsample": (bool, "job.allow_downsample"),
    "allow-upsample": (bool, "job.allow_upsample"),
    "max-feature-vectors": (int, "job.max_feature_vectors"),   # memory option of online features: no effect here
    "num-mel-bins": (int, "mel.num_bins"),
    "low-freq": (float, "mel.low_freq"),
    "high-freq": (float, "mel.high_freq"),
    "vtln-low": (float, "mel.vtln_low"),
    "vtln-high": (float, "mel.vtln_high"),
    "debug-mel": (bool, "mel.debug_mel"),
    # options of the compute-*-feats programs themselves
    "subtract-mean": (bool, "job.subtract_mean"),
    "channel": (int, "job.channel"),
    "min-duration": (float, "job.min_duration"),
    "vtln-warp": (float, "job.vtln_warp"),
    "output-format": (str, "job.output_format"),
    "verbose": (int, "job.verbose"),
}


OPTIONS = {
    "mfcc": dict(_FRAME_AND_MEL, **{
        "num-ceps": (int, "num_ceps"),
        "use-energy": (bool, "use_energy"),
        "energy-floor": (float, "energy_floor"),
        "raw-energy": (bool, "raw_energy"),
        "cepstral-lifter": (float, "cepstral_lifter"),
        "htk-compat": (bool, "htk_compat"),
    }),
    "fbank": dict(_FRAME_AND_MEL, **{
        "use-energy": (bool, "use_energy"),
        "energy-floor": (float, "energy_floor"),
        "raw-energy": (bool, "raw_energy"),
        "htk-compat": (bool, "htk_compat"),
        "use-log-fbank": (bool, "use_log_fbank"),
        "use-power": (bool, "use_power"),
    }),
}


# Kaldi's defaults (FrameExtractionOptions, MelBanksOptions(23), MfccOptions, FbankOptions, compute-*-feats).
KALDI_DEFAULTS = {
    "common": {"sample-frequency": 16000.0, "frame-length": 25.0, "frame-shift": 10.0,
               "preemphasis-coefficient": 0.97, "remove-dc-offset": True, "dither": 1.0, "window-type": "povey",
               "blackman-coeff": 0.42, "round-to-power-of-two": True, "snip-edges": True,
               "allow-downsample": False, "allow-upsample": False, "max-feature-vectors": -1,
               "num-mel-bins": 23, "low-freq": 20.0, "high-freq": 0.0, "vtln-low": 100.0, "vtln-high": -500.0,
               "debug-mel": False, "subtract-mean": False, "channel": -1, "min-duration": 0.0, "vtln-warp": 1.0,
               "output-format": "kaldi", "verbose": 0},
    "mfcc": {"num-ceps": 13, "use-energy": True, "energy-floor": 0.0, "raw-energy": True, "cepstral-lifter": 22.0,
             "htk-compat": False},
    "fbank": {"use-energy": False, "energy-floor": 0.0, "raw-energy": True, "htk-compat": False,
              "use-log-fbank": True, "use-power": True},
}


WINDOW_TYPES = ("hamming", "hanning", "povey", "rectangular", "sine", "blackman")


@dataclass
class FeatureConfig:
    """Options of one feature type: ``values`` {Kaldi option name: value} with every option set (Kaldi defaults
    for those the config leaves out); ``source`` {name: 'file:line'} for the ones a config file set."""
    feature_type: str
    values: dict
    source: dict = field(default_factory=dict)

    @property
    def job(self):
        """Options handled outside knf, as {attribute name: value}."""
        table = OPTIONS[self.feature_type]
        return {table[k][1][4:]: v for k, v in self.values.items() if table[k][1].startswith("job.")}

    @property
    def sample_rate(self):
        return float(self.values["sample-frequency"])

    def where(self, name):
        return self.source.get(name, "the defaults")

    def knf_options(self):
        """kaldi_native_fbank MfccOptions / FbankOptions holding these values."""
        import kaldi_native_fbank as knf
        opts = knf.MfccOptions() if self.feature_type == "mfcc" else knf.FbankOptions()
        for name, (_, target) in OPTIONS[self.feature_type].items():
            if target.startswith("job."):
                continue
            section, _, attr = target.rpartition(".")
            obj = {"": opts, "frame": opts.frame_opts, "mel": opts.mel_opts}[section]
            setattr(obj, attr, self.values[name])
        return opts

    def command_line(self):
        """Every option as Kaldi would print it: ``--name=value`` with booleans as true/false."""
        def fmt(v):
            return str(v).lower() if isinstance(v, bool) else f"{v:g}" if isinstance(v, float) else str(v)
        return " ".join(f"--{k}={fmt(v)}" for k, v in self.values.items())

    def window_size(self):
        """Samples per frame (Kaldi's WindowSize)."""
        return int(self.sample_rate * 0.001 * self.values["frame-length"])

    def window_shift(self):
        """Samples per frame shift (Kaldi's WindowShift)."""
        return int(self.sample_rate * 0.001 * self.values["frame-shift"])

    def dim(self):
        """Feature dimension: num-ceps for MFCC, num-mel-bins (+1 with --use-energy) for Fbank."""
        if self.feature_type == "mfcc":
            return self.values["num-ceps"]
        return self.values["num-mel-bins"] + (1 if self.values["use-energy"] else 0)


def load_feature_config(feature_type, path=None, overrides=None):
    """FeatureConfig from Kaldi's defaults, then the config file ``path``, then ``overrides`` {name: value}.

    Raises InputError naming the file and line for unknown options, bad values and unsupported settings.
    """
    if feature_type not in FEATURE_TYPES:
        raise InputError(f"unknown feature type {feature_type!r} (expected one of {', '.join(FEATURE_TYPES)})")
    table = OPTIONS[feature_type]
    values = dict(KALDI_DEFAULTS["common"], **KALDI_DEFAULTS[feature_type])
    source = {}
    entries = [(f"{path}:{n}", name, value) for n, name, value in (read_config(path) if path else [])]
    entries += [("the command line", k, str(v)) for k, v in (overrides or {}).items()]
    for where, name, value in entries:
        if name not in table:
            other = [t for t in FEATURE_TYPES if t != feature_type and name in OPTIONS[t]]
            hint = f" (it is an option of {other[0]} features)" if other else ""
            raise InputError(f"{where}: unknown option --{name} for {feature_type} features{hint}")
        kind = table[name][0]
        try:
            if kind is bool:
                parsed = parse_bool(value if value is not None else "")
            elif value is None:
                raise ValueError("a value is needed")
            else:
                parsed = kind(value)
        except ValueError as e:
            raise InputError(f"{where}: bad value for --{name}: {e}") from None
        values[name] = parsed
        source[name] = where
    config = FeatureConfig(feature_type, values, source)
    _check_config(config)
    return config


def _check_config(c):
    """Refuses settings kaldi-native-fbank or this program cannot honour, naming where they were set."""
    v = c.values

    def bad(name, why):
        raise InputError(f"{c.where(name)}: --{name}={v[name]}: {why}")

    if v["output-format"] != "kaldi":
        bad("output-format", "only 'kaldi' output is written here")
    if v["vtln-warp"] != 1.0:
        bad("vtln-warp", "VTLN warping is not supported (kaldi-native-fbank's online computers take no warp factor)")
    if v["window-type"] not in WINDOW_TYPES:
        bad("window-type", f"expected one of {', '.join(WINDOW_TYPES)}")
    if v["sample-frequency"] <= 0:
        bad("sample-frequency", "must be positive")
    if c.window_shift() < 1:
        bad("frame-shift", "gives less than one sample per shift")
    if c.window_size() < 2:
        bad("frame-length", "gives less than two samples per frame")
    if v["num-mel-bins"] < 3:
        bad("num-mel-bins", "must be at least 3")
    if v["dither"] < 0:
        bad("dither", "must be >= 0")
    if not 0.0 <= v["preemphasis-coefficient"] <= 1.0:
        bad("preemphasis-coefficient", "must be between 0 and 1")
    nyquist = 0.5 * v["sample-frequency"]
    high = v["high-freq"] if v["high-freq"] > 0 else nyquist + v["high-freq"]
    if not (0 <= v["low-freq"] < high <= nyquist):
        bad("high-freq" if "high-freq" in c.source else "low-freq",
            f"need 0 <= low-freq ({v['low-freq']:g}) < high-freq ({high:g} Hz) <= Nyquist ({nyquist:g} Hz)")
    if c.feature_type == "mfcc" and not 1 <= v["num-ceps"] <= v["num-mel-bins"]:
        bad("num-ceps", f"must be between 1 and --num-mel-bins ({v['num-mel-bins']})")
    try:
        import kaldi_native_fbank as knf
        opts = c.knf_options()
        (knf.OnlineMfcc if c.feature_type == "mfcc" else knf.OnlineFbank)(opts)
    except (ValueError, RuntimeError) as e:
        sources = sorted(set(c.source.values())) or ["the defaults"]
        raise InputError(f"options from {', '.join(sources)} are rejected by kaldi-native-fbank: {e}") from None


def num_frames(num_samples, config):
    """Frames Kaldi computes from ``num_samples`` samples (NumFrames with flush=true).

    snip-edges=true: 0 if shorter than one window, else 1 + (num_samples - window) // shift;
    snip-edges=false: (num_samples + shift // 2) // shift.
    """
    size, shift = config.window_size(), config.window_shift()
    if config.values["snip-edges"]:
        return 0 if num_samples < size else 1 + (num_samples - size) // shift
    return (num_samples + shift // 2) // shift


def compute_features(samples, config, knf_opts=None):
    """Features of one utterance: float32 [num_frames, dim], frames of ``frame-shift`` ms (10 ms by default).

    ``samples``: float32 [num_samples] on the int16 scale, at config.sample_rate. ``knf_opts`` may be given to
    avoid rebuilding the options per utterance. Returns an array with 0 rows if the audio is shorter than a frame.
    """
    import kaldi_native_fbank as knf
    opts = knf_opts if knf_opts is not None else config.knf_options()
    computer = knf.OnlineMfcc(opts) if config.feature_type == "mfcc" else knf.OnlineFbank(opts)
    computer.accept_waveform(config.sample_rate, np.ascontiguousarray(samples, dtype=np.float32))
    computer.input_finished()
    n = computer.num_frames_ready
    feats = np.empty((n, computer.dim), dtype=np.float32)
    for t in range(n):
        feats[t] = computer.get_frame(t)
    if config.values["subtract-mean"] and n:
        feats -= feats.mean(axis=0, dtype=np.float64).astype(np.float32)
    return feats
