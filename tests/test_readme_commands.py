"""Issue 15: every command the README shows is run by a test. The commands are read from the README itself
(its code blocks and inline code); each must match an entry of RUN_BY, which names the tests that run it,
and those tests must exist, so a command added to the README without a test fails here. What no other test
ran is run here: the make targets as `make -n` prints them (each deephype line checked against the real
command-line parser), `make model`'s chain and the README's `train` line on a tiny corpus."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import uvicorn

from deephype.cli import build_parser, main

REPO = Path(__file__).resolve().parents[1]
HERE = "tests/test_readme_commands.py"

# A README command (without `.venv/bin/` and its comment) -> the tests that run it.
RUN_BY: dict[str, tuple[str, ...]] = {
    r"make (test|install)": (f"{HERE}::test_make_targets_run_real_commands",),
    r"make demo": (  # `deephype demo`, as make -n shows, run for real by the restart tests
        f"{HERE}::test_make_targets_run_real_commands",
        "tests/test_curator_restart.py::test_the_demo_keeps_its_password_across_restarts",
    ),
    r"make model": (f"{HERE}::test_make_model_rebuilds_the_models_on_a_tiny_corpus",),
    r"deephype demo --once --auto-approve --json": ("tests/test_demo.py::test_demo_once_prints_the_published_post",),
    r"deephype (sample --model default|corpus build data/corpus/own|evaluate --model lstm) .*": (
        "tests/test_cli_help.py::test_the_readme_model_commands_run_as_shown",
    ),
    r"deephype train --arch pretrained .*": (f"{HERE}::test_the_readme_train_line_on_a_tiny_corpus",),
    r"deephype corpus (build|stats)": ("tests/test_corpus_build.py::test_cli_build_and_stats",),
    r"deephype keys (new|rotate)": (
        "tests/test_approval_signing.py::test_keys_commands_make_a_key_and_rotate_the_setting",
    ),
    r"deephype curator rotate-key": ("tests/test_curator_restart.py::test_rotating_the_key_ends_earlier_links",),
    r"deephype serve( NAME| \w+( --port \d+ &)?)?": (
        "tests/test_go_live_recipe.py::test_the_five_services_without_docker_as_the_readme_runs_them",
    ),
    r"deephype learn": (
        "tests/test_learning.py::test_killing_deephype_learn_mid_round_loses_no_decision_and_promotes_nothing_half_written",
    ),
    r"deephype learn (export --out set.jsonl|versions)": (
        f"{HERE}::test_learn_export_and_versions_as_the_readme_shows",
    ),
    r"deephype dlq (list|replay)": ("tests/test_faults.py::test_nothing_lost_nothing_twice_nothing_unapproved",),
    r"deephype evaluate-samples": ("tests/test_lcgan_eval.py::test_cli_writes_the_json_report",),
    r"deephype detect( --explain)?": (
        "tests/test_detect.py::test_cli_reads_stdin_and_writes_json_lines",
        "tests/test_detect.py::test_cli_explain_names_each_post_and_says_why",
    ),
    # No Docker engine on the test machines: the compose file is checked as data (services, ports that a
    # scaled service does not fight over, settings from .env).
    r"docker compose --profile gpu up": (
        "tests/test_compose.py::test_the_gpu_profile_reserves_an_nvidia_device_for_the_generator",
    ),
    r"docker compose up( --scale generator=3)?": (
        "tests/test_compose.py::test_state_and_models_live_in_named_volumes_and_scaled_services_have_no_fixed_host_port",
        "tests/test_compose.py::test_public_url_and_every_other_deployment_setting_come_from_the_env_file",
    ),
}
_COMMAND = re.compile(r"^(?:\.venv/bin/)?(?:deephype [a-z]|make [a-z]|docker compose )")


def readme_commands() -> list[str]:
    """Every command line of the README's code blocks and every command in its inline code. The rows of
    the settings table are left out: made from .env.example, they name commands, they do not show them."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    commands = []
    for block in re.findall(r"^```[^\n]*\n(.*?)^```", text, re.S | re.M):
        commands += [line for line in block.splitlines() if _COMMAND.match(line)]
    prose = re.sub(r"^```[^\n]*\n.*?^```", "", text, flags=re.S | re.M)
    for line in prose.splitlines():
        if not line.startswith("| `DEEPHYPE_"):
            commands += [span for span in re.findall(r"`([^`]+)`", line) if _COMMAND.match(span)]
    return [re.sub(r"^\.venv/bin/", "", c.split("  #")[0].strip()) for c in commands]


