"""The examples in the docstrings of every hfgcot module run and print what they show.

The same as ``python -m pytest --doctest-modules hfgcot``, inside the suite so that no test
command can leave them out. Examples that need a cluster, a GPU or the Hub carry
``# doctest: +SKIP``.
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import hfgcot

OPTIONAL = {"ray", "openai", "flash_attn"}  # extras a module may need at import time

MODULES = sorted(
    info.name for info in pkgutil.walk_packages(hfgcot.__path__, prefix="hfgcot.") if not info.ispkg
) + sorted(
    ["hfgcot"]
    + [info.name for info in pkgutil.walk_packages(hfgcot.__path__, prefix="hfgcot.") if info.ispkg]
)


def test_every_module_is_collected():
    assert {"hfgcot.status", "hfgcot.geometry.boxes", "hfgcot.run.ray", "hfgcot.geometry"} <= set(
        MODULES
    )


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    try:
        module = importlib.import_module(name)
    except ImportError as err:
        if err.name and err.name.partition(".")[0] in OPTIONAL:
            pytest.skip(f"{name} needs {err.name}")
        raise
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    for test in finder.find(module, name):
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {name}"
