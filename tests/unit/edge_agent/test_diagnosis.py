"""A broker restart is not blamed on the ACL or a duplicate client id; a refusal is named."""

from __future__ import annotations

from edge_agent._diagnosis import LinkDiagnosis


def test_a_restart_is_a_warning_then_a_reconnect_never_an_error() -> None:
    diag = LinkDiagnosis()
    assert diag.connected(0.0) is None
    lost = diag.lost(3.0, "Unspecified error", 3.0)  # short: the broker went down after 3 s
    assert (lost.event, lost.level) == ("mqtt_connection_lost", "warning")
    diag.unreachable()
    diag.unreachable()
    back = diag.connected(5.5)
    assert back is not None
    assert (back.event, back.level, back.fields["down_s"]) == ("mqtt_reconnected", "info", 2.5)
    assert "restart" in str(back.fields["cause"])


def test_a_quick_restart_that_accepts_us_at_once_is_one_drop_not_a_refusal() -> None:
    diag = LinkDiagnosis()
    diag.connected(0.0)
    diag.lost(2.0, "Unspecified error", 2.0)
    back = diag.connected(2.3)
    assert back is not None
    assert back.level == "info"
    diag.lost(60.0, "Unspecified error", 62.3)  # the next connection was healthy
    assert diag.connected(62.5) is not None
    assert diag.connected(62.5) is None  # nothing lost since


def test_accepted_and_dropped_again_and_again_is_unstable_said_without_flooding() -> None:
    diag = LinkDiagnosis()
    levels = []
    for n in range(8):
        diag.connected(float(n))
        levels.append(diag.lost(0.2, "Unspecified error", n + 0.2).level)
    found = [diag.connected(100.0 + n) for n in range(1)]
    assert set(levels) == {"warning"}
    assert found[0] is not None
    assert (found[0].event, found[0].level) == ("mqtt_connection_unstable", "error")
    assert "same client id" in str(found[0].fields["hint"])


def test_unstable_is_said_at_the_second_fourth_and_eighth_short_connection() -> None:
    diag = LinkDiagnosis()
    said = []
    diag.connected(0.0)
    for n in range(1, 9):
        diag.lost(0.5, "Unspecified error", float(n))
        finding = diag.connected(n + 0.1)
        said.append(finding.event if finding else None)
    assert [n + 1 for n, e in enumerate(said) if e == "mqtt_connection_unstable"] == [2, 4, 8]


def test_refusals_and_reasons_that_say_so_are_errors_with_a_hint() -> None:
    diag = LinkDiagnosis()
    refused = diag.refused("Not authorized")
    assert (refused.event, refused.level) == ("mqtt_connect_refused", "error")
    assert "mqtt.username" in str(refused.fields["hint"])
    assert diag.refused("Server unavailable").level == "warning"
    taken = diag.lost(30.0, "Session taken over", 30.0)
    assert (taken.event, taken.level) == ("mqtt_session_taken_over", "error")
    assert diag.lost(30.0, "Not authorized", 31.0).level == "error"


def test_a_drop_right_after_a_refused_publish_is_blamed_on_the_acl_at_once() -> None:
    diag = LinkDiagnosis()
    diag.connected(0.0)
    diag.publish_refused("Not authorized")
    dropped = diag.lost(0.1, "Unspecified error", 0.1)
    assert (dropped.event, dropped.level) == ("mqtt_dropped_after_refusal", "error")
    assert "ACL" in str(dropped.fields["hint"])
    assert diag.lost(30.0, "Unspecified error", 40.0).level == "warning"  # said once
