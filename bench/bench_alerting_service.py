"""Benchmark of the alerting service beside the ingester (not a test).

Both run as their own processes (``xiuhua alerting``, ``xiuhua ingest``) on one Mosquitto and
one InfluxDB, over 10,000 drain nodes with the default rule set, and both consume every reading.

1. **Latency, paced**: readings at each of ``--rates`` per second (default 10,000, each node
   once a second, then 2,000 from 2,000 nodes; event time = wall time) for ``--seconds``; a tenth
   of the nodes run surcharged for two readings in a row, which raises ``drain.overload`` to
   orange on the second. Latency is the time from
   publishing that second reading to a subscriber receiving its transition (so it includes the
   broker's delivery of the transition: an upper bound of reading publish -> transition publish).
2. **Highest rate, unpaced**: ``--n`` readings blasted as fast as the broker takes them; the time
   until the alerting service has evaluated them all and until the ingester has written them all
   (their Prometheus counters), as messages per second, and the ratio of the two.

3. **Cores used** by each process over each paced run (``/proc``): the alerting service, the
   ingester, Mosquitto, InfluxDB and this publisher share the machine, and the tail at a rate
   the service keeps up with alone is set by what the others leave it.

4. **The broker's share of the tail**: the first rate again, on a new broker that saves its
   state every ``--relaxed-autosave-s`` (60 s) instead of every second. Mosquitto writes its
   whole state (every session's queued and unacknowledged messages) in its one thread, and
   delivers nothing meanwhile.

The publisher writes pre-built PUBLISH packets over a raw socket (``ingest_blast``), so it is
not the bottleneck. Peak RSS of the alerting process is printed, per device.

    .venv/bin/python bench/bench_alerting_service.py [--quick]
"""

from __future__ import annotations

import argparse
import functools
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ingest_blast import BlastPublisher, publish_packets  # this script's own directory

from firmware_sim import make_fleet
from telemetry_core.kinds import DeviceKind
from telemetry_core.registry import Device, write_registry_csv
from telemetry_core.schema import AlertTransition, Telemetry, decode, encode
from tests.integration.ingest.kit import ingest_subprocess, prime_plain_session
from tests.integration.ingest.kit import write_config as ingest_config
from xiuhua.services import InfluxDB, Mosquitto, wait_until

DEVICES = 10_000
AUTOSAVE_S = 1
RELAXED_AUTOSAVE_S = 60


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def reading(device: Device, seq: int, ts_ms: int, fill: float, rng: random.Random) -> bytes:
    """A plausible drain reading (jittered, so no stuck-sensor rule fires)."""
    diameter = float(device.attributes.get("pipe_diameter_m", 0.6))
    readings = {
        "level_m": fill * diameter,
        "fill_ratio": fill,
        "flow_m3s": 0.01 + rng.random() * 0.01,
        "velocity_ms": 0.3 + rng.random() * 0.1,
        "cod_mgl": 250 + rng.random() * 50,
        "nh3n_mgl": 20 + rng.random() * 5,
        "battery_v": 3.6 + rng.random() * 0.05,
        "rssi_dbm": -80 - rng.random() * 5,
    }
    return encode(
        Telemetry(
            v=1, device_id=device.device_id, ts=ts_ms, seq=seq, boot_id="bench", readings=readings
        )
    )


def topic_of(device: Device) -> str:
    return f"xh/v1/{device.district}/{device.kind.value}/{device.device_id}/telemetry"


class Watcher:
    """Receives transitions; records when each (device, ts) orange arrived."""

    def __init__(self, broker: Mosquitto) -> None:
        self.arrived: dict[tuple[str, int], float] = {}
        self.count = 0
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-watcher")
        done = threading.Event()
        self._client.on_message = self._on_message
        self._client.on_subscribe = lambda *_a: done.set()
        self._client.connect(broker.host, broker.port)
        self._client.loop_start()
        self._client.subscribe("xh/v1/_alert/#", qos=1)
        assert done.wait(30)

    def _on_message(self, _c: object, _u: object, msg: mqtt.MQTTMessage) -> None:
        at = time.time()
        t = decode(msg.payload, AlertTransition)
        self.count += 1
        if t.tier_to == "orange" and t.tier_from == "none":
            self.arrived.setdefault((t.device_id, t.ts), at)

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


