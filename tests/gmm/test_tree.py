"""Decision-tree building (steps_py.gmm.tree) on synthetic Gaussian statistics, and the Kaldi tree format."""
import numpy as np
import pytest

from steps_py.kaldi.bindings import khg
from steps_py.kaldi.tree_io import tree_from_bytes, tree_to_bytes  # noqa: I001  (binding import order)
from steps_py.gmm import tree as T

D = 3
PHONE2NUM = [0, 1, 3, 3, 3, 3, 3]   # phone 1: 1-state silence; phones 2..6: 3 states


def synthetic_stats(rng, frames=30000, left_effect=(2, 3), rare_left=None):
    """Events (left, centre, right, pdf-class) for centre phones 1..6; the mean of dim 0 depends on the centre phone
    and pdf-class, the mean of dim 1 jumps by 6 when the left phone is in ``left_effect`` (for centre phone 4 only).
    Phone 1 is context independent. ``rare_left``: a left phone that only occurs a few times (for min-count)."""
    events, feats = [], []
    for _ in range(frames):
        c = rng.randint(1, 7)
        pc = rng.randint(PHONE2NUM[c])
        left, right = rng.randint(1, 7, 2)
        if rare_left is not None and left == rare_left and rng.rand() > 0.05:
            left = 5
        mu = np.zeros(D)
        mu[0] = 4.0 * c + 3.0 * pc
        if c == 4 and left in left_effect:
            mu[1] = 6.0
        if rare_left is not None and c == 4 and left == rare_left:
            mu[2] = 50.0
        ctx = [-1, c, -1] if c == 1 else [left, c, right]
        events.append(ctx + [pc])
        feats.append(mu + rng.randn(D))
    return T.events_to_stats(np.array(events), np.array(feats))


ROOTS = [(True, True, [1]), (True, True, [2, 3]), (True, True, [4]), (True, True, [5]), (True, True, [6])]
QUESTIONS = [[1, 2, 3], [4, 5, 6], [2, 3], [4, 5], [1], [2], [3], [4], [5], [6]]


@pytest.fixture(scope="module")
def stats():
    return synthetic_stats(np.random.RandomState(0))


def test_events_and_stats_sum():
    ev = T.frame_events(np.array([1, 1, 5, 5, 5, 6]), np.array([0, 0, 0, 1, 2, 0]),
                        np.array([0, 1, 0, 0, 1, 1], bool), ci_phones=[1])
    # instances: 1 (CI), 5 with left 1 right 6, 6 with left 5 right 0 (end of utterance)
    assert ev.tolist() == [[-1, 1, -1, 0], [-1, 1, -1, 0], [1, 5, 6, 0], [1, 5, 6, 1], [1, 5, 6, 2], [5, 6, 0, 0]]
    a = T.events_to_stats(ev[:3], np.ones((3, 2)))
    b = T.events_to_stats(ev[1:], 2 * np.ones((5, 2)))
    s = T.sum_tree_stats([a, b])
    assert s.counts.sum() == 8 and s.num_events == 5
    assert np.allclose(s.sum_x.sum(0), [3 + 10, 3 + 10])


def test_tree_splits_where_data_differ_and_loads_in_kaldi(stats):
    built = T.build_tree(stats, ROOTS, PHONE2NUM, QUESTIONS, max_leaves=40, thresh=100.0, cluster_thresh=0.0,
                         round_num_leaves=False)
    tree = tree_from_bytes(built.data)
    # The bytes are exactly what Kaldi's ContextDependency::Write gives for the tree it read.
    assert tree_to_bytes(tree) == built.data
    assert tree.context_width == 3 and tree.central_position == 1 and tree.num_pdfs == built.num_leaves

    def pdf(ctx, pc):
        ok, p = tree.compute(ctx, pc)
        assert ok
        return p
    # Centre phone 4: left phone in {2,3} changes the data, the right phone does not.
    for pc in range(3):
        assert pdf([2, 4, 5], pc) == pdf([3, 4, 2], pc) != pdf([5, 4, 5], pc) == pdf([6, 4, 1], pc)
        assert pdf([2, 4, 5], pc) == pdf([2, 4, 6], pc)
    # Pdf-classes differ (means 3 apart), so each state has its own leaf.
    assert len({pdf([5, 5, 5], pc) for pc in range(3)}) == 3
    # Phones 2 and 3 share a root: the tree may separate them (their means differ by 4), never mix with phone 5.
    assert pdf([5, 2, 5], 0) != pdf([5, 3, 5], 0)
    assert {pdf([5, 2, 5], pc) for pc in range(3)}.isdisjoint({pdf([5, 5, 5], pc) for pc in range(3)})
    # Context-independent silence: one leaf whatever the context.
    assert pdf([0, 1, 0], 0) == pdf([4, 1, 6], 0)
    # The transition model and training-graph machinery accept the tree.
    topo = khg.HmmTopology()
    topo.read(TOPO)
    tm = khg.TransitionModel(ctx_dep=tree, hmm_topo=topo)
    assert tm.num_pdfs == built.num_leaves


