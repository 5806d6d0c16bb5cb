"""GMM-HMM systems as Kaldi's steps/train_mono.sh, train_deltas.sh, train_lda_mllt.sh and align_si.sh: models,
alignment, decision trees, LDA and MLLT, and the EM passes run as parallel jobs."""
