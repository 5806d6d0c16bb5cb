"""Kaldi's on-disk formats (binary and text primitives, alignments, option files, symbol tables, topologies, trees,
model files) and the Kaldi bindings, imported in the one order that works (bindings)."""
