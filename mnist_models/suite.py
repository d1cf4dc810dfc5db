"""What the benchmark suite (``bench/``) times: training and inference cases, and their rows.

A case is built outside the clock (data on the device, model, optimiser, compilation warm-up,
CUDA-graph capture). ``TrainCase.run()`` then trains ``steps`` steps (or a whole epoch) and
``InferenceCase.run()`` does one forward pass of one batch; pytest-benchmark calls them
through ``benchmark.pedantic`` with warm-up rounds and ``iterations=1``. Every train case is
evaluated on the full 10,000-image test set after its timed rounds.

Profiles:

- ``quick`` (default): training rounds of ``QUICK_TRAIN_STEPS`` steps, few rounds; the whole
  CPU suite runs in minutes on 2 cores.
- ``full``: training rounds of one whole epoch, more rounds, more inference rounds.
- ``smoke``: three steps, one round: runs every code path in seconds, for the tests.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from .config import RunConfig
from .data import load_split
from .engine import build_training, first_batch
from .models import get_model, model_flops
from .runtime import Runtime, Timer, matmul_peak_gflops, seed_everything
from .variants import Variant

QUICK_TRAIN_STEPS = 100


@dataclass(frozen=True)
class Profile:
    """How much work each case does: steps per training round, rounds, warm-up rounds, and the
    seeds and target of the time-to-accuracy case (one fresh process per seed)."""

    name: str
    train_steps: int | None  # None: one whole epoch per round
    train_rounds: int
    inference_rounds: int
    warmup_rounds: int = 1
    tta_seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    tta_target_pct: float = 99.0


# The model the time-to-accuracy case trains (its recipe is tuned for it, see tta.py).
TTA_MODEL = "fastnet"

PROFILES = {
    "quick": Profile("quick", QUICK_TRAIN_STEPS, train_rounds=3, inference_rounds=30),
    "full": Profile("full", None, train_rounds=3, inference_rounds=200),
    # Exercises every code path in seconds (the tests run it with --benchmark-disable); its
    # numbers are not measurements.
    "smoke": Profile("smoke", 3, train_rounds=1, inference_rounds=2, warmup_rounds=0, tta_seeds=(0,),
                     tta_target_pct=90.0),
}
CPU_BATCH_SIZES = (1, 64, 256, 1024)
CUDA_BATCH_SIZES = CPU_BATCH_SIZES + (8192,)


def inference_batch_sizes(device: str) -> tuple[int, ...]:
    return CUDA_BATCH_SIZES if device == "cuda" else CPU_BATCH_SIZES


def base_config(model: str, device: str, data_root: str | None = None) -> RunConfig:
    """The suite's baseline: the seed protocol's hyper-parameters, fast loader, NCHW, on ``device``."""
    return RunConfig.from_protocol("seed", model=model, device=device, loader="fast", channels_last=False,
                                   data_root=data_root)


def _reset_compiler(cfg: RunConfig) -> dict[str, int]:
    """Fresh dynamo state per compiled case (its recompile limit would otherwise fall back to
    eager after a few models), and its counters for the graph-break count."""
    if cfg.compile == "none":
        return {}
    import torch._dynamo
    from torch._dynamo.utils import counters

    torch._dynamo.reset()
    counters.clear()
    return counters["graph_break"]


class TrainCase:
    """A training benchmark case, built and warmed outside the clock."""

    def __init__(self, cfg: RunConfig, steps: int | None) -> None:
        self.cfg, self.steps = cfg, steps
        breaks = _reset_compiler(cfg)
        self.training = build_training(cfg)
        self.rt = self.training.rt
        # First call vs a steady call: the difference is compilation / capture / first-touch cost.
        self.training.model.train()
        batch = self.rt.to_device(*first_batch(self.training.train_loader))
        with Timer(self.rt.synchronize) as first:
            self.training.capture()
            self.training.step(*batch)
        with Timer(self.rt.synchronize) as steady:
            self.training.step(*batch)
        self.compile_s = max(0.0, first.seconds - steady.seconds)
        self.graph_breaks = sum(breaks.values())
        self.rows: list[dict[str, float]] = []
        seed_everything(cfg.seed)

    def run(self) -> dict[str, float]:
        """One timed round: ``steps`` training steps (a whole epoch when None); returns its row."""
        row = self.training.train_epoch(max_steps=self.steps)
        if not math.isfinite(row["train_loss"]):
            raise FloatingPointError(f"non-finite training loss {row['train_loss']} in {self.cfg.model}")
        self.rows.append(row)
        return row

    def evaluate(self) -> dict[str, float]:
        """Test loss and accuracy on the full test set (after the timed rounds)."""
        return self.training.evaluate()


# Seeds eager fp32 also trains from (untimed) to give the accuracy band that every variant's
# accuracy is checked against; the case's own seed is the band's fourth member.
BAND_SEEDS = (0, 1, 2)


def accuracy_band(cfg: RunConfig, steps: int | None, rounds: int) -> list[float]:
    """Eager's test accuracies over other seeds: ``cfg`` retrained from each of ``BAND_SEEDS`` as
    its timed case was (``steps`` per round, ``rounds`` rounds, the same start-up steps), untimed.
    The caller adds the timed case's own accuracy to make the band."""
    accs = []
    for seed in BAND_SEEDS:
        if seed == cfg.seed:
            continue
        case = TrainCase(cfg.with_(seed=seed), steps)
        for _ in range(rounds):
            case.run()
        accs.append(case.evaluate()["test_acc_pct"])
    return accs


