"""Hostile MQTT traffic for any consumer's tests: valid messages mutated in named families.

A consumer of device messages (the ingester, the rule engine, the dispatcher) must refuse each
of these with a reason and go on. The generator is reproducible from a seed and knows nothing
of the consumer: every message it calls hostile is refused by the *contract* itself (a family
built to be refused: extreme integers, deep nesting, wrong types, bad topics, ...), or, for the
blind byte-level families (bit flips, truncation, junk), checked with ``refused``, a predicate
the caller passes (usually "the contract decoder refuses it"), so a flip that happens to leave
a valid message is never counted as hostile.

    mutator = Mutator(random.Random(7), refused=contract_refuses)
    stream = interleave(valid, mutator, hostile_every=2)   # [(topic, payload, family), ...]

``family`` is ``None`` for a valid message, ``"duplicate"`` for an exact repeat of an earlier
valid one (valid, but stored only once), else the family name.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Final

Refused = Callable[[str, bytes], bool]
"""``(topic, payload) -> True`` if the consumer's contract refuses the message."""

EXTREME_INTS: Final = (
    2**53, 2**63 - 1, 2**63, 2**64, 2**64 + 1, -1, -(2**63), -(2**63) - 1, 10**20, 10**400,
)  # fmt: skip
INT_FIELDS: Final[tuple[str, ...]] = ("seq", "ts", "v", "config_version")
WRONG_TYPES: Final[tuple[object, ...]] = ("1", True, None, [], {}, 1.5, "", [1], {"a": 1})
BAD_TOPIC_PARTS: Final = (
    "xh/v1/{d}/{k}/{i}",  # too short
    "xh/v1/{d}/{k}/{i}/telemetry/extra",  # too long
    "xh/v2/{d}/{k}/{i}/telemetry",  # wrong version
    "xh/v1/{d}/boiler/{i}/telemetry",  # unknown kind
    "xh/v1/{d}/{k}/{i}/gossip",  # unknown channel
    "xh/v1/{d}/{k}/{i}/cmd",  # a channel the consumer does not take
    "xh/v1/Jiao jiang/{k}/{i}/telemetry",  # bad district
    "xh/v1/{d}/{k}/-{i}-/telemetry",  # bad device id
    # No control characters: Mosquitto disconnects a client that publishes to such a topic
    # (a trailing newline in a topic level is tested against the parser, not over the wire).
    "xh/v1/{d}/{k}/{i} /telemetry",  # a space
    "xh/v1/{d}/{k}/{i}/telemetry ",
    "xh/v1/{d},x=1/{k}/{i}/telemetry",  # line-protocol injection
    "xh/v1/{d}/{k}/设备/telemetry",  # non-ASCII
    "xh/v1///{i}/telemetry",
)


@dataclass(frozen=True, slots=True)
class Hostile:
    """One hostile message and the family it comes from."""

    topic: str
    payload: bytes
    family: str


