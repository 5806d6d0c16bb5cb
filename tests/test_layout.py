"""The package layout holds (steps_py/__init__.py): imports run one way down the pipeline, no runnable step imports
another runnable step, no module imports another's private name, and no module is longer than 500 lines."""
import ast
import os

import pytest

from conftest import ROOT

# Pipeline order, top to bottom: a package may import the packages after it (and itself), never those before it.
ORDER = ["memvis", "nnet", "decode", "gmm", "feats", ("lang", "data"), "kaldi", ("common", "completion", "jobs")]
RANK = {name: rank for rank, entry in enumerate(ORDER) for name in (entry if isinstance(entry, tuple) else (entry,))}
PACKAGE = os.path.join(ROOT, "steps_py")


def modules():
    """{dotted module name: (path, ast)} of steps_py."""
    out = {}
    for dirpath, _, files in os.walk(PACKAGE):
        for f in files:
            if f.endswith(".py"):
                path = os.path.join(dirpath, f)
                name = os.path.relpath(path, ROOT)[:-3].replace(os.sep, ".").removesuffix(".__init__")
                out[name] = (path, ast.parse(open(path, encoding="utf-8").read()))
    return out


MODULES = modules()


def imports(tree):
    """[(line, imported steps_py module, names)] of a module's import statements (anywhere in the module)."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("steps_py"):
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                if sub in MODULES:
                    out.append((node.lineno, sub, []))
                else:
                    out.append((node.lineno, node.module, [alias.name]))
        elif isinstance(node, ast.Import):
            out += [(node.lineno, a.name, []) for a in node.names if a.name.startswith("steps_py")]
    return out


def domain(module):
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def is_runnable(tree):
    return any(isinstance(n, ast.If) and "__main__" in ast.unparse(n.test) for n in tree.body)


def test_the_domains_and_few_top_level_modules():
    assert sorted(d for d in os.listdir(PACKAGE) if os.path.isdir(os.path.join(PACKAGE, d)) and d != "__pycache__") \
        == sorted(n for n in RANK if n not in ("common", "completion", "jobs"))
    assert sorted(f for f in os.listdir(PACKAGE) if f.endswith(".py")) == ["__init__.py", "common.py", "completion.py", "jobs.py"]


@pytest.mark.parametrize("module", sorted(MODULES))
def test_module(module):
    path, tree = MODULES[module]
    lines = open(path, encoding="utf-8").read().count("\n")
    assert lines <= 500, f"{path}: {lines} lines"
    runnable = is_runnable(tree)
    for line, target, names in imports(tree):
        where = f"{path}:{line}: {target}"
        assert target in MODULES, f"{where} does not exist"
        if domain(module) and domain(target):
            assert RANK[domain(target)] >= RANK[domain(module)], f"{where} is above {module} in the pipeline"
        assert not [n for n in names if n.startswith("_")], f"{where}: private name {names}"
        if runnable and target != module:
            assert not is_runnable(MODULES[target][1]), f"{where}: a runnable step imports another runnable step"
