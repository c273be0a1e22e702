"""Settings: documented in .env.example, read from DEEPHYPE_* variables, secrets from files, never printed."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest
from pydantic import ValidationError

from deephype.common.settings import Settings

REPO = Path(__file__).resolve().parents[1]


def test_every_setting_is_documented_in_env_example() -> None:
    documented = {
        line.split("=", 1)[0]
        for line in (REPO / ".env.example").read_text().splitlines()
        if line.startswith("DEEPHYPE_")
    }
    assert documented == {f"DEEPHYPE_{name.upper()}" for name in Settings.model_fields}


def test_environment_variables_and_secret_files(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    secret = tmp_path / "password"
    secret.write_text("from-a-file\n")
    monkeypatch.setenv("DEEPHYPE_PREFETCH", "3")
    monkeypatch.setenv("DEEPHYPE_LISTENER_SOURCES", '["feed", "mastodon"]')
    monkeypatch.setenv("DEEPHYPE_CURATOR_PASSWORD_FILE", str(secret))
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.prefetch == 3
    assert settings.listener_sources == ["feed", "mastodon"]
    assert settings.curator_password.get_secret_value() == "from-a-file"
    assert "from-a-file" not in repr(settings) and "from-a-file" not in str(settings.model_dump())
    assert settings.secret_values() == ["from-a-file"]


def test_bad_values_are_refused_with_the_setting_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEEPHYPE_PREFETCH", "0")
    with pytest.raises(ValidationError, match="prefetch"):
        Settings(_env_file=None)  # type: ignore[call-arg]


def test_the_readme_lists_every_setting_as_env_example_does() -> None:
    script = runpy.run_path(str(REPO / "scripts" / "settings_table.py"))
    table = script["settings_table"]((REPO / ".env.example").read_text())
    readme = (REPO / "README.md").read_text()
    assert script["readme_with_table"](readme, table) == readme, "run scripts/settings_table.py --write"
    assert table.count("\n| `DEEPHYPE_") == len(Settings.model_fields)


def test_each_row_of_the_settings_table_means_the_comment_right_above_its_setting() -> None:
    """Issue 15: settings without a comment of their own used to repeat the one before (every SMTP_* row said
    "Approve every top candidate without a human")."""
    script = runpy.run_path(str(REPO / "scripts" / "settings_table.py"))
    lines = (REPO / ".env.example").read_text().splitlines()
    table = script["settings_table"]("\n".join(lines)).splitlines()
    meanings = []
    for number, line in enumerate(lines):
        if not line.startswith("DEEPHYPE_"):
            continue
        name = line.split("=", 1)[0]
        assert lines[number - 1].startswith("#"), f"{name} has no comment line of its own in .env.example"
        [row] = [row for row in table if row.startswith(f"| `{name}` |")]
        meaning = row.rsplit(" | ", 1)[1].removesuffix(" |")
        assert script["_cell"](lines[number - 1].lstrip("#").strip()) in meaning, name
        meanings.append(meaning)
    assert len(set(meanings)) == len(meanings), "two settings share one meaning"
    with pytest.raises(ValueError, match="DEEPHYPE_B"):
        script["settings_table"]("# What A is.\nDEEPHYPE_A=1\nDEEPHYPE_B=2\n")
