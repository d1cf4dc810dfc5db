"""The examples in the package's docstrings run and print what they say."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import mnist_models

# Every module of every subpackage; __main__ runs the CLI on import and has no examples.
MODULES = sorted(info.name for info in pkgutil.walk_packages(mnist_models.__path__, "mnist_models.")
                 if not info.name.endswith("__main__"))


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, extraglobs={"torch": importlib.import_module("torch")})
    assert result.failed == 0, f"{result.failed} docstring example(s) in {name} failed"
