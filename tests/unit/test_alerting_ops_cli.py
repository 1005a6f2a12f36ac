"""``xiuhua alerting silence`` and ``alerts`` on a SQLite store: plain errors naming the option,
never a traceback; expire ends a silence now and deletes one that has not begun."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from alerting import AlertStore, Silence
from xiuhua.commands.alerting import app


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'state.sqlite'}"


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--for", "2h"], "give --device, --district or --rule"),
        (["--district", "linhai"], "exactly one of --for and --until"),
        (["--district", "linhai", "--for", "2h", "--until", "2030-01-01T00:00+08:00"],
         "exactly one of --for and --until"),
        (["--district", "linhai", "--for", "2"], "has no unit"),
        (["--district", "Linhai", "--for", "2h"], "--district: district 'Linhai'"),
        (["--rule", "drain.overflw", "--for", "2h"], "did you mean drain.overflow?"),
        (["--device", "dr-lh-000001", "--until", "2030-01-01T08:00"], "give the time zone"),
        (["--device", "dr-lh-000001", "--until", "tomorrow"], "want an ISO 8601 time"),
        (["--device", "dr-lh-000001", "--until", "2020-01-01T08:00+08:00"], "already be over"),
        (["--device", "dr-lh-000001", "--from", "2030-01-02T00:00+08:00",
          "--until", "2030-01-01T00:00+08:00"], "must end after it starts"),
    ],
)  # fmt: skip
def test_bad_silences_are_refused_with_the_option_named(
    url: str, args: list[str], message: str
) -> None:
    code, out = _run("silence", "add", *args, "--store", url)
    assert code == 2
    assert message in out
    assert "Traceback" not in out


def test_add_list_expire(url: str) -> None:
    code, out = _run("silence", "add", "--device", "dr-lh-000001", "--rule", "drain.overflow",
                     "--for", "90m", "--comment", "order 17", "--store", url)  # fmt: skip
    assert code == 0
    assert out.startswith("silence 1: device=dr-lh-000001 rule=drain.overflow")
    assert out.rstrip().endswith("order 17")
    code, _ = _run("silence", "add", "--district", "linhai", "--from", "2099-01-01T00:00+08:00",
                   "--for", "1h", "--store", url)  # fmt: skip
    assert code == 0
    _, listed = _run("silence", "list", "--store", url)
    assert [line.split()[:2] for line in listed.splitlines()] == [["1", "active"], ["2", "pending"]]

    assert _run("silence", "expire", "--id", "1", "--store", url) == (0, "silence 1: expired\n")
    assert _run("silence", "expire", "--id", "2", "--store", url)[0] == 0
    code, out = _run("silence", "expire", "--id", "1", "--store", url)
    assert (code, "no such silence in force or to come" in out) == (2, True)
    code, out = _run("silence", "expire", "--id", "one", "--store", url)
    assert (code, "want the number `silence list` shows" in out) == (2, True)
    assert _run("silence", "list", "--store", url)[1] == "no silences in force or to come\n"
    _, every = _run("silence", "list", "--all", "--store", url)
    assert [line.split()[:2] for line in every.splitlines()] == [["1", "ended"]]  # 2 never began


def test_expire_ends_now_or_deletes_what_has_not_begun(url: str) -> None:
    store = AlertStore(url)
    begun = store.add_silence(Silence(ends_s=500.0, district="linhai", starts_s=100.0))
    later = store.add_silence(Silence(ends_s=900.0, rule="drain.overflow", starts_s=600.0))
    assert store.expire_silence(begun, 200.0)
    assert store.expire_silence(later, 200.0)
    assert not store.expire_silence(begun, 300.0)  # already over
    assert not store.expire_silence(99, 200.0)
    records = [(i, s.starts_s, s.ends_s) for i, s in store.silence_records()]
    assert records == [(begun, 100.0, 200.0)]
    assert store.silence_records(now_s=200.0) == []
    store.close()


def test_alerts_on_an_empty_store_and_a_store_that_cannot_open(url: str) -> None:
    assert _run("alerts", "--store", url) == (0, "no active alerts\n")
    code, out = _run("alerts", "--store", "postgresql://nobody@127.0.0.1:1/none")
    assert code == 2
    assert "alert store postgresql://nobody@127.0.0.1:1/none: cannot open" in out
    code, out = _run("alerts", "--store", "not a url")
    assert (code, "'not a url' (not a database URL" in out) == (2, True)
