"""Lattices, compiled with numba: our lattice decoder, token passing over HCLG with a beam, max-active and min-active
(as Kaldi's LatticeFasterDecoder), giving a raw state-level lattice; and the LMWT/WIP sweep over such lattices
(sweep_best_paths), which also serves kaldi_decoder.LatticeSimpleDecoder's. One decode per utterance whatever the
size of the sweep, and the active states are bounded, which LatticeSimpleDecoder cannot do.

Graph: steps_py.decode.graph_arrays (HCLG as flat arrays, with the pdf of every arc).

Search, for frames t = 0..T-1 of pdf log-likelihoods [T, P]: the tokens of frame t (one per graph state, with its
best cost alpha = graph cost + acwt * acoustic cost of the best path into it) that lie within ``beam`` of the best
and among the ``max_active`` best (at least ``min_active``) follow their emitting arcs into frame t+1, the arcs'
acoustic cost being -loglike[t, pdf]; the tokens of t+1 then follow epsilon arcs within the frame. Every arc
followed between surviving tokens is a lattice arc (graph cost, unscaled acoustic cost, word). After the last
frame the lattice is pruned to ``lattice_beam`` of the best path (forward-backward over the arcs) and renumbered.
Costs are Kaldi's; the best path at the decoding scale equals FasterDecoder's with the same beam and max-active
up to ties and the order of pruning.
"""
import numba
import numpy as np

# compiled on first use; the machine code is cached beside this file (__pycache__), so later processes load it
_njit = numba.njit(cache=True, nogil=True)


# ------------------------------------------------------------------------------------------------------------
# the search

@_njit
def _grow(a, n):
    out = np.empty(max(2 * a.size, n), a.dtype)
    out[:a.size] = a
    return out


BEAM_DELTA = 0.5     # Kaldi's --beam-delta: the margin of the adaptive beam when max-active or min-active decides


@_njit
def _cutoff(costs, beam, max_active, min_active):
    """Kaldi's GetCutoff -> (cutoff, adaptive beam): tokens costing at most the cutoff survive. best + beam,
    unless more than max_active tokens lie within it (then the cost of the (max_active+1)-th best) or fewer than
    min_active do (then the cost of the (min_active+1)-th best, or every token when there are no more than
    min_active); the next frame's tokens are then made within cutoff - best + BEAM_DELTA of its best, else within
    beam."""
    n = costs.size
    best = costs.min()
    beam_cutoff = best + beam
    below, within = 0, 0          # tokens costing < and <= beam_cutoff: a partial sort only when it decides
    for c in costs:
        if c < beam_cutoff:
            below += 1
        if c <= beam_cutoff:
            within += 1
    if max_active > 0 and n > max_active and below > max_active:
        kth = np.partition(costs, max_active)[max_active]
        return kth, kth - best + BEAM_DELTA
    k = min(min_active, n - 1)
    if within <= k:               # the (min_active+1)-th best (or the worst) lies beyond the beam
        kth = np.partition(costs, k)[k]
        return kth, kth - best + BEAM_DELTA
    return beam_cutoff, beam