def test_max_leaves_threshold_and_rounding(stats):
    small = T.build_tree(stats, ROOTS, PHONE2NUM, QUESTIONS, max_leaves=12, thresh=100.0, cluster_thresh=0.0,
                         round_num_leaves=False)
    assert small.num_leaves == 12
    strict = T.build_tree(stats, ROOTS, PHONE2NUM, QUESTIONS, max_leaves=1000, thresh=1e9, cluster_thresh=0.0,
                          round_num_leaves=False)
    assert strict.num_leaves == len(ROOTS)            # no split reaches the threshold: one leaf per root
    rounded = T.build_tree(stats, ROOTS, PHONE2NUM, QUESTIONS, max_leaves=30, thresh=100.0, round_num_leaves=True)
    assert rounded.num_leaves % 8 == 0
    assert tree_from_bytes(rounded.data).num_pdfs == rounded.num_leaves


def test_min_count_blocks_small_splits():
    st = synthetic_stats(np.random.RandomState(1), frames=20000, left_effect=(), rare_left=6)
    rare = st.counts[(st.contexts[:, 1] == 4) & (st.contexts[:, 0] == 6)].sum()
    assert 0 < rare < 60
    free = T.build_tree(st, ROOTS, PHONE2NUM, QUESTIONS, 100, thresh=50.0, cluster_thresh=0.0,
                        round_num_leaves=False)
    blocked = T.build_tree(st, ROOTS, PHONE2NUM, QUESTIONS, 100, thresh=50.0, cluster_thresh=0.0, min_count=100,
                           round_num_leaves=False)
    # Without a minimum count the rare left context (huge mean shift) gets leaves of its own; with one it cannot,
    # and every leaf keeps at least min_count frames.
    t_free = tree_from_bytes(free.data)
    assert any(t_free.compute([6, 4, 2], pc)[1] not in {t_free.compute([c, 4, 2], pc)[1] for c in range(1, 6)}
               for pc in range(3))
    assert free.leaf_counts.min() < 100 <= blocked.leaf_counts.min()


def test_roots_not_shared_and_not_split(stats):
    roots = [(True, False, [1]), (False, True, [2, 3]), (True, True, [4]), (True, True, [5]), (True, True, [6])]
    built = T.build_tree(stats, roots, PHONE2NUM, QUESTIONS, max_leaves=100, thresh=100.0, cluster_thresh=0.0,
                         round_num_leaves=False)
    tree = tree_from_bytes(built.data)
    leaves_23 = {tree.compute([l, c, r], pc)[1] for c in (2, 3) for pc in range(3) for l in range(1, 7)
                 for r in range(1, 7)}
    leaves_other = {tree.compute([l, c, r], pc)[1] for c in (1, 4, 5, 6) for pc in range(PHONE2NUM[c])
                    for l in range(1, 7) for r in range(1, 7)}
    assert leaves_23.isdisjoint(leaves_other)         # phones 2, 3 only use leaves of their own root
    assert "TE -1 3" in str(tree)                     # not shared: a table on the pdf-class under the root
    # Not split: silence keeps its single leaf.
    assert len({tree.compute([l, 1, r], 0)[1] for l in range(7) for r in range(7)}) == 1


def test_cluster_phones_groups_similar_phones():
    rng = np.random.RandomState(2)
    events, feats = [], []
    for _ in range(6000):
        c = rng.randint(1, 7)
        events.append([0, c, 0, 1])
        feats.append(np.array([0.0 if c <= 3 else 10.0, 0, 0]) + 0.3 * c + rng.randn(3))
    st = T.events_to_stats(np.array(events), np.array(feats))
    qs = T.cluster_phones(st, [[1], [2], [3], [4], [5], [6]])
    assert [1, 2, 3] in qs and [4, 5, 6] in qs
    assert all([p] in qs for p in range(1, 7))         # down to single phone sets


TOPO = """<Topology>
<TopologyEntry>
<ForPhones>
2 3 4 5 6
</ForPhones>
<State> 0 <PdfClass> 0 <Transition> 0 0.75 <Transition> 1 0.25 </State>
<State> 1 <PdfClass> 1 <Transition> 1 0.75 <Transition> 2 0.25 </State>
<State> 2 <PdfClass> 2 <Transition> 2 0.75 <Transition> 3 0.25 </State>
<State> 3 </State>
</TopologyEntry>
<TopologyEntry>
<ForPhones>
1
</ForPhones>
<State> 0 <PdfClass> 0 <Transition> 0 0.75 <Transition> 1 0.25 </State>
<State> 1 </State>
</TopologyEntry>
</Topology>
"""
