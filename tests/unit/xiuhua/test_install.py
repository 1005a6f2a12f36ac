"""Installing on a fresh machine: ``scripts/bootstrap.sh`` and the Makefile's ``venv`` target.

The Makefile runs in a scratch copy of the repository with a stand-in ``python3`` that makes a
stand-in virtual environment (no network, no pip download): what is tested is the Makefile's
logic, that a half-made ``.venv`` is noticed and made again instead of failing later with
"No module named pip".
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]

GOOD_VENV_PYTHON = """#!/bin/sh
# A working venv's python: pip is there and installs (into nowhere).
echo "venv-python $*" >> "$(dirname "$0")/../calls.log"
exit 0
"""
NO_PIP_PYTHON = """#!/bin/sh
echo "/x/.venv/bin/python: No module named pip" >&2
exit 1
"""


def _script(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """The files ``make venv`` uses, and a ``python3`` that makes a stand-in venv."""
    for name in ("Makefile", "pyproject.toml", "scripts/bootstrap.sh"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, tmp_path / name)
    good = _script(tmp_path / "stubs" / "venv-python", GOOD_VENV_PYTHON)
    _script(
        tmp_path / "stubs" / "python3",
        f'#!/bin/sh\nif [ "$1 $2" = "-m venv" ]; then mkdir -p "$3/bin" && '
        f'cp {good} "$3/bin/python" && echo "made $3" >> "$3/calls.log"; exit 0; fi\n'
        f'exec /usr/bin/python3 "$@"\n',
    )
    return tmp_path


def _make_venv(repo: Path) -> subprocess.CompletedProcess[str]:
    python = repo / "stubs" / "python3"
    env = os.environ | {"MAKEFLAGS": ""}
    return subprocess.run(
        ["make", "-C", str(repo), "venv", f"PYTHON={python}"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )


@pytest.mark.parametrize("stamped", [False, True], ids=["half-made", "stamped-but-broken"])
def test_a_venv_without_pip_is_made_again(repo: Path, stamped: bool) -> None:
    # What `python3 -m venv .venv` leaves on a Debian without python3-venv: a python, no pip.
    _script(repo / ".venv" / "bin" / "python", NO_PIP_PYTHON)
    if stamped:  # and a later upgrade broke it: make must not trust the old stamp
        (repo / ".venv" / ".installed").touch()
    result = _make_venv(repo)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "incomplete or broken" in result.stdout
    calls = (repo / ".venv" / "calls.log").read_text(encoding="utf-8")
    assert "made " in calls
    assert "-m pip install -e .[dev]" in calls
    assert (repo / ".venv" / ".installed").is_file()
    again = _make_venv(repo)  # healthy now: nothing to do
    assert "incomplete or broken" not in again.stdout
    assert "Nothing to be done" in again.stdout


def test_a_healthy_venv_is_kept(repo: Path) -> None:
    _script(repo / ".venv" / "bin" / "python", GOOD_VENV_PYTHON)
    (repo / ".venv" / ".installed").touch()
    result = _make_venv(repo)
    assert result.returncode == 0, result.stderr
    assert "Nothing to be done" in result.stdout


def test_bootstrap_names_python3_venv_when_the_venv_module_is_missing(tmp_path: Path) -> None:
    # python3 without ensurepip: what a fresh Debian has before python3-venv.
    _script(
        tmp_path / "python3",
        '#!/bin/sh\ncase "$*" in *ensurepip*) exit 1;; esac\nexec /usr/bin/python3 "$@"\n',
    )
    result = subprocess.run(
        ["bash", str(ROOT / "scripts" / "bootstrap.sh"), "--python", "--dry-run"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=os.environ | {"PATH": f"{tmp_path}:{os.environ['PATH']}"},
    )
    assert result.returncode == 1
    assert "missing Debian packages: python3-venv\n" in result.stderr
    assert "apt-get install -y --no-install-recommends python3-venv" in result.stderr


def test_bootstrap_is_quiet_when_everything_is_there() -> None:
    result = subprocess.run(
        ["bash", str(ROOT / "scripts" / "bootstrap.sh"), "--python", "--dry-run"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
