"""The Python steps of the recipes, one package per stage of the pipeline:

  data    Kaldi data dirs and audio            lang    dictionaries, lang dirs, language models
  feats   MFCC/Fbank features, CMVN            gmm     GMM-HMM training and alignment (mono, tri1, tri2b)
  decode  graphs, decoding, scoring            nnet    recurrent acoustic models: training, hybrid decoding
  memvis  the memory of the networks: extraction, analyses, report
  kaldi   Kaldi's file formats and the Kaldi bindings, in the one import order that works

A package imports only packages below it in the pipeline (memvis -> nnet -> decode -> gmm -> feats -> lang, data
-> kaldi -> common, completion, jobs). Each runnable step is ``python -m steps_py.<domain>.<step>`` with a usage line
(``--help``).
"""
