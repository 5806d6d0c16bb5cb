"""Alignment of GMM systems: transition-model tables, training graphs and Viterbi alignment, alignment conversion
between trees, and the per-frame events tree building counts.

The equivalents of Kaldi's compile-train-graphs, align-equal-compiled, gmm-align-compiled, ali-to-phones
--per-frame, convert-ali and the event part of acc-tree-stats, on numpy arrays and kaldi_hmm_gmm objects.
Alignments are int32 arrays of transition ids, one per 10 ms frame.
"""
import numpy as np

from steps_py.gmm.tree import frame_events
from steps_py.kaldi.bindings import kaldifst, khg


class TransitionInfo:
    """numpy lookup tables of a TransitionModel, indexed by transition id (index 0 unused).

    pdf [n+1], phone [n+1], hmm_state [n+1], pdf_class [n+1], is_final [n+1] (the transition leaves the phone),
    is_self_loop [n+1], tstate [n+1], trans_index [n+1] (index of the transition within its HMM state).
    """

    def __init__(self, tm, topo_entries):
        n = tm.num_transition_ids
        self.num_tids = n
        self.tuples = [tuple(t.__getstate__()) for t in tm.tuples]
        state2id = list(tm.state2id)
        self.state2id = np.asarray(state2id)
        self.tstate = np.asarray(tm.id2state, dtype=np.int32)
        self.pdf = np.asarray(tm.transition_id_to_pdf_array(), dtype=np.int32)
        phone2states = {p: states for phones, states in topo_entries for p in phones}
        self.phone = np.zeros(n + 1, np.int32)
        self.hmm_state = np.zeros(n + 1, np.int32)
        self.pdf_class = np.zeros(n + 1, np.int32)
        self.is_final = np.zeros(n + 1, bool)
        self.is_self_loop = np.zeros(n + 1, bool)
        self.trans_index = np.zeros(n + 1, np.int32)
        for tid in range(1, n + 1):
            s = self.tstate[tid]
            phone, hs, _, _ = self.tuples[s - 1]
            k = tid - state2id[s]
            fwd, slf, trans = phone2states[phone][hs]
            dst = trans[k][0]
            self.phone[tid], self.hmm_state[tid], self.trans_index[tid] = phone, hs, k
            self.is_self_loop[tid] = dst == hs
            self.pdf_class[tid] = slf if dst == hs else fwd
            self.is_final[tid] = phone2states[phone][dst][0] == -1 and not phone2states[phone][dst][2]
        self.tuple_to_tstate = {t: s for s, t in enumerate(self.tuples, 1)}


class Aligner:
    """Training graphs from transcripts and Viterbi alignment (compile-train-graphs + gmm-align-compiled).

    Graphs are compiled with transition and self-loop scales 0 (as compile-train-graphs does); the transition
    probabilities are added at alignment time with --transition-scale 1.0 --self-loop-scale 0.1.
    """

    def __init__(self, tm, tree, lang, transition_scale=1.0, self_loop_scale=0.1, acoustic_scale=0.1):
        self.tm, self.lang = tm, lang
        self.compiler = khg.TrainingGraphCompiler(
            trans_model=tm, ctx_dep=tree, lex_fst=lang.L.copy(), disambig_syms=lang.disambig_ids,
            opts=khg.TrainingGraphCompilerOptions(transition_scale=0.0, self_loop_scale=0.0))
        self.transition_scale, self.self_loop_scale, self.acoustic_scale = \
            transition_scale, self_loop_scale, acoustic_scale

    def graph(self, words):
        """Training graph (without transition probabilities) for a word sequence."""
        return self.compiler.compile_graph_from_text(self.lang.words_to_ids(words))

    def equal_align(self, words, num_frames, seed=0):
        """align-equal-compiled: a random path of the graph with frames shared out equally; None on failure."""
        ok, afst = kaldifst.equal_align(ifst=self.graph(words), length=num_frames, rand_seed=seed)
        if not ok:
            return None
        ok, ali, _, _ = kaldifst.get_linear_symbol_sequence(afst)
        ali = [t for t in ali if t != 0]
        return np.asarray(ali, np.int32) if ok and len(ali) == num_frames else None

    def align(self, am, utt, words, feats, beam=10.0, retry_beam=40.0, careful=False):
        """Viterbi alignment: (transition ids [T] or None, log-likelihood, retried: bool)."""
        fst = self.graph(words)
        khg.add_transition_probs(trans_model=self.tm, transition_scale=self.transition_scale,
                                 self_loop_scale=self.self_loop_scale, fst=fst)
        dec = khg.DecodableAmDiagGmmScaled(am=am, tm=self.tm, feats=np.ascontiguousarray(feats, np.float32),
                                           scale=self.acoustic_scale)
        nd, ne, nr, like, nfr, ali, _ = khg.align_utterance_wrapper(
            config=khg.AlignConfig(beam=beam, retry_beam=retry_beam, careful=careful), utt=utt,
            acoustic_scale=self.acoustic_scale, fst=fst, decodable=dec, num_done=0, num_error=0, num_retried=0,
            tot_like=0.0, frame_count=0)
        if nd != 1 or len(ali) != len(feats):
            return None, 0.0, bool(nr)
        return np.asarray(ali, np.int32), float(like), bool(nr)


