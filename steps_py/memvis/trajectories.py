"""Usage: python -m steps_py.memvis.trajectories [options] <extract-dir> <out-dir>

2-D trajectories of the memory (as asap's lstm-visualisation): per layer, each frame's memory vector (LSTM: c;
GRU / rnn: h; --quantity) is mapped to 2-D by
  - a denoising autoencoder (torch): H -> 150 -> 2 -> 150 -> H, tanh hidden layers, linear code and output,
    trained to reconstruct the clean vector from the vector plus Gaussian noise (std --noise 0.1), on up to
    --max-frames frames of the extraction (units standardised to zero mean, unit variance), Adam, --epochs,
    seeded (--seed);
  - PCA to 2 dimensions (of the same standardised vectors).
An utterance's frames then form a path in each 2-D plane; phone labels are written at each phone's centre frame.

Outputs in <out-dir>: trajectory_<utt>.png/.svg (rows: layers; columns: autoencoder, PCA; colour = time),
numbers.json:
  {"extract_dir", "cell", "quantity", "seed", "noise", "hidden", "epochs", "max_frames", "utts",
   "layers": {"1": {"dae_reconstruction_mse": MSE of the autoencoder on clean standardised vectors,
                    "baseline_mse": MSE of predicting the mean vector (the total variance per unit, ~1),
                    "pca_reconstruction_mse": MSE of the 2-D PCA reconstruction,
                    "pca_explained_variance": [ratio of PC1, ratio of PC2], "pca_explained_variance_2d": sum,
                    "final_train_loss", "num_train_frames"}, ...}}

Options: --quantity NAME  --utts LIST (default: the first --num-utts utterances; --num-utts 2)  --epochs N (8)
         --hidden N (150)  --noise S (0.1)  --max-frames N (20000)  --batch-size N (256)  --lr X (0.002)
         --seed N (0)  --layers LIST (default all)  --num-threads N (1)
"""

import numpy as np

from steps_py.common import InputError, get_logger, run_main
from steps_py.completion import skip_if_done
from steps_py.memvis.analysis import (MEMORY_QUANTITY, analysis_completion, analysis_parser, save_figure,
                                      setup_matplotlib, write_numbers)

log = get_logger("memvis.trajectories")


# ---------------------------------------------------------------------------------------------------------------
# Pure functions

def standardise(values, eps=1e-6):
    """(mean [H], std [H]) of values [N, H]; std floored at eps (constant units)."""
    x = np.asarray(values, dtype=np.float64)
    return x.mean(0), np.maximum(x.std(0), eps)


def pca_2d(x):
    """PCA of standardised vectors x [N, H] -> (components [2, H], explained variance ratios [2], mean [H])."""
    x = np.asarray(x, dtype=np.float64)
    mean = x.mean(0)
    _, s, vt = np.linalg.svd(x - mean, full_matrices=False)
    var = s ** 2
    total = var.sum() or 1.0
    k = min(2, vt.shape[0])
    comps = np.zeros((2, x.shape[1]))
    comps[:k] = vt[:k]
    ratios = np.zeros(2)
    ratios[:k] = var[:k] / total
    return comps, ratios, mean


def pca_project(x, comps, mean):
    """x [N, H] -> 2-D coordinates [N, 2]."""
    return (np.asarray(x, dtype=np.float64) - mean) @ comps.T


def pca_reconstruction_mse(x, comps, mean):
    """Mean squared error per entry of reconstructing x [N, H] from its 2-D PCA coordinates."""
    x = np.asarray(x, dtype=np.float64)
    rec = pca_project(x, comps, mean) @ comps + mean
    return float(((x - rec) ** 2).mean())


