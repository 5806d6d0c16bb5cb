"""Usage: python -m steps_py.memvis.tsne [options] <extract-dir> <out-dir>

t-SNE of the memory vectors of single utterances, per layer (Tang et al. 2017, Fig. 2): for each utterance of
--utts (comma list; default the first --num-utts = 3 of the extraction) and each layer, the utterance's frames
(every --stride-th frame so that at most --max-frames remain) are embedded in 2-D with sklearn's t-SNE (fixed
--seed, --perplexity, PCA init). Points are coloured by time and joined in time order; phone labels sit at the
centre frame of each phone segment.

Smoothness of a trajectory x_1..x_T = mean step length |x_{t+1} - x_t| / mean distance of random frame pairs
(steps_py.memvis.stats.smoothness: about 1 for frames in random order, -> 0 for a slowly moving state); measured in
the original cell_dim space and in the 2-D embedding, per layer.

Writes tsne.png/.svg (rows: utterances, columns: layers) and numbers.json: utts, frames_used, stride, per
utterance and layer {smoothness_original, smoothness_embedding, kl_divergence}, mean_smoothness_original and
mean_smoothness_embedding per layer (over the utterances), and optionally the embeddings (--save-embeddings).
"""
import numpy as np

from steps_py.common import InputError, get_logger, run_main
from steps_py.completion import skip_if_done
from steps_py.memvis.analysis import (analysis_completion, analysis_parser, extraction_info, memory_quantity,
                                      save_figure, setup_matplotlib, write_numbers)
from steps_py.memvis.data import Extraction, runs
from steps_py.memvis.stats import smoothness

log = get_logger("memvis.tsne")


def embed(points, perplexity=30.0, seed=0, max_iter=1000):
    """points [T, D] -> (embedding [T, 2], KL divergence) by sklearn t-SNE (PCA init, fixed seed). The perplexity
    is capped at (T - 1) / 3 as t-SNE needs."""
    from sklearn.manifold import TSNE
    x = np.asarray(points, dtype=np.float64)
    perp = float(min(perplexity, max(2.0, (len(x) - 1) / 3)))
    tsne = TSNE(n_components=2, perplexity=perp, init="pca", random_state=seed, max_iter=max_iter,
                learning_rate="auto")
    from threadpoolctl import threadpool_limits
    with threadpool_limits(1):  # OpenMP threads spin badly on shared, loaded cores (10x slower)
        points_2d = tsne.fit_transform(x)
    return points_2d, float(tsne.kl_divergence_)


def choose_utts(ext, utts=None, num_utts=3):
    if utts:
        missing = [u for u in utts if u not in ext.utts]
        if missing:
            raise InputError(f"{ext.dir}: no utterance(s) {', '.join(missing)}")
        return list(utts)
    return ext.utts[:num_utts]


def analyse(ext, utts=None, num_utts=3, quantity=None, perplexity=30.0, max_frames=500, seed=0, max_iter=1000):
    """Extraction -> (numbers dict, embeddings {(utt, layer): [n, 2]}, frames {utt: frame indices in the utt})."""
    q = memory_quantity(ext, quantity)
    utts = choose_utts(ext, utts, num_utts)
    per_utt, embeddings, frames_of = {}, {}, {}
    for utt in utts:
        sl = ext.utt_slice(utt)
        num_frames = sl.stop - sl.start
        stride = max(1, int(np.ceil(num_frames / max_frames)))
        frames = np.arange(0, num_frames, stride)
        frames_of[utt] = frames
        layers = []
        for k in range(1, ext.num_layers + 1):
            x = ext.values(k, q, sl)[frames]
            emb, kl = embed(x, perplexity, seed, max_iter)
            embeddings[(utt, k)] = emb
            layers.append({"smoothness_original": smoothness(x), "smoothness_embedding": smoothness(emb),
                           "kl_divergence": kl})
        per_utt[utt] = {"num_frames": num_frames, "frames_used": len(frames), "stride": stride, "layers": layers}
    mean_orig = [float(np.nanmean([per_utt[u]["layers"][k]["smoothness_original"] for u in utts]))
                 for k in range(ext.num_layers)]
    mean_emb = [float(np.nanmean([per_utt[u]["layers"][k]["smoothness_embedding"] for u in utts]))
                for k in range(ext.num_layers)]
    numbers = {"analysis": "tsne", **extraction_info(ext), "quantity": q, "utts": utts, "perplexity": perplexity,
               "max_iter": max_iter, "seed": seed, "max_frames": max_frames,
               "frame_sampling": f"each utterance subsampled to every stride-th frame (<= {max_frames} frames)",
               "smoothness_definition": "mean consecutive step length / mean pairwise distance",
               "per_utt": per_utt, "mean_smoothness_original": mean_orig, "mean_smoothness_embedding": mean_emb}
    return numbers, embeddings, frames_of


