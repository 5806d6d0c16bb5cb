"""Training examples of the acoustic models: CMVN'd Fbank frames and pdf targets cut into chunks, as nnet3's
get_egs.sh does for recurrent models (chunk width, extra left context, label delay).

Everything is index arithmetic on one feature matrix per job: ``Frames.feats`` [total_frames, dim] holds all
utterances back to back; a chunk is a row of frame indices into it. Nothing loops over frames in Python.

Chunk geometry (frames of 10 ms), for a chunk whose labelled frames are s .. s+W-1:
  input frames   s - left_context .. s + W - 1 + label_delay   (clamped to the utterance: edges replicated)
  labels         at output positions left_context + label_delay + k, k = 0 .. W-1
since output position j has seen input frame (s - left_context + j) and predicts the label ``label_delay`` frames
earlier. Utterances shorter than W get one chunk whose missing labels are IGNORE.
"""
import dataclasses

import numpy as np

from steps_py.common import InputError, get_logger
from steps_py.kaldi.io import alignment_files, read_int_vectors
from steps_py.kaldi.model_io import read_transition_model

log = get_logger("nnet.egs")

IGNORE = -100   # torch.nn.functional.cross_entropy's default ignore_index


def read_pdf_alignments(ali_dir, trans_model=None):
    """Kaldi alignment dir (ali.*.gz of transition ids, final.mdl, tree) -> ({utt: pdf ids [T] int32}, num_pdfs).

    Reads alignments of our GMM stages or of a real Kaldi (exp/tri4b_ali_si284); the transition-id -> pdf map comes
    from the dir's final.mdl (GMM or nnet models: only the transition model is read)."""
    files = alignment_files(ali_dir)
    if not files:
        raise InputError(f"no alignments {ali_dir}/ali.*.gz")
    if trans_model is None:
        trans_model, _, _ = read_transition_model(ali_dir)
    tid2pdf = np.asarray(trans_model.transition_id_to_pdf_array(), dtype=np.int32)
    out = {}
    for path in files:
        for utt, tids in read_int_vectors(path).items():
            if tids.size and (tids.min() < 1 or tids.max() >= tid2pdf.size):
                raise InputError(f"{path}: utterance {utt} has transition ids outside 1..{tid2pdf.size - 1}: "
                                 f"alignments and {ali_dir}/final.mdl do not match")
            out[utt] = tid2pdf[tids]
    return out, int(trans_model.num_pdfs)


def pdf_counts(targets, num_pdfs):
    """{utt: pdf ids [T]} -> counts [num_pdfs] float64."""
    counts = np.zeros(num_pdfs, np.float64)
    for pdfs in targets.values():
        counts += np.bincount(pdfs, minlength=num_pdfs)
    return counts


def priors_from_counts(counts, floor=1e-8):
    """pdf priors [P] from alignment counts, add-one smoothed (no pdf gets a zero prior) and floored."""
    p = (counts + 1.0) / (counts.sum() + counts.size)
    return np.maximum(p, floor)


@dataclasses.dataclass
class Frames:
    """Utterances back to back: feats [N, dim] float32, targets [N] int64 (IGNORE where unknown),
    starts/lengths [U] int64 (frame offsets of each utterance), utts (list of U ids)."""
    feats: np.ndarray
    targets: np.ndarray
    starts: np.ndarray
    lengths: np.ndarray
    utts: list

    @property
    def num_frames(self):
        return int(self.lengths.sum())


