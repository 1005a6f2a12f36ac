"""Benchmark of the cloud ingester against the raw limits of this machine (not a test).

Prints, from one run: Mosquitto -> mosquitto_sub (QoS 1), InfluxDB /write of pre-built line
protocol in batches of 5,000, a naive bridge (one HTTP write per message), the ingester with one
and with two processes, and the latency of a paced run. Every rate is a drain of N messages
queued for a persistent session, so the publisher's speed is not part of any figure.

    .venv/bin/python bench/bench_ingest.py --n 100000
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.integration.ingest_kit import (
    Publisher,
    ingest_subprocess,
    make_fleet,
    payload,
    prime_session,
    topic_of,
    write_config,
)
from xiuhua.services import InfluxDB, Mosquitto, wait_until

DEVICES = 1000


def build_messages(fleet_path: Path, n: int) -> list[tuple[str, bytes]]:
    fleet = list(make_fleet(fleet_path, DEVICES))
    now_ms = int(time.time() * 1000)
    return [
        (topic_of(fleet[i % DEVICES]), payload(fleet[i % DEVICES].device_id, i // DEVICES,
                                               now_ms - 60_000 + i // DEVICES, (i % 500) / 100))
        for i in range(n)
    ]  # fmt: skip


def preload(broker: Mosquitto, msgs: list[tuple[str, bytes]]) -> None:
    pub = Publisher(broker.host, broker.port)
    for start in range(0, len(msgs), 10_000):
        assert pub.publish(msgs[start : start + 10_000], timeout_s=300) == min(
            10_000, len(msgs) - start
        )
    pub.close()


def bench_mosquitto_sub(broker: Mosquitto, msgs: list[tuple[str, bytes]]) -> float:
    base = ["mosquitto_sub", "-h", broker.host, "-p", str(broker.port), "-q", "1", "-c",
            "-i", "bench-sub", "-V", "mqttv5", "-x", "3600",
            "-t", "xh/v1/+/+/+/telemetry"]  # fmt: skip
    subprocess.run([*base, "-W", "1"], capture_output=True, check=False)
    preload(broker, msgs)
    began = time.monotonic()
    subprocess.run(
        [*base, "-C", str(len(msgs))], stdout=subprocess.DEVNULL, check=True, timeout=600
    )
    return len(msgs) / (time.monotonic() - began)


def bench_influx_raw(influx: InfluxDB, n: int) -> float:
    influx.create_database("raw")
    lines = [f"drain,device_id=drain-{i % DEVICES:05d},district=jiaojiang level_m={i % 500 / 100},"
             f"seq={i}i {1_764_000_000_000_000_000 + i * 1_000_000}" for i in range(n)]  # fmt: skip
    bodies = ["\n".join(lines[i : i + 5000]).encode() for i in range(0, n, 5000)]
    with httpx.Client(base_url=influx.url, timeout=60) as client:
        began = time.monotonic()
        for body in bodies:
            r = client.post("/write", params={"db": "raw", "precision": "ns"}, content=body)
            assert r.status_code == 204, r.text
        return n / (time.monotonic() - began)


def bench_naive(broker: Mosquitto, influx: InfluxDB, msgs: list[tuple[str, bytes]]) -> float:
    """One JSON parse and one HTTP write per message, auto-ack: the floor."""
    influx.create_database("naive")
    http = httpx.Client(base_url=influx.url, timeout=30)
    done = threading.Event()
    count = [0]

    def on_message(_c: mqtt.Client, _u: object, m: mqtt.MQTTMessage) -> None:
        doc = json.loads(m.payload)
        line = (
            f"drain,device_id={doc['device_id']} level_m={doc['readings']['level_m']} {doc['ts']}"
        )
        http.post("/write", params={"db": "naive", "precision": "ms"}, content=line.encode())
        count[0] += 1
        if count[0] == len(msgs):
            done.set()

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="naive")
    client.on_message = on_message
    client.connect(broker.host, broker.port)
    client.subscribe("xh/v1/+/+/+/telemetry", qos=1)
    client.loop_start()
    time.sleep(0.5)
    began = time.monotonic()
    preload(broker, msgs)
    done.wait(600)
    rate = len(msgs) / (time.monotonic() - began)
    client.disconnect()
    client.loop_stop()
    http.close()
    return rate


def peak_rss_mb(pid: int) -> float:
    for row in Path(f"/proc/{pid}/status").read_text().splitlines():
        if row.startswith("VmHWM:"):
            return int(row.split()[1]) / 1024
    return float("nan")


def bench_ingester(
    tmp: Path, broker: Mosquitto, influx: InfluxDB, msgs: list[tuple[str, bytes]], procs: int
) -> tuple[float, float]:
    db = f"ingest{procs}"
    influx.create_database(db)
    configs = []
    for k in range(procs):
        cfg = write_config(tmp / f"{db}-{k}.toml", tmp / "fleet.csv", broker.url, influx.url, db,
                           group=db, instance=f"{db}-{k}", batch_interval_s=0.2,
                           stats_interval_s=5.0)  # fmt: skip
        prime_session(broker.host, broker.port, f"xiuhua-{db}-{db}-{k}", db)
        configs.append(cfg)
    preload(broker, msgs)
    began = time.monotonic()
    children = [ingest_subprocess(cfg, tmp / f"{db}.log") for cfg in configs]
    wait_until(
        lambda: influx.count("drain", db, "level_m") >= len(msgs), timeout_s=900, interval_s=0.2
    )
    elapsed = time.monotonic() - began
    rss = max(peak_rss_mb(c.pid) for c in children)
    for child in children:
        child.terminate()
        child.wait(60)
    assert influx.count("drain", db, "level_m") == len(msgs), "loss!"
    return len(msgs) / elapsed, rss


def bench_latency(
    tmp: Path, broker: Mosquitto, influx: InfluxDB, rate: int, seconds: int
) -> dict[str, float]:
    db = "paced"
    influx.create_database(db)
    cfg = write_config(tmp / "paced.toml", tmp / "fleet.csv", broker.url, influx.url, db,
                       group=db, instance=db, stats_interval_s=1.0)  # fmt: skip
    prime_session(broker.host, broker.port, f"xiuhua-{db}-{db}", db)
    child = ingest_subprocess(cfg, tmp / "paced.log")
    fleet = list(make_fleet(tmp / "fleet.csv", DEVICES))
    wait_until(lambda: influx.count("ingest_stats", db) > 0, timeout_s=60)
    pub = Publisher(broker.host, broker.port)
    began = time.monotonic()
    sent = 0
    while sent < rate * seconds:
        due = int((time.monotonic() - began) * rate) - sent
        now_ms = int(time.time() * 1000)
        picks = [(fleet[(sent + i) % DEVICES], (sent + i) // DEVICES)
                 for i in range(max(0, min(due, rate * seconds - sent)))]  # fmt: skip
        batch = [(topic_of(d), payload(d.device_id, seq, now_ms, 1.0)) for d, seq in picks]
        pub.publish(batch)
        sent += len(batch)
        time.sleep(0.01)
    pub.close()
    wait_until(lambda: influx.count("drain", db, "level_m") >= sent, timeout_s=120)
    time.sleep(2.5)  # let one more stats point land
    child.terminate()
    child.wait(60)
    row = influx.query(
        "SELECT last(e2e_latency_ms_p50), last(e2e_latency_ms_p99) FROM ingest_stats", db
    )
    _, p50, p99 = row["results"][0]["series"][0]["values"][0]
    return {"rate": rate, "p50_ms": p50, "p99_ms": p99}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="messages per drain")
    parser.add_argument("--naive-n", type=int, default=3000)
    parser.add_argument("--paced-rate", type=int, default=5000, help="msg/s of the latency run")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_s, Mosquitto() as broker, InfluxDB() as influx:
        tmp = Path(tmp_s)
        msgs = build_messages(tmp / "fleet.csv", args.n)
        sub = bench_mosquitto_sub(broker, msgs)
        raw = bench_influx_raw(influx, args.n)
        naive = bench_naive(broker, influx, msgs[: args.naive_n])
        one, rss1 = bench_ingester(tmp, broker, influx, msgs, 1)
        two, rss2 = bench_ingester(tmp, broker, influx, msgs, 2)
        paced = bench_latency(tmp, broker, influx, args.paced_rate, 5)
    print(f"\nN = {args.n:,} single-reading messages from {DEVICES} devices, QoS 1")
    print(f"mosquitto -> mosquitto_sub      {sub:>10,.0f} msg/s")
    print(f"InfluxDB /write, 5000/batch     {raw:>10,.0f} points/s")
    print(f"naive bridge (N={args.naive_n})        {naive:>10,.0f} msg/s")
    print(f"xiuhua ingest, 1 process        {one:>10,.0f} msg/s  = {one / sub:.0%} of "
          f"mosquitto_sub, {one / naive:.0f}x naive, peak RSS {rss1:.0f} MiB")  # fmt: skip
    print(f"xiuhua ingest, 2 processes      {two:>10,.0f} msg/s  = {two / sub:.0%} of "
          f"mosquitto_sub, peak RSS {rss2:.0f} MiB per process at most")  # fmt: skip
    print(f"paced {paced['rate']:.0f} msg/s: ts -> ack p50 {paced['p50_ms']:.0f} ms, "
          f"p99 {paced['p99_ms']:.0f} ms")  # fmt: skip
    print("(ingester rates include interpreter start-up, about 1 s, and loss is checked by count)")


if __name__ == "__main__":
    main()
