"""What a suite run's inference weights predict, for its report: the confusion matrix on the 10,000
test images (torchmetrics) and a fixed sample of predictions with their probabilities, per model
and device. Both come from the eager fp32 predictions the inference cases already compare with,
so recording them costs no extra training."""

from __future__ import annotations

from typing import Any

import torch
from torchmetrics.classification import MulticlassConfusionMatrix

from ..data import load_split
from .suite import Shared, base_config

SAMPLE_SEED = 0  # the same nine test images in every run, so runs compare image for image
SAMPLE_SIZE = 9


def sample_indices(n: int = 10_000) -> list[int]:
    """``SAMPLE_SIZE`` test-image indices drawn with ``SAMPLE_SEED`` (without touching the global RNG)."""
    generator = torch.Generator().manual_seed(SAMPLE_SEED)
    return torch.randperm(n, generator=generator)[:SAMPLE_SIZE].tolist()


def quality_rows(shared: Shared, model: str, device: str, data_root: str | None, dataset: str,
                 weight_steps: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(confusion rows, sample rows) of ``model``'s inference weights on ``device`` (the session's
    ``shared`` weights and eager probabilities).

    Confusion rows: one per (true, predicted) cell, all 100, with ``count``. Sample rows: for each
    of ``sample_indices()``: the test ``index``, its ``label``, the ``predicted`` class and its
    ``probability``.
    """
    probabilities = shared.reference_probabilities(base_config(model, device, data_root, dataset), weight_steps)
    _, labels = load_split("test", data_root, dataset)
    predicted = probabilities.argmax(dim=1)
    matrix = MulticlassConfusionMatrix(num_classes=probabilities.shape[1])(predicted, labels)
    keys = {"model": model, "device": device, "weight_steps": weight_steps}
    confusion = [{**keys, "true": t, "predicted": p, "count": int(matrix[t, p])}
                 for t in range(matrix.shape[0]) for p in range(matrix.shape[1])]
    sample = [{**keys, "index": i, "label": int(labels[i]), "predicted": int(predicted[i]),
               "probability": float(probabilities[i, predicted[i]])} for i in sample_indices(len(labels))]
    return confusion, sample
