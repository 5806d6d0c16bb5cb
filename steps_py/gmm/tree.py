"""Phonetic decision trees in numpy: Kaldi's acc-tree-stats, cluster-phones, build-tree and the tree file format.

Pure functions (no I/O except serialisation to bytes). Terms follow Kaldi's src/tree:
- an *event* is a phone context window of width N (phones at positions 0..N-1, 0 = outside the utterance, central
  position P) plus the pdf-class (the HMM-state's pdf class, key -1 in Kaldi);
- tree statistics are one Gaussian sufficient statistic (count, sum x, sum x^2) per distinct event;
- the tree maps events to pdf ids (leaves). Each line of phones/roots.int gives a set of phones that share a root;
  "shared" roots are shared by all pdf-classes of those phones (the tree may then ask about the pdf-class), "split"
  roots may be split by questions.

TreeStats arrays (S distinct events, D feature dims):
  contexts [S, N] int32 (phone ids; -1 = key absent: the non-central positions of context-independent phones),
  pdf_classes [S] int32, counts [S] float64 (frames), sum_x [S, D] and sum_x2 [S, D] float64.
"""
import heapq
from dataclasses import dataclass

import numpy as np

from steps_py.kaldi.io import bin_int32, bin_int_vector, bin_uint32

PDF_CLASS_KEY = -1      # Kaldi's kPdfClass
LOG_2PI = float(np.log(2 * np.pi))


@dataclass
class TreeStats:
    contexts: np.ndarray
    pdf_classes: np.ndarray
    counts: np.ndarray
    sum_x: np.ndarray
    sum_x2: np.ndarray

    @property
    def num_events(self):
        return len(self.counts)

    def key_values(self, key):
        """Values of ``key`` (a context position or PDF_CLASS_KEY) for every event, [S] int32."""
        return self.pdf_classes if key == PDF_CLASS_KEY else self.contexts[:, key]


def events_to_stats(events, feats, dim=None):
    """Sums per-frame Gaussian stats by event. events [T, N+1] int32 (context phones..., pdf_class), feats [T, D].

    Returns TreeStats with the distinct events in lexicographic order.
    """
    events = np.asarray(events, dtype=np.int32)
    feats = np.asarray(feats, dtype=np.float64)
    if len(events) == 0:
        d = feats.shape[1] if feats.ndim == 2 else (dim or 0)
        return TreeStats(np.zeros((0, events.shape[1] - 1), np.int32), np.zeros(0, np.int32), np.zeros(0),
                         np.zeros((0, d)), np.zeros((0, d)))
    uniq, inverse = np.unique(events, axis=0, return_inverse=True)
    inverse = inverse.ravel()
    counts = np.bincount(inverse, minlength=len(uniq)).astype(np.float64)
    sum_x = np.zeros((len(uniq), feats.shape[1]))
    sum_x2 = np.zeros_like(sum_x)
    np.add.at(sum_x, inverse, feats)
    np.add.at(sum_x2, inverse, feats ** 2)
    return TreeStats(uniq[:, :-1].copy(), uniq[:, -1].copy(), counts, sum_x, sum_x2)


def sum_tree_stats(parts):
    """Sums several TreeStats (e.g. one per job) into one, like sum-tree-stats."""
    parts = [p for p in parts if p.num_events]
    contexts = np.concatenate([p.contexts for p in parts])
    events = np.concatenate([contexts, np.concatenate([p.pdf_classes for p in parts])[:, None]], axis=1)
    uniq, inverse = np.unique(events, axis=0, return_inverse=True)
    inverse = inverse.ravel()
    out = TreeStats(uniq[:, :-1].copy(), uniq[:, -1].copy(), np.zeros(len(uniq)),
                    np.zeros((len(uniq), parts[0].sum_x.shape[1])), np.zeros((len(uniq), parts[0].sum_x.shape[1])))
    np.add.at(out.counts, inverse, np.concatenate([p.counts for p in parts]))
    np.add.at(out.sum_x, inverse, np.concatenate([p.sum_x for p in parts]))
    np.add.at(out.sum_x2, inverse, np.concatenate([p.sum_x2 for p in parts]))
    return out


