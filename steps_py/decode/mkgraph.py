"""Usage: python -m steps_py.decode.mkgraph [options] <lang-test-dir> <model-dir> <graph-dir>

The equivalent of Kaldi's utils/mkgraph.sh: builds the decoding graph HCLG.fst from <lang-test-dir>
(L_disambig.fst, G.fst, phones.txt, words.txt, phones/disambig.int) and <model-dir> (final.mdl, tree):

  LG = determinize_star(L_disambig o G), minimize_encoded
  CLG = compose_context(LG) with the tree's context width and central position
  HCLGa = determinize_star(Ha o CLG); disambiguation transition ids -> epsilon (fstrmsymbols); minimize_encoded
  HCLG = add_self_loops(HCLGa)

Writes <graph-dir>/{HCLG.fst (binary OpenFst, standard VectorFst), words.txt, phones.txt, phones/, num_pdfs,
disambig_tid.int}. Skips the work when the graph was made from the same inputs with the same scales (stamp
<graph-dir>/.done.mkgraph, written after HCLG.fst: the signatures of the lang files, final.mdl and tree). A rebuilt
HCLG.fst that is the same as the old one keeps the old one's time stamp, so the decodes made with it stay valid.

e.g.: python -m steps_py.decode.mkgraph data/lang_test_tgpr exp/mono exp/mono/graph_tgpr
"""
import argparse
import os
import shutil
import time

from steps_py.common import (InputError, atomic_path, get_logger, keep_time_stamp_if_same, require_files, run_main,
                             write_lines)
from steps_py.completion import Completion, done_stamp, skip_if_done
from steps_py.decode import fst_utils
from steps_py.kaldi.bindings import kaldifst, khg
from steps_py.kaldi.model_io import read_model
from steps_py.kaldi.symbols import read_symbol_table
from steps_py.kaldi.tree_io import read_tree

log = get_logger("decode.mkgraph")


# ---------------------------------------------------------------------------------------------- inputs
def read_int_list(path):
    try:
        with open(path) as f:
            return [int(x) for x in f.read().split()]
    except OSError as e:
        raise InputError(f"cannot read {path}: {e.strerror}") from None
    except ValueError:
        raise InputError(f"{path}: expected integers") from None


# ---------------------------------------------------------------------------------------------- checks
def check_compatible(lang_dir, model_dir, trans_model, tree):
    """Raises InputError when the lang's phones differ from those the model and tree were built for."""
    phones = read_symbol_table(os.path.join(lang_dir, "phones.txt"))
    disambig = set(read_int_list(os.path.join(lang_dir, "phones", "disambig.int")))
    lang_phones = sorted(i for s, i in phones.items() if i != 0 and i not in disambig)
    model_phones = sorted(int(p) for p in trans_model.phones)
    if lang_phones != model_phones:
        raise InputError(f"{lang_dir}/phones.txt has phones {_span(lang_phones)} but the model {model_dir}/final.mdl "
                         f"has {_span(model_phones)}: the model was trained on another lang dir")
    model_phones_txt = os.path.join(model_dir, "phones.txt")
    if os.path.exists(model_phones_txt):
        if read_symbol_table(model_phones_txt) != phones:
            raise InputError(f"{model_phones_txt} and {lang_dir}/phones.txt differ: the model was trained on "
                             "another lang dir (utils/lang/check_phones_compatible.sh)")
    if tree.num_pdfs != trans_model.num_pdfs:
        raise InputError(f"{model_dir}/tree has {tree.num_pdfs} pdfs but the model has {trans_model.num_pdfs}")
    # A tree built on another phone set either lacks some of our phones or maps them wrongly; ask it.
    for p in model_phones:
        num_classes = trans_model.topo.num_pdf_classes(p)
        context = [p] * tree.context_width
        for pdf_class in range(num_classes):
            try:
                pdf = tree.compute(context, pdf_class)
            except Exception:
                pdf = None
            ok = pdf[0] if isinstance(pdf, tuple) else pdf is not None
            if not ok:
                raise InputError(f"{model_dir}/tree has no pdf for phone {p} (pdf class {pdf_class}): "
                                 f"the tree was built for another lang dir")
    return phones


def _span(ids):
    return f"{ids[0]}..{ids[-1]} ({len(ids)})" if ids else "none"


# ---------------------------------------------------------------------------------------------- graph
def fst_size(fst):
    return f"{fst.num_states} states, {fst_utils.num_arcs_total(fst)} arcs"


