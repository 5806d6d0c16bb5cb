"""The Kaldi bindings, imported in the one order that works.

kaldi_hmm_gmm must be imported before kaldifst, kaldi_decoder and kaldilm in a process (the other order can hang
in a static initialiser), so every module that needs the bindings imports them from here:
``from steps_py.kaldi.bindings import khg, kaldifst``.
"""
import kaldi_hmm_gmm as khg  # noqa: I001  (must come first)
import _kaldi_hmm_gmm
import kaldifst
import kaldi_decoder

# The ML update of one diagonal GMM from its accumulator (MleDiagGmmUpdate): only the extension module has it.
mle_diag_gmm_update = _kaldi_hmm_gmm.mle_diag_gmm_update

__all__ = ["khg", "kaldifst", "kaldi_decoder", "mle_diag_gmm_update"]
