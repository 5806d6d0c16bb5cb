"""Kaldi data dirs (wav.scp, text, utt2spk, ...: read, write, validate, repair, split into job parts) and the
audio they point at (files, pipes, SPHERE, segments)."""
