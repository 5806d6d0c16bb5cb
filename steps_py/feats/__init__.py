"""Features of data dirs: MFCC and Fbank with Kaldi's options (kaldi-native-fbank), per-speaker CMVN, and the
pipelines the models see (CMVN, deltas, splicing + LDA/MLLT transforms)."""