def plot(ext, numbers, embeddings, frames_of):
    plt = setup_matplotlib()
    utts, num_layers = numbers["utts"], ext.num_layers
    fig, axes = plt.subplots(len(utts), num_layers, figsize=(2.8 * num_layers, 2.7 * len(utts)), squeeze=False)
    names = ext.phone_names
    for i, utt in enumerate(utts):
        sl = ext.utt_slice(utt)
        frames = frames_of[utt]
        phone_ids = ext.phone_ids[sl][frames]
        for k in range(1, num_layers + 1):
            ax = axes[i][k - 1]
            emb = embeddings[(utt, k)]
            ax.plot(emb[:, 0], emb[:, 1], color="0.75", lw=0.4, zorder=1)
            sc = ax.scatter(emb[:, 0], emb[:, 1], c=frames * ext.frame_shift, cmap="viridis", s=4, zorder=2)
            for s, e, p in runs(phone_ids):
                if p >= 0 and e - s >= 2:
                    c = (s + e - 1) // 2
                    ax.text(emb[c, 0], emb[c, 1], names[p], fontsize=5, zorder=3, ha="center", va="center",
                            color="darkred" if ext.is_silence[p] else "k")
            d = numbers["per_utt"][utt]["layers"][k - 1]
            ax.set_title(f"{utt} layer {k}\nsmoothness {d['smoothness_original']:.3f} "
                         f"(2-D {d['smoothness_embedding']:.3f})", fontsize=7)
            ax.set_xticks([])
            ax.set_yticks([])
        fig.colorbar(sc, ax=axes[i][num_layers - 1], label="time (s)", fraction=0.05)
    fig.suptitle(f"t-SNE of {ext.cell.upper()} {numbers['quantity']} per utterance and layer")
    return fig


def main():
    p = analysis_parser(__doc__)
    p.add_argument("--utts", default="", help="comma-separated utterance ids (default: the first --num-utts)")
    p.add_argument("--num-utts", type=int, default=3)
    p.add_argument("--quantity", default=None, help="quantity (default: c for LSTM, h otherwise)")
    p.add_argument("--perplexity", type=float, default=30.0)
    p.add_argument("--max-frames", type=int, default=500, help="frames per utterance (strided subsampling above)")
    p.add_argument("--max-iter", type=int, default=1000, help="t-SNE iterations")
    p.add_argument("--save-embeddings", action="store_true", help="also store the 2-D points in numbers.json")
    a = p.parse_args()
    done = analysis_completion(a, "tsne")
    if skip_if_done(done, a.out_dir, log):
        return 0
    ext = Extraction.load(a.extract_dir)
    utts = [u for u in a.utts.split(",") if u]
    numbers, embeddings, frames_of = analyse(ext, utts, a.num_utts, a.quantity, a.perplexity, a.max_frames,
                                             a.seed, a.max_iter)
    if a.save_embeddings:
        numbers["embeddings"] = {f"{u}/layer{k}": {"frames": frames_of[u], "points": np.round(e, 3)}
                                 for (u, k), e in embeddings.items()}
    numbers["figures"] = save_figure(plot(ext, numbers, embeddings, frames_of), a.out_dir, "tsne")
    write_numbers(a.out_dir, numbers)
    done.finish()
    log.info("mean smoothness per layer (original space): " +
             ", ".join(f"{s:.3f}" for s in numbers["mean_smoothness_original"]))


if __name__ == "__main__":
    run_main(main)
