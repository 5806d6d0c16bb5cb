"""Lattices, compiled with numba: our lattice decoder, token passing over HCLG with a beam, max-active and min-active
(as Kaldi's LatticeFasterDecoder), giving a raw state-level lattice; and the LMWT/WIP sweep over such lattices
(sweep_best_paths), which also serves kaldi_decoder.LatticeSimpleDecoder's. One decode per utterance whatever the
size of the sweep, and the active states are bounded, which LatticeSimpleDecoder cannot do.

Graph: steps_py.kaldi.fst_io.GraphArrays (HCLG as flat arrays), with the pdf of every arc (pdf_of_arcs).

Search, for frames t = 0..T-1 of pdf log-likelihoods [T, P] (Kaldi's LatticeFasterDecoder): the tokens of frame t
(one per graph state, with its best cost alpha = graph cost + acwt * acoustic cost of the best path into it) that lie
within ``beam`` of the best and among the ``max_active`` best (at least ``min_active``) follow their emitting arcs
into frame t+1, the arcs' acoustic cost being -loglike[t, pdf], within an adaptive cutoff seeded from the best
token; the tokens of t+1 then follow epsilon arcs within the frame. Every arc so followed is a lattice arc (graph
cost, unscaled acoustic cost, word). After the last frame (where no max-active applies) the lattice is pruned to
``lattice_beam`` of the best path (forward-backward over the arcs) and renumbered. Costs are Kaldi's; the best path
at the decoding scale is FasterDecoder's with the same beam up to ties and max-active's edge (a token more kept,
as LatticeFasterDecoder keeps it). All links are kept until the end of the utterance (Kaldi prunes them every 25
frames): memory grows with the utterance's frames times the active tokens.
"""
import numba
import numpy as np

# compiled on first use; the machine code is cached beside this file (__pycache__), so later processes load it
_njit = numba.njit(cache=True, nogil=True)
_inline = numba.njit(cache=True, nogil=True, inline="always")   # the hot path's helpers: no call per token or link


# ------------------------------------------------------------------------------------------------------------
# the search

@_njit
def _grow(a, n):
    out = np.empty(max(2 * a.size, n), a.dtype)
    out[:a.size] = a
    return out


@_inline
def _room(l_src, l_dst, l_arc, l_ac, n):
    """The link arrays with room for link index n."""
    if n < l_src.size:
        return l_src, l_dst, l_arc, l_ac
    return _grow(l_src, n + 1), _grow(l_dst, n + 1), _grow(l_arc, n + 1), _grow(l_ac, n + 1)


@_inline
def _token(d, state_tok, tok_cost, tok_state, num_toks):
    """The token of graph state d in the frame being built, made (at cost +inf) when it has none -> (its index, the
    token arrays and count, grown as needed)."""
    j = state_tok[d]
    if j < 0:
        if num_toks >= tok_cost.size:
            tok_cost = _grow(tok_cost, num_toks + 1)
            tok_state = _grow(tok_state, num_toks + 1)
        j = num_toks
        num_toks += 1
        tok_cost[j] = np.inf
        tok_state[j] = d
        state_tok[d] = j
    return j, tok_cost, tok_state, num_toks


@_inline
def _link(l_src, l_dst, l_arc, l_ac, n, k, j, a, ac):
    """Appends link n (token k -> token j along arc a, acoustic cost ac) -> (the link arrays, n + 1)."""
    l_src, l_dst, l_arc, l_ac = _room(l_src, l_dst, l_arc, l_ac, n)
    l_src[n] = k
    l_dst[n] = j
    l_arc[n] = a
    l_ac[n] = ac
    return l_src, l_dst, l_arc, l_ac, n + 1


BEAM_DELTA = 0.5     # Kaldi's --beam-delta: the margin of the adaptive beam when max-active or min-active decides


@_njit
def _cutoff(costs, beam, max_active, min_active):
    """Kaldi's GetCutoff -> (cutoff, adaptive beam): tokens costing at most the cutoff emit. best + beam, unless
    more than max_active tokens lie within it (then the cost of the (max_active+1)-th best) or fewer than min_active
    do (then the cost of the (min_active+1)-th best; with no more than min_active tokens, no cutoff at all); the next
    frame's tokens are then made within cutoff - best + BEAM_DELTA of its best, else within beam."""
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
    if min_active > 0 and n <= min_active:
        return np.inf, np.inf
    if min_active > 0 and within <= min_active:     # the (min_active+1)-th best lies beyond the beam
        kth = np.partition(costs, min_active)[min_active]
        return kth, kth - best + BEAM_DELTA
    return beam_cutoff, beam