def frame_events(phones, pdf_classes, phone_ends, ci_phones, context_width=3, central_position=1):
    """Per-frame events of one utterance, as acc-tree-stats forms them.

    phones [T] int: the phone of each frame; pdf_classes [T] int; phone_ends [T] bool: frame t is the last frame of
    a phone instance; ci_phones: context-independent phone ids (their events omit the non-central positions).
    Returns events [T, N+1] int32: context phones (0 outside the utterance, -1 absent) then the pdf-class.
    """
    phones = np.asarray(phones)
    T = len(phones)
    ends = np.flatnonzero(phone_ends)
    if T and (len(ends) == 0 or ends[-1] != T - 1):
        ends = np.append(ends, T - 1)
    starts = np.concatenate([[0], ends[:-1] + 1]) if T else np.zeros(0, int)
    seq = phones[starts] if T else np.zeros(0, int)            # phone instances
    inst = np.repeat(np.arange(len(seq)), ends - starts + 1)    # instance of each frame
    padded = np.concatenate([np.zeros(central_position, int), seq, np.zeros(context_width, int)])
    ctx = np.stack([padded[np.arange(len(seq)) + j] for j in range(context_width)], axis=1) if len(seq) else \
        np.zeros((0, context_width), int)
    is_ci = np.isin(seq, np.asarray(list(ci_phones), dtype=int))
    mask = np.ones(context_width, bool)
    mask[central_position] = False
    ctx[np.ix_(is_ci, mask)] = -1
    return np.concatenate([ctx[inst], np.asarray(pdf_classes)[:, None]], axis=1).astype(np.int32)


# ---------------------------------------------------------------------------------------------------------------
# Gaussian objective (Kaldi's GaussClusterable::Objf with a variance floor)

def gauss_objf(counts, sum_x, sum_x2, var_floor=0.01):
    """Log-likelihood of the data under its own ML diagonal Gaussian. counts [...], sum_x, sum_x2 [..., D].

    -0.5 * n * (sum_d log var_d + D (1 + log 2 pi)), var floored at var_floor; 0 where n <= 0.
    """
    counts = np.asarray(counts, dtype=np.float64)
    safe = np.where(counts > 0, counts, 1.0)[..., None]
    mean = sum_x / safe
    var = np.maximum(sum_x2 / safe - mean ** 2, var_floor)
    D = sum_x.shape[-1]
    obj = -0.5 * counts * (np.log(var).sum(-1) + D * (1.0 + LOG_2PI))
    return np.where(counts > 0, obj, 0.0)


# ---------------------------------------------------------------------------------------------------------------
# cluster-phones: questions from top-down binary k-means of per-phone-set stats

def _kmeans2(counts, sx, sx2, rng, num_tries=10, num_iters=20, var_floor=0.01):
    """Splits points (Gaussian stats) into 2 clusters minimising the summed objf loss. Returns a bool [n] mask."""
    n = len(counts)
    best, best_obj = None, -np.inf
    for _ in range(num_tries):
        assign = rng.permutation(np.arange(n) % 2).astype(bool)
        for _ in range(num_iters):
            cl = [(counts[assign == c].sum(), sx[assign == c].sum(0), sx2[assign == c].sum(0)) for c in (False, True)]
            # Cost of putting each point into each cluster (the cluster without the point, plus the point).
            cost = np.empty((n, 2))
            for c in (0, 1):
                inside = assign == bool(c)
                cc = cl[c][0] - np.where(inside, counts, 0)
                cx = cl[c][1] - np.where(inside[:, None], sx, 0)
                cx2 = cl[c][2] - np.where(inside[:, None], sx2, 0)
                cost[:, c] = gauss_objf(cc, cx, cx2, var_floor) + gauss_objf(counts, sx, sx2, var_floor) - \
                    gauss_objf(cc + counts, cx + sx, cx2 + sx2, var_floor)
            new = cost[:, 1] < cost[:, 0]
            if new.all() or not new.any():
                new = assign
            if np.array_equal(new, assign):
                break
            assign = new
        obj = sum(gauss_objf(counts[assign == c].sum(), sx[assign == c].sum(0), sx2[assign == c].sum(0), var_floor)
                  for c in (False, True))
        if obj > best_obj:
            best, best_obj = assign.copy(), obj
    return best


