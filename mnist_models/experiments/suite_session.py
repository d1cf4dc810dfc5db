"""One benchmark-suite session (``pytest bench``): what was chosen, what was left out and why, the cases
to collect, what those cases share, and the rows they add.

``bench/conftest.py`` makes one ``SuiteSession`` when pytest is configured (``SuiteSession.from_options``)
and keeps it in pytest's ``config.stash``; every case reads and adds to it, and nothing a case decides
lives in a module global (``suite.Shared``), so a case run alone or in another order does what it would
in the whole suite. A bad option is one ``SuiteUsageError`` line (the suite exits 2 with it).

Devices: ``all`` means the devices this machine has; the others, and the variants that do not apply
on a present device (CUDA-only variants on the CPU, the loader variant at inference, an inference-only
variant in training), are left out of collection, each once with its reason (``left_out``), instead of
being collected and skipped one case at a time. ``skips`` lists what was skipped while running (a
case out of memory). With ``--bench-ddp 1,2`` the session's first model is also measured at those process
counts on each device, after every other case (``suite_scaling.py``); without it nothing changes.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from .. import data
from ..config import RunConfig
from ..host.capabilities import capabilities
from ..host.clock import process_age_s
from ..host.device import peak_precisions
from ..measure.probes import (
    matmul_peak_gflops,
    measured_bandwidths,
    measured_peak_sizes,
    measured_peaks,
    memory_bandwidth_gbs,
)
from ..models import ModelError, UnknownModelError, check_model, list_models
from ..results.provenance import bench_run_id
from ..results.store import ResultsError, check_writable
from ..runs.keys import case_name
from ..runs.writer import CaseLog
from ..variants import VARIANTS, Variant, current_name
from .budget import Budget
from .ddp_scaling import ScalingSpec
from .plans import TTA_MIN_SEEDS, inference_weight, train_weight, tta_seed_estimate_s, weights_task, weights_weight
from .suite import PROFILES, Profile, Shared, inference_batch_sizes
from .suite_scaling import ddp_counts, estimate_s, suite_spec
from .time_to_accuracy import TTA_MODEL

DEVICES = ("cpu", "cuda")
PHASES = {"train": "training", "inference": "inference"}
# The quick profile must finish within 5 minutes on any 2-core machine, whatever its ISA.
DEFAULT_BUDGET_S = {"quick": 300.0, "full": 0.0, "smoke": 0.0}
NO_CUDA = "no CUDA device on this machine"
COMPILE_CACHE_PREFIX = "mnist-bench-inductor-"

Spec = tuple[str, str, Variant, "int | None"]  # (model, device, variant, inference batch size or None)


class SuiteUsageError(ValueError):
    """A suite option that cannot work: one line naming it and the fix."""


def budget_seconds(text: str | None, profile: str) -> float | None:
    """``--bench-budget`` in seconds (None: no budget); the profile's default when not given."""
    if text is None:
        return DEFAULT_BUDGET_S.get(profile) or None
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not seconds >= 0 or seconds == float("inf"):
        raise SuiteUsageError(f"--bench-budget takes seconds ≥ 0 (0: no budget), got {text!r}")
    return seconds or None


def choose(text: str, known: Sequence[str], what: str) -> list[str]:
    """A comma list of ``known`` names (``all``: every one); an unknown name is a ``SuiteUsageError``."""
    chosen = list(known) if text == "all" else [t for t in text.split(",") if t]
    unknown = [c for c in chosen if c not in known]
    if unknown or not chosen:
        raise SuiteUsageError(f"unknown {what} {', '.join(unknown) or repr(text)}; "
                              f"choose from: {', '.join(known)} (or all)")
    return chosen


DEFAULT_MODELS = "default"  # --bench-models' default: the profile's models (``choose_models``)


def choose_models(text: str, profile: str = "quick") -> tuple[list[str], list[tuple[str, str]]]:
    """``--bench-models``: a comma list of registered names and models of your own (``file.py:Name``,
    ``module:Name``), each checked with one batch before the session starts; ``all``: the built-ins;
    ``default``: the built-ins for the profile (the full profile runs all; the others the quick suite's
    models, ``register_model(quick=True)``). Returns the models and what the default left out, and why."""
    if text == DEFAULT_MODELS:
        chosen = list_models() if profile == "full" else list_models(quick=True)
        rest = [name for name in list_models() if name not in chosen]
        why = (f"not in the {profile} profile's default models (each model adds compilations that no cut of the "
               "time budget shortens); run them with --bench-models all, by name, or --bench-profile full")
        return chosen, [(f"models {', '.join(rest)}", why)] if rest else []
    if text == "all":
        return list_models(), []
    chosen = list(dict.fromkeys(t for t in text.split(",") if t))
    if not chosen:
        raise SuiteUsageError(f"--bench-models {text!r} names no model; choose from: {', '.join(list_models())} "
                              "(or all), or your own as path/to/file.py:Name")
    for name in chosen:
        try:
            check_model(name)
        except (UnknownModelError, ModelError) as exc:
            raise SuiteUsageError(f"--bench-models: {exc}") from None
    return chosen, []