_TRAINED: dict[tuple[str, str, str | None], dict[str, torch.Tensor]] = {}


def trained_state(model: str, device: str, data_root: str | None) -> dict[str, torch.Tensor]:
    """Weights of ``model`` after one epoch of the seed protocol on the fast loader (cached per
    process), so inference cases run, and compare predictions, on a real classifier."""
    key = (model, device, data_root)
    if key not in _TRAINED:
        from .engine import fit

        cfg = base_config(model, device, data_root).with_(epochs=1)
        _TRAINED[key] = {k: v.detach().cpu().clone() for k, v in fit(cfg).model.state_dict().items()}
    return _TRAINED[key]


class InferenceCase:
    """Forward passes of one batch of real test images under ``torch.inference_mode``.

    The model carries trained weights (``trained_state``); ``predictions`` gives its classes for
    the whole test set, compared with ``reference_predictions`` (eager fp32) in the row.
    """

    def __init__(self, cfg: RunConfig, batch_size: int, variant: Variant | None = None) -> None:
        self.cfg, self.batch_size = cfg, batch_size
        weights_bf16, freeze = (variant.weights_bf16, variant.freeze) if variant else (False, False)
        self.rt = Runtime.from_config(cfg)
        breaks = _reset_compiler(cfg)
        model = get_model(cfg.model)
        model.load_state_dict(trained_state(cfg.model, self.rt.device.type, cfg.data_root))
        self.model = self.rt.prepare_inference(model, weights_bf16, freeze)
        self.input_dtype = torch.bfloat16 if weights_bf16 else torch.float32
        self.precision = "bf16" if weights_bf16 else cfg.precision  # what the matmuls run in
        images, labels = load_split("test", cfg.data_root)
        index = torch.arange(batch_size) % len(labels)  # repeat the test set for large batches
        x = self._inputs(images[index])

        def forward(inputs: torch.Tensor) -> torch.Tensor:
            with torch.inference_mode(), self.rt.autocast():
                return self.model(inputs)

        with Timer(self.rt.synchronize) as first:
            fn = self.rt.capture(forward, x) if cfg.cuda_graph else forward
            fn(x)
        with Timer(self.rt.synchronize) as steady:
            fn(x)
        self.forward, self.x = fn, x
        self.compile_s = max(0.0, first.seconds - steady.seconds)
        self.graph_breaks = sum(breaks.values())

    def _inputs(self, images: torch.Tensor) -> torch.Tensor:
        return self.rt.images_to_device(images.unsqueeze(1).float().div_(255)).to(self.input_dtype)

    def run(self) -> None:
        """One forward pass, waited for."""
        self.forward(self.x)
        self.rt.synchronize()

    def predictions(self) -> torch.Tensor:
        """Predicted classes for the whole test set, in batches of this case's size (the last
        one padded, so fixed-shape paths such as CUDA graphs run unchanged)."""
        images, _ = load_split("test", self.cfg.data_root)
        out = []
        for start in range(0, len(images), self.batch_size):
            chunk = images[start:start + self.batch_size]
            padded = torch.zeros(self.batch_size, 28, 28, dtype=chunk.dtype)
            padded[:len(chunk)] = chunk
            out.append(self.forward(self._inputs(padded))[:len(chunk)].argmax(dim=1).cpu())
        return torch.cat(out)


_REFERENCE: dict[tuple[str, str, str | None], torch.Tensor] = {}


