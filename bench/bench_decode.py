"""Decoding speed: real-time factor (search seconds / audio seconds) of the ways to do the LMWT/WIP sweep, and of the
two ways to get GMM log-likelihoods, measured in one run.

Usage: python bench/bench_decode.py [--graph-dir DIR --data-dir DIR [--nnet-dir DIR]] [--config conf/decode.conf]
       [--methods bestpath,lattice-faster] [--num-words 300] [--num-utts 30] [--noise 1.0] [--spread 1.0]
       [decoder options: --beam, --max-active, --min-lmwt, ... as steps_py.decode.decode]
  e.g. (in egs/synth/s5) python ../../../bench/bench_decode.py --config conf/decode.conf \
           --graph-dir exp/tri2b/graph_tgpr --data-dir data/dev --num-utts 40
       python ../../../bench/bench_decode.py --config conf/decode_nnet.conf --graph-dir exp/tri2b/graph_tgpr \
           --data-dir data/dev_fbank --nnet-dir exp/nnet/gru_2l --num-utts 40

Without --graph-dir, a synthetic problem is built under /tmp: a lang of --num-words random words over 20 phones
(prepare_lang), a unigram G, a monophone GMM with one Gaussian per pdf, and utterances synthesised from random
alignments with noise (--noise, in units of the Gaussians' standard deviation, and --spread, the standard
deviation of the pdf means: a larger noise/spread ratio is more confusable).
With --graph-dir (e.g. exp/mono/graph_tgpr) and --data-dir (e.g. data/dev), the real system is used: the GMM of
the graph's model dir, or with --nnet-dir the network (on the CPU, 1 thread) on a Fbank data dir.

The log-likelihoods are computed first; the times are of the search and the sweep alone (one process, as one
decoding job). Reported for each method: RTF, the ratio of its time to the first method's (bestpath: one
FasterDecoder run per (LMWT, WIP), the recipe's default), lattice arcs per frame, the best WER over the sweep (with
references: the data dir's text, or the synthetic sentences) and the share of (utterance, LMWT, WIP) word sequences
equal to the first method's.
"""
import argparse
import os
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.join(ROOT, "tests"), os.path.join(ROOT, "tests", "decode")]

from steps_py.data.datadir import read_map  # noqa: E402
from steps_py.decode import search as decoding  # noqa: E402
from steps_py.decode.decode import gmm_loglike_producer  # noqa: E402
from steps_py.decode.driver import add_decode_options, decode_options, load_graph  # noqa: E402
from steps_py.gmm.model import GmmArrays  # noqa: E402
from steps_py.kaldi.bindings import kaldifst, khg  # noqa: E402
from steps_py.kaldi.model_io import read_model  # noqa: E402
from steps_py.kaldi.options import parse_args_with_config  # noqa: E402
from steps_py.kaldi.tree_io import read_tree  # noqa: E402
from steps_py.nnet.device import add_device_option  # noqa: E402


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


def real_problem(graph_dir, data_dir, num_utts, nnet_dir=None):
    """(graph, log-likelihoods of the first num_utts utterances of data_dir, their ids): the GMM of the graph's model
    dir, or the network of nnet_dir."""
    if nnet_dir:
        from steps_py.nnet.checkpoint import load_acoustic_model
        bundle = load_acoustic_model(nnet_dir, num_threads=1)
        graph = load_graph(graph_dir, bundle.trans_model)
        utts = list(read_map(os.path.join(data_dir, "feats.scp")))[:num_utts]
        items = list(bundle.iter_features(data_dir, utts=utts))
        return graph, [bundle.loglikes(f) for _, f in items], [u for u, _ in items]
    model_dir = os.path.dirname(os.path.abspath(graph_dir.rstrip("/")))
    tree = read_tree(os.path.join(model_dir, "tree"))
    tm, am, _ = read_model(os.path.join(model_dir, "final.mdl"), tree)
    graph = load_graph(graph_dir, tm)
    produce = gmm_loglike_producer(model_dir, am)
    loglikes, utts = [], []
    for i, (utt, ll) in enumerate(produce(data_dir)):
        if i >= num_utts:
            break
        loglikes.append(ll)
        utts.append(utt)
    return graph, loglikes, utts


