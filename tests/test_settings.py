"""One settings spec (core/settings.py): the CLI, a shared link and the Model page accept and refuse
the same values."""
from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from multimodal.cli.common import UsageError
from multimodal.cli.parser import build_parser
from multimodal.cli.train import train_config_from_args
from multimodal.core.settings import SETTINGS, Setting
from multimodal.data.dataset import load_dataset

from support.apptest import APP_TIMEOUT, ROOT

# Valid values the Model page's sliders do not offer by themselves, and values nothing accepts.
VALID = {"image_size": "50", "width": "48", "dropout": "0.85", "l2": "0.02", "modality_dropout": "0.6",
         "seed": "123456789", "epochs": "700", "batch_size": "24", "lr": "0.002", "val_fraction": "0.35",
         "patience": "60", "freeze_epochs": "3", "finetune_epochs": "250", "finetune_lr": "0.0002",
         "unfreeze": "5"}
INVALID = {"image_size": "8", "width": "2", "dropout": "0.95", "l2": "-0.1", "modality_dropout": "1.0",
           "seed": "-1", "epochs": "0", "batch_size": "0", "lr": "0", "val_fraction": "0.9", "patience": "-2",
           "freeze_epochs": "-1", "finetune_epochs": "1.5", "finetune_lr": "2", "unfreeze": "some"}


def test_every_setting_has_a_valid_and_an_invalid_example():
    assert set(VALID) == set(INVALID) == set(SETTINGS)


def cli_accepts(name: str, text: str, data: str) -> bool:
    try:
        config = train_config_from_args(build_parser().parse_args(["train", data, f"--{name.replace('_', '-')}", text]))
    except UsageError as e:
        assert f"--{name.replace('_', '-')}" in str(e)
        return False
    value = getattr(config, name, None) if hasattr(config, name) else getattr(config.model, name)
    assert value == SETTINGS[name].parse(text), name
    return True


@pytest.mark.parametrize("name", sorted(SETTINGS))
def test_the_cli_accepts_the_valid_values_and_refuses_the_others(name, tiny_samples):
    data = str(tiny_samples["skin_lesions"])
    assert cli_accepts(name, VALID[name], data)
    assert not cli_accepts(name, INVALID[name], data)


def model_page(query: dict, csv) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=APP_TIMEOUT)
    at.session_state["dataset"] = load_dataset(csv)
    at.session_state["dataset_source"] = str(csv)
    at.run()
    at.switch_page("pages/model.py")
    at.query_params = dict(query)
    return at.run()


def test_the_model_page_takes_every_valid_link_value_and_warns_of_every_invalid_one(tiny_samples):
    """The page keeps a link's valid values (its sliders then offer them) and names each invalid one."""
    csv = tiny_samples["skin_lesions"]
    at = model_page({**VALID, "encoder": "mobilenet_v2"}, csv)   # 50 px needs an encoder that takes it: 32+
    assert not at.exception, at.exception
    assert not at.warning or "Ignored invalid link" not in " ".join(w.value for w in at.warning)
    for name, text in VALID.items():
        assert at.session_state[f"m_{name}"] == SETTINGS[name].parse(text), name
    model, train = at.session_state["model_config"], at.session_state["train_settings"]
    assert (model.image_size, model.width, model.dropout, model.l2) == (50, 48, 0.85, 0.02)
    assert (train["epochs"], train["batch_size"], train["lr"], train["unfreeze"]) == (700, 24, 0.002, 5)

    at = model_page(INVALID, csv)
    assert not at.exception, at.exception
    warning = " ".join(w.value for w in at.warning if "Ignored invalid link" in w.value)
    for name in INVALID:
        assert f"{name}: " in warning, f"no warning names {name}: {warning}"


def test_a_setting_refuses_a_default_outside_its_range_and_offers_a_valid_current_value():
    with pytest.raises(ValueError, match="outside"):
        Setting("int", 1, 10, "x", offered=(5, 20))
    batch = SETTINGS["batch_size"]
    assert batch.options(24) == [8, 16, 24, 32, 64, 128] and batch.options(9999) == list(batch.offered)
    assert SETTINGS["unfreeze"].options(5) == [1, 2, 3, 4, 5, 6, "all"]
    with pytest.raises(ValueError, match="whole number"):
        SETTINGS["epochs"].parse("2.5")
