"""Progress on stderr: a rich bar on a terminal, one plain line per epoch otherwise (CI logs)."""

from __future__ import annotations

from collections.abc import Callable

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


class EpochProgress:
    """A rich progress bar on a terminal; one plain line per epoch otherwise (CI logs)."""

    def __init__(self, console: Console, label: str, epochs: int) -> None:
        self.console, self.label, self.epochs = console, label, epochs
        self.bar = None
        if console.is_terminal:
            self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                TimeElapsedColumn(), console=console, transient=True)
            self.task = self.bar.add_task(label, total=None)
        self.epoch = 1

    def __enter__(self) -> EpochProgress:
        if self.bar is not None:
            self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()

    def on_batch(self, phase: str, done: int, total: int) -> None:
        # Update about 100 times a pass: per-batch updates cost more than a small model's step.
        if self.bar is not None and (done == total or done % max(1, total // 100) == 0):
            self.bar.update(self.task, completed=done, total=total,
                            description=f"{self.label} epoch {self.epoch}/{self.epochs} {phase}")

    def on_epoch(self, row: dict[str, float]) -> None:
        self.console.print(
            f"{self.label} epoch {int(row['epoch'])}/{self.epochs}: train loss {row['train_loss']:.4f} "
            f"acc {row['train_acc_pct']:.2f}% | test loss {row['test_loss']:.4f} acc {row['test_acc_pct']:.2f}% "
            f"| {row['train_s']:.2f} s ({row['train_img_per_s']:,.0f} img/s), eval {row['eval_s']:.2f} s",
            highlight=False, soft_wrap=True)
        self.epoch += 1

    @property
    def on_batch_callback(self) -> Callable[[str, int, int], None] | None:
        return self.on_batch if self.bar is not None else None
