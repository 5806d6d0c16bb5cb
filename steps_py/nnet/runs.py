"""The dirs of trained models: a model trained with several seeds has one dir per seed, exp/nnet/<name> (the first
seed) and exp/nnet/<name>_seed<k> (the others, as utils/nnet_stage.sh --seeds trains them). No torch here, so the
tables and findings that group runs start fast."""
import os
import re

SEED_RUN = re.compile(r"^(.+)_seed(\d+)$")


def group_runs(model_dirs):
    """Model dirs -> {name: [dirs]} in the order given: exp/nnet/<name>_seed<k> joins exp/nnet/<name>."""
    groups = {}
    for d in model_dirs:
        base = os.path.basename(os.path.normpath(d))
        m = SEED_RUN.match(base)
        groups.setdefault(m.group(1) if m else base, []).append(d)
    return groups