@_njit
def _search(arc_start, pdf_of_arc, weight, nextstate, start, loglikes, acwt, beam, max_active, min_active):
    """Token passing (see the module docstring). Per frame t = 0..T: the epsilon closure of its tokens (costs by a
    queue of improved tokens), its epsilon links (every epsilon arc from one of its tokens to another within the
    closure's cutoff, as Kaldi's ProcessNonemitting), then, for t < T, the emitting arcs of the tokens within the
    cutoff into frame t+1 (the cutoff of the next frame seeded from the best token's arcs, as Kaldi's
    ProcessEmitting). Links are stored by frame: frame t's epsilon links are links[eps_begin[t]:emit_begin[t]],
    its emitting ones links[emit_begin[t]:eps_begin[t+1]].

    Returns (token costs, token states, link src, dst (tokens), arc, acoustic cost (unscaled), first token of every
    frame [T+2], eps_begin [T+2], emit_begin [T+1], frames done (T+1 when the search reached the end), the most
    tokens within the cutoff in a frame)."""
    num_frames = loglikes.shape[0]
    state_tok = np.full(arc_start.size - 1, -1, np.int64)
    tok_cost = np.empty(1024, np.float64)
    tok_state = np.empty(1024, np.int64)
    l_src = np.empty(4096, np.int64)
    l_dst = np.empty(4096, np.int64)
    l_arc = np.empty(4096, np.int64)
    l_ac = np.empty(4096, np.float64)
    frame_begin = np.zeros(num_frames + 2, np.int64)
    eps_begin = np.zeros(num_frames + 2, np.int64)
    emit_begin = np.zeros(num_frames + 1, np.int64)
    queue = np.empty(1024, np.int64)
    num_links = 0
    max_survivors = 0
    tok_cost[0] = 0.0
    tok_state[0] = start
    state_tok[start] = 0
    num_toks = 1
    next_cutoff = np.inf
    for t in range(num_frames + 1):
        begin = frame_begin[t]
        # the epsilon closure of frame t
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
            for a in range(arc_start[s], arc_start[s + 1]):
                if pdf_of_arc[a] >= 0:
                    continue
                c = tok_cost[k] + weight[a]
                if not c < next_cutoff:
                    continue
                j, tok_cost, tok_state, num_toks = _token(nextstate[a], state_tok, tok_cost, tok_state, num_toks)
                if not c < tok_cost[j]:
                    continue
                tok_cost[j] = c
                if n_q >= queue.size:      # an improved token is queued again: drop what was consumed first
                    queue[:n_q - head] = queue[head:n_q].copy()
                    n_q -= head
                    head = 0
                    if n_q >= queue.size:
                        queue = _grow(queue, n_q + 1)
                queue[n_q] = j
                n_q += 1
        end = num_toks
        frame_begin[t + 1] = end
        eps_begin[t] = num_links
        for k in range(begin, end):
            s = tok_state[k]
            for a in range(arc_start[s], arc_start[s + 1]):
                if pdf_of_arc[a] >= 0:
                    continue
                j = state_tok[nextstate[a]]
                if j < 0 or not tok_cost[k] + weight[a] < next_cutoff:
                    continue
                l_src, l_dst, l_arc, l_ac, num_links = _link(l_src, l_dst, l_arc, l_ac, num_links, k, j, a, 0.0)
        for k in range(begin, end):
            state_tok[tok_state[k]] = -1
        if t == num_frames:
            eps_begin[t + 1] = num_links
            break
        emit_begin[t] = num_links
        # the emitting arcs of the tokens within the cutoff, into frame t+1
        cutoff, adaptive_beam = _cutoff(tok_cost[begin:end], beam, max_active, min_active)
        survivors = 0
        best_k = begin
        for k in range(begin, end):
            if tok_cost[k] <= cutoff:
                survivors += 1
            if tok_cost[k] < tok_cost[best_k]:
                best_k = k
        max_survivors = max(max_survivors, survivors)
        next_cutoff = np.inf
        s = tok_state[best_k]
        for a in range(arc_start[s], arc_start[s + 1]):
            if pdf_of_arc[a] >= 0:
                c = tok_cost[best_k] + weight[a] - acwt * loglikes[t, pdf_of_arc[a]] + adaptive_beam
                if c < next_cutoff:
                    next_cutoff = c
        for k in range(begin, end):
            if tok_cost[k] > cutoff:
                continue
            s = tok_state[k]
            for a in range(arc_start[s], arc_start[s + 1]):
                p = pdf_of_arc[a]
                if p < 0:
                    continue
                ac = -loglikes[t, p]
                c = tok_cost[k] + weight[a] + acwt * ac
                if not c < next_cutoff:
                    continue
                if c + adaptive_beam < next_cutoff:
                    next_cutoff = c + adaptive_beam
                j, tok_cost, tok_state, num_toks = _token(nextstate[a], state_tok, tok_cost, tok_state, num_toks)
                if c < tok_cost[j]:
                    tok_cost[j] = c
                l_src, l_dst, l_arc, l_ac, num_links = _link(l_src, l_dst, l_arc, l_ac, num_links, k, j, a, ac)
        if num_toks == end:        # nothing survived the frame
            return (tok_cost[:num_toks], tok_state[:num_toks], l_src[:num_links], l_dst[:num_links],
                    l_arc[:num_links], l_ac[:num_links], frame_begin, eps_begin, emit_begin, t + 1, max_survivors)
    return (tok_cost[:num_toks], tok_state[:num_toks], l_src[:num_links], l_dst[:num_links], l_arc[:num_links],
            l_ac[:num_links], frame_begin, eps_begin, emit_begin, num_frames + 1, max_survivors)