def cluster_phones(stats, phone_sets, pdf_class_list=(1,), central_position=1, seed=0, var_floor=0.01):
    """Questions (sets of phones) from a top-down binary clustering of the phone sets (cluster-phones).

    stats: TreeStats; phone_sets: list of lists of phone ids (phones/sets.int); only events whose pdf-class is in
    pdf_class_list are used. Returns every cluster of the binary tree except the root (sorted phone lists; the
    leaves are the single phone sets).
    """
    keep = np.isin(stats.pdf_classes, pdf_class_list)
    central = stats.contexts[keep, central_position]
    max_phone = max(max(s) for s in phone_sets)
    V = max(max_phone, int(central.max(initial=0))) + 1
    cnt = np.bincount(central, weights=stats.counts[keep], minlength=V)
    sx = np.zeros((V, stats.sum_x.shape[1]))
    sx2 = np.zeros_like(sx)
    np.add.at(sx, central, stats.sum_x[keep])
    np.add.at(sx2, central, stats.sum_x2[keep])
    set_cnt = np.array([cnt[s].sum() for s in phone_sets])
    set_sx = np.array([sx[s].sum(0) for s in phone_sets])
    set_sx2 = np.array([sx2[s].sum(0) for s in phone_sets])
    rng = np.random.RandomState(seed)
    questions = []
    todo = [np.arange(len(phone_sets))]
    while todo:
        members = todo.pop()
        if len(members) < 2:
            continue
        has_data = set_cnt[members] > 0
        if has_data.sum() >= 2:
            mask = _kmeans2(set_cnt[members], set_sx[members], set_sx2[members], rng, var_floor=var_floor)
        else:   # nothing to learn from: split the list in two halves
            mask = np.arange(len(members)) >= len(members) // 2
        for part in (members[~mask], members[mask]):
            questions.append(sorted(p for i in part for p in phone_sets[i]))
            todo.append(part)
    return questions


# ---------------------------------------------------------------------------------------------------------------
# build-tree

@dataclass
class _Leaf:
    idx: np.ndarray       # event indices
    stub: int             # stub leaf (root) this leaf descends from
    node: list            # mutable tree node ["leaf", leaf_number] replaced in place when split


def _split_candidates(stats, idx, keys, questions, min_count, var_floor):
    """Best (gain, key, yes_values, yes_mask) over keys and their questions for the events ``idx``; None if none."""
    cnt, sx, sx2 = stats.counts[idx], stats.sum_x[idx], stats.sum_x2[idx]
    tot = gauss_objf(cnt.sum(), sx.sum(0), sx2.sum(0), var_floor)
    best = None
    for key in keys:
        vals = stats.key_values(key)[idx]
        if np.any(vals < 0) or key not in questions:
            continue
        V = int(vals.max()) + 1
        g_cnt = np.bincount(vals, weights=cnt, minlength=V)
        g_sx = np.zeros((V, sx.shape[1]))
        g_sx2 = np.zeros_like(g_sx)
        np.add.at(g_sx, vals, sx)
        np.add.at(g_sx2, vals, sx2)
        qmask = questions[key][:, :V] if questions[key].shape[1] >= V else \
            np.pad(questions[key], ((0, 0), (0, V - questions[key].shape[1])))
        yes_cnt = qmask @ g_cnt
        no_cnt = cnt.sum() - yes_cnt
        ok = (yes_cnt > 0) & (no_cnt > 0) & (yes_cnt >= min_count) & (no_cnt >= min_count)
        if not ok.any():
            continue
        qm = qmask[ok].astype(np.float64)
        yes_sx, yes_sx2 = qm @ g_sx, qm @ g_sx2
        gain = gauss_objf(yes_cnt[ok], yes_sx, yes_sx2, var_floor) + \
            gauss_objf(no_cnt[ok], sx.sum(0) - yes_sx, sx2.sum(0) - yes_sx2, var_floor) - tot
        j = int(np.argmax(gain))
        if best is None or gain[j] > best[0]:
            q = np.flatnonzero(ok)[j]
            present = np.unique(vals)
            yes_values = present[qmask[q][present]]
            best = (float(gain[j]), key, yes_values, np.isin(vals, yes_values))
    return best