def fresh_compile_cache() -> str:
    """Point inductor at an empty cache for this session, so compile times are cold instead of reusing
    kernels an earlier run left on disk; the folder (``remove_compile_cache`` deletes it at the end)."""
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = tempfile.mkdtemp(prefix=COMPILE_CACHE_PREFIX)
    return os.environ["TORCHINDUCTOR_CACHE_DIR"]


def remove_compile_cache() -> None:
    """Delete the session's inductor cache (``fresh_compile_cache``'s, never another)."""
    cache = os.environ.get("TORCHINDUCTOR_CACHE_DIR", "")
    if os.path.basename(cache).startswith(COMPILE_CACHE_PREFIX):
        shutil.rmtree(cache, ignore_errors=True)


def present_devices(text: str) -> tuple[list[str], list[tuple[str, str]]]:
    """The devices ``--bench-device`` asks for, and those left out with why: ``all`` is the devices this
    machine has; naming one it lacks (``cuda`` without a GPU) is a ``SuiteUsageError``."""
    has_cuda = torch.cuda.is_available()
    if text == "all":
        return (["cpu", "cuda"], []) if has_cuda else (["cpu"], [("device cuda", NO_CUDA)])
    devices = choose(text, DEVICES, "--bench-device")
    if "cuda" in devices and not has_cuda:
        raise SuiteUsageError(f"--bench-device {text}: {NO_CUDA}; fix: pass --bench-device cpu, or all (the "
                              "devices this machine has)")
    return devices, []


def case_id(model: str, device: str, variant: Variant, batch: int | None) -> str:
    """A train or inference case's pytest id: ``v2-cpu-bf16``, ``v2-cpu-eager-256``."""
    return "-".join(str(p) for p in (model, device, variant.name, batch) if p is not None)


def case_batch(phase: str, spec: Any) -> int | None:
    """The batch size a case runs at (named when it runs out of memory): an inference case's own, the
    notebook protocol's for training; None for time to accuracy."""
    if phase == "inference":
        return spec[3]
    return RunConfig().batch_size if phase == "train" else None


def not_applicable(devices: Sequence[str], variants: Sequence[Variant]) -> list[tuple[str, str]]:
    """(what, why) of each chosen variant that does not apply on a chosen device, in one phase or both."""
    out = []
    for device in devices:
        for variant in variants:
            reasons = {phase: variant.skip_reason(device, phase) for phase in PHASES}
            if len(set(reasons.values())) == 1 and reasons["train"]:
                out.append((f"{variant.name} on {device}", reasons["train"]))
                continue
            out += [(f"{variant.name} {PHASES[phase]} on {device}", reason)
                    for phase, reason in reasons.items() if reason]
    return out