def reference_predictions(cfg: RunConfig) -> torch.Tensor:
    """Eager fp32 predictions of the trained model on the test set (cached per model and device)."""
    key = (cfg.model, Runtime.from_config(cfg).device.type, cfg.data_root)
    if key not in _REFERENCE:
        eager = base_config(cfg.model, cfg.device, cfg.data_root)
        _REFERENCE[key] = InferenceCase(eager, 1000).predictions()
    return _REFERENCE[key]


def roofline(precision: str, device: torch.device, flops_per_image: int, img_per_s: float) -> dict[str, float]:
    """Achieved GFLOP/s and its fraction of the device's measured matmul peak in ``precision``."""
    achieved = flops_per_image * img_per_s / 1e9
    peak = matmul_peak_gflops(device, precision)
    return {"flops_per_image": flops_per_image, "gflop_per_s": achieved, "peak_gflop_per_s": peak,
            "pct_of_peak": 100.0 * achieved / peak}


def train_row(variant: Variant, case: TrainCase, profile: Profile, times: list[float],
              metrics: dict[str, float]) -> dict[str, Any]:
    """The tidy row of a training case (times from the timed rounds, warm-up excluded)."""
    from .stats import time_stats

    images = case.rows[-1]["train_images"]
    stats = time_stats(times)
    flops = model_flops(case.cfg.model)["training"]
    return {
        "phase": "train", "model": case.cfg.model, "device": case.rt.device.type, "variant": variant.name,
        "profile": profile.name, "batch_size": case.cfg.batch_size, "steps_per_round": images // case.cfg.batch_size,
        "images_per_round": images, "warmup_rounds": profile.warmup_rounds, **stats,
        "img_per_s": images / stats["median_s"], "compile_s": case.compile_s, "graph_breaks": case.graph_breaks,
        "train_loss": case.rows[-1]["train_loss"], "test_acc_pct": metrics["test_acc_pct"],
        "test_loss": metrics["test_loss"], "seed": case.cfg.seed,
        **roofline(case.cfg.precision, case.rt.device, flops, images / stats["median_s"]),
    }


def inference_row(variant: Variant, case: InferenceCase, profile: Profile, times: list[float]) -> dict[str, Any]:
    """The tidy row of an inference case: throughput, latency percentiles, and the share of test
    images whose predicted class equals eager fp32's (same trained weights)."""
    from .stats import latency_ms, time_stats

    stats = time_stats(times)
    agree = (case.predictions() == reference_predictions(case.cfg)).double().mean().item()
    return {
        "phase": "inference", "model": case.cfg.model, "device": case.rt.device.type, "variant": variant.name,
        "profile": profile.name, "batch_size": case.batch_size, "warmup_rounds": profile.warmup_rounds, **stats,
        **latency_ms(times), "img_per_s": case.batch_size / stats["median_s"], "compile_s": case.compile_s,
        "graph_breaks": case.graph_breaks, "seed": case.cfg.seed, "agree_with_eager_pct": 100.0 * agree,
        **roofline(case.precision, case.rt.device, model_flops(case.cfg.model)["forward"],
                   case.batch_size / stats["median_s"]),
    }


def run_pedantic(benchmark: Any, fn: Any, rounds: int, warmup_rounds: int) -> tuple[list[float], Any]:
    """Time ``fn`` through pytest-benchmark's ``pedantic`` (iterations=1) and our own clock.

    Returns the per-round seconds of the timed rounds (warm-up rounds dropped) and the
    ``Contention`` measured over them. ``fn`` must synchronise the device before returning.
    With ``--benchmark-disable`` pytest-benchmark calls ``fn`` once: that single call is
    returned (n = 1).
    """
    import time

    from .stats import Contention

    times: list[float] = []

    def timed() -> None:
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)

    with Contention() as contention:
        benchmark.pedantic(timed, rounds=rounds, warmup_rounds=warmup_rounds, iterations=1)
    return (times if benchmark.disabled else times[warmup_rounds:]), contention


ROW_ENVIRONMENT = ("torch", "cuda", "cudnn", "gpu", "cpu", "torch_threads", "git_commit")


def finish_row(row: dict[str, Any], contention: Any, memory: dict[str, Any]) -> dict[str, Any]:
    """Add the memory pass, the contention indicator, the noisy flag and the software/hardware
    it ran on (so each row stands on its own) to a row."""
    from .results import environment
    from .stats import is_noisy

    env = environment()
    return {**row, **memory, "process_cpu_util": contention.process_cpu_util,
            "machine_busy_cores": contention.machine_busy_cores, "noisy": is_noisy(row, contention),
            **{key: env[key] for key in ROW_ENVIRONMENT}}