def _merge_leaves(stats, leaves, stub_of, max_cost=None, target=None, var_floor=0.01):
    """Bottom-up clustering of leaves within each stub: repeatedly merges the cheapest pair of the same stub while
    its objf loss is below max_cost (if given) and more than target leaves remain (if given).

    leaves: list of event-index arrays. Returns cluster id per leaf (list) and the number of merges.
    """
    n = len(leaves)
    cnt = np.array([stats.counts[i].sum() for i in leaves])
    sx = np.array([stats.sum_x[i].sum(0) for i in leaves])
    sx2 = np.array([stats.sum_x2[i].sum(0) for i in leaves])
    alive = np.ones(n, bool)
    parent = list(range(n))
    stub_of = np.asarray(stub_of)
    heap = []

    def push_pairs(a):
        others = np.flatnonzero(alive & (stub_of == stub_of[a]))
        others = others[others != a]
        if len(others) == 0:
            return
        cost = gauss_objf(cnt[a], sx[a], sx2[a], var_floor) + gauss_objf(cnt[others], sx[others], sx2[others],
                                                                          var_floor) \
            - gauss_objf(cnt[a] + cnt[others], sx[a] + sx[others], sx2[a] + sx2[others], var_floor)
        for c, b in zip(cost, others):
            heapq.heappush(heap, (float(c), min(a, b), max(a, b)))
    for a in range(n):
        others = np.flatnonzero(stub_of == stub_of[a])
        others = others[others > a]
        if len(others):
            cost = gauss_objf(cnt[a], sx[a], sx2[a], var_floor) + gauss_objf(cnt[others], sx[others], sx2[others],
                                                                              var_floor) \
                - gauss_objf(cnt[a] + cnt[others], sx[a] + sx[others], sx2[a] + sx2[others], var_floor)
            for c, b in zip(cost, others):
                heap.append((float(c), a, int(b)))
    heapq.heapify(heap)
    merges, num_alive = 0, n
    while heap and (target is None or num_alive > target):
        c, a, b = heapq.heappop(heap)
        if not (alive[a] and alive[b]):
            continue
        if max_cost is not None and c >= max_cost and (target is None):
            break
        alive[b] = False
        cnt[a] += cnt[b]
        sx[a] += sx[b]
        sx2[a] += sx2[b]
        parent[b] = a
        merges += 1
        num_alive -= 1
        push_pairs(a)

    def root(i):
        while parent[i] != i:
            i = parent[i]
        return i
    return [root(i) for i in range(n)], merges


@dataclass
class BuiltTree:
    """A built tree: the Kaldi binary ContextDependency bytes (no \\0B header) and diagnostics."""
    data: bytes
    num_leaves: int
    objf_gain: float           # log-likelihood gain of the splits (before clustering), in nats
    smallest_split: float
    num_merged: int
    leaf_counts: np.ndarray    # frames per pdf, [num_leaves]


