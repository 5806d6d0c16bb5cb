"""Decoding speed: real-time factor (decoding seconds / audio seconds) of the two LMWT/WIP sweep methods, and of
the two ways to get GMM log-likelihoods, measured in one run.

Usage: python bench/bench_decode.py [--graph-dir DIR --data-dir DIR] [--num-words 300] [--num-utts 30]
       [--noise 1.0] [--spread 1.0] [--min-lmwt 8 --max-lmwt 26] [--word-ins-penalty 0.0,0.5,1.0]

Without --graph-dir, a synthetic problem is built under /tmp: a lang of --num-words random words over 20 phones
(prepare_lang), a unigram G, a monophone GMM with one Gaussian per pdf, and utterances synthesised from random
alignments with noise (--noise, in units of the Gaussians' standard deviation, and --spread, the standard
deviation of the pdf means: a larger noise/spread ratio is more confusable).
With --graph-dir (e.g. exp/mono/graph_tgpr) and --data-dir (e.g. data/dev), the real system is used.

Reports for each method: RTF, lattice size, and agreement of the word sequences chosen for every (LMWT, WIP).
"""
import argparse
import os
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.join(ROOT, "tests"), os.path.join(ROOT, "tests", "decode")]

from steps_py.decode import search as decoding  # noqa: E402
from steps_py.decode.decode import gmm_loglike_producer  # noqa: E402
from steps_py.decode.driver import load_graph  # noqa: E402
from steps_py.gmm.model import GmmArrays  # noqa: E402
from steps_py.kaldi.bindings import kaldifst, khg  # noqa: E402
from steps_py.kaldi.model_io import read_model  # noqa: E402
from steps_py.kaldi.tree_io import read_tree  # noqa: E402


def synthetic_problem(root, num_words, num_utts, noise, spread=1.0, seed=0):
    from test_graph_decode import make_lang, make_model, make_utterances
    from steps_py.decode.mkgraph import mkgraph
    rng = np.random.default_rng(seed)
    phones = [f"P{i}" for i in range(20)]
    words = {}
    while len(words) < num_words:
        pron = " ".join(rng.choice(phones, size=rng.integers(2, 6)))
        words.setdefault(f"W{len(words)}", pron)
    lang = make_lang(root, words=words, phones=phones)
    model_dir = os.path.join(root, "exp", "mono")
    tm, am, tree, means = make_model(lang, model_dir, spread=spread)
    graph_dir = os.path.join(model_dir, "graph")
    t0 = time.time()
    mkgraph(lang, model_dir, graph_dir)
    print(f"mkgraph: {time.time() - t0:.2f} s")
    vocab = list(words)
    sentences = [" ".join(rng.choice(vocab, size=rng.integers(4, 10))) for _ in range(num_utts)]
    utts = make_utterances(lang, tm, tree, means, sentences, seed=seed + 1, noise=noise, words=words)
    graph = load_graph(graph_dir, tm)
    feats = [f for f, _ in utts]
    return graph, am, tm, feats, sentences


