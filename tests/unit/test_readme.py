"""The README's settings table lists every setting."""

from __future__ import annotations

from pathlib import Path

from onward.api.settings import ApiSettings
from onward.config import Settings
from onward.examples.settings import ExampleSettings

README = Path(__file__).resolve().parents[2] / "README.md"


def test_every_setting_is_documented() -> None:
    text = README.read_text()
    names = [*Settings.model_fields, *ApiSettings.model_fields, *ExampleSettings.model_fields]
    missing = [n for n in names if f"`ONWARD_{n.upper()}`" not in text]
    assert missing == []


def test_readme_starts_with_the_two_commands() -> None:
    block = README.read_text().split("```sh", 1)[1].split("```", 1)[0]
    commands = [line.split("#")[0].strip() for line in block.strip().splitlines()]
    assert commands == ["make run", "make test"]
