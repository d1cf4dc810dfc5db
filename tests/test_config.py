"""RunConfig: frozen, validated on every construction, protocol defaults and overrides."""

from __future__ import annotations

import dataclasses

import pytest

from mnist_models.config import (
    COMPILE_MODES,
    DEVICES,
    LOADERS,
    MEASURED_DEFAULTS,
    OPTIMIZERS,
    PRECISIONS,
    PROTOCOLS,
    ConfigError,
    RunConfig,
    notebook_protocol,
    protocol_notes,
)
from mnist_models.models import list_models

# The seed notebook's per-model learning rates (its published protocol).
NOTEBOOK_LR = {"v0": 0.1, "v1": 0.01, "v2": 0.1}


def test_config_is_frozen() -> None:
    cfg = RunConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.lr = 0.5  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.model = "v0"  # type: ignore[misc]
    assert cfg.lr == 0.1 and cfg.model == "v2"


def test_config_error_is_a_value_error() -> None:
    # Callers that catch ValueError (argparse-style handling) still see config errors.
    assert issubclass(ConfigError, ValueError)


def rejection(setting: str, value) -> str:
    """The ConfigError message for one bad setting, checked to be a single line."""
    with pytest.raises(ConfigError) as info:
        RunConfig(**{setting: value})
    message = str(info.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize(
    ("setting", "value", "allowed"),
    [
        ("device", "tpu", DEVICES),
        ("precision", "fp8", PRECISIONS),
        ("compile", "turbo", COMPILE_MODES),
        ("loader", "threaded", LOADERS),
        ("optimizer", "rmsprop", OPTIMIZERS),
        ("protocol", "paper", PROTOCOLS),
        ("model", "v99", None),  # allowed = the model registry, read at test time
    ],
)
def test_unknown_choice_is_rejected_with_allowed_values(setting: str, value: str, allowed) -> None:
    allowed = allowed if allowed is not None else tuple(list_models())
    message = rejection(setting, value)
    assert setting in message
    assert repr(value) in message
    for choice in allowed:
        assert choice in message


@pytest.mark.parametrize(
    ("setting", "value", "named"),
    [
        ("batch_size", 0, "batch size"),
        ("batch_size", -1, "batch size"),
        ("batch_size", 32.0, "batch size"),
        ("epochs", 0, "epochs"),
        ("epochs", -3, "epochs"),
        ("epochs", 1.5, "epochs"),
        ("lr", 0, "learning rate"),
        ("lr", -0.1, "learning rate"),
        ("lr", float("nan"), "learning rate"),
        ("eval_batch_size", 0, "evaluation batch size"),
        ("eval_batch_size", 2.5, "evaluation batch size"),
        ("label_smoothing", 1.0, "label smoothing"),
        ("label_smoothing", -0.1, "label smoothing"),
    ],
)
def test_invalid_number_is_rejected(setting: str, value, named: str) -> None:
    message = rejection(setting, value)
    assert named in message
    assert repr(value) in message


def test_boundary_values_are_accepted() -> None:
    cfg = RunConfig(batch_size=1, epochs=1, lr=1e-12)
    assert (cfg.batch_size, cfg.epochs, cfg.lr) == (1, 1, 1e-12)


@pytest.mark.parametrize("model", ["v0", "v1", "v2"])
def test_seed_protocol_gives_the_notebook_settings(model: str) -> None:
    cfg = RunConfig.from_protocol("notebook", model=model)
    assert cfg.model == model
    assert cfg.batch_size == 32
    assert cfg.optimizer == "sgd"
    assert cfg.epochs == 3
    assert cfg.seed == 42
    assert cfg.loader == "notebook"
    assert cfg.lr == NOTEBOOK_LR[model]
    assert (cfg.precision, cfg.compile, cfg.channels_last) == ("fp32", "none", None)  # None: auto
    assert cfg.protocol == "notebook"


def test_seed_protocol_without_a_model_uses_the_default_model() -> None:
    cfg = RunConfig.from_protocol("notebook")
    assert cfg.model == RunConfig().model
    assert cfg.lr == notebook_protocol(cfg.model)["lr"]


def test_explicit_overrides_beat_protocol_defaults() -> None:
    cfg = RunConfig.from_protocol("notebook", model="v1", loader="fast", lr=0.5, epochs=1, seed=7)
    assert (cfg.loader, cfg.lr, cfg.epochs, cfg.seed) == ("fast", 0.5, 1, 7)
    # Settings not overridden keep the protocol's values.
    assert (cfg.batch_size, cfg.optimizer) == (32, "sgd")
    assert cfg.protocol == "notebook"


def test_none_overrides_are_ignored() -> None:
    cfg = RunConfig.from_protocol("notebook", model="v1", lr=None, loader=None, epochs=None, data_root=None)
    assert cfg == RunConfig.from_protocol("notebook", model="v1")
    assert (cfg.lr, cfg.loader, cfg.epochs) == (0.01, "notebook", 3)


def test_no_protocol_uses_class_defaults_and_records_none() -> None:
    cfg = RunConfig.from_protocol(None, model="v1", batch_size=64)
    assert cfg.protocol is None
    assert cfg.lr == RunConfig().lr  # not the notebook protocol's 0.01 for v1
    assert cfg.batch_size == 64


def test_from_protocol_rejects_unknown_protocol_and_settings() -> None:
    with pytest.raises(ConfigError, match="protocol"):
        RunConfig.from_protocol("paper", model="v0")
    with pytest.raises(ConfigError, match="learning_rate"):
        RunConfig.from_protocol("notebook", learning_rate=0.1)


def test_from_protocol_validates_overrides() -> None:
    with pytest.raises(ConfigError, match="batch size"):
        RunConfig.from_protocol("notebook", model="v0", batch_size=0)


def test_with_returns_a_changed_copy() -> None:
    cfg = RunConfig.from_protocol("notebook", model="v1")
    changed = cfg.with_(lr=0.1, loader="fast")
    assert (changed.lr, changed.loader) == (0.1, "fast")
    assert (cfg.lr, cfg.loader) == (0.01, "notebook")  # the original is untouched
    assert dataclasses.replace(changed, lr=cfg.lr, loader=cfg.loader) == cfg


@pytest.mark.parametrize("change", [{"batch_size": 0}, {"lr": 0}, {"device": "tpu"}, {"model": "nope"}])
def test_with_revalidates(change: dict) -> None:
    with pytest.raises(ConfigError):
        RunConfig().with_(**change)


def test_asdict_holds_every_setting() -> None:
    # The config is logged whole into result rows via dataclasses.asdict.
    cfg = RunConfig.from_protocol("notebook", model="v0", data_root="/somewhere")
    record = dataclasses.asdict(cfg)
    assert set(record) == {f.name for f in dataclasses.fields(RunConfig)}
    assert record["data_root"] == "/somewhere" and record["protocol"] == "notebook"


def test_the_default_policy_is_declared_once_and_every_command_follows_it() -> None:
    """What no flag and no protocol pins is MEASURED_DEFAULTS (precision and memory format measured here);
    RunConfig's own defaults and --protocol notebook stay the notebook's (fp32, the notebook loader's NCHW)."""
    from mnist_models.cli import main as cli
    from mnist_models.cli.commands import speedup, train, tta
    from mnist_models.experiments import fast_path, time_to_accuracy

    def train_config(*argv: str) -> RunConfig:
        return train.config(cli.build_parser().parse_args(["train", *argv]))

    assert MEASURED_DEFAULTS == {"precision": "auto", "channels_last": None}
    asked = train_config("--model", "v0")
    assert (asked.precision, asked.channels_last) == (MEASURED_DEFAULTS["precision"], None)
    pinned = train_config("--model", "v0", "--protocol", "notebook")
    assert (pinned.precision, pinned.channels_last) == (notebook_protocol("v0")["precision"], None) == ("fp32", None)
    assert train_config("--precision", "bf16").precision == "bf16"
    assert (RunConfig().precision, RunConfig().channels_last) == ("fp32", None)
    recipe = time_to_accuracy.recipe()
    assert (recipe.precision, recipe.channels_last) == ("auto", None)
    assert tta.DEFAULTS["precision"] == "auto" and fast_path.make_cases("v2", [0])[1].config.precision == "auto"
    assert cli.build_parser().parse_args(["speedup"]).precision == "auto" == speedup.FAST_PRECISIONS[0]
    assert protocol_notes("precision") == "fp32 under --protocol notebook"
