"""Decoding graphs (utils/mkgraph.sh), the decoder and its LM-weight sweep, decoding jobs for GMM and hybrid models,
and Kaldi-style scoring (wer_* files, best_wer, RESULTS)."""
