"""Issue 15, the CLI as a new user meets it: help that finishes its sentences and explains every option of
sample and evaluate, `--model default` read as the setting reads it, placeholders filled on request, and
an evaluate before `corpus build` saying what to run."""

from __future__ import annotations

import argparse
import json
import shlex
from pathlib import Path

import pytest

from deephype.cli import build_parser, main
from deephype.generator.candidates import fill_placeholders

REPO = Path(__file__).resolve().parents[1]


def subcommand(name: str) -> argparse.ArgumentParser:
    parser = build_parser()
    [choices] = [a.choices for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return choices[name]


def test_top_level_help_ends_its_sentences(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    description = out.split("\n\n")[1].replace("\n", " ")
    assert description.endswith("."), description
    assert out.rstrip().endswith("explains one command and its options.")


@pytest.mark.parametrize("name", ["sample", "evaluate"])
def test_every_option_of_sample_and_evaluate_is_explained(name: str) -> None:
    unexplained = [a.dest for a in subcommand(name)._actions if not a.help]
    assert unexplained == []


def test_sample_takes_a_model_name_and_fills_the_names(capsys: pytest.CaptureFixture[str]) -> None:
    common = ["sample", "--model", "default", "--genres", "dream pop", "-n", "24", "--seed", "3", "--json"]
    assert main(common) == 0
    raw = [json.loads(line)["text"] for line in capsys.readouterr().out.splitlines()]
    assert main([*common, "--artist", "Low Tide", "--title", "Glass Harbour"]) == 0
    filled = [json.loads(line)["text"] for line in capsys.readouterr().out.splitlines()]
    assert any("<artist>" in t.lower() or "<title>" in t.lower() for t in raw), "no placeholder to fill in 24"
    assert filled == [fill_placeholders(t, "Low Tide", "Glass Harbour") for t in raw]
    assert not any("<artist>" in t.lower() or "<title>" in t.lower() for t in filled)


def test_a_missing_corpus_or_model_says_what_to_do(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["evaluate", "--model", "default", "--data", str(tmp_path / "test.jsonl")]) == 2
    assert "Build the corpus first: deephype corpus build data/corpus/own" in capsys.readouterr().err
    assert main(["sample", "--model", "no-such-model", "-n", "1"]) == 2
    assert "the name of one under DEEPHYPE_MODELS_DIR" in capsys.readouterr().err


def test_the_readme_model_commands_run_as_shown(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """The README's sample / corpus build / evaluate lines, in order, on a fresh checkout (the built corpus
    goes to a temporary folder instead of data/corpus/built)."""
    readme = (REPO / "README.md").read_text()
    lines = [
        line.split("   #", 1)[0].strip()
        for line in readme.splitlines()
        if line.startswith(".venv/bin/deephype ") and line.split()[1] in ("sample", "corpus", "evaluate")
    ]
    assert [line.split()[1] for line in lines] == ["sample", "corpus", "evaluate"]
    for line in lines:
        argv = [arg.replace("data/corpus/built", str(tmp_path / "built")) for arg in shlex.split(line)[1:]]
        assert main([*argv, "--quiet"] if argv[0] == "corpus" else argv) == 0, line
    *samples, metrics = capsys.readouterr().out.strip().splitlines()
    assert len([s for s in samples if s and not s.startswith(" ")]) >= 5
    assert json.loads(metrics)["sentences"] > 0