@_njit
def _search(arc_start, pdf_of_arc, olabel, weight, nextstate, final, start, loglikes, acwt, beam, max_active,
            min_active):
    """Token passing (see the module docstring). Returns the unpruned lattice: per token its cost and graph state;
    per link src, dst (tokens), olabel, graph cost, acoustic cost (unscaled); the index of the first token of every
    frame [T+2]; the frames done (T+1 when the search reached the end) and the most tokens any frame kept."""
    num_frames = loglikes.shape[0]
    num_states = final.size
    state_tok = np.full(num_states, -1, np.int64)
    tok_cost = np.empty(1024, np.float64)
    tok_state = np.empty(1024, np.int64)
    l_src = np.empty(4096, np.int64)
    l_dst = np.empty(4096, np.int64)
    l_word = np.empty(4096, np.int32)
    l_graph = np.empty(4096, np.float64)
    l_ac = np.empty(4096, np.float64)
    frame_begin = np.zeros(num_frames + 2, np.int64)
    queue = np.empty(1024, np.int64)
    num_toks = 0
    num_links = 0
    max_survivors = 0

    tok_cost[0] = 0.0
    tok_state[0] = start
    state_tok[start] = 0
    num_toks = 1
    next_cutoff = np.inf
    for t in range(num_frames + 1):
        begin = frame_begin[t]
        # epsilon closure of frame t: costs first (a queue of improved tokens), links after pruning
        n_q = 0
        for k in range(begin, num_toks):
            if n_q >= queue.size:
                queue = _grow(queue, n_q + 1)
            queue[n_q] = k
            n_q += 1
        head = 0
        while head < n_q:
            k = queue[head]
            head += 1
            s = tok_state[k]
            c0 = tok_cost[k]
            for a in range(arc_start[s], arc_start[s + 1]):
                if pdf_of_arc[a] >= 0:
                    continue
                c = c0 + weight[a]
                if c > next_cutoff:
                    continue
                d = nextstate[a]
                j = state_tok[d]
                if j < 0:
                    if num_toks >= tok_cost.size:
                        tok_cost = _grow(tok_cost, num_toks + 1)
                        tok_state = _grow(tok_state, num_toks + 1)
                    j = num_toks
                    num_toks += 1
                    tok_cost[j] = c
                    tok_state[j] = d
                    state_tok[d] = j
                elif c < tok_cost[j]:
                    tok_cost[j] = c
                else:
                    continue
                if n_q >= queue.size:
                    # a token may enter the queue again when it improves: compact what was consumed
                    queue[:n_q - head] = queue[head:n_q].copy()
                    n_q -= head
                    head = 0
                    if n_q >= queue.size:
                        queue = _grow(queue, n_q + 1)
                queue[n_q] = j
                n_q += 1
        end = num_toks
        cutoff, adaptive_beam = _cutoff(tok_cost[begin:end], beam, max_active, min_active)
        survivors = 0
        for k in range(begin, end):
            if tok_cost[k] <= cutoff:
                survivors += 1
        max_survivors = max(max_survivors, survivors)
        # the epsilon links among the surviving tokens of frame t
        for k in range(begin, end):
            if tok_cost[k] > cutoff:
                continue
            s = tok_state[k]
            for a in range(arc_start[s], arc_start[s + 1]):
                if pdf_of_arc[a] >= 0:
                    continue
                j = state_tok[nextstate[a]]
                if j < 0 or tok_cost[j] > cutoff:
                    continue
                if num_links >= l_src.size:
                    l_src = _grow(l_src, num_links + 1)
                    l_dst = _grow(l_dst, num_links + 1)
                    l_word = _grow(l_word, num_links + 1)
                    l_graph = _grow(l_graph, num_links + 1)
                    l_ac = _grow(l_ac, num_links + 1)
                l_src[num_links] = k
                l_dst[num_links] = j
                l_word[num_links] = olabel[a]
                l_graph[num_links] = weight[a]
                l_ac[num_links] = 0.0
                num_links += 1
        for k in range(begin, end):
            state_tok[tok_state[k]] = -1
        if t == num_frames:
            frame_begin[t + 1] = end
            break
        # emitting arcs into frame t+1
        frame_begin[t + 1] = end
        next_cutoff = np.inf
        for k in range(begin, end):
            if tok_cost[k] > cutoff:
                continue
            s = tok_state[k]
            c0 = tok_cost[k]
            for a in range(arc_start[s], arc_start[s + 1]):
                p = pdf_of_arc[a]
                if p < 0:
                    continue
                ac = -loglikes[t, p]
                c = c0 + weight[a] + acwt * ac
                if c > next_cutoff:
                    continue
                if c + adaptive_beam < next_cutoff:
                    next_cutoff = c + adaptive_beam
                d = nextstate[a]
                j = state_tok[d]
                if j < 0:
                    if num_toks >= tok_cost.size:
                        tok_cost = _grow(tok_cost, num_toks + 1)
                        tok_state = _grow(tok_state, num_toks + 1)
                    j = num_toks
                    num_toks += 1
                    tok_cost[j] = c
                    tok_state[j] = d
                    state_tok[d] = j
                elif c < tok_cost[j]:
                    tok_cost[j] = c
                if num_links >= l_src.size:
                    l_src = _grow(l_src, num_links + 1)
                    l_dst = _grow(l_dst, num_links + 1)
                    l_word = _grow(l_word, num_links + 1)
                    l_graph = _grow(l_graph, num_links + 1)
                    l_ac = _grow(l_ac, num_links + 1)
                l_src[num_links] = k
                l_dst[num_links] = j
                l_word[num_links] = olabel[a]
                l_graph[num_links] = weight[a]
                l_ac[num_links] = ac
                num_links += 1
        if num_toks == end:        # nothing survived the frame
            frame_begin[t + 2:] = end
            return (tok_cost[:num_toks], tok_state[:num_toks], l_src[:num_links], l_dst[:num_links],
                    l_word[:num_links], l_graph[:num_links], l_ac[:num_links], frame_begin, t + 1, max_survivors)
    return (tok_cost[:num_toks], tok_state[:num_toks], l_src[:num_links], l_dst[:num_links], l_word[:num_links],
            l_graph[:num_links], l_ac[:num_links], frame_begin, num_frames + 1, max_survivors)


