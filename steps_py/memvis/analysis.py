"""Helpers shared by the analyses of steps_py.memvis: the command line skeleton, figure and numbers.json writing,
seeded unit and frame sampling, which quantity of a cell type is its memory and which are its gates.

Every analysis is run as ``python -m steps_py.memvis.<name> [options] <extract-dir> <out-dir>`` and writes into
<out-dir> its figures (<name>.png + <name>.svg) and numbers.json (the numbers behind the figures), each atomically;
numbers.json is written last, then the stamp <out-dir>/.done.<name> (analysis_completion): a re-run with the same
extraction and options is skipped.
"""
import argparse
import os

import numpy as np

from steps_py.common import InputError, atomic_path, write_json
from steps_py.completion import Completion, done_stamp, settings_of

NUMBERS = "numbers.json"

# The quantity holding each cell type's memory (LSTM: the cell c; GRU: h, which is its state) and its gates.
MEMORY_QUANTITY = {"lstm": "c", "gru": "h", "rnn": "h", "dnn": "h"}
GATE_QUANTITIES = {"lstm": ("i", "f", "o"), "gru": ("z", "r"), "rnn": (), "dnn": ()}


def analysis_parser(doc):
    """argparse parser with the positional <extract-dir> <out-dir> and --seed; ``doc`` is the module docstring
    (its first line is the usage line)."""
    first, _, rest = doc.strip().partition("\n")
    p = argparse.ArgumentParser(usage=first.replace("Usage: ", ""), description=rest.strip(),
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("extract_dir", help="extraction dir (steps_py.memvis.data format)")
    p.add_argument("out_dir", help="output dir for figures and numbers.json")
    p.add_argument("--seed", type=int, default=0, help="seed of every random choice (units, frames, t-SNE)")
    return p


def analysis_completion(args, name, inputs=None):
    """The Completion of analysis ``name`` run with the parsed ``args`` (every option counts): made from
    args.extract_dir (or ``inputs``), done when <out-dir>/numbers.json exists; stamp <out-dir>/.done.<name>."""
    return Completion(done_stamp(args.out_dir, name), [args.extract_dir] if inputs is None else inputs,
                      settings_of(args), outputs=[os.path.join(args.out_dir, NUMBERS)])


def memory_quantity(ext, quantity=None):
    """The quantity to analyse: ``quantity`` if given (checked), else the cell type's memory (c / h)."""
    q = quantity or MEMORY_QUANTITY.get(ext.cell, "h")
    if q not in ext.quantities:
        raise InputError(f"{ext.dir}: the extraction has no quantity {q!r} (has {', '.join(ext.quantities)})")
    return q


def sample_units(cell_dim, num_units, rng):
    """Sorted indices of min(num_units, cell_dim) distinct units drawn with ``rng``."""
    return np.sort(rng.choice(cell_dim, size=min(num_units, cell_dim), replace=False))


def sample_frames(num_frames, max_frames, rng, mask=None):
    """Sorted frame indices: all frames (where ``mask``), or max_frames of them drawn without replacement."""
    frames = np.flatnonzero(mask) if mask is not None else np.arange(num_frames)
    if max_frames and len(frames) > max_frames:
        frames = np.sort(rng.choice(frames, size=max_frames, replace=False))
    return frames


def save_figure(fig, out_dir, name):
    """Writes ``fig`` as <out_dir>/<name>.png (150 dpi) and .svg, each atomically; closes it. Returns the names."""
    import matplotlib.pyplot as plt
    os.makedirs(out_dir, exist_ok=True)
    names = []
    for ext in ("png", "svg"):
        path = os.path.join(out_dir, f"{name}.{ext}")
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=ext, dpi=150, bbox_inches="tight")
        names.append(os.path.basename(path))
    plt.close(fig)
    return names


def write_numbers(out_dir, numbers):
    """Writes ``numbers`` (dict; numpy values allowed, NaN -> null) as <out_dir>/numbers.json atomically."""
    write_json(os.path.join(out_dir, NUMBERS), numbers)


def extraction_info(ext):
    """The identifying facts of an extraction for numbers.json."""
    return {"extract_dir": os.path.abspath(ext.dir), "model_dir": ext.model_dir, "cell": ext.cell,
            "num_layers": ext.num_layers, "cell_dim": ext.cell_dim, "num_utts": len(ext.utts),
            "total_frames": ext.total_frames}


def setup_matplotlib():
    """The Agg backend (no display) and a small consistent style."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    plt.rcParams.update({"font.size": 8, "axes.titlesize": 9, "svg.fonttype": "none"})
    return plt