def real_problem(graph_dir, data_dir, num_utts):
    model_dir = os.path.dirname(os.path.abspath(graph_dir.rstrip("/")))
    tree = read_tree(os.path.join(model_dir, "tree"))
    tm, am, _ = read_model(os.path.join(model_dir, "final.mdl"), tree)
    graph = load_graph(graph_dir, tm)
    produce = gmm_loglike_producer(model_dir, am)
    # features after the model's pipeline: recover them by running the producer's pipeline without the GMM
    loglikes = []
    for i, (_, ll) in enumerate(produce(data_dir)):
        if i >= num_utts:
            break
        loglikes.append(ll)
    return graph, am, tm, loglikes


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--graph-dir")
    p.add_argument("--data-dir")
    p.add_argument("--num-words", type=int, default=300)
    p.add_argument("--num-utts", type=int, default=30)
    p.add_argument("--noise", type=float, default=1.0)
    p.add_argument("--spread", type=float, default=1.0, help="standard deviation of the pdf means")
    p.add_argument("--min-lmwt", type=int, default=8)
    p.add_argument("--max-lmwt", type=int, default=26)
    p.add_argument("--word-ins-penalty", default="0.0,0.5,1.0")
    p.add_argument("--beam", type=float, default=13.0)
    p.add_argument("--lattice-beam", type=float, default=6.0)
    a = p.parse_args()
    wips = tuple(float(x) for x in a.word_ins_penalty.split(","))
    common = dict(min_lmwt=a.min_lmwt, max_lmwt=a.max_lmwt, word_ins_penalties=wips, beam=a.beam,
                  lattice_beam=a.lattice_beam)

    feats = None
    if a.graph_dir:
        graph, am, tm, loglikes = real_problem(a.graph_dir, a.data_dir, a.num_utts)
    else:
        root = tempfile.mkdtemp(prefix="bench_decode.")
        graph, am, tm, feats, sentences = synthetic_problem(root, a.num_words, a.num_utts, a.noise, a.spread)
        arrays = GmmArrays(am)
        t0 = time.time()
        loglikes = [arrays.pdf_loglikes(f).astype(np.float32) for f in feats]
        t_np = time.time() - t0
    frames = sum(ll.shape[0] for ll in loglikes)
    audio = frames * 0.01
    print(f"graph: {graph.hclg.num_states} states; {len(loglikes)} utterances, {frames} frames ({audio:.1f} s); "
          f"{graph.num_pdfs} pdfs; sweep LMWT {a.min_lmwt}..{a.max_lmwt} x WIP {wips} = "
          f"{(a.max_lmwt - a.min_lmwt + 1) * len(wips)} pairs")

    if feats is not None:
        # GMM log-likelihoods: numpy matrix for all frames vs khg's decodable (computed lazily inside a decoder)
        opts = decoding.DecodeOptions(**common)
        t0 = time.time()
        words_np = [decoding.best_path(graph, ll, 0.1, opts).words for ll in loglikes]
        t_dec_np = time.time() - t0
        dopts = khg.FasterDecoderOptions()
        dopts.beam, dopts.max_active = opts.beam, opts.max_active
        t0 = time.time()
        words_khg = []
        for f in feats:
            dec = khg.FasterDecoder(graph.hclg, dopts)
            dec.decode(khg.DecodableAmDiagGmmScaled(am=am, tm=tm, feats=f, scale=0.1))
            ok, lat = dec.get_best_path()
            ok, _, words, _ = kaldifst.get_linear_symbol_sequence(lat) if ok else (False, [], [], None)
            words_khg.append(list(words))
        t_khg = time.time() - t0
        agree = np.mean([x == y for x, y in zip(words_np, words_khg)])
        print(f"GMM log-likelihoods, numpy [T, num_pdfs]: {t_np:.3f} s (RTF {t_np / audio:.4f}); + FasterDecoder "
              f"{t_dec_np:.3f} s (total RTF {(t_np + t_dec_np) / audio:.4f})")
        print(f"khg FasterDecoder + DecodableAmDiagGmmScaled (lazy per-frame GMM): {t_khg:.3f} s "
              f"(RTF {t_khg / audio:.4f}); same words on {100 * agree:.0f}% of utterances")

    results = {}
    for method in ("lattice", "bestpath"):
        opts = decoding.DecodeOptions(method=method, **common)
        t0 = time.time()
        hyps, arcs = [], 0
        for ll in loglikes:
            h, info = decoding.decode_sweep(graph, ll, opts)
            hyps.append(h)
            arcs += info.get("lattice_arcs", 0)
        t = time.time() - t0
        results[method] = hyps
        extra = f", {arcs / frames:.1f} lattice arcs per frame" if arcs else ""
        print(f"method {method}: {t:.2f} s, RTF {t / audio:.4f}{extra}")
    if feats is not None:
        import kaldialign
        id2word = {int(i): w for w, i in (line.split() for line in open(os.path.join(root, "lang_test", "words.txt")))}
        pairs = decoding.DecodeOptions(**common).pairs()
        for method, hyps in results.items():
            wers = []
            for k in range(len(pairs)):
                errs = sum(kaldialign.edit_distance(ref.split(), [id2word[w] for w in h[k]])["total"]
                           for ref, h in zip(sentences, hyps))
                wers.append(100.0 * errs / sum(len(r.split()) for r in sentences))
            k = int(np.argmin(wers))
            print(f"method {method}: best WER {wers[k]:.2f}% at LMWT {pairs[k][0]} WIP {pairs[k][1]}; "
                  f"WER range {min(wers):.2f}..{max(wers):.2f}%")
    same = np.mean([x == y for ul, ub in zip(results["lattice"], results["bestpath"]) for x, y in zip(ul, ub)])
    print(f"lattice vs bestpath: identical word sequences for {100 * same:.1f}% of (utterance, LMWT, WIP)")


if __name__ == "__main__":
    main()