def build_tree(stats, roots, phone2num_pdf_classes, questions, max_leaves, thresh=300.0, cluster_thresh=-1.0,
               min_count=0.0, round_num_leaves=True, context_width=3, central_position=1, var_floor=0.01):
    """Kaldi's build-tree: stub map from roots, greedy splitting, bottom-up clustering, renumbering.

    stats: TreeStats; roots: [(shared, split, [phones])] (phones/roots.int); phone2num_pdf_classes: list indexed by
    phone (from the topology, index 0 unused); questions: list of phone sets asked at every context position (the
    pdf-class questions {0}, {0,1}, ... are added here as compile-questions does); max_leaves: stop splitting at this
    many leaves; thresh: minimum log-likelihood gain of a split; cluster_thresh: merge leaves of one root whose
    merge costs less (-1 = the smallest split gain, 0 = no clustering); min_count: minimum frames on each side of a
    split (not in Kaldi; 0 disables); round_num_leaves: merge down to a multiple of 8 leaves as Kaldi does.
    """
    N, P = context_width, central_position
    max_phone = max(p for _, _, ps in roots for p in ps)
    V = max(max_phone, int(stats.contexts.max(initial=0))) + 1
    qmat = np.zeros((len(questions), V), bool)
    for i, q in enumerate(questions):
        qmat[i, [p for p in q if p < V]] = True
    qmat = np.unique(qmat, axis=0)
    max_pc = max(phone2num_pdf_classes)
    pcq = np.zeros((max(max_pc - 1, 0), max_pc), bool)
    for i in range(max_pc - 1):
        pcq[i, :i + 1] = True
    qs = {k: qmat for k in range(N)}
    if len(pcq):
        qs[PDF_CLASS_KEY] = pcq

    # Stub map: phone -> per-root node(s). stub leaves are (root, pdf_class or None).
    stubs, phone_root = [], {}
    root_nodes = []          # per root: node (shared) or {pdf_class: node}
    central = stats.contexts[:, P]
    leaves = []
    for r, (shared, split, phones) in enumerate(roots):
        for p in phones:
            if p in phone_root:
                raise ValueError(f"phone {p} is in more than one root")
            phone_root[p] = r
        in_root = np.isin(central, phones)
        if shared:
            node = ["leaf", None]
            leaves.append(_Leaf(np.flatnonzero(in_root), len(stubs), node))
            stubs.append(split)
            root_nodes.append(node)
        else:
            npc = max(phone2num_pdf_classes[p] for p in phones)
            nodes = {}
            for pc in range(npc):
                node = ["leaf", None]
                leaves.append(_Leaf(np.flatnonzero(in_root & (stats.pdf_classes == pc)), len(stubs), node))
                stubs.append(split)
                nodes[pc] = node
            root_nodes.append(nodes)
    in_any = np.isin(central, list(phone_root))
    if not in_any.all():
        bad = sorted(set(central[~in_any].tolist()))
        raise ValueError(f"phones {bad} appear in the stats but in no root")

    keys = list(range(N)) + [PDF_CLASS_KEY]
    heap = []

    def consider(leaf_no):
        leaf = leaves[leaf_no]
        if not stubs[leaf.stub] or len(leaf.idx) == 0:
            return
        best = _split_candidates(stats, leaf.idx, keys, qs, min_count, var_floor)
        if best is not None:
            heapq.heappush(heap, (-best[0], leaf_no, best))
    for i in range(len(leaves)):
        consider(i)
    num_leaves = len(leaves)
    total_gain, smallest = 0.0, 1e10
    while heap and (max_leaves <= 0 or num_leaves < max_leaves):
        neg_gain, leaf_no, (gain, key, yes_values, yes_mask) = heapq.heappop(heap)
        if gain < thresh:
            break
        leaf = leaves[leaf_no]
        yes_node, no_node = ["leaf", None], ["leaf", None]
        leaf.node[:] = ["split", key, [int(v) for v in yes_values], yes_node, no_node]
        leaves[leaf_no] = _Leaf(leaf.idx[yes_mask], leaf.stub, yes_node)
        leaves.append(_Leaf(leaf.idx[~yes_mask], leaf.stub, no_node))
        num_leaves += 1
        total_gain += gain
        smallest = min(smallest, gain)
        consider(leaf_no)
        consider(len(leaves) - 1)

    # Bottom-up clustering within roots, then rounding to a multiple of 8.
    stub_of = [lf.stub for lf in leaves]
    if cluster_thresh < 0:
        cluster_thresh = smallest if smallest < 1e10 else 0.0
    cluster = list(range(len(leaves)))
    merged = 0
    if cluster_thresh > 0:
        cluster, merged = _merge_leaves(stats, [lf.idx for lf in leaves], stub_of, max_cost=cluster_thresh,
                                        var_floor=var_floor)
    if round_num_leaves:
        reps = sorted(set(cluster))
        target = (len(reps) // 8) * 8
        if 0 < target < len(reps):
            sub, m = _merge_leaves(stats, [np.concatenate([leaves[i].idx for i in range(len(leaves)) if
                                                           cluster[i] == r]) for r in reps],
                                   [stub_of[r] for r in reps], target=target, var_floor=var_floor)
            rep_map = {r: reps[s] for r, s in zip(reps, sub)}
            cluster = [rep_map[c] for c in cluster]
            merged += m
    # Renumber leaves 0..L-1 in order of first appearance.
    number = {}
    for c in cluster:
        number.setdefault(c, len(number))
    leaf_counts = np.zeros(len(number))
    for lf, c in zip(leaves, cluster):
        lf.node[1] = number[c]
        leaf_counts[number[c]] += stats.counts[lf.idx].sum()

    # Serialise: TE on the central position over phones 0..max_phone.
    out = [b"ContextDependency ", bin_int32(N), bin_int32(P), b"ToPdf "]
    out.append(b"TE " + bin_int32(P) + bin_uint32(max_phone + 1) + b"( ")
    for p in range(max_phone + 1):
        if p not in phone_root:
            out.append(b"NULL ")
            continue
        node = root_nodes[phone_root[p]]
        if isinstance(node, dict):
            npc = phone2num_pdf_classes[p]
            out.append(b"TE " + bin_int32(PDF_CLASS_KEY) + bin_uint32(npc) + b"( ")
            out.extend(_node_bytes(node[pc]) for pc in range(npc))
            out.append(b") ")
        else:
            out.append(_node_bytes(node))
    out.append(b") EndContextDependency ")
    return BuiltTree(b"".join(out), len(number), total_gain, smallest, merged, leaf_counts)


def _node_bytes(node):
    if node[0] == "leaf":
        return b"CE " + bin_int32(node[1])
    _, key, yes_values, yes, no = node
    yes_values = sorted(yes_values)
    return (b"SE " + bin_int32(key) + bin_int_vector(yes_values) + b"{ " + _node_bytes(yes) + _node_bytes(no)
            + b"} ")


def tree_stats_to_npz(stats):
    """dict of arrays for np.savez (the job-level tree-stats file)."""
    return dict(contexts=stats.contexts, pdf_classes=stats.pdf_classes, counts=stats.counts, sum_x=stats.sum_x,
                sum_x2=stats.sum_x2)


def tree_stats_from_npz(z):
    """TreeStats of a tree_stats_to_npz file (np.load)."""
    return TreeStats(z["contexts"], z["pdf_classes"], z["counts"], z["sum_x"], z["sum_x2"])