def test_every_readme_command_is_run_by_a_test_that_exists() -> None:
    commands = readme_commands()
    assert len(commands) >= 30, commands  # the extraction still finds the README's commands
    unrun = [c for c in commands if not any(re.fullmatch(pattern, c) for pattern in RUN_BY)]
    assert unrun == [], f"README commands no test runs (add the test and an entry to RUN_BY): {unrun}"
    for tests in RUN_BY.values():
        for node in tests:
            path, name = node.split("::")
            assert re.search(rf"^def {name}\(", (REPO / path).read_text(), re.M), f"{node} does not exist"


def make_dry_run(target: str, venv: Path) -> list[str]:
    """What `make TARGET` would run, without running it (another venv, so nothing real is touched)."""
    # Under `make test` this runs inside make, which would print "make[1]: Entering directory" lines;
    # a clean environment and --no-print-directory keep the output to the commands alone.
    env = {key: value for key, value in os.environ.items() if key not in {"MAKELEVEL", "MAKEFLAGS", "MFLAGS"}}
    result = subprocess.run(
        ["make", "-n", "--no-print-directory", f"VENV={venv}", target],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env=env,
    )
    return [line.strip() for line in result.stdout.splitlines() if line.strip()]


def deephype_lines(lines: list[str], venv: Path) -> list[list[str]]:
    """The deephype command lines, as argv (after the program name), each parsed by the real parser."""
    commands = [shlex.split(line)[1:] for line in lines if line.startswith(f"{venv}/bin/deephype ")]
    for argv in commands:
        build_parser().parse_args(argv)  # an unknown option or subcommand exits here
    return commands


