"""Usage: python -m steps_py.memvis.responsibility [options] <extract-dir> <out-dir>

Neuronal responsibility for phones (Tang et al. 2017): a memory value is "irregular" when it lies outside
(-lstm-threshold, lstm-threshold) = (-10, 10) for an LSTM cell c, or inside (-gru-threshold, gru-threshold) =
(-0.5, 0.5) for a GRU state h. The responsibility of unit u for phone p is P(irregular | frame aligned to p);
u is responsible for p when it is >= --lstm-share 0.8 (LSTM) / --gru-share 0.5 (GRU) and at least --min-lift
(1.5) times the unit's own base rate P(irregular) over all aligned frames: a unit that is irregular on most frames
is not responsible for a phone because the phone's frames are irregular too (the paper's criterion alone,
without the base rate, is kept as counts_absolute). Phones are the position-independent phones of the alignment;
phones with fewer than --min-phone-frames frames are left out.

Writes responsibility.png/.svg (heat map layer x phone of the number of responsible units) and numbers.json:
phones, phone_frames, counts [layer][phone] (with the base rate), counts_absolute [layer][phone] (without),
base_rate [layer][unit], responsible_units_per_layer (units responsible for >= 1 phone),
irregular_everywhere_per_layer (units whose irregular share over all aligned frames passes the share threshold:
responsible for everything, i.e. not phone-specific), irregular_share_per_layer, top_units {phone: [[layer, unit,
probability], ...]}, thresholds.
"""
import numpy as np

from steps_py.common import InputError, get_logger, run_main
from steps_py.completion import skip_if_done
from steps_py.memvis.data import Extraction
from steps_py.memvis.analysis import (analysis_completion, analysis_parser, extraction_info, memory_quantity,
                                      save_figure, setup_matplotlib, write_numbers)

log = get_logger("memvis.responsibility")


def irregular(values, cell, lstm_threshold=10.0, gru_threshold=0.5):
    """values [N, H] -> bool [N, H]: LSTM (and rnn/dnn) |v| >= lstm_threshold; GRU |v| < gru_threshold."""
    v = np.asarray(values)
    if cell == "gru":
        return np.abs(v) < gru_threshold
    return np.abs(v) >= lstm_threshold