class Process:
    """A child process with a Prometheus endpoint, and one counter to read from it."""

    def __init__(self, child: subprocess.Popen[bytes], port: int, counter: str) -> None:
        self.child, self.port, self.counter = child, port, counter
        self._http = httpx.Client(timeout=5)

    def value(self) -> int:
        try:
            text = self._http.get(f"http://127.0.0.1:{self.port}/metrics").text
        except httpx.HTTPError:
            return 0
        for row in text.splitlines():
            if row.startswith(self.counter + " "):
                return int(float(row.split()[1]))
        return 0

    def snapshots(self) -> str:
        """How many engine snapshots the service took and their mean duration."""
        text = self._http.get(f"http://127.0.0.1:{self.port}/metrics").text
        values = {row.split()[0]: float(row.split()[1]) for row in text.splitlines()
                  if row.startswith("xiuhua_alerting_snapshot_seconds_")}  # fmt: skip
        count = values.get("xiuhua_alerting_snapshot_seconds_count", 0.0)
        total = values.get("xiuhua_alerting_snapshot_seconds_sum", 0.0)
        mean_ms = total / count * 1000 if count else float("nan")
        return f"engine snapshots (evaluation paused): {count:.0f}, mean {mean_ms:.0f} ms"

    def peak_rss_mb(self) -> float:
        for row in Path(f"/proc/{self.child.pid}/status").read_text().splitlines():
            if row.startswith("VmHWM:"):
                return int(row.split()[1]) / 1024
        return float("nan")

    def stop(self) -> None:
        self.child.terminate()
        self.child.wait(60)
        self._http.close()


def start_alerting(tmp: Path, broker: Mosquitto, fleet: Path) -> Process:
    port = free_port()
    config = tmp / "alerting.toml"
    config.write_text(
        f'[mqtt]\nurl = "{broker.url}"\n[registry]\npath = "{fleet}"\n[alerting]\n'
        f'state_url = "sqlite:///{tmp / "state.db"}"\nmetrics_port = {port}\n'
        "checkpoint_interval_s = 0.3\nstats_interval_s = 5.0\n",
        encoding="utf-8",
    )
    code = "from xiuhua.commands.alerting import app; app()"
    log = (tmp / "alerting.log").open("ab")
    child = subprocess.Popen(
        [sys.executable, "-c", code, "--config", str(config)], stdout=log, stderr=log
    )
    return Process(child, port, "xiuhua_alerting_evaluated_total")


def start_ingester(tmp: Path, broker: Mosquitto, influx: InfluxDB, fleet: Path) -> Process:
    port = free_port()
    influx.create_database("bench")
    config = ingest_config(
        tmp / "ingest.toml",
        fleet,
        broker.url,
        influx.url,
        "bench",
        metrics_port=port,
        shared_subscription=False,
        watch_broker_drops=False,
        stats_interval_s=5.0,
    )
    return Process(
        ingest_subprocess(config, tmp / "ingest.log"), port, "xiuhua_ingest_written_total"
    )


def warm_up(
    pub: BlastPublisher, fleet: list[Device], procs: list[Process], rng: random.Random
) -> int:
    """Publish one reading per device (they all start at normal) until both processes took it."""
    now_ms = int(time.time() * 1000) - 60_000
    msgs = [(topic_of(d), reading(d, 0, now_ms, 0.3, rng)) for d in fleet]
    pub.send(publish_packets(msgs))
    wait_until(lambda: all(p.value() >= len(msgs) for p in procs), timeout_s=300, interval_s=0.2)
    return len(msgs)