@_njit
def _relax(cost_at, l_from, l_to, cost, lo, hi, reverse):
    """cost_at[l_to[i]] = min(cost_at[l_to[i]], cost_at[l_from[i]] + cost[i]) over links lo..hi-1, repeated until
    nothing changes (one pass for links that go forward in time; a few within a frame's epsilon links)."""
    changed = True
    while changed:
        changed = False
        for n in range(lo, hi):
            i = hi - 1 - (n - lo) if reverse else n
            c = cost_at[l_from[i]] + cost[i]
            if c < cost_at[l_to[i]]:
                cost_at[l_to[i]] = c
                changed = True


@_njit
def _prune(num_toks, l_src, l_dst, cost, eps_begin, emit_begin, end_cost, lattice_beam):
    """Forward-backward over the links, frame by frame (each frame's epsilon links relaxed until stable, then its
    emitting ones; backwards in reverse) -> (keep link [L], keep token [N], best total cost): a link is kept when the
    best path through it is within lattice_beam of the best path, a token when a kept link touches it (and the
    start token). cost [L]: graph + acwt * acoustic; end_cost [N]: the cost of ending in each token (+inf outside
    the last frame or where not final)."""
    num_frames = emit_begin.size - 1
    alpha = np.full(num_toks, np.inf)
    alpha[0] = 0.0
    for t in range(num_frames + 1):
        _relax(alpha, l_src, l_dst, cost, eps_begin[t], eps_begin[t + 1] if t == num_frames else emit_begin[t],
               False)
        if t < num_frames:
            _relax(alpha, l_src, l_dst, cost, emit_begin[t], eps_begin[t + 1], False)
    beta = end_cost.copy()
    for t in range(num_frames, -1, -1):
        if t < num_frames:
            _relax(beta, l_dst, l_src, cost, emit_begin[t], eps_begin[t + 1], True)
        _relax(beta, l_dst, l_src, cost, eps_begin[t], eps_begin[t + 1] if t == num_frames else emit_begin[t],
               True)
    best = beta[0]
    limit = best + lattice_beam
    keep_link = np.zeros(l_src.size, np.bool_)
    keep_tok = np.zeros(num_toks, np.bool_)
    keep_tok[0] = True
    for i in range(l_src.size):
        if alpha[l_src[i]] + cost[i] + beta[l_dst[i]] <= limit:
            keep_link[i] = True
            keep_tok[l_src[i]] = True
            keep_tok[l_dst[i]] = True
    return keep_link, keep_tok, best