def build_autoencoder(dim, hidden=150, code=2):
    """torch module: encoder dim -> hidden -> code (tanh hidden, linear code); decoder code -> hidden -> dim."""
    import torch.nn as nn

    class DenoisingAutoencoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = nn.Sequential(nn.Linear(dim, hidden), nn.Tanh(), nn.Linear(hidden, code))
            self.decoder = nn.Sequential(nn.Linear(code, hidden), nn.Tanh(), nn.Linear(hidden, dim))

        def forward(self, x):
            return self.decoder(self.encoder(x))

    return DenoisingAutoencoder()


def train_autoencoder(x, hidden=150, noise=0.1, epochs=8, batch_size=256, lr=0.002, seed=0):
    """Trains a denoising autoencoder on standardised vectors x [N, H] (float) -> (model, final epoch loss).

    Each minibatch's input is x + N(0, noise^2); the target is the clean x; loss = mean squared error."""
    import torch
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    data = torch.as_tensor(np.asarray(x, dtype=np.float32))
    model = build_autoencoder(data.shape[1], hidden)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    loss_value = float("nan")
    for _ in range(epochs):
        perm = torch.randperm(len(data), generator=gen)
        total, count = 0.0, 0
        for i in range(0, len(data), batch_size):
            batch = data[perm[i:i + batch_size]]
            noisy = batch + noise * torch.randn(batch.shape, generator=gen)
            loss = torch.mean((model(noisy) - batch) ** 2)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(batch)
            count += len(batch)
        loss_value = total / max(count, 1)
    model.eval()
    return model, loss_value


def autoencoder_codes(model, x):
    """x [N, H] -> (2-D codes [N, 2], reconstructions [N, H]) of the clean vectors."""
    import torch
    with torch.no_grad():
        t = torch.as_tensor(np.asarray(x, dtype=np.float32))
        codes = model.encoder(t)
        return codes.numpy().astype(np.float64), model.decoder(codes).numpy().astype(np.float64)


def fit_layer(values, hidden=150, noise=0.1, epochs=8, batch_size=256, lr=0.002, seed=0, max_frames=20000):
    """Fits PCA and the autoencoder to one layer's values [N, H]. Returns (numbers dict, project) where
    project(values [T, H]) -> (dae 2-D [T, 2], pca 2-D [T, 2])."""
    x_all = np.asarray(values, dtype=np.float64)
    rng = np.random.default_rng(seed)
    idx = np.sort(rng.choice(len(x_all), max_frames, replace=False)) if len(x_all) > max_frames else \
        np.arange(len(x_all))
    mean, std = standardise(x_all[idx])
    x = (x_all[idx] - mean) / std
    comps, ratios, pmean = pca_2d(x)
    model, final_loss = train_autoencoder(x, hidden, noise, epochs, batch_size, lr, seed)
    _, rec = autoencoder_codes(model, x)
    numbers = {"dae_reconstruction_mse": float(((x - rec) ** 2).mean()),
               "baseline_mse": float(((x - x.mean(0)) ** 2).mean()),
               "pca_reconstruction_mse": pca_reconstruction_mse(x, comps, pmean),
               "pca_explained_variance": ratios.tolist(), "pca_explained_variance_2d": float(ratios.sum()),
               "final_train_loss": final_loss, "num_train_frames": int(len(x))}

    def project(v):
        z = (np.asarray(v, dtype=np.float64) - mean) / std
        return autoencoder_codes(model, z)[0], pca_project(z, comps, pmean)

    return numbers, project


# ---------------------------------------------------------------------------------------------------------------
# Figures

def plot_trajectories(out_dir, utt, paths, segments, title):
    """paths: list over layers of (dae [T, 2], pca [T, 2]); segments: [(start, end, phone name or None)]."""
    pyplot = setup_matplotlib()
    L = len(paths)
    fig, axes = pyplot.subplots(L, 2, figsize=(10, 4.2 * L), squeeze=False)
    for k, (dae, pca) in enumerate(paths):
        for j, (xy, name) in enumerate(((dae, "autoencoder"), (pca, "PCA"))):
            ax = axes[k, j]
            T = len(xy)
            ax.plot(xy[:, 0], xy[:, 1], color="lightgrey", lw=0.6, zorder=1)
            sc = ax.scatter(xy[:, 0], xy[:, 1], c=np.arange(T), cmap="viridis", s=6, zorder=2)
            for s, e, ph in segments:
                if ph is not None and e > s:
                    c = (s + e - 1) // 2
                    ax.annotate(ph, xy[c], fontsize=7, ha="center", va="bottom", zorder=3)
            ax.set_title(f"layer {k + 1}: {name}", fontsize=9)
            if j == 1:
                fig.colorbar(sc, ax=ax, label="frame (10 ms)")
    fig.suptitle(title)
    return save_figure(fig, out_dir, f"trajectory_{utt}")