def paced(
    pub: BlastPublisher,
    fleet: list[Device],
    *,
    rate: int,
    seconds: int,
    first: int,
    used: set[int],
    rng: random.Random,
) -> tuple[dict[tuple[str, int], float], int]:
    """``rate`` readings a second from ``rate`` nodes (each once a second) for ``seconds``;
    a tenth of them (never crossed before) surcharged for two seconds in a row. Returns the publish
    time of each crossing's second reading, by (device, ts), and how many were sent."""
    nodes = list(range(min(len(fleet), rate)))
    fresh = [k for k in nodes if k not in used]
    # Each crossing node surcharges at its own second, so the timed transitions spread over
    # the whole run rather than its first seconds.
    crossing = {k: rng.randint(2, max(2, seconds - 1))
                for k in rng.sample(fresh, min(len(fresh), len(nodes) // 10))}  # fmt: skip
    used |= set(crossing)
    published: dict[tuple[str, int], float] = {}
    began, sent, total = time.monotonic(), 0, rate * seconds
    while sent < total:
        due = min(total, int((time.monotonic() - began) * rate)) - sent
        if due <= 0:
            time.sleep(0.002)
            continue
        now_ms = int(time.time() * 1000)
        msgs, marks = [], []
        for i in range(sent, sent + due):
            k, rnd = nodes[i % len(nodes)], 1 + i // len(nodes)
            start = crossing.get(k, -9)
            hot = rnd in (start, start + 1)
            fill = 1.2 if hot else 0.3
            msgs.append((topic_of(fleet[k]), reading(fleet[k], first + i, now_ms, fill, rng)))
            if hot and rnd == start + 1:
                marks.append((fleet[k].device_id, now_ms))
        at = time.time()
        pub.send(publish_packets(msgs, first=first + sent))
        for mark in marks:
            published[mark] = at
        sent += due
    return published, sent


def one_at_a_time(pub: BlastPublisher, fleet: list[Device], watcher: Watcher, *, first: int,
                  used: set[int], rng: random.Random, count: int = 40) -> int:  # fmt: skip
    """Latency of single crossings with nothing else flowing: the service's own share."""
    lat = []
    for k in range(len(fleet) - count, len(fleet)):
        device, base = fleet[k], int(time.time() * 1000)
        for j in (1, 2):
            at = time.time()
            msg = (topic_of(device), reading(device, first, base + j, 1.2, rng))
            pub.send(publish_packets([msg], first=first))
            first += 1
        key = (device.device_id, base + 2)
        wait_until(functools.partial(watcher.arrived.__contains__, key), timeout_s=60,
                   interval_s=0.001)  # fmt: skip
        lat.append((watcher.arrived[key] - at) * 1000)
        used.add(k)
    p50, p99 = np.percentile(np.array(lat), [50, 99])
    print(
        f"latency of {count} single crossings, nothing else flowing: p50 {p50:.1f} ms, "
        f"p99 {p99:.1f} ms, max {max(lat):.1f} ms"
    )
    return first


def cpu_seconds(pids: dict[str, int | None]) -> dict[str, float]:
    """CPU seconds (user + system) each process has used so far, from ``/proc``."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for name, pid in pids.items():
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        out[name] = (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    return out


def print_shares(before: dict[str, float], after: dict[str, float], wall_s: float) -> None:
    """What each process used of the machine's cores over a paced run: the tail at a rate
    the service keeps up with alone is set by what the others leave it."""
    used = {k: (after[k] - before[k]) / wall_s for k in after if k in before}
    parts = ", ".join(f"{k} {v:.2f}" for k, v in sorted(used.items(), key=lambda kv: -kv[1]))
    print(f"  cores used over it: {parts}; {sum(used.values()):.2f} of {os.cpu_count()}")


def _both_reached(alerting: Process, ingester: Process, count: int) -> bool:
    return alerting.value() >= count and ingester.value() >= count


def latency(watcher: Watcher, published: dict[tuple[str, int], float], rate: int,
            seconds: int, sent: int) -> None:  # fmt: skip
    """Wait for every timed transition and print p50/p99."""
    wait_until(lambda: all(k in watcher.arrived for k in published), timeout_s=300,
               interval_s=0.05)  # fmt: skip
    lat = np.array([(watcher.arrived[k] - t) * 1000 for k, t in published.items()])
    p50, p99 = np.percentile(lat, [50, 99])
    print(
        f"latency reading publish -> transition received at {rate:,}/s for {seconds} s "
        f"({sent:,} readings, {len(lat)} transitions timed): p50 {p50:.1f} ms, "
        f"p99 {p99:.1f} ms, max {lat.max():.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rates", type=int, nargs="+", default=[10_000, 2_000])
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument(
        "--relaxed-autosave-s", type=int, default=RELAXED_AUTOSAVE_S,
        help="then the first rate again on a broker saving its state this rarely (0: skip)",
    )  # fmt: skip
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.n, args.relaxed_autosave_s = 5, 30_000, 0
    rng = random.Random(1)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        fleet = make_fleet(None, DeviceKind.DRAIN, DEVICES, seed=1)
        print(f"broker: Mosquitto saving its state every {AUTOSAVE_S} s")
        with (
            Mosquitto(tmp / "mosquitto", autosave_interval_s=AUTOSAVE_S) as broker,
            InfluxDB(tmp / "influx") as influx,
        ):
            run(tmp / "a", broker, influx, fleet, rates=args.rates, seconds=args.seconds,
                blast_n=args.n, rng=rng)  # fmt: skip
        if args.relaxed_autosave_s:
            # Mosquitto saves its whole state (the sessions' queued and unacknowledged messages)
            # in its one thread: delivery stops meanwhile. The same load on a broker that saves
            # rarely shows how much of the tail is the broker's.
            print(f"broker: Mosquitto saving its state every {args.relaxed_autosave_s} s")
            with (
                Mosquitto(tmp / "mosquitto-b", autosave_interval_s=args.relaxed_autosave_s)
                as broker, InfluxDB(tmp / "influx-b") as influx,
            ):  # fmt: skip
                run(tmp / "b", broker, influx, fleet, rates=args.rates[:1],
                    seconds=args.seconds, blast_n=0, rng=rng)  # fmt: skip


def run(
    tmp: Path,
    broker: Mosquitto,
    influx: InfluxDB,
    fleet: list[Device],
    *,
    rates: list[int],
    seconds: int,
    blast_n: int,
    rng: random.Random,
) -> None:
    """Both processes on ``broker``: single crossings, each paced rate, then (if ``blast_n``)
    the highest rate; the alerting process's snapshots and peak RSS."""
    tmp.mkdir()
    write_registry_csv(fleet, tmp / "fleet.csv")
    # Both sessions exist before either process starts (building the engine over 10,000
    # devices takes seconds): the broker queues for them whatever comes first.
    filters = [f"xh/v1/+/+/+/{c}" for c in ("telemetry", "event", "status")]
    prime_plain_session(broker.host, broker.port, "xiuhua-alerting-alerting-1", filters)
    prime_plain_session(broker.host, broker.port, "xiuhua-xiuhua-ingest-ingest-1", filters)
    alerting = start_alerting(tmp, broker, tmp / "fleet.csv")
    ingester = start_ingester(tmp, broker, influx, tmp / "fleet.csv")
    watcher = Watcher(broker)
    pub = BlastPublisher(broker.host, broker.port, "bench-alerting-pub")
    try:
        first = warm_up(pub, fleet, [alerting, ingester], rng)
        used: set[int] = set()
        first = one_at_a_time(pub, fleet, watcher, first=first, used=used, rng=rng)
        shares = {"alerting": alerting.child.pid, "ingester": ingester.child.pid,
                  "mosquitto": broker.pid, "influxd": influx.pid,
                  "publisher (this process)": os.getpid()}  # fmt: skip
        for rate in rates:
            before, began = cpu_seconds(shares), time.monotonic()
            published, sent = paced(pub, fleet, rate=rate, seconds=seconds, first=first,
                                    used=used, rng=rng)  # fmt: skip
            after, wall_s = cpu_seconds(shares), time.monotonic() - began
            latency(watcher, published, rate, seconds, sent)
            print_shares(before, after, wall_s)
            first += sent
            wait_until(
                functools.partial(_both_reached, alerting, ingester, first),
                timeout_s=300,
                interval_s=0.1,
            )  # both drained before the next run
        if blast_n:
            blast(pub, fleet, alerting, ingester, n=blast_n, first=first, rng=rng)
        print(alerting.snapshots())
        rss = alerting.peak_rss_mb()
        print(
            f"alerting peak RSS {rss:.0f} MB ({rss * 1024 / DEVICES:.1f} KiB per device, "
            "default rule set, Python, paho and SQLAlchemy included)"
        )
    finally:
        pub.close()
        watcher.close()
        alerting.stop()
        ingester.stop()


def blast(
    pub: BlastPublisher,
    fleet: list[Device],
    alerting: Process,
    ingester: Process,
    *,
    n: int,
    first: int,
    rng: random.Random,
) -> None:
    base_ms = int(time.time() * 1000)
    msgs = [
        (
            topic_of(fleet[i % len(fleet)]),
            reading(
                fleet[i % len(fleet)],
                1000 + i // len(fleet),
                base_ms + i // len(fleet) * 10,
                0.3,
                rng,
            ),
        )
        for i in range(n)
    ]
    packets = publish_packets(msgs, first=first)
    a0, i0 = alerting.value(), ingester.value()
    began = time.monotonic()
    done: dict[str, float] = {}

    def both_done() -> bool:
        now = time.monotonic() - began
        if "alerting" not in done and alerting.value() - a0 >= n:
            done["alerting"] = now
        if "ingest" not in done and ingester.value() - i0 >= n:
            done["ingest"] = now
        return len(done) == 2

    pub.send(packets)
    wait_until(both_done, timeout_s=900, interval_s=0.05)
    rate_a, rate_i = n / done["alerting"], n / done["ingest"]
    print(
        f"highest rate, {n:,} readings unpaced: alerting {rate_a:,.0f}/s, ingester "
        f"{rate_i:,.0f}/s in the same run: ratio {rate_a / rate_i:.2f}"
    )


if __name__ == "__main__":
    main()
