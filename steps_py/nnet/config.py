"""Model settings of the acoustic models (conf/nnet/<name>.conf, shell-variable syntax): NnetConfig."""
import dataclasses

from steps_py.common import InputError, parse_bool, read_shell_assignments

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