@_njit
def _prune(num_toks, l_src, l_dst, l_graph, l_ac, end_cost, acwt, lattice_beam):
    """Forward-backward over the links (which go from lower to higher token index, or within a frame along
    epsilon arcs: relaxed until stable) -> (keep link [L] bool, keep token [N] bool, best total cost). end_cost [N]:
    the cost of ending in each token (+inf for tokens not in the last frame or not final)."""
    n_links = l_src.size
    cost = l_graph + acwt * l_ac
    alpha = np.full(num_toks, np.inf)
    alpha[0] = 0.0
    changed = True
    while changed:            # links are stored in the order they were made: one pass, plus one per epsilon depth
        changed = False
        for i in range(n_links):
            c = alpha[l_src[i]] + cost[i]
            if c < alpha[l_dst[i]]:
                alpha[l_dst[i]] = c
                changed = True
    beta = end_cost.copy()
    changed = True
    while changed:
        changed = False
        for i in range(n_links - 1, -1, -1):
            c = beta[l_dst[i]] + cost[i]
            if c < beta[l_src[i]]:
                beta[l_src[i]] = c
                changed = True
    best = beta[0]
    limit = best + lattice_beam
    keep_link = np.zeros(n_links, np.bool_)
    for i in range(n_links):
        keep_link[i] = alpha[l_src[i]] + cost[i] + beta[l_dst[i]] <= limit
    keep_tok = alpha + beta <= limit
    return keep_link, keep_tok, best


def decode_lattice(g, pdf_of_arc, loglikes, acwt, beam, max_active, min_active, lattice_beam):
    """One utterance: GraphArrays ``g`` with pdf_of_arc [A] (pdf_of_arcs), pdf log-likelihoods [T, P] -> (lattice
    arrays as fst_utils.lattice_to_arrays gives them, acoustic costs unscaled, plus ``max_tokens``: the most tokens
    a frame kept; reached_final). RuntimeError when no token survives to the last frame."""
    loglikes = np.ascontiguousarray(loglikes, dtype=np.float32)
    (tok_cost, tok_state, l_src, l_dst, l_word, l_graph, l_ac, frame_begin, frames_done, max_tokens) = _search(
        g.arc_start, pdf_of_arc, g.olabel, g.weight, g.nextstate, g.final, g.start, loglikes, float(acwt),
        float(beam), int(max_active), int(min_active))
    num_frames = loglikes.shape[0]
    if frames_done <= num_frames:
        raise RuntimeError(f"decoding failed: no active tokens at frame {frames_done} of {num_frames}")
    last = slice(frame_begin[num_frames], frame_begin[num_frames + 1])
    last_final = g.final[tok_state[last]].astype(np.float64)
    reached_final = bool(np.isfinite(last_final).any())
    end_cost = np.full(tok_cost.size, np.inf)
    end_cost[last] = last_final if reached_final else 0.0
    keep_link, keep_tok, best = _prune(tok_cost.size, l_src, l_dst, l_graph, l_ac, end_cost, float(acwt),
                                       float(lattice_beam))
    if not np.isfinite(best):
        raise RuntimeError("decoder returned an empty lattice")
    new_id = np.cumsum(keep_tok) - 1
    final_graph = end_cost[keep_tok]
    empty = np.zeros(0, np.int32)
    return {"start": int(new_id[0]), "src": new_id[l_src[keep_link]].astype(np.int32),
            "dst": new_id[l_dst[keep_link]].astype(np.int32), "ilabel": empty, "olabel": l_word[keep_link],
            "graph_cost": l_graph[keep_link], "acoustic_cost": l_ac[keep_link], "final_graph": final_graph,
            "final_acoustic": np.where(np.isfinite(final_graph), 0.0, np.inf), "max_tokens": int(max_tokens)}, \
        reached_final


# ------------------------------------------------------------------------------------------------------------
# the sweep

