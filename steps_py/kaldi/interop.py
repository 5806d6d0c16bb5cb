"""Usage: python -m steps_py.kaldi.interop <model-or-ali-dir> [<graph-dir>]
  e.g. python -m steps_py.kaldi.interop exp/tri4b_ali_si284 exp/tri4b/graph_tgpr
prints what was read: number of pdfs, transition ids, alignments and their consistency with the transition
model, and whether HCLG's input labels are transition ids of this model.

Checks the model, tree, alignment and graph dirs of a real Kaldi installation (e.g. exp/tri4b_ali_si284) before the
recurrent-network stages use them. Those stages need four things of a Kaldi system dir: the transition model (the
transition-id -> pdf map), the tree, the alignments and, for decoding, HCLG.fst. Real Kaldi dirs can differ from
what our GMM stages write, and steps_py.kaldi reads them all:

- the model file may be an nnet2/nnet3 model (``<TransitionModel> ... </TransitionModel> <Nnet3> ...``) or a
  copy-transition-model output with nothing after the transition model (steps_py.kaldi.model_io);
- files written with ``--binary=false`` (Kaldi text format): text trees and text transition models;
- older models have ``<Triples>`` (one pdf per HMM state), newer ones ``<Tuples>`` (forward and self-loop pdf);
- alignments of steps/train_mono.sh are text records (``ark,t:|gzip -c``; steps_py.kaldi.io.read_int_vectors).

Functions here: alignment_violations(table, tids) -> number of HMM-inconsistent steps in an alignment;
check_kaldi_dir(dir[, graph_dir]) -> the summary dict this step prints.
"""
import argparse
import json
import os

import numpy as np

from steps_py.common import InputError, get_logger, require_files, run_main
from steps_py.kaldi.bindings import kaldifst
from steps_py.kaldi.fst_io import read_fst
from steps_py.kaldi.io import alignment_files, read_int_vectors
from steps_py.kaldi.model_io import read_transition_model, read_transition_model_file, transition_table

log = get_logger("kaldi.interop")


# ---------------------------------------------------------------------------------------------------------------
# Checks of alignments and graphs

def alignment_violations(table, tids, reorder=True):
    """Number of steps of a transition-id alignment [T] that the HMM topology does not allow.

    ``table``: transition_table(...). Forward transitions (not self-loops) must chain: after a transition to a
    non-final HMM state d the next forward transition leaves state d of the same phone; after one into the final
    state the next leaves state 0 of a (new) phone; the first leaves state 0 and the last enters a final state.
    Self-loops belong to the transition state of the forward transition just before them (``reorder=True``,
    Kaldi's default in compile-train-graphs and mkgraph.sh: a state's self-loops come after its forward
    transition) or just after them (reorder=False). 0 for every real Kaldi alignment of this model.
    """
    tids = np.asarray(tids, dtype=np.int64)
    if tids.size == 0:
        return 0
    if tids.min() < 1 or tids.max() >= table["pdf"].size:
        raise InputError(f"transition ids outside 1..{table['pdf'].size - 1}")
    is_loop = table["dst"][tids] == table["hmm_state"][tids]
    fwd_pos = np.flatnonzero(~is_loop)
    if fwd_pos.size == 0:
        return int(tids.size)
    fwd = tids[fwd_pos]
    cur, nxt = fwd[:-1], fwd[1:]
    ok_within = (table["phone"][nxt] == table["phone"][cur]) & (table["hmm_state"][nxt] == table["dst"][cur])
    ok_new = table["hmm_state"][nxt] == 0
    bad = int(np.where(table["final"][cur] == 1, ~ok_new, ~ok_within).sum())
    bad += int(table["hmm_state"][fwd[0]] != 0) + int(table["final"][fwd[-1]] != 1)
    loop_pos = np.flatnonzero(is_loop)
    if loop_pos.size:
        k = np.searchsorted(fwd_pos, loop_pos)          # index of the first forward transition after each loop
        owner = k - 1 if reorder else k
        valid = (owner >= 0) & (owner < fwd_pos.size)
        bad += int((~valid).sum())
        owner_tid = tids[fwd_pos[owner[valid]]]
        bad += int((table["tstate"][tids[loop_pos[valid]]] != table["tstate"][owner_tid]).sum())
    return bad


def hclg_input_labels(hclg):
    """All arc input labels of an FST, int64 [num_arcs]."""
    labels = []
    for s in range(hclg.num_states):
        for arc in kaldifst.ArcIterator(hclg, s):
            labels.append(arc.ilabel)
    return np.asarray(labels, dtype=np.int64)


def check_kaldi_dir(model_dir, graph_dir=None):
    """Reads a Kaldi model/alignment dir (and optionally a graph dir) and says what was found (a dict)."""
    tm, tree, tid2pdf = read_transition_model(model_dir)
    parsed = read_transition_model_file(os.path.join(model_dir, "final.mdl"))
    table = transition_table(parsed.topo_entries, parsed.tuples)
    out = {"model_dir": model_dir, "model_format": "binary" if parsed.binary else "text",
           "model_kind": parsed.following, "num_pdfs": int(tm.num_pdfs),
           "num_transition_ids": int(tm.num_transition_ids), "context_width": int(tree.context_width),
           "central_position": int(tree.central_position)}
    files = alignment_files(model_dir)
    if files:
        utts = frames = bad_utts = 0
        for path in files:
            for utt, tids in read_int_vectors(path).items():
                utts += 1
                frames += tids.size
                if tids.size and (tids.min() < 1 or tids.max() > tm.num_transition_ids):
                    raise InputError(f"{path}: {utt}: transition ids outside 1..{tm.num_transition_ids}")
                bad_utts += alignment_violations(table, tids) > 0
        out.update(alignment_files=len(files), alignment_utts=utts, alignment_frames=frames,
                   alignments_inconsistent=bad_utts)
    if graph_dir:
        path = os.path.join(graph_dir, "HCLG.fst")
        require_files(path)
        hclg = read_fst(path)                 # Kaldi's mkgraph.sh writes a ConstFst
        ilabels = hclg_input_labels(hclg)
        out.update(hclg_states=int(hclg.num_states), hclg_arcs=int(ilabels.size),
                   hclg_max_ilabel=int(ilabels.max(initial=0)),
                   hclg_ilabels_are_tids=bool(ilabels.max(initial=0) <= tm.num_transition_ids))
        if not out["hclg_ilabels_are_tids"]:
            log.warning(f"{path}: input label {out['hclg_max_ilabel']} > {tm.num_transition_ids} transition ids "
                        f"of {model_dir}/final.mdl: graph and model do not belong together")
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model_dir", help="Kaldi dir with final.mdl and tree (and maybe ali.*.gz, num_jobs)")
    p.add_argument("graph_dir", nargs="?", help="Kaldi graph dir with HCLG.fst")
    a = p.parse_args()
    print(json.dumps(check_kaldi_dir(a.model_dir, a.graph_dir), indent=1))


if __name__ == "__main__":
    run_main(main)