def test_make_targets_run_real_commands(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    install = make_dry_run("install", venv)
    assert f"{venv}/bin/pip install --quiet -e '.[dev]'" in install
    assert any(line.startswith(f"{venv}/bin/pip install --quiet torch==") for line in install)
    assert deephype_lines(make_dry_run("demo", venv), venv) == [["demo"]]
    test = make_dry_run("test", venv)
    assert test[-2:] == [f"{venv}/bin/ruff check .", f"{venv}/bin/pytest -q -p no:cacheprovider"]
    scripts = [line for line in test if line.startswith("scripts/ensure-")]
    assert {"scripts/ensure-rabbitmq.sh", "scripts/ensure-chromium.sh"} <= set(scripts)
    for script in scripts:  # ruff and pytest are what this test run is; the scripts make sure of the rest
        subprocess.run([REPO / script], check=True, timeout=300, capture_output=True)


TINY = {"--max-steps": "2", "--epochs": "1", "--steps": "3", "--eval-k": "2"}


def tiny(argv: list[str], paths: dict[str, Path]) -> list[str]:
    """The same command on tiny inputs: a tiny corpus and model folders of the test's own, a few steps."""
    out = []
    for i, arg in enumerate(argv):
        if i and argv[i - 1] in TINY:
            arg = TINY[argv[i - 1]]
        for real, mine in paths.items():
            arg = arg.replace(real, str(mine))
        out.append(arg)
    return out


@pytest.fixture
def tiny_own(tmp_path: Path) -> Path:
    """Our own labelled corpus, the first lines of each genre family's file."""
    own = tmp_path / "own"
    own.mkdir()
    for path in sorted((REPO / "data" / "corpus" / "own").glob("*.jsonl")):
        (own / path.name).write_text("".join(path.read_text(encoding="utf-8").splitlines(True)[:24]))
    return own


@pytest.fixture
def tiny_lm(monkeypatch: pytest.MonkeyPatch) -> None:
    """SmolLM2 swapped for a tiny random Llama of the same interface (test_pretrained_vae's): the command's
    own path runs, in seconds instead of minutes."""
    from deephype.generator import train_pretrained
    from tests.test_pretrained_vae import tiny_lm_and_tokenizer

    monkeypatch.setattr(train_pretrained, "load_pretrained_lm", tiny_lm_and_tokenizer)


@pytest.mark.slow  # the whole chain: eight commands, about half a minute of CPU
def test_make_model_rebuilds_the_models_on_a_tiny_corpus(
    tmp_path: Path, tiny_own: Path, tiny_lm: None, capsys: pytest.CaptureFixture[str]
) -> None:
    venv = tmp_path / "venv"
    commands = deephype_lines(make_dry_run("model", venv), venv)
    assert [c[0] for c in commands] == ["corpus", "train", "train", *["train-lcgan"] * 4, "evaluate-samples"]
    paths = {
        "data/corpus/own": tiny_own,
        "data/corpus/built": tmp_path / "built",
        "data/models": tmp_path / "models",
    }
    for argv in commands:
        extra = {"corpus": ["--quiet"], "evaluate-samples": ["--per-condition", "4", "--device", "cpu"]}
        assert main([*tiny(argv, paths), *extra.get(argv[0], [])]) == 0, argv
    capsys.readouterr()
    lstm = tmp_path / "models" / "lstm"
    assert (tmp_path / "models" / "default" / "model.pt").is_file() and (lstm / "model.pt").is_file()
    assert (lstm / "lcgan-evaluation.json").is_file()
    assert len(list(lstm.rglob("*lcgan*"))) >= 5  # four LC-GANs and their evaluation


def test_the_readme_train_line_on_a_tiny_corpus(
    tmp_path: Path, tiny_own: Path, tiny_lm: None, capsys: pytest.CaptureFixture[str]
) -> None:
    [line] = [c for c in readme_commands() if c.startswith("deephype train ")]
    built = tmp_path / "built"
    assert main(["corpus", "build", str(tiny_own), "--out", str(built), "--quiet"]) == 0
    argv = tiny(shlex.split(line)[1:], {"data/corpus/built": built, "runs/mine": tmp_path / "mine"})
    assert main(argv) == 0
    assert f"saved {tmp_path / 'mine'}: nll " in capsys.readouterr().out
    assert (tmp_path / "mine" / "model.pt").is_file()


def test_learn_export_and_versions_as_the_readme_shows(tmp_path: Path) -> None:
    """`deephype learn export --out set.jsonl` against a curator on HTTP, and `deephype learn versions`
    after one round of learning, each as its own process (as an operator runs them)."""
    from deephype.common.memory_bus import InMemoryBus
    from deephype.common.service import create_app
    from deephype.curator.app import build
    from deephype.generator.learn import LearnOptions, learn
    from deephype.generator.versions import VersionStore
    from tests.conftest import make_settings, wait_until
    from tests.factories import candidates
    from tests.test_learning import LSTM, synthetic_sets
    from tests.test_review_page_browser import free_port

    settings = make_settings(tmp_path, curator_api_token="api-token-for-learn")
    bus = InMemoryBus(settings)
    parts, store, _ = build(settings, bus)
    approved, rejected = candidates("l1"), candidates("l2")
    for message in (approved, rejected):
        store.add_candidates(message)
    store.approve(approved.message_id, approved.candidates[0].candidate_id, None, by="t", post_platform="dry_run")
    store.reject(rejected.message_id, by="t")
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(parts, bus), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEEPHYPE_")}
    env |= {"DEEPHYPE_CURATOR_API_TOKEN": "api-token-for-learn", "DEEPHYPE_STATE_DIR": str(tmp_path / "cli")}
    try:
        assert wait_until(lambda: server.started)
        export = [sys.executable, "-m", "deephype.cli", "learn", "export", "--out", "set.jsonl"]
        export += ["--curator-url", f"http://127.0.0.1:{port}", "--poster-url", ""]
        done = subprocess.run(export, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    assert done.returncode == 0, done.stderr
    assert "wrote 2 labelled sets to set.jsonl" in done.stdout
    sets = [json.loads(line) for line in (tmp_path / "set.jsonl").read_text().splitlines()]
    assert sorted(c["label"] for s in sets for c in s["candidates"]) == [
        "approved",
        "passed_over",
        "rejected",
        "rejected",
    ]

    versions = tmp_path / "versions"
    listing = [sys.executable, "-m", "deephype.cli", "learn", "versions", "--versions", str(versions)]
    empty = subprocess.run(listing, env=env, capture_output=True, text=True, timeout=120)
    assert empty.returncode == 0 and "no learned version promoted: the base model serves" in empty.stdout
    version = learn(synthetic_sets(60, seed=3), VersionStore(versions), LSTM, LearnOptions(lcgan=False))["version"]
    listed = subprocess.run(listing, env=env, capture_output=True, text=True, timeout=120)
    assert listed.returncode == 0 and listed.stdout.startswith(f"* {version}  promoted=True")