class Mutator:
    """Turns a valid ``(topic, payload)`` into a hostile one of a random (or named) family."""

    def __init__(self, rng: random.Random, refused: Refused, max_payload_bytes: int = 16_384):
        self._rng = rng
        self._refused = refused
        self._max = max_payload_bytes
        self._families: dict[str, Callable[[str, bytes], tuple[str, bytes]]] = {
            "bit_flip": self._bit_flip,
            "truncate": self._truncate,
            "junk": self._junk,
            "deep_nesting": self._deep_nesting,
            "extreme_int": self._extreme_int,
            "huge_number": self._huge_number,
            "wrong_type": self._wrong_type,
            "missing_field": self._missing_field,
            "trailing_newline": self._trailing_newline,
            "bad_topic": self._bad_topic,
            "oversized": self._oversized,
            "not_utf8": self._not_utf8,
            "non_finite": self._non_finite,
        }
        self._weights = dict.fromkeys(self._families, 1.0)
        self._weights["oversized"] = 0.1  # large: keep the broker's queue modest

    @property
    def families(self) -> list[str]:
        """The family names."""
        return list(self._families)

    def mutate(self, topic: str, payload: bytes, family: str | None = None) -> Hostile:
        """A hostile variant of a valid message (the family at random unless named)."""
        names = list(self._weights)
        for _ in range(100):
            name = family or self._rng.choices(names, weights=list(self._weights.values()))[0]
            new_topic, new_payload = self._families[name](topic, payload)
            if (new_topic, new_payload) != (topic, payload) and self._refused(
                new_topic, new_payload
            ):
                return Hostile(new_topic, new_payload, name)
        raise AssertionError(f"no hostile variant of {payload[:80]!r} in 100 tries")

    # -- byte-level families (checked with ``refused``) -------------------------------------

    def _bit_flip(self, topic: str, payload: bytes) -> tuple[str, bytes]:
        data = bytearray(payload)
        for _ in range(self._rng.randint(1, 4)):
            data[self._rng.randrange(len(data))] ^= 1 << self._rng.randrange(8)
        return topic, bytes(data)

    def _truncate(self, topic: str, payload: bytes) -> tuple[str, bytes]:
        return topic, payload[: self._rng.randrange(len(payload))]

    def _junk(self, topic: str, payload: bytes) -> tuple[str, bytes]:
        at = self._rng.randrange(len(payload) + 1)
        junk = self._rng.choice([b"\x00", b"{", b"]", b'"', b"\\", b",", b"\n", b"\xff", b"NaN"])
        return topic, payload[:at] + junk + payload[at:]

    # -- families built to be refused -------------------------------------------------------

    def _body(self, payload: bytes) -> dict[str, Any]:
        body = json.loads(payload)
        assert isinstance(body, dict)
        return body

    def _deep_nesting(self, topic: str, payload: bytes) -> tuple[str, bytes]:
        opener, closer = self._rng.choice([(b"[", b"]"), (b'{"a":', b"}")])
        room = (self._max - len(payload) - 40) // (len(opener) + len(closer))
        depth = self._rng.randint(min(1_100, room), room)
        nested = opener * depth + b"1" + closer * depth
        field = self._rng.choice([b"extra", b"readings", b"data", b"quality"])
        return topic, payload[:-1] + b',"' + field + b'":' + nested + b"}"

    def _extreme_int(self, topic: str, payload: bytes) -> tuple[str, bytes]:
        body = self._body(payload)
        value = self._rng.choice(EXTREME_INTS)
        fields = [f for f in INT_FIELDS if f in body]
        if "type" in body:  # an event: its data may carry integers
            fields.append("data")
        target = self._rng.choice(fields)
        body[target] = {"n": value} if target == "data" else value
        return topic, json.dumps(body).encode()

    def _huge_number(self, topic: str, payload: bytes) -> tuple[str, bytes]:
        # A number literal beyond a double's range: non-finite once parsed.
        literal = self._rng.choice([b"1e400", b"-1e400", b"1" + b"0" * 400, b"9" * 1000])
        return topic, self._with_number(payload, literal)

    def _with_number(self, payload: bytes, literal: bytes) -> bytes:
        """``payload`` with its first reading (an event's value, a status's config version)
        spelled ``literal``."""
        body = self._body(payload)
        if "readings" in body:
            body["readings"][next(iter(body["readings"]))] = "__N__"
        elif "type" in body:
            body["value"] = "__N__"
        else:
            body["config_version"] = "__N__"
        return json.dumps(body).encode().replace(b'"__N__"', literal)

    def _wrong_type(self, topic: str, payload: bytes) -> tuple[str, bytes]:
        body = self._body(payload)
        key = self._rng.choice(list(body))
        options = [w for w in WRONG_TYPES if type(w) is not type(body[key])]
        body[key] = self._rng.choice(options)
        return topic, json.dumps(body).encode()

    def _missing_field(self, topic: str, payload: bytes) -> tuple[str, bytes]:
        body = self._body(payload)
        required = [k for k in ("v", "device_id", "ts", "boot_id", "seq", "readings") if k in body]
        del body[self._rng.choice(required)]
        return topic, json.dumps(body).encode()

    def _trailing_newline(self, topic: str, payload: bytes) -> tuple[str, bytes]:
        body = self._body(payload)
        key = self._rng.choice([k for k in ("device_id", "boot_id", "type") if k in body])
        body[key] = body[key] + "\n"
        return topic, json.dumps(body).encode()

    def _bad_topic(self, topic: str, payload: bytes) -> tuple[str, bytes]:
        _, _, district, kind, device_id, _ = topic.split("/")
        template = self._rng.choice(BAD_TOPIC_PARTS)
        return template.format(d=district, k=kind, i=device_id), payload

    def _oversized(self, topic: str, payload: bytes) -> tuple[str, bytes]:
        pad = b" " * (self._max + 1 - len(payload) + self._rng.randrange(64))
        return topic, payload[:-1] + pad + b"}"

    def _not_utf8(self, topic: str, payload: bytes) -> tuple[str, bytes]:
        at = self._rng.randrange(1, len(payload))
        bad = self._rng.choice([b"\xff", b"\xc3\x28", b"\xed\xa0\x80"])
        return topic, payload[:at] + bad + payload[at:]

    def _non_finite(self, topic: str, payload: bytes) -> tuple[str, bytes]:
        token = self._rng.choice([b"NaN", b"Infinity", b"-Infinity"])
        return topic, self._with_number(payload, token)


def interleave(
    valid: Sequence[tuple[str, bytes]],
    mutator: Mutator,
    *,
    hostile_per_valid: float = 1.0,
    duplicate_rate: float = 0.02,
    rng: random.Random | None = None,
) -> Iterator[tuple[str, bytes, str | None]]:
    """Valid messages in order with hostile ones (and exact duplicates) between them."""
    rng = rng or random.Random(0)
    for index, (topic, payload) in enumerate(valid):
        yield topic, payload, None
        count = int(hostile_per_valid) + (rng.random() < hostile_per_valid % 1)
        for _ in range(count):
            source_topic, source = valid[rng.randrange(index + 1)]
            hostile = mutator.mutate(source_topic, source)
            yield hostile.topic, hostile.payload, hostile.family
        if rng.random() < duplicate_rate:
            topic_again, payload_again = valid[rng.randrange(index + 1)]
            yield topic_again, payload_again, "duplicate"
