"""The real ``xiuhua`` command, as a new user meets it: help, version, and mistakes on purpose.

Every command's ``--help`` is run in its own interpreter (``python -m xiuhua``), so what is
checked is what a person sees: no type names such as ``<float range>``, no ``COMMAND [ARGS]...``
for a command without subcommands, and for a mistake a message and exit 2, never a traceback.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from xiuhua import __version__
from xiuhua.cli import get_command

pytestmark = [pytest.mark.e2e]

LEAKED_TYPE = re.compile(r"<[a-z][a-z0-9_ .|\[\]-]*>")


def _command_paths(command: Any, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], bool]]:
    """Every command's path and whether it has subcommands."""
    subcommands = getattr(command, "commands", {})
    found = [(path, bool(subcommands))]
    for name, sub in subcommands.items():
        found += _command_paths(sub, (*path, name))
    return found


PATHS = _command_paths(get_command())


def _xiuhua(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "xiuhua", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=None if env is None else os.environ | env,
    )


def test_every_command_is_covered() -> None:
    names = {" ".join(path) for path, _ in PATHS}
    assert {"", "demo", "ingest", "edge", "edge acl", "sim fleet", "sim run", "services up"} <= (
        names
    )


def test_every_help_reads_without_type_names_or_phantom_subcommands() -> None:
    procs = {
        path: subprocess.Popen(
            [sys.executable, "-m", "xiuhua", *path, "--help"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for path, _ in PATHS
    }
    for path, has_subcommands in PATHS:
        out, _ = procs[path].communicate(timeout=120)
        shown = " ".join(("xiuhua", *path))
        assert procs[path].returncode == 0, (shown, out)
        assert out.startswith(f"Usage: {shown} [OPTIONS]"), (shown, out)
        assert not LEAKED_TYPE.findall(out), (shown, LEAKED_TYPE.findall(out), out)
        if not has_subcommands:
            assert "COMMAND [ARGS]" not in out, (shown, out)


def test_version() -> None:
    for flag in ("--version", "-V"):
        result = _xiuhua(flag)
        assert (result.returncode, result.stdout.strip()) == (0, __version__), result


def test_the_root_help_lists_every_command() -> None:
    out = _xiuhua("--help").stdout
    for path, _ in PATHS:
        if len(path) == 1:
            assert re.search(rf"^  {path[0]} +\S", out, re.MULTILINE), (path, out)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (
            ("demo", "--district", "shanghai"),
            "--district: unknown district 'shanghai'; want one of",
        ),
        (("demo", "--scenario", "nope"), "--scenario: "),
        (("demo", "--duration", "90"), "--duration '90' has no unit: 90s? 90m?"),
        (("demo", "--devices", "2"), "--devices 2: at least 3"),
        (("sim", "fleet", "--out", "/missing/dir/x.csv"), "--out /missing/dir/x.csv: cannot write"),
        (("sim", "fleet", "--out", "x.txt", "--count", "3"), "want a .csv, .yaml or .yml"),
    ],
)
def test_a_mistake_gets_a_message_and_exit_2_before_anything_starts(
    args: tuple[str, ...], needle: str
) -> None:
    result = _xiuhua(*args)
    assert result.returncode == 2, result
    assert needle in result.stderr, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert "Mosquitto" not in result.stdout  # the demo checked its options before any server


def test_sim_run_refuses_a_duration_without_a_unit(tmp_path: Path) -> None:
    fleet = tmp_path / "fleet.csv"
    assert _xiuhua("sim", "fleet", "--out", str(fleet), "--count", "3").returncode == 0
    result = _xiuhua("sim", "run", "--fleet", str(fleet), "--scenario", "normal_day",
                     "--out", str(tmp_path / "out"), "--duration", "90")  # fmt: skip
    assert result.returncode == 2
    assert "--duration '90' has no unit: 90s? 90m?" in result.stderr


def test_sim_scenarios_shows_the_descriptions() -> None:
    result = _xiuhua("sim", "scenarios")
    assert result.returncode == 0
    assert re.search(r"^typhoon_rainstorm +Typhoon rainstorm$", result.stdout, re.MULTILINE)
    assert "A Lekima-like typhoon" in result.stdout
    brief = _xiuhua("sim", "scenarios", "--brief").stdout
    assert "Typhoon rainstorm" in brief
    assert "Lekima" not in brief


def test_settings_errors_from_the_real_commands(tmp_path: Path) -> None:
    shared = tmp_path / "xiuhua.toml"
    shared.write_text(
        '[mqtt]\nurl = "mqtt://127.0.0.1:1"\n[ingest]\nbatch_sise = 10\n'
        '[edge]\ngateway_id = "gw-jj-01"\n',
        encoding="utf-8",
    )
    ingest = _xiuhua("ingest", "--config", str(shared))
    assert ingest.returncode == 2
    assert ingest.stderr.strip() == (
        f"xiuhua ingest: {shared}:4: ingest.batch_sise: unknown key 'batch_sise'; "
        "did you mean 'batch_size'?"
    )
    edge = _xiuhua("edge", "--config", str(shared), env={"XIUHUA_EDGE__SEED": "many"})
    assert edge.returncode == 2
    assert edge.stderr.strip() == (
        "xiuhua edge: XIUHUA_EDGE__SEED: edge.seed: want a whole number, got 'many'"
    )


def test_the_readme_shows_the_real_command_list() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    shown = readme.split("$ xiuhua --help\n", 1)[1].split("```", 1)[0]
    real = _xiuhua("--help").stdout
    assert shown.startswith("Commands:\n")
    assert shown in real, (shown, real)
