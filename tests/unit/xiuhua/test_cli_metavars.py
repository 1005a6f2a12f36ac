"""Options without a metavar of their own get a plain one, not typer's type names."""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Annotated

import pytest
import typer
import typer.main

from xiuhua.cli import plain_metavars


class Colour(enum.StrEnum):
    RED = "red"
    BLUE = "blue"


def _command() -> typer.Typer:
    app = typer.Typer(rich_markup_mode=None)

    @app.command()
    def paint(
        *,
        ratio: Annotated[float, typer.Option(min=0.0, help="A ratio.")] = 0.5,
        count: Annotated[int, typer.Option(min=1, help="How many.")] = 1,
        out: Annotated[Path | None, typer.Option(help="Where.")] = None,
        tags: Annotated[list[str] | None, typer.Option(help="Tags.")] = None,
        colour: Annotated[Colour, typer.Option(help="Which.")] = Colour.RED,
        name: Annotated[str, typer.Option(metavar="WHO", help="Kept as given.")] = "x",
        loud: Annotated[bool, typer.Option(help="A flag.")] = False,
    ) -> None:
        """Paint."""

    @app.command()
    def other() -> None:
        """Another, so the app is a group."""

    return app


def test_type_names_become_plain_words(capsys: pytest.CaptureFixture[str]) -> None:
    command = typer.main.get_command(_command())
    plain_metavars(command)
    with pytest.raises(SystemExit):
        command(["paint", "--help"], prog_name="t")
    out = capsys.readouterr().out
    for shown in ("--ratio NUMBER", "--count N", "--out PATH", "--tags TEXT",
                  "--colour [red|blue]", "--name WHO", "--loud / --no-loud"):  # fmt: skip
        assert shown in out, (shown, out)
    assert "<" not in out, out
