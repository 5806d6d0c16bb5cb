"""Python steps of the recipes: one module per step, each runnable as ``python -m steps_py.<step>``.

kaldi_hmm_gmm must be imported before kaldilm in any process (the other order dead-locks in a static
initialiser); modules that need the GMM bindings import ``steps_py.kaldi`` which takes care of that.
"""