def make_hclg(L_disambig, G, trans_model, tree, phone_disambig_ids, transition_scale=1.0, self_loop_scale=0.1):
    """The HCLG of mkgraph.sh from in-memory FSTs. Returns (HCLG, disambig_tids, sizes dict of strings)."""
    sizes = {}
    kaldifst.arcsort(L_disambig, sort_type="olabel")
    LG = kaldifst.compose(L_disambig, G)
    if kaldifst.determinize_star(LG, use_log=True):
        log.warning("determinize_star of LG reported a problem (LG may not be determinizable)")
    kaldifst.minimize_encoded(LG)
    sizes["LG"] = fst_size(LG)
    CLG, ilabel_info = kaldifst.compose_context(disambig_syms=phone_disambig_ids, context_width=tree.context_width,
                                                central_position=tree.central_position, ifst=LG)
    kaldifst.arcsort(CLG, sort_type="ilabel")
    sizes["CLG"] = fst_size(CLG)
    Ha, disambig_tids = khg.get_h_transducer(ilabel_info=ilabel_info, ctx_dep=tree, trans_model=trans_model,
                                             config=khg.HTransducerConfig(transition_scale=transition_scale))
    kaldifst.arcsort(Ha, sort_type="olabel")
    sizes["Ha"] = fst_size(Ha)
    HCLGa = kaldifst.compose(Ha, CLG)
    if kaldifst.determinize_star(HCLGa, use_log=True):
        log.warning("determinize_star of HCLGa reported a problem")
    fst_utils.rm_symbols(HCLGa, disambig_tids)
    kaldifst.minimize_encoded(HCLGa)
    sizes["HCLGa"] = fst_size(HCLGa)
    HCLG = khg.add_self_loops(self_loop_scale=self_loop_scale, disambig_syms=[], reorder=True,
                              trans_model=trans_model, ifst=HCLGa)
    kaldifst.arcsort(HCLG, sort_type="ilabel")
    sizes["HCLG"] = fst_size(HCLG)
    return HCLG, list(disambig_tids), sizes


def load_trans_model(model_path, tree, model_dir):
    """The TransitionModel of final.mdl; a tree of another lang gives an InputError, not a crash."""
    try:
        trans_model, _, _ = read_model(model_path, tree)
    except InputError as e:
        raise InputError(f"{e} (is {model_dir}/tree from another lang dir or model?)") from None
    return trans_model


def check_no_disambig(HCLG, trans_model):
    biggest = fst_utils.max_ilabel(HCLG)
    if biggest > trans_model.num_transition_ids:
        raise RuntimeError(f"HCLG has input label {biggest} > number of transition ids "
                           f"{trans_model.num_transition_ids}: disambiguation symbols remain")


def mkgraph(lang_dir, model_dir, graph_dir, transition_scale=1.0, self_loop_scale=0.1):
    """Builds <graph-dir> (see the module docstring). Returns the path of HCLG.fst."""
    model_path, tree_path = os.path.join(model_dir, "final.mdl"), os.path.join(model_dir, "tree")
    lang_files = [os.path.join(lang_dir, f) for f in ("L_disambig.fst", "G.fst", "phones.txt", "words.txt",
                                                     "phones/disambig.int")]
    require_files(*lang_files, model_path, tree_path)
    hclg_path = os.path.join(graph_dir, "HCLG.fst")
    done = Completion(done_stamp(graph_dir, "mkgraph"), lang_files + [model_path, tree_path],
                      {"transition_scale": transition_scale, "self_loop_scale": self_loop_scale},
                      outputs=[hclg_path] + [os.path.join(graph_dir, f) for f in ("num_pdfs", "words.txt",
                                                                                 "disambig_tid.int")])
    if skip_if_done(done, graph_dir, log):
        return hclg_path
    t0 = time.time()
    tree = read_tree(tree_path)
    trans_model = load_trans_model(model_path, tree, model_dir)
    check_compatible(lang_dir, model_dir, trans_model, tree)
    phone_disambig = read_int_list(os.path.join(lang_dir, "phones", "disambig.int"))
    L = kaldifst.StdVectorFst.read(os.path.join(lang_dir, "L_disambig.fst"))
    G = kaldifst.StdVectorFst.read(os.path.join(lang_dir, "G.fst"))
    if L is None or G is None:
        raise InputError(f"cannot read {lang_dir}/L_disambig.fst or {lang_dir}/G.fst as OpenFst binaries")
    HCLG, disambig_tids, sizes = make_hclg(L, G, trans_model, tree, phone_disambig, transition_scale,
                                           self_loop_scale)
    check_no_disambig(HCLG, trans_model)
    os.makedirs(graph_dir, exist_ok=True)
    for name in ("words.txt", "phones.txt"):   # copies keep the lang's time stamps (copy2), as phones/ does
        shutil.copy2(os.path.join(lang_dir, name), os.path.join(graph_dir, name))
    phones_out = os.path.join(graph_dir, "phones")
    if os.path.isdir(phones_out):
        shutil.rmtree(phones_out)
    shutil.copytree(os.path.join(lang_dir, "phones"), phones_out)
    write_lines(os.path.join(graph_dir, "num_pdfs"), [str(trans_model.num_pdfs)])
    write_lines(os.path.join(graph_dir, "disambig_tid.int"), [str(t) for t in disambig_tids])
    with atomic_path(hclg_path) as tmp:
        if not HCLG.write(tmp):
            raise InputError(f"cannot write {hclg_path}")
        if keep_time_stamp_if_same(tmp, hclg_path):   # the decodes made with it stay up to date
            log.info(f"{hclg_path} is the same as before (its time stamp kept)")
    done.finish()
    for name, size in sizes.items():
        log.info(f"{name}: {size}")
    log.info(f"wrote {hclg_path} in {time.time() - t0:.1f} s")
    return hclg_path


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--transition-scale", type=float, default=1.0, help="scale of transition probabilities in H "
                   "(default: 1.0)")
    p.add_argument("--self-loop-scale", type=float, default=0.1, help="scale of self-loop probabilities "
                   "(default: 0.1)")
    p.add_argument("lang_dir")
    p.add_argument("model_dir")
    p.add_argument("graph_dir")
    a = p.parse_args()
    mkgraph(a.lang_dir, a.model_dir, a.graph_dir, a.transition_scale, a.self_loop_scale)


if __name__ == "__main__":
    run_main(main)