def load_frames(feature_iter, targets, max_length_mismatch=2, what="train"):
    """(utt, feats [T, dim]) pairs and {utt: pdf ids} -> Frames. Utterances without an alignment, or whose
    alignment length differs from the features by more than ``max_length_mismatch`` frames, are skipped, counted
    and logged by name (Kaldi's get_egs does the same). Small mismatches are padded with IGNORE / cut."""
    feats, tgts, utts, lengths = [], [], [], []
    no_ali, bad_len = [], []
    for utt, x in feature_iter:
        if utt not in targets:
            no_ali.append(utt)
            continue
        y = targets[utt]
        if abs(len(y) - len(x)) > max_length_mismatch:
            bad_len.append(f"{utt} ({len(x)} frames, {len(y)} labels)")
            continue
        t = np.full(len(x), IGNORE, np.int64)
        n = min(len(x), len(y))
        t[:n] = y[:n]
        feats.append(x)
        tgts.append(t)
        utts.append(utt)
        lengths.append(len(x))
    for name, lst in (("no alignment", no_ali), ("alignment length mismatch", bad_len)):
        if lst:
            log.warning(f"{what}: skipped {len(lst)} utterances with {name}: {', '.join(lst[:10])}"
                        + (" ..." if len(lst) > 10 else ""))
    if not feats:
        raise InputError(f"{what}: no utterance has both features and an alignment")
    lengths = np.asarray(lengths, np.int64)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    return Frames(np.concatenate(feats), np.concatenate(tgts), starts, lengths, utts)


@dataclasses.dataclass
class ChunkGeometry:
    width: int = 40          # labelled frames per chunk
    left_context: int = 20   # extra input frames before the first labelled frame (no loss on them)
    label_delay: int = 5     # the output at frame t predicts the label of frame t - label_delay

    @property
    def input_length(self):
        return self.left_context + self.width + self.label_delay


def make_chunks(frames, geom, rng=None):
    """Frames -> (input frame indices [C, input_length] int64 into frames.feats, targets [C, W] int64,
    weights [C, W] float32).

    An utterance of T > W frames gets the fewest chunks that cover it, n = ceil(T / W), as Kaldi's get_egs: the
    first starts at 0, the last ends at T, and the n W - T frames of overlap are shared among the joints evenly, or
    at random when ``rng`` is given (a new tiling every epoch). Utterances of T <= W frames give one padded chunk. A
    labelled frame in k chunks has weight 1/k in each (Kaldi splits the weight of the overlap), so every frame
    counts once; padding has weight 0."""
    W = geom.width
    starts, utt_of = [], []
    for u, T in enumerate(frames.lengths):
        T = int(T)
        n = max(1, -(-T // W))
        if n == 1:
            s = np.zeros(1, np.int64)
        else:
            slack = n * W - T
            if rng is not None:
                overlaps = rng.multinomial(slack, np.full(n - 1, 1.0 / (n - 1)))
            else:
                overlaps = np.diff(np.round(np.linspace(0, slack, n)).astype(np.int64))
            s = np.concatenate([[0], np.cumsum(W - overlaps)]).astype(np.int64)
        starts.append(s)
        utt_of.append(np.full(len(s), u, np.int64))
    starts = np.concatenate(starts)
    utt_of = np.concatenate(utt_of)
    u_start = frames.starts[utt_of][:, None]
    u_len = frames.lengths[utt_of][:, None]
    rel = starts[:, None] - geom.left_context + np.arange(geom.input_length)[None, :]
    inputs = u_start + np.clip(rel, 0, u_len - 1)
    lab_rel = starts[:, None] + np.arange(W)[None, :]
    lab_ok = lab_rel < u_len
    lab_idx = u_start + np.minimum(lab_rel, u_len - 1)
    targets = np.where(lab_ok, frames.targets[lab_idx], IGNORE)
    coverage = np.bincount(lab_idx[lab_ok], minlength=len(frames.targets))
    weights = np.where(lab_ok & (targets != IGNORE), 1.0 / np.maximum(coverage[lab_idx], 1), 0.0)
    return inputs, targets, weights.astype(np.float32)


def minibatches(num_chunks, size, rng):
    """Shuffled chunk index arrays of ``size`` (the last one may be smaller)."""
    order = rng.permutation(num_chunks)
    return [order[i:i + size] for i in range(0, num_chunks, size)]
