"""The run report's prediction-quality figures (matplotlib, Agg canvas → PNG bytes): a confusion
matrix heatmap per model (from the run's ``confusion.csv``), a seeded random grid of MNIST test
images, and the seed notebook's 3×3 prediction grid ("Pred: p | Truth: t", green when right, red
when wrong) from the run's ``predictions.csv``.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ..plots import RIGHT, WRONG, cases, numeric, png

GRID_SEED = 42  # the sample grid's images: the same in every report
GRID_SHAPE = (4, 8)


def confusion_matrix(rows: pd.DataFrame) -> np.ndarray:
    """The 10×10 count matrix (true × predicted) of one model's confusion rows."""
    n = int(max(numeric(rows, "true").max(), numeric(rows, "predicted").max())) + 1
    matrix = np.zeros((n, n), dtype=np.int64)
    for t, p, c in zip(numeric(rows, "true"), numeric(rows, "predicted"), numeric(rows, "count"), strict=True):
        matrix[int(t), int(p)] = int(c)
    return matrix


def confusion(frame: pd.DataFrame | None) -> bytes | None:
    """One heatmap per (model, device): counts in each cell, colour by the share of the true class
    (so a weak class shows at any size), the accuracy in the title."""
    groups = cases(frame) if frame is not None else []
    if not groups:
        return None
    ncols = min(3, len(groups))
    nrows = math.ceil(len(groups) / ncols)
    fig = Figure(figsize=(4.2 * ncols, 4.2 * nrows + 0.4), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax, ((model, device), rows) in zip(axes, groups, strict=False):
        matrix = confusion_matrix(rows)
        share = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
        ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
        for (t, p), count in np.ndenumerate(matrix):
            if count:
                ax.text(p, t, str(count), ha="center", va="center", fontsize=6,
                        color="white" if share[t, p] > 0.5 else "#222")
        accuracy = 100 * np.trace(matrix) / max(matrix.sum(), 1)
        steps = numeric(rows, "weight_steps").iloc[0]
        trained = f", {int(steps):,} steps" if not math.isnan(steps) else ""
        ax.set_title(f"{model} · {device}: {accuracy:.2f}% of {matrix.sum():,}{trained}", fontsize=9)
        ax.set_xticks(range(matrix.shape[1]))
        ax.set_yticks(range(matrix.shape[0]))
        ax.tick_params(labelsize=7)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
    for ax in axes[len(groups):]:
        ax.set_visible(False)
    fig.suptitle("Confusion matrices of the inference weights (eager fp32, all test images)", fontsize=11)
    return png(fig)


def sample_indices(n: int, count: int, seed: int = GRID_SEED) -> list[int]:
    """``count`` image indices out of ``n``, drawn with ``seed`` (the global RNG untouched)."""
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:count].tolist()


def sample_grid(images: torch.Tensor, labels: torch.Tensor, seed: int = GRID_SEED) -> bytes:
    """A seeded random grid of test images, each with its label, drawn as one mosaic."""
    rows, cols = GRID_SHAPE
    cell = 28 + 8  # pixels per image with its gap
    mosaic = np.full((rows * cell, cols * cell), 255, dtype=np.uint8)
    fig = Figure(figsize=(cols * 1.0, rows * 1.05 + 0.4), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for k, index in enumerate(sample_indices(len(images), rows * cols, seed)):
        top, left = (k // cols) * cell + 7, (k % cols) * cell + 4
        mosaic[top:top + 28, left:left + 28] = images[index].numpy()
        ax.text(left + 14, top - 1.5, f"{int(labels[index])} (#{index})", ha="center", va="bottom", fontsize=7)
    ax.imshow(mosaic, cmap="gray", vmin=0, vmax=255)
    ax.axis("off")
    ax.set_title(f"Random MNIST test images (seed {seed}): label (test index)", fontsize=10)
    return png(fig)


def prediction_grid(images: torch.Tensor, rows: pd.DataFrame, title: str) -> bytes:
    """The notebook's 3×3 grid: each sample image titled "Pred: p | Truth: t", green when right, red
    when wrong, with the predicted class's probability beneath."""
    count = len(rows)
    side = max(1, math.ceil(math.sqrt(count)))
    fig = Figure(figsize=(side * 1.6, side * 1.75 + 0.4), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(side, side, squeeze=False).ravel()
    for ax, row in zip(axes, rows.to_dict("records"), strict=False):
        predicted, truth, index = int(row["predicted"]), int(row["label"]), int(row["index"])
        ax.imshow(images[index].numpy(), cmap="gray", vmin=0, vmax=255)
        ax.set_title(f"Pred: {predicted} | Truth: {truth}", fontsize=9, color=RIGHT if predicted == truth else WRONG)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_xlabel(f"p = {float(row['probability']):.3f} · #{index}", fontsize=7)
    for ax in axes[count:]:
        ax.set_visible(False)
    fig.suptitle(title, fontsize=10)
    return png(fig)