@dataclass
class SuiteSession:
    """A session's choices, what it left out, what its cases share, and the rows and skips they add."""

    devices: list[str]
    models: list[str]
    variants: list[Variant]
    profile: Profile
    results: str
    data_root: str | None
    readme: str | None = None
    dataset: str = "mnist"  # every case trains and evaluates on it (--bench-dataset)
    run_id: str = ""  # UTC start time + machine tag, fixed when the session starts
    budget: Budget = field(default_factory=lambda: Budget(None))
    startup_s: float = 0.0  # this process's age when the session was configured (Python, pytest, torch)
    left_out: list[tuple[str, str]] = field(default_factory=list)  # (what, why) never collected
    inductor_warmup_s: float | None = None  # the session's first torch.compile, paid once outside the cases
    shared: Shared = field(default_factory=Shared)  # what the cases train once and share
    train_rows: list[dict[str, Any]] = field(default_factory=list)
    inference_rows: list[dict[str, Any]] = field(default_factory=list)
    tta_rows: list[dict[str, Any]] = field(default_factory=list)
    ddp: tuple[int, ...] | None = None  # --bench-ddp: the scaling case's process counts (None: no scaling case)
    scaling_rows: list[dict[str, Any]] = field(default_factory=list)  # one per layout (experiments.ddp_scaling)
    # (model, device) → (confusion rows, prediction-sample rows) of the inference weights, for the report
    quality: dict[tuple[str, str], tuple[list[dict[str, Any]], list[dict[str, Any]]]] = field(default_factory=dict)
    skips: list[tuple[str, str]] = field(default_factory=list)  # (case, why) skipped while running
    log: CaseLog = field(init=False)  # the finished cases' rows, on disk as each case ends
    stopped: bool = False  # a case's rows could not be written: the session stopped, publishing nothing

    def __post_init__(self) -> None:
        self.log = CaseLog(self.results, self.run_id)

    @classmethod
    def from_options(cls, profile: str, device: str, models: str, variants: str, budget: str | None,
                     results: str, data_root: str | None, readme: str | None, dataset: str = "mnist",
                     ddp: str | None = None) -> SuiteSession:
        """The session the ``--bench-*`` options ask for (``SuiteUsageError`` for one that cannot work)."""
        if profile not in PROFILES:
            raise SuiteUsageError(f"unknown --bench-profile {profile!r}; choose from: {', '.join(PROFILES)}")
        devices, left_out = present_devices(device)
        names = choose(",".join(map(current_name, variants.split(","))), list(VARIANTS), "--bench-variants variant")
        chosen = [VARIANTS[name] for name in names]
        models_chosen, models_left_out = choose_models(models, profile)
        try:
            counts = ddp_counts(ddp)
        except ValueError as exc:
            raise SuiteUsageError(str(exc)) from None
        return cls(devices=devices, models=models_chosen, variants=chosen, ddp=counts,
                   profile=PROFILES[profile], results=results, data_root=data_root, readme=readme, dataset=dataset,
                   run_id=bench_run_id(), startup_s=process_age_s(),
                   budget=Budget(budget_seconds(budget, profile), started=time.perf_counter() - process_age_s()),
                   left_out=left_out + models_left_out + not_applicable(devices, chosen))

    def prepare(self) -> None:
        """Before collection probes the models: a results folder or data root that cannot work fails now."""
        try:
            check_writable(self.results)
            data.prepare(self.data_root, dataset=self.dataset)
        except (ResultsError, data.DataError) as exc:  # the CLI's fix, in this suite's flags
            line = str(exc).replace("--results DIR", "--bench-results DIR")
            line = line.replace("--dataset", "--bench-dataset")
            raise SuiteUsageError(line.replace("--data-root DIR", "--bench-data-root DIR")) from None

    def cases(self, phase: str) -> list[Spec]:
        """The ``train`` or ``inference`` cases to collect: models × devices × the variants that apply
        (× batch sizes for inference)."""
        return [(model, device, variant, batch) for model in self.models for device in self.devices
                for variant in self.variants if variant.skip_reason(device, phase) is None
                for batch in (inference_batch_sizes(device) if phase == "inference" else (None,))]

    def tta_devices(self) -> list[str]:
        """The devices time to accuracy runs on (its model, when selected, on each device)."""
        return list(self.devices) if TTA_MODEL in self.models else []

    def device_cases(self, phase: str) -> tuple[str, list[str]]:
        """The model and the devices of a case run once per device: ``tta`` (time to accuracy) or ``scaling``
        (``--bench-ddp``: the first model, on every device; none without the option)."""
        if phase == "tta":
            return TTA_MODEL, self.tta_devices()
        return self.models[0], list(self.devices) if self.ddp else []

    def params(self, phase: str) -> list[tuple[Any, str]]:
        """What a phase's cases are parametrised over, each with its pytest id: a train or inference spec
        (``v2-cpu-bf16``, ``v2-cpu-eager-256``), or a device for time to accuracy and scaling (``fastnet2-cpu``)."""
        if phase in PHASES:
            return [(spec, case_id(*spec)) for spec in self.cases(phase)]
        model, devices = self.device_cases(phase)
        return [(device, f"{model}-{device}") for device in devices]

    def ddp_spec(self, device: str) -> ScalingSpec:
        """The scaling case on ``device`` (``suite_scaling.suite_spec``)."""
        return suite_spec(self.models[0], device, self.profile.name, self.ddp or (1,), self.data_root, self.dataset)

    def weigh(self, case: str, phase: str, spec: Any) -> None:
        """Register a case that will run with the budget: its expected seconds at eager speed here."""
        if self.budget.seconds is None:
            return
        if phase == "train":
            model, device, variant, _ = spec
            self.budget.add(case, *train_weight(model, device, variant, self.profile), kind="train")
        elif phase == "inference":
            model, device, variant, batch = spec
            self.budget.add(case, *inference_weight(model, device, variant, batch, self.profile), kind="inference")
            if weights_task(model, device) not in self.budget.weights:
                self.budget.add(weights_task(model, device), weights_weight(model, device), kind="weights")
        elif phase == "scaling":  # set aside whole: no cut shortens it
            self.budget.add(case, 0.0, estimate_s(self.ddp_spec(spec), self.startup_s), kind="scaling")
        else:  # time to accuracy: at least TTA_MIN_SEEDS seeds run whatever the budget
            seed_s = tta_seed_estimate_s(spec, self.startup_s)
            seeds = len(self.profile.tta_seeds)
            least = min(TTA_MIN_SEEDS, seeds)
            self.budget.add(case, (seeds - least) * seed_s, least * seed_s, kind="tta")

    def budget_line(self) -> str:
        """How many cases share the budget (said once collection has weighed the cases that will run)."""
        cases = sum(kind != "weights" for _, _, kind in self.budget.weights.values())
        return f"mnist-bench: {cases} cases share the {self.budget.seconds or 0:g} s budget"

    def warm_up(self) -> None:
        """Before the first case: measure the rooflines' ceilings (every precision's matmul peak, the memory
        bandwidth; recorded in machine.json) and start inductor once, so none lands in a case's time."""
        for device in self.devices:
            for precision in peak_precisions(torch.device(device)):
                matmul_peak_gflops(torch.device(device), precision)
            memory_bandwidth_gbs(torch.device(device))
        if any(v.compiles for v in self.variants):
            # The session's first torch.compile starts inductor (imports, worker pool): seconds that
            # would otherwise land in whichever compiled case runs first. Paid here, reported apart.
            start = time.perf_counter()
            torch.compile(lambda x: x * 2 + 1)(torch.ones(4))
            self.inductor_warmup_s = time.perf_counter() - start

    def tables(self) -> dict[str, list[dict[str, Any]]]:
        """The rows collected so far, by the table they go into (cases.jsonl's ``table``)."""
        return {"train": self.train_rows, "inference": self.inference_rows, "tta": self.tta_rows,
                "scaling": self.scaling_rows}

    def record(self, node_id: str) -> int:
        """A case ended: append the rows it added to the run folder's cases.jsonl (``ResultsError`` when
        they cannot be written)."""
        return self.log.record(case_name(node_id), self.tables())

    def budget_record(self) -> dict[str, Any]:
        """The budget, the session's time and what was cut (machine.json and the summary)."""
        return {"budget_s": self.budget.seconds, "session_s": self.budget.elapsed(), "cuts": self.budget.cuts,
                "inductor_warmup_s": self.inductor_warmup_s}

    def machine_record(self, env: dict[str, Any], budget: dict[str, Any]) -> dict[str, Any]:
        """machine.json's contents (``runs.writer`` adds the format): the environment, what was chosen and
        left out, the measured peaks, the budget (``budget_record``), and the skipped cases."""
        return {**env, "capabilities": capabilities(), "profile": self.profile.name, "devices": self.devices,
                "models": self.models, "dataset": self.dataset, "variants": [v.name for v in self.variants],
                "matmul_peak_gflop_per_s": measured_peaks(), "matmul_peak_size": measured_peak_sizes(),
                "memory_bandwidth_gb_per_s": measured_bandwidths(),
                **budget, "skips": [{"case": case, "reason": reason} for case, reason in self.skips],
                "left_out": [{"what": what, "reason": reason} for what, reason in self.left_out]}

    def header(self) -> list[str]:
        """The session header's lines: what runs, and what was left out and why (said once)."""
        budget = f"{self.budget.seconds:g} s" if self.budget.seconds else "none"
        lines = [f"mnist-bench: profile {self.profile.name}; devices {', '.join(self.devices)}; models "
                 f"{', '.join(self.models)}; dataset {self.dataset}; {len(self.variants)} variants; budget {budget}; "
                 f"results {self.results}"]
        if self.ddp:
            lines.append(f"mnist-bench: data-parallel scaling (--bench-ddp) of {self.models[0]} at "
                         f"{', '.join(map(str, self.ddp))} processes on {', '.join(self.devices)}, after the other "
                         "cases")
        return lines + [f"mnist-bench: left out: {what}: {reason}" for what, reason in self.left_out]