def sweep_wers(refs, hyps, id2word, pairs):
    """%WER of every (LMWT, WIP) pair: refs [utt] word lists, hyps [utt][pair] word-id lists."""
    import kaldialign
    num_words = sum(len(r) for r in refs)
    return [100.0 * sum(kaldialign.edit_distance(r, [id2word[w] for w in h[k]])["total"]
                        for r, h in zip(refs, hyps)) / max(num_words, 1) for k in range(len(pairs))]


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", help="Kaldi option file of the decode (e.g. conf/decode.conf)")
    p.add_argument("--graph-dir")
    p.add_argument("--data-dir")
    p.add_argument("--nnet-dir", help="decode with this network's log-likelihoods (a Fbank --data-dir)")
    p.add_argument("--methods", default="bestpath,lattice-faster",
                   help="comma list of lattice, lattice-faster, bestpath; the first is the reference")
    p.add_argument("--num-words", type=int, default=300)
    p.add_argument("--num-utts", type=int, default=30)
    p.add_argument("--noise", type=float, default=1.0)
    p.add_argument("--spread", type=float, default=1.0, help="standard deviation of the pdf means")
    p.add_argument("--filter-words", default="", help="words left out of references and hypotheses")
    add_device_option(p)       # accepted in conf/decode_nnet.conf; the network runs on the CPU here
    add_decode_options(p)
    a, _ = parse_args_with_config(p)
    base = decode_options(a)
    methods = [m for m in a.methods.split(",") if m]
    drop = {w for w in a.filter_words.split(",") if w}

    feats = None
    if a.graph_dir:
        graph, loglikes, utts = real_problem(a.graph_dir, a.data_dir, a.num_utts, a.nnet_dir)
        text = read_map(os.path.join(a.data_dir, "text"))
        refs = [[w for w in text.get(u, "").split() if w not in drop] for u in utts]
        words_txt = os.path.join(a.graph_dir, "words.txt")
    else:
        root = tempfile.mkdtemp(prefix="bench_decode.")
        graph, am, tm, feats, sentences = synthetic_problem(root, a.num_words, a.num_utts, a.noise, a.spread)
        arrays = GmmArrays(am)
        t0 = time.time()
        loglikes = [arrays.pdf_loglikes(f).astype(np.float32) for f in feats]
        t_np = time.time() - t0
        refs = [s.split() for s in sentences]
        words_txt = os.path.join(root, "lang_test", "words.txt")
    id2word = {int(i): w for w, i in (line.split() for line in open(words_txt))}
    id2word.update({i: "" for i, w in id2word.items() if w in drop})
    frames = sum(ll.shape[0] for ll in loglikes)
    audio = frames * 0.01
    pairs = base.pairs()
    print(f"graph: {graph.hclg.num_states} states; {len(loglikes)} utterances, {frames} frames ({audio:.1f} s); "
          f"{graph.num_pdfs} pdfs; sweep LMWT {base.min_lmwt}..{base.max_lmwt} step {base.lmwt_step} x WIP "
          f"{base.word_ins_penalties} = {len(pairs)} pairs; beam {base.beam}, max-active {base.max_active}, "
          f"lattice beam {base.lattice_beam}")

    if feats is not None:
        # GMM log-likelihoods: numpy matrix for all frames vs khg's decodable (computed lazily inside a decoder)
        t0 = time.time()
        words_np = [decoding.best_path(graph, ll, 0.1, base).words for ll in loglikes]
        t_dec_np = time.time() - t0
        dopts = khg.FasterDecoderOptions()
        dopts.beam, dopts.max_active = base.beam, base.max_active
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

    results, times = {}, {}
    for method in methods:
        opts = decoding.DecodeOptions(**{**base.__dict__, "method": method})
        if method == "lattice-faster":    # graph arrays and the compiled decoder: once per job, not timed
            graph.arrays()
            decoding.decode_sweep(graph, loglikes[0], opts)
        t0 = time.time()
        hyps, arcs = [], 0
        for ll in loglikes:
            h, info = decoding.decode_sweep(graph, ll, opts)
            hyps.append(h)
            arcs += info.get("lattice_arcs", 0)
        times[method] = time.time() - t0
        results[method] = hyps
        wers = sweep_wers(refs, hyps, id2word, pairs)
        k = int(np.argmin(wers))
        ref = methods[0]
        same = np.mean([x == y for ul, ub in zip(results[ref], hyps) for x, y in zip(ul, ub)])
        extra = f", {arcs / frames:.1f} lattice arcs per frame" if arcs else ""
        print(f"method {method}: {times[method]:.2f} s, RTF {times[method] / audio:.4f}, time / {ref} "
              f"{times[method] / times[ref]:.3f}{extra}; best %WER {wers[k]:.2f} at LMWT {pairs[k][0]} WIP "
              f"{pairs[k][1]}; word sequences equal to {ref}'s: {100 * same:.1f}%", flush=True)


if __name__ == "__main__":
    main()