def phone_conditional_share(flags, phone_ids, num_phones):
    """flags [N, H] bool, phone_ids [N] (0..P-1; negative = skip) -> (share [P, H] = P(flag | phone), frames [P]).

    Phones without frames get NaN shares."""
    flags = np.asarray(flags)
    phone_ids = np.asarray(phone_ids)
    keep = phone_ids >= 0
    flags, phone_ids = flags[keep], phone_ids[keep]
    order = np.argsort(phone_ids, kind="stable")
    sorted_ids = phone_ids[order]
    frames = np.bincount(sorted_ids, minlength=num_phones)
    sums = np.zeros((num_phones, flags.shape[1]))
    present = np.flatnonzero(frames)
    if len(present):
        starts = np.searchsorted(sorted_ids, present)
        sums[present] = np.add.reduceat(flags[order].astype(np.int64), starts, axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = sums / frames[:, None]
    return share, frames


def responsibility_counts(shares, share_threshold, base_rate=None, min_lift=1.5):
    """shares [P, H] = P(irregular | phone) -> (responsible [P, H] bool, counts [P]): share >= share_threshold and,
    with base_rate [H] = P(irregular) of each unit, share >= min_lift * base_rate."""
    s = np.nan_to_num(shares, nan=-1.0)
    responsible = s >= share_threshold
    if base_rate is not None:
        responsible &= s >= min_lift * np.asarray(base_rate)[None, :]
    return responsible, responsible.sum(1)


def analyse(ext, quantity=None, lstm_threshold=10.0, gru_threshold=0.5, lstm_share=0.8, gru_share=0.5,
            min_phone_frames=20, top=5, chunk_frames=50000, min_lift=1.5):
    """Extraction -> numbers dict (see the module docstring). Frames are read in chunks of chunk_frames."""
    if not ext.has_phones:
        raise InputError(f"{ext.dir}: the extraction has no phone alignment")
    q = memory_quantity(ext, quantity)
    share_threshold = gru_share if ext.cell == "gru" else lstm_share
    names = ext.phone_names
    num_phones = len(names)
    phone_ids = ext.phone_ids
    per_layer_shares, frames = [], None
    counts, counts_absolute, base_rates, responsible_any, everywhere, overall_share = [], [], [], [], [], []
    for k in range(1, ext.num_layers + 1):
        sums = np.zeros((num_phones, ext.cell_dim))
        frames = np.zeros(num_phones, dtype=np.int64)
        for start in range(0, ext.total_frames, chunk_frames):
            sl = slice(start, min(start + chunk_frames, ext.total_frames))
            flags = irregular(ext.values(k, q, sl), ext.cell, lstm_threshold, gru_threshold)
            share, n = phone_conditional_share(flags, phone_ids[sl], num_phones)
            sums += np.nan_to_num(share) * n[:, None]
            frames += n
        with np.errstate(invalid="ignore", divide="ignore"):
            share = sums / frames[:, None]
        share[frames < min_phone_frames] = np.nan
        per_layer_shares.append(share)
        unit_share = sums.sum(0) / max(frames.sum(), 1)
        responsible, c = responsibility_counts(share, share_threshold, unit_share, min_lift)
        counts.append(c)
        counts_absolute.append(responsibility_counts(share, share_threshold)[1])
        base_rates.append(np.round(unit_share, 4))
        responsible_any.append(int(responsible.any(0).sum()))
        everywhere.append(int((unit_share >= share_threshold).sum()))
        overall_share.append(float(sums.sum() / max(frames.sum() * ext.cell_dim, 1)))
    kept = [p for p in range(num_phones) if frames[p] >= min_phone_frames]
    top_units = {}
    stacked = np.stack(per_layer_shares)  # [L, P, H]
    for p in kept:
        flat = np.nan_to_num(stacked[:, p, :], nan=-1.0).ravel()
        best = np.argsort(-flat, kind="stable")[:top]
        top_units[names[p]] = [[int(i // ext.cell_dim) + 1, int(i % ext.cell_dim), float(flat[i])] for i in best]
    counts, counts_absolute = np.stack(counts), np.stack(counts_absolute)
    return {"analysis": "responsibility", **extraction_info(ext), "quantity": q,
            "irregular_definition": f"|{q}| < {gru_threshold}" if ext.cell == "gru" else f"|{q}| >= {lstm_threshold}",
            "lstm_threshold": lstm_threshold, "gru_threshold": gru_threshold, "share_threshold": share_threshold,
            "min_phone_frames": min_phone_frames, "min_lift": min_lift, "frame_sampling": "all aligned frames",
            "phones": [names[p] for p in kept], "is_silence": [bool(ext.is_silence[p]) for p in kept],
            "phone_frames": [int(frames[p]) for p in kept],
            "skipped_phones": {names[p]: int(frames[p]) for p in range(num_phones) if p not in kept},
            "counts": counts[:, kept], "total_per_layer": counts[:, kept].sum(1),
            "counts_absolute": counts_absolute[:, kept], "base_rate": base_rates,
            "responsible_units_per_layer": responsible_any, "irregular_everywhere_per_layer": everywhere,
            "irregular_share_per_layer": overall_share, "top_units": top_units}


def plot(numbers):
    plt = setup_matplotlib()
    counts = np.asarray(numbers["counts"], dtype=float)
    phones = numbers["phones"]
    fig, ax = plt.subplots(figsize=(max(4.0, 0.22 * len(phones) + 1.5), 0.45 * counts.shape[0] + 1.4))
    im = ax.imshow(counts, aspect="auto", cmap="viridis", interpolation="nearest")
    ax.set_xticks(range(len(phones)), phones, rotation=90, fontsize=6)
    ax.set_yticks(range(counts.shape[0]), [f"layer {k}" for k in range(1, counts.shape[0] + 1)])
    if counts.size <= 400:
        for (i, j), c in np.ndenumerate(counts):
            ax.text(j, i, f"{c:.0f}", ha="center", va="center", fontsize=5, color="w" if c < counts.max() / 2 else "k")
    fig.colorbar(im, ax=ax, label="responsible units")
    ax.set_title(f"{numbers['cell'].upper()}: units with P(irregular | phone) >= {numbers['share_threshold']:g} "
                 f"and >= {numbers['min_lift']:g} x their base rate (irregular: {numbers['irregular_definition']})")
    fig.tight_layout()
    return fig


def main():
    p = analysis_parser(__doc__)
    p.add_argument("--quantity", default=None, help="quantity (default: c for LSTM, h otherwise)")
    p.add_argument("--lstm-threshold", type=float, default=10.0, help="LSTM value irregular when |c| >= this")
    p.add_argument("--gru-threshold", type=float, default=0.5, help="GRU value irregular when |h| < this")
    p.add_argument("--lstm-share", type=float, default=0.8, help="LSTM unit responsible at P(irregular|p) >= this")
    p.add_argument("--gru-share", type=float, default=0.5, help="GRU unit responsible at P(irregular|p) >= this")
    p.add_argument("--min-phone-frames", type=int, default=20, help="phones with fewer frames are left out")
    p.add_argument("--min-lift", type=float, default=1.5,
                   help="responsible only at P(irregular|p) >= this times the unit's P(irregular)")
    p.add_argument("--top", type=int, default=5, help="top units listed per phone")
    a = p.parse_args()
    done = analysis_completion(a, "responsibility")
    if skip_if_done(done, a.out_dir, log):
        return 0
    ext = Extraction.load(a.extract_dir)
    numbers = analyse(ext, a.quantity, a.lstm_threshold, a.gru_threshold, a.lstm_share, a.gru_share,
                      a.min_phone_frames, a.top, min_lift=a.min_lift)
    numbers["figures"] = save_figure(plot(numbers), a.out_dir, "responsibility")
    write_numbers(a.out_dir, numbers)
    done.finish()
    log.info(f"responsible (unit, phone) pairs per layer: {list(map(int, numbers['total_per_layer']))}; units "
             f"responsible for >= 1 phone: {numbers['responsible_units_per_layer']}")


if __name__ == "__main__":
    run_main(main)