def pdf_of_arcs(g, tid2pdf):
    """The pdf of every arc of GraphArrays ``g`` [A] (int64, -1 on epsilon arcs), from the transition-id -> pdf map
    tid2pdf [num_tids + 1]. ValueError for an input label that is no transition id."""
    bad = (g.ilabel < 0) | (g.ilabel >= tid2pdf.size)
    if bad.any():
        raise ValueError(f"graph arc {int(np.flatnonzero(bad)[0])} has input label {int(g.ilabel[bad][0])}, not a "
                         f"transition id of the model (1..{tid2pdf.size - 1})")
    return np.where(g.ilabel > 0, tid2pdf[g.ilabel], -1).astype(np.int64)


def decode_lattice(g, pdf_of_arc, loglikes, acwt, beam, max_active, min_active, lattice_beam):
    """One utterance: GraphArrays ``g`` with pdf_of_arc [A] (pdf_of_arcs), pdf log-likelihoods [T, P]
    -> (lattice arrays as fst_utils.lattice_to_arrays gives them, acoustic costs unscaled, plus ``max_tokens``: the
    most tokens a frame let emit; reached_final). RuntimeError when no token survives to the last frame."""
    loglikes = np.ascontiguousarray(loglikes, dtype=np.float32)
    if pdf_of_arc.size and pdf_of_arc.max() >= loglikes.shape[1]:
        raise ValueError(f"the graph has pdf {int(pdf_of_arc.max())}, the log-likelihoods {loglikes.shape[1]} columns")
    (tok_cost, tok_state, l_src, l_dst, l_arc, l_ac, frame_begin, eps_begin, emit_begin, frames_done,
     max_tokens) = _search(g.arc_start, pdf_of_arc, g.weight, g.nextstate, g.start, loglikes, float(acwt),
                           float(beam), int(max_active), int(min_active))
    num_frames = loglikes.shape[0]
    if frames_done <= num_frames:
        raise RuntimeError(f"decoding failed: no active tokens at frame {frames_done} of {num_frames}")
    last = slice(frame_begin[num_frames], frame_begin[num_frames + 1])
    last_final = g.final[tok_state[last]].astype(np.float64)
    reached_final = bool(np.isfinite(last_final).any())
    end_cost = np.full(tok_cost.size, np.inf)
    end_cost[last] = last_final if reached_final else 0.0
    graph_cost = g.weight[l_arc].astype(np.float64)
    keep_link, keep_tok, best = _prune(tok_cost.size, l_src, l_dst, graph_cost + float(acwt) * l_ac, eps_begin,
                                       emit_begin, end_cost, float(lattice_beam))
    if not np.isfinite(best):
        raise RuntimeError("decoder returned an empty lattice")
    new_id = np.cumsum(keep_tok) - 1
    arcs = l_arc[keep_link]
    final_graph = end_cost[keep_tok]
    return {"start": 0, "src": new_id[l_src[keep_link]].astype(np.int32),
            "dst": new_id[l_dst[keep_link]].astype(np.int32), "ilabel": g.ilabel[arcs], "olabel": g.olabel[arcs],
            "graph_cost": graph_cost[keep_link], "acoustic_cost": l_ac[keep_link], "final_graph": final_graph,
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
    """Compiles (or loads from the cache) every kernel of this module and of kaldi.fst_io on a two-state graph,
    with the argument types of real decodes, so that the first decode of a fresh install does not pay for it
    (tools/install.sh calls it). Returns the words of the toy decode ([[1]])."""
    from steps_py.kaldi import fst_io
    from steps_py.kaldi.bindings import kaldifst
    fst = kaldifst.StdVectorFst()
    s0, s1 = fst.add_state(), fst.add_state()
    fst.start = s0
    fst.add_arc(s0, kaldifst.StdArc(1, 1, 0.5, s1))
    fst.add_arc(s1, kaldifst.StdArc(1, 0, 0.0, s1))
    fst.add_arc(s1, kaldifst.StdArc(0, 0, 0.1, s0))
    fst.set_final(s1, 0.0)
    g = fst_io.graph_arrays(fst)
    pdf_of_arc = pdf_of_arcs(g, np.array([0, 0], np.int64))
    arrays, _ = decode_lattice(g, pdf_of_arc, np.zeros((3, 1), np.float32), 0.1, 10.0, 100, 1, 5.0)
    return sweep_best_paths(arrays, [10], [0.0])