def phone_end_frames(info, tids):
    """[T] bool: frame t is the last frame of a phone instance (SplitToPhones).

    Works for alignments from reordered graphs (the default of compile-train-graphs, where a state's self-loops come
    after the transition that leaves it) and from non-reordered ones: a phone ends at the end of the run of frames in
    the same transition state that contains the transition into the final state.
    """
    tids = np.asarray(tids)
    T = len(tids)
    if T == 0:
        return np.zeros(0, bool)
    ts = info.tstate[tids]
    run_end = np.ones(T, bool)
    run_end[:-1] = ts[1:] != ts[:-1]
    run_id = np.concatenate([[0], np.cumsum(run_end[:-1])])
    run_has_final = np.zeros(run_id[-1] + 1, bool)
    np.logical_or.at(run_has_final, run_id, info.is_final[tids])
    ends = run_end & run_has_final[run_id]
    ends[-1] = True
    return ends


def phones_per_frame(info, tids):
    """ali-to-phones --per-frame: phone id of every frame, [T] int32."""
    return info.phone[np.asarray(tids)]


def convert_alignment(tids, old_info, new_info, new_tree):
    """convert-ali: maps an alignment of one model to another model with a different tree (same topology).

    Each frame keeps its phone, HMM state and transition index; the pdfs come from the new tree with the phone
    context of the alignment (0 outside the utterance). Returns new transition ids [T] int32.
    """
    tids = np.asarray(tids)
    phones = old_info.phone[tids]
    ends = np.flatnonzero(phone_end_frames(old_info, tids))
    starts = np.concatenate([[0], ends[:-1] + 1])
    seq = phones[starts]
    N, P = new_tree.context_width, new_tree.central_position
    padded = np.concatenate([np.zeros(P, int), seq, np.zeros(N, int)])
    out = np.empty(len(tids), np.int32)
    cache = {}
    for i, (s, e) in enumerate(zip(starts, ends)):
        ctx = [int(v) for v in padded[i:i + N]]
        for t in range(s, e + 1):
            tid = tids[t]
            phone, hs, k = int(old_info.phone[tid]), int(old_info.hmm_state[tid]), int(old_info.trans_index[tid])
            key = (tuple(ctx), hs, k)
            if key not in cache:
                fwd_pc, slf_pc = _pdf_classes(new_info, phone, hs)
                fwd = new_tree.compute(ctx, fwd_pc)[1] if fwd_pc >= 0 else -1
                slf = new_tree.compute(ctx, slf_pc)[1] if slf_pc >= 0 else -1
                tstate = new_info.tuple_to_tstate.get((phone, hs, fwd, slf))
                if tstate is None:
                    raise ValueError(f"no transition state for phone {phone} state {hs} pdfs {fwd},{slf}")
                cache[key] = new_info.state2id[tstate] + k
            out[t] = cache[key]
    return out


def _pdf_classes(info, phone, hmm_state):
    if not hasattr(info, "_pc"):
        info._pc = {}
        for tid in range(1, info.num_tids + 1):
            key = (int(info.phone[tid]), int(info.hmm_state[tid]))
            fwd, slf = info._pc.get(key, (-1, -1))
            if info.is_self_loop[tid]:
                slf = int(info.pdf_class[tid])
            else:
                fwd = int(info.pdf_class[tid])
            info._pc[key] = (fwd, slf)
    fwd, slf = info._pc[(phone, hmm_state)]
    return (fwd if fwd >= 0 else slf), (slf if slf >= 0 else fwd)


def tree_events(info, tids, ci_phones, context_width=3, central_position=1):
    """acc-tree-stats events of one aligned utterance, [T, N+1] int32 (see tree.frame_events)."""
    tids = np.asarray(tids)
    return frame_events(info.phone[tids], info.pdf_class[tids], phone_end_frames(info, tids), ci_phones,
                        context_width, central_position)
