"""Model settings of the acoustic models (conf/nnet/<name>.conf, shell-variable syntax): NnetConfig; and the
training settings (conf/nnet/train.conf): read_train_conf, with the command line's --set overrides."""
import dataclasses

from steps_py.common import InputError, parse_bool, read_shell_assignments, read_shell_conf
from steps_py.nnet.device import check_device_setting

CELL_TYPES = ("lstm", "gru", "rnn", "dnn")


@dataclasses.dataclass
class NnetConfig:
    """Model settings, as in conf/nnet/<name>.conf (shell-variable syntax)."""
    cell: str = "lstm"          # lstm | gru | rnn (vanilla tanh) | dnn (feed-forward over spliced frames)
    num_layers: int = 2         # recurrent layers (dnn: hidden layers)
    cell_dim: int = 256         # units per layer
    lazy: str = "none"          # lazy cell update (lstm only): none | last | all | comma list of 1-based layers
    residual: bool = False      # layer k >= 2 passes on its output + what layer k-1 passed on
    peephole: bool = True       # diagonal peepholes (lstm)
    decay_time: float = 0.0     # lstm: > 1 scales the recurrence c_{t-1} by 1 - 1/decay_time (Kaldi's decay-time),
                                # so |c_t| <= decay_time frames' worth of input; 0: off
    dropout: float = 0.0        # dropout on what each layer passes on, training only
    splice: int = 1             # frames t-splice..t+splice are concatenated at the input
    label_delay: int = 5        # output frame t predicts the label of frame t-label_delay (used by training)

    def lazy_layers(self):
        """The set of 1-based layer indices with lazy cell update (assumes a valid config)."""
        if self.lazy == "none":
            return set()
        if self.lazy == "last":
            return {self.num_layers}
        if self.lazy == "all":
            return set(range(1, self.num_layers + 1))
        return {int(k) for k in self.lazy.split(",")}

    def problems(self):
        """List of (field, message) for invalid settings; empty if the config is valid."""
        out = []
        if self.cell not in CELL_TYPES:
            out.append(("cell", f"cell={self.cell!r}: expected one of {', '.join(CELL_TYPES)}"))
        for name, low in (("num_layers", 1), ("cell_dim", 1), ("splice", 0), ("label_delay", 0)):
            if getattr(self, name) < low:
                out.append((name, f"{name}={getattr(self, name)}: must be >= {low}"))
        if self.decay_time != 0 and self.decay_time <= 1:
            out.append(("decay_time", f"decay_time={self.decay_time}: must be 0 (off) or > 1 (frames)"))
        if self.decay_time and self.cell != "lstm":
            out.append(("decay_time", f"decay_time={self.decay_time}: needs cell=lstm, not {self.cell}"))
        if not 0.0 <= self.dropout < 1.0:
            out.append(("dropout", f"dropout={self.dropout}: must be in [0, 1)"))
        if self.lazy not in ("none", "last", "all"):
            words = self.lazy.split(",")
            if not all(w.isdigit() for w in words):
                out.append(("lazy", f"lazy={self.lazy!r}: expected none, last, all or a comma list of layers"))
            elif any(not 1 <= int(w) <= self.num_layers for w in words):
                out.append(("lazy", f"lazy={self.lazy}: layers must be in 1..num_layers={self.num_layers}"))
        if self.lazy != "none" and self.cell != "lstm":
            out.append(("lazy", f"lazy={self.lazy}: lazy cell update needs cell=lstm, not {self.cell}"))
        return out

    @classmethod
    def from_file(cls, path):
        """Reads a conf file; an unknown name or a bad value is an InputError naming the file and line."""
        names = {f.name for f in dataclasses.fields(cls)}
        values, line_of = {}, {}
        for n, name, value in read_shell_assignments(path):
            if name not in names:
                raise InputError(f"{path}:{n}: unknown setting {name!r} (known: {', '.join(sorted(names))})")
            values[name], line_of[name] = value, n
        kwargs = {}
        for f in dataclasses.fields(cls):
            if f.name not in values:
                continue
            try:
                kwargs[f.name] = _convert(values[f.name], f.type)
            except ValueError as e:
                raise InputError(f"{path}:{line_of[f.name]}: {f.name}={values[f.name]!r}: {e}") from None
        cfg = cls(**kwargs)
        for name, message in cfg.problems():
            raise InputError(f"{path}:{line_of.get(name, '?')}: {message}")
        return cfg

    def to_dict(self):
        """Plain dict of the fields (for checkpoints)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d):
        """Inverse of to_dict; unknown keys or invalid values raise InputError."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise InputError(f"model config: unknown settings {unknown}")
        cfg = cls(**d)
        if cfg.problems():
            raise InputError(f"model config: {cfg.problems()[0][1]}")
        return cfg


