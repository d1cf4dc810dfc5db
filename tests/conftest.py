"""Shared fixtures: real MNIST prepared once per session, and the CUDA skip marker."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from mnist_models import data

requires_cuda = pytest.mark.skipif(not torch.cuda.is_available(),
                                   reason="no CUDA device on this machine; CUDA paths run where a GPU is present")


@pytest.fixture(scope="session")
def mnist_root() -> Path:
    """The verified real-MNIST root ($MNIST_BENCH_DATA or the per-user cache), prepared once."""
    root = data.resolve_root(None)
    data.prepare(root)
    return root