@_njit
def _sweep(num_states, start, src, dst, olabel, graph_cost, acoustic_cost, final_graph, final_acoustic, inv_lmwt,
           wips):
    """Best path of an acyclic lattice for K (1/LMWT, WIP) pairs at once: Kahn's topological order, then one
    relaxation of every arc for all pairs. Returns (words, offsets [K+1]: pair k's words are
    words[offsets[k]:offsets[k+1]]) or None when the lattice has a cycle or no final state is reachable."""
    num_links = src.size
    num_pairs = inv_lmwt.size
    off = np.zeros(num_states + 1, np.int64)
    indeg = np.zeros(num_states, np.int64)
    for i in range(num_links):
        off[src[i] + 1] += 1
        indeg[dst[i]] += 1
    for s in range(num_states):
        off[s + 1] += off[s]
    by_src = np.empty(num_links, np.int64)
    fill = off[:-1].copy()
    for i in range(num_links):
        by_src[fill[src[i]]] = i
        fill[src[i]] += 1
    topo = np.empty(num_states, np.int64)
    n_topo = 0
    for s in range(num_states):
        if indeg[s] == 0:
            topo[n_topo] = s
            n_topo += 1
    head = 0
    while head < n_topo:
        s = topo[head]
        head += 1
        for j in range(off[s], off[s + 1]):
            d = dst[by_src[j]]
            indeg[d] -= 1
            if indeg[d] == 0:
                topo[n_topo] = d
                n_topo += 1
    if n_topo < num_states:
        return None
    best = np.full((num_states, num_pairs), np.inf)
    back = np.full((num_states, num_pairs), -1, np.int64)
    best[start, :] = 0.0
    for n in range(num_states):
        s = topo[n]
        for j in range(off[s], off[s + 1]):
            i = by_src[j]
            d = dst[i]
            word = olabel[i] != 0
            for k in range(num_pairs):
                c = best[s, k] + graph_cost[i] + acoustic_cost[i] * inv_lmwt[k] + (wips[k] if word else 0.0)
                if c < best[d, k]:
                    best[d, k] = c
                    back[d, k] = i
    words = np.empty(0, np.int64)
    offsets = np.zeros(num_pairs + 1, np.int64)
    for k in range(num_pairs):
        end, end_cost = -1, np.inf
        for s in range(num_states):
            c = best[s, k] + final_graph[s] + final_acoustic[s] * inv_lmwt[k]
            if c < end_cost:
                end, end_cost = s, c
        if end < 0:
            return None
        path = []
        s = end
        while back[s, k] >= 0:
            i = back[s, k]
            if olabel[i] != 0:
                path.append(olabel[i])
            s = src[i]
        grown = np.empty(words.size + len(path), np.int64)
        grown[:words.size] = words
        for m in range(len(path)):
            grown[words.size + m] = path[len(path) - 1 - m]
        words = grown
        offsets[k + 1] = words.size
    return words, offsets


def sweep_best_paths(arrays, lmwts, wips):
    """Best word sequence of a lattice (arrays as fst_utils.lattice_to_arrays, acoustic costs unscaled) for every
    (LMWT, WIP) pair: path cost = graph + acoustic / LMWT + WIP * number of words (Kaldi's lattice-scale
    --inv-acoustic-scale=LMWT | lattice-add-penalty --word-ins-penalty=WIP | lattice-best-path). ``lmwts``,
    ``wips``: equal-length sequences (K pairs). Returns a list of K word-id lists; RuntimeError when the lattice has
    a cycle or no path to a final state."""
    out = _sweep(arrays["final_graph"].size, int(arrays["start"]), arrays["src"].astype(np.int64),
                 arrays["dst"].astype(np.int64), arrays["olabel"].astype(np.int64),
                 np.asarray(arrays["graph_cost"], np.float64), np.asarray(arrays["acoustic_cost"], np.float64),
                 np.asarray(arrays["final_graph"], np.float64), np.asarray(arrays["final_acoustic"], np.float64),
                 1.0 / np.asarray(lmwts, np.float64), np.asarray(wips, np.float64))
    if out is None:
        raise RuntimeError("lattice has a cycle or no path to a final state")
    words, offsets = out
    return [[int(w) for w in words[offsets[k]:offsets[k + 1]]] for k in range(offsets.size - 1)]


def warm_up():
    """Compiles (or loads from the cache) every kernel of this module and of graph_arrays on a two-state graph,
    with the argument types of real decodes, so that the first decode of a fresh install does not pay for it
    (tools/install.sh calls it). Returns the words of the toy decode ([[1]])."""
    from steps_py.decode import graph_arrays
    from steps_py.kaldi.bindings import kaldifst
    fst = kaldifst.StdVectorFst()
    s0, s1 = fst.add_state(), fst.add_state()
    fst.start = s0
    fst.add_arc(s0, kaldifst.StdArc(1, 1, 0.5, s1))
    fst.add_arc(s1, kaldifst.StdArc(1, 0, 0.0, s1))
    fst.add_arc(s1, kaldifst.StdArc(0, 0, 0.1, s0))
    fst.set_final(s1, 0.0)
    g = graph_arrays.graph_arrays(fst)
    pdf_of_arc = graph_arrays.pdf_of_arcs(g, np.array([0, 0], np.int64))
    arrays, _ = decode_lattice(g, pdf_of_arc, np.zeros((3, 1), np.float32), 0.1, 10.0, 100, 1, 5.0)
    return sweep_best_paths(arrays, [10], [0.0])