def _convert(text, type_name):
    """Converts a conf value to the dataclass field type ('int', 'float', 'bool' or 'str')."""
    if type_name in ("bool", bool):
        return parse_bool(text)
    if type_name in ("int", int):
        try:
            return int(text)
        except ValueError:
            raise ValueError("expected an integer") from None
    if type_name in ("float", float):
        try:
            return float(text)
        except ValueError:
            raise ValueError("expected a number") from None
    return text


TRAIN_DEFAULTS = {
    "num_epochs": "4.0", "num_jobs": "1", "num_threads": "0", "frames_per_iter": "200000", "minibatch_size": "64",
    "chunk_width": "40", "chunk_left_context": "20", "optimizer": "nsgd", "initial_lr": "8.0",
    "final_lr": "0.8", "momentum": "0.5", "max_change": "2.0", "max_change_per_component": "0.75",
    "max_change_output": "1.5", "adam_lr_scale": "0.00025",
    "num_valid_utts": "100", "valid_seed": "1", "seed": "1", "nsgd_rank_in": "20", "nsgd_rank_out": "80",
    "nsgd_update_period": "4", "nsgd_num_samples_history": "2000", "nsgd_alpha": "4.0", "keep_checkpoints": "2",
    "warn_max_change_share": "0.5", "stop_after_epochs": "1.0", "device": "auto",
}


def read_train_conf(path, overrides=()):
    """conf/nnet/train.conf -> dict of typed settings (defaults above; unknown names are an error).

    ``overrides``: (name, value text) pairs applied after the file (the command line's --set), checked alike."""
    raw = read_shell_conf(path, TRAIN_DEFAULTS) if path else dict(TRAIN_DEFAULTS)
    where = {name: path for name in raw}
    for name, value in overrides:
        if name not in TRAIN_DEFAULTS:
            raise InputError(f"--set {name}={value}: unknown setting {name!r} (known: {', '.join(sorted(TRAIN_DEFAULTS))})")
        raw[name], where[name] = value, "--set"
    out = {}
    for name, value in raw.items():
        default = TRAIN_DEFAULTS[name]
        try:
            if name == "device":
                out[name] = check_device_setting(value)
            elif name == "optimizer":
                if value not in ("nsgd", "sgd", "adam"):
                    raise ValueError("expected nsgd, sgd or adam")
                out[name] = value
            elif name == "chunk_width":
                out[name] = [int(w) for w in value.split(",")]
                if min(out[name]) < 1:
                    raise ValueError("widths must be >= 1")
            elif "." in default:
                out[name] = float(value)
            else:
                out[name] = int(value)
        except ValueError as e:
            raise InputError(f"{where[name]}: bad value {name}={value!r} ({e})") from None
    return out


# settings that do not change the model a run trains (so a resumed run may change them; device: CPU and CUDA
# arithmetic differ in rounding only, and checkpoints load on either)
NOT_RESULT_SETTINGS = ("num_threads", "keep_checkpoints", "warn_max_change_share", "stop_after_epochs", "device")


def changed_settings(old, new):
    """'name old -> new, ...' for the training settings (read_train_conf dicts) that differ, '' if none does."""
    return ", ".join(f"{k} {old[k]} -> {new[k]}" for k in sorted(new)
                     if k not in NOT_RESULT_SETTINGS and old.get(k) != new[k])


def parse_setting(text):
    """'name=value' (a --set argument) -> (name, value)."""
    name, eq, value = text.partition("=")
    if not eq or not name.strip():
        raise InputError(f"--set {text!r}: expected NAME=VALUE, e.g. --set initial_lr=4")
    return name.strip(), value.strip()
