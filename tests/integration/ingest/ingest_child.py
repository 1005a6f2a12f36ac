"""``xiuhua ingest`` exactly as shipped, with one injected fault: a sink with a bug.

Run as ``python -m tests.integration.ingest.ingest_child --config FILE``. The sink raises a
``RuntimeError`` (not a ``SinkError``: a bug, not an outage) for any body that holds
``level_m=666.0``, so the writer thread dies while the rest of the process would live on.
"""

from __future__ import annotations

import cloud_ingest._app
from cloud_ingest._sinks import Sink
from telemetry_core.settings import InfluxSettings
from xiuhua.commands.ingest import app

POISON_READING = b"level_m=666.0"

_real_build_sink = cloud_ingest._app.build_sink


class BuggySink:
    """Delegates to the real sink, except for the poison reading."""

    def __init__(self, inner: Sink) -> None:
        self._inner = inner

    def start(self) -> None:
        """Start the real sink."""
        self._inner.start()

    def write(self, body: bytes) -> None:
        """Write, or fail the way a bug would."""
        if POISON_READING in body:
            raise RuntimeError("injected bug in the sink")
        self._inner.write(body)

    def close(self) -> None:
        """Close the real sink."""
        self._inner.close()


def _buggy_build_sink(settings: InfluxSettings) -> Sink:
    return BuggySink(_real_build_sink(settings))


if __name__ == "__main__":
    cloud_ingest._app.build_sink = _buggy_build_sink
    app()