# ---------------------------------------------------------------------------------------------------------------
# I/O

def run_trajectories(ext, out_dir, quantity=None, utts=None, num_utts=2, hidden=150, noise=0.1, epochs=8,
                     batch_size=256, lr=0.002, seed=0, max_frames=20000, layers=None, num_threads=1):
    """The analysis of a loaded Extraction ``ext``; writes figures + numbers.json; returns numbers."""
    import torch
    if num_threads:
        torch.set_num_threads(num_threads)
    quantity = quantity or MEMORY_QUANTITY.get(ext.cell, "h")
    if quantity not in ext.quantities:
        raise InputError(f"{ext.dir}: no quantity {quantity!r} (has {', '.join(ext.quantities)})")
    utts = utts or ext.utts[:num_utts]
    slices = [ext.utt_slice(u) for u in utts]  # InputError for unknown ids
    layers = layers or list(range(1, ext.num_layers + 1))
    numbers = {"extract_dir": ext.dir, "cell": ext.cell, "quantity": quantity, "seed": seed, "noise": noise,
               "hidden": hidden, "epochs": epochs, "max_frames": max_frames, "utts": utts, "layers": {}}
    paths = {u: [] for u in utts}
    for k in layers:
        values = ext.values(k, quantity, dtype=np.float64)
        nums, project = fit_layer(values, hidden, noise, epochs, batch_size, lr, seed, max_frames)
        numbers["layers"][str(k)] = nums
        log.info(f"layer {k}: autoencoder MSE {nums['dae_reconstruction_mse']:.3f}, PCA-2 MSE "
                 f"{nums['pca_reconstruction_mse']:.3f}, mean-vector MSE {nums['baseline_mse']:.3f}; PCA 2-D "
                 f"explains {100 * nums['pca_explained_variance_2d']:.1f}% of the variance")
        for u, sl in zip(utts, slices):
            paths[u].append(project(values[sl]))
    for u in utts:
        plot_trajectories(out_dir, u, paths[u], ext.phone_segments(u), f"{u}: {ext.cell} {quantity} trajectories")
    write_numbers(out_dir, numbers)
    return numbers


def main():
    p = analysis_parser(__doc__)
    p.add_argument("--quantity", default=None)
    p.add_argument("--utts", default="")
    p.add_argument("--num-utts", type=int, default=2)
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--hidden", type=int, default=150)
    p.add_argument("--noise", type=float, default=0.1)
    p.add_argument("--max-frames", type=int, default=20000)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--lr", type=float, default=0.002)
    p.add_argument("--layers", default="")
    p.add_argument("--num-threads", type=int, default=1)
    a = p.parse_args()
    done = analysis_completion(a, "trajectories")
    if skip_if_done(done, a.out_dir, log):
        return 0
    from steps_py.memvis.data import Extraction
    ext = Extraction.load(a.extract_dir)
    utts = [u for u in a.utts.split(",") if u] or None
    layers = [int(k) for k in a.layers.split(",") if k] or None
    run_trajectories(ext, a.out_dir, a.quantity, utts, a.num_utts, a.hidden, a.noise, a.epochs, a.batch_size, a.lr,
                     a.seed, a.max_frames, layers, a.num_threads)
    done.finish()
    return 0


if __name__ == "__main__":
    run_main(main)
