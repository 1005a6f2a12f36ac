"""Benchmark of the cloud ingester against the raw limits of this machine (not a test).

Prints, from one run with the same N messages (1,000 drain nodes, one reading each, QoS 1):
Mosquitto -> mosquitto_sub, InfluxDB /write of pre-built line protocol in batches of 5,000, a
naive bridge (one HTTP write per message), the ingester with one and with two processes, the
ratios, p50/p99 latency (message ts -> batch ack) of a paced run, and peak RSS.

Method: every consumer is started and subscribed BEFORE the clock starts (a warm-up message
has come through it). The publisher writes pre-built PUBLISH packets over a raw socket, so it
is not the bottleneck. The clock runs from the first publish to the Nth message counted by
mosquitto_sub, or to the Nth point acknowledged by InfluxDB for the ingester (its Prometheus
``written`` counter, polled every 50 ms); loss is then checked by counting in InfluxDB.
The machine is shared, so the timed runs are repeated (``--repeat``) and medians printed.

    .venv/bin/python bench/bench_ingest.py --n 100000
"""

from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import msgspec
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# This script's own directory is on sys.path when it runs.
from ingest_blast import BlastPublisher, forget_session, publish_packets

from tests.integration.ingest.kit import (
    ingest_subprocess,
    make_fleet,
    payload,
    prime_session,
    topic_of,
)
from tests.integration.ingest.kit import write_config as ingest_config
from xiuhua.services import InfluxDB, Mosquitto, wait_until

DEVICES = 1000
FILTER = "xh/v1/+/+/+/telemetry"
WARM_TOPIC = "xh/v1/jiaojiang/drain/drain-00000/telemetry"


def build_messages(fleet_path: Path, n: int, now_ms: int) -> list[tuple[str, bytes]]:
    """N single-reading messages, round-robin over the fleet; every (device, ts) distinct."""
    fleet = list(make_fleet(fleet_path, DEVICES))
    return [
        (topic_of(fleet[i % DEVICES]), payload(fleet[i % DEVICES].device_id, i // DEVICES,
                                               now_ms - 60_000 + i // DEVICES, (i % 500) / 100))
        for i in range(n)
    ]  # fmt: skip


def warm_message(k: int, now_ms: int) -> tuple[str, bytes]:
    """The k-th warm-up message: a valid reading whose timestamp no measured message uses."""
    return WARM_TOPIC, payload("drain-00000", k, now_ms - 120_000 + k, 0.5, boot="warm")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def bench_mosquitto_sub(broker: Mosquitto, packets: list[bytes], now_ms: int, run: int) -> float:
    """mosquitto_sub -C N+1 at QoS 1 on a persistent session: the warm-up, then the timed N."""
    base = ["mosquitto_sub", "-h", broker.host, "-p", str(broker.port), "-q", "1", "-V", "mqttv5",
            "-c", "-i", f"bench-sub-{run}", "-x", "600", "-t", FILTER, "-F", "%m"]  # fmt: skip
    subprocess.run([*base, "-E"], check=True, timeout=30)  # session and subscription, then exit
    pub = BlastPublisher(broker.host, broker.port, f"bench-pub-sub-{run}")
    pub.send(publish_packets([warm_message(0, now_ms)]))  # queued for the session
    sub = subprocess.Popen([*base, "-C", str(len(packets) + 1)], stdout=subprocess.PIPE)
    assert sub.stdout is not None
    # mosquitto_sub flushes each message: the first line means it is connected and subscribed.
    assert sub.stdout.readline(), "mosquitto_sub did not receive the warm-up message"
    drain = threading.Thread(target=sub.stdout.read)
    drain.start()
    began = time.monotonic()
    pub.send(packets)
    sub.wait(600)
    elapsed = time.monotonic() - began
    drain.join()
    pub.close()
    forget_session(broker.host, broker.port, f"bench-sub-{run}")
    assert sub.returncode == 0, "mosquitto_sub did not count N messages"
    return len(packets) / elapsed


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
    """One JSON parse and one HTTP write per message, paho's auto-ack: the floor."""
    influx.create_database("naive")
    http = httpx.Client(base_url=influx.url, timeout=30)
    count, subscribed = [0], threading.Event()

    def on_message(_c: mqtt.Client, _u: object, m: mqtt.MQTTMessage) -> None:
        doc = msgspec.json.decode(m.payload)
        line = (
            f"drain,device_id={doc['device_id']} level_m={doc['readings']['level_m']} {doc['ts']}"
        )
        http.post("/write", params={"db": "naive", "precision": "ms"}, content=line.encode())
        count[0] += 1

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="naive")
    client.on_message = on_message
    client.on_subscribe = lambda *_a: subscribed.set()
    client.connect(broker.host, broker.port)
    client.subscribe(FILTER, qos=1)
    client.loop_start()
    assert subscribed.wait(30)
    pub = BlastPublisher(broker.host, broker.port, "bench-pub-naive")
    packets = publish_packets(msgs)
    began = time.monotonic()
    pub.send(packets)
    wait_until(lambda: count[0] >= len(msgs), timeout_s=600, interval_s=0.02)
    rate = len(msgs) / (time.monotonic() - began)
    pub.close()
    client.disconnect()
    client.loop_stop()
    http.close()
    return rate


class Ingesters:
    """``procs`` ingester processes on one shared subscription, each with a metrics port.

    Shared explicitly (the default is a plain subscription, partitions to scale out): the
    bench measures the split of one stream, which only ``$share`` gives on one district.

    Mosquitto 2.0 hands a shared subscription's messages round-robin to every member, online
    or not (checked here: two offline members of ``$share/g/...`` got 50 of 100 each), so
    the warm-up reaches every process.
    """

    def __init__(self, tmp: Path, broker: Mosquitto, influx: InfluxDB, name: str, procs: int,
                 **ingest: object) -> None:  # fmt: skip
        self.db, self.ports = name, [free_port() for _ in range(procs)]
        self._broker = broker
        self.client_ids = [f"xiuhua-{name}-{name}-{k}" for k in range(procs)]
        influx.create_database(name)
        self.children = []
        for k, port in enumerate(self.ports):
            # The session exists before the process starts, so no warm-up message is lost:
            # Mosquitto 2.0 queues a shared subscription's share for a member that is offline.
            prime_session(broker.host, broker.port, self.client_ids[k], name)
            config = ingest_config(
                tmp / f"{name}-{k}.toml", tmp / "fleet.csv", broker.url, influx.url, name,
                group=name, instance=f"{name}-{k}", metrics_port=port,
                shared_subscription=True, **ingest,
            )  # fmt: skip
            self.children.append(ingest_subprocess(config, tmp / f"{name}.log"))
        self._http = httpx.Client(timeout=5)

    def written(self) -> list[int]:
        """``xiuhua_ingest_written_total`` of each process (0 while it is starting)."""
        return [self._scrape(port) for port in self.ports]

    def _scrape(self, port: int) -> int:
        try:
            text = self._http.get(f"http://127.0.0.1:{port}/metrics").text
        except httpx.HTTPError:
            return 0
        for row in text.splitlines():
            if row.startswith("xiuhua_ingest_written_total "):
                return int(float(row.split()[1]))
        return 0

    def warm_up(self, pub: BlastPublisher, now_ms: int) -> int:
        """Publish warm-up messages until every process has written one; return how many."""
        sent = [0]

        def every_process_wrote() -> bool:
            if all(self.written()) and sum(self.written()) == sent[0]:
                return True
            pub.send(publish_packets([warm_message(sent[0], now_ms)], first=sent[0]))
            sent[0] += 1
            return False

        wait_until(every_process_wrote, timeout_s=120, interval_s=0.1)
        return sent[0]

    def peak_rss_mb(self) -> float:
        return max(_vm_hwm_mb(child.pid) for child in self.children)

    def stop(self) -> None:
        """SIGTERM every process, then drop their sessions so later runs do not feed them."""
        for child in self.children:
            child.terminate()
        for child in self.children:
            child.wait(60)
        self._http.close()
        for client_id in self.client_ids:
            forget_session(self._broker.host, self._broker.port, client_id)


def _vm_hwm_mb(pid: int) -> float:
    for row in Path(f"/proc/{pid}/status").read_text().splitlines():
        if row.startswith("VmHWM:"):
            return int(row.split()[1]) / 1024
    return float("nan")


def bench_ingester(tmp: Path, broker: Mosquitto, influx: InfluxDB, packets: list[bytes], *,
                   procs: int, now_ms: int, run: int) -> tuple[float, float]:  # fmt: skip
    """Messages per second from the first publish to the last point acknowledged; peak RSS."""
    ing = Ingesters(tmp, broker, influx, f"ingest{procs}x{run}", procs, stats_interval_s=5.0)
    pub = BlastPublisher(broker.host, broker.port, f"bench-pub-{procs}-{run}")
    warm = ing.warm_up(pub, now_ms)
    target = warm + len(packets)
    began = time.monotonic()
    pub.send(packets)
    wait_until(lambda: sum(ing.written()) >= target, timeout_s=900, interval_s=0.05)
    elapsed = time.monotonic() - began
    rss = ing.peak_rss_mb()
    pub.close()
    ing.stop()
    stored = influx.count("drain", ing.db, "level_m")
    assert stored == target, f"loss: {stored} stored, {target} published"
    return len(packets) / elapsed, rss


def bench_latency(tmp: Path, broker: Mosquitto, influx: InfluxDB, rate: int,
                  seconds: int) -> dict[str, float]:  # fmt: skip
    """p50/p99 of message ts -> ack while publishing ``rate`` msg/s for ``seconds``."""
    ing = Ingesters(tmp, broker, influx, "paced", 1, stats_interval_s=1.0)
    pub = BlastPublisher(broker.host, broker.port, "bench-pub-paced")
    warm = ing.warm_up(pub, int(time.time() * 1000))
    fleet = list(make_fleet(tmp / "fleet.csv", DEVICES))
    began, sent, total = time.monotonic(), 0, rate * seconds
    while sent < total:
        due = min(total, int((time.monotonic() - began) * rate)) - sent
        now_ms = int(time.time() * 1000)
        msgs = [(topic_of(fleet[(sent + i) % DEVICES]),
                 payload(fleet[(sent + i) % DEVICES].device_id, 10 + (sent + i) // DEVICES,
                         now_ms, 1.0)) for i in range(max(due, 0))]  # fmt: skip
        pub.send(publish_packets(msgs, first=warm + sent))
        sent += len(msgs)
        time.sleep(0.005)
    wait_until(lambda: sum(ing.written()) >= warm + total, timeout_s=120, interval_s=0.02)
    stats_before = influx.count("ingest_stats", "paced")
    wait_until(lambda: influx.count("ingest_stats", "paced") >= stats_before + 2, timeout_s=30)
    rss = ing.peak_rss_mb()
    pub.close()
    ing.stop()
    row = influx.query(
        "SELECT last(e2e_latency_ms_p50), last(e2e_latency_ms_p99) FROM ingest_stats", "paced"
    )
    _, p50, p99 = row["results"][0]["series"][0]["values"][0]
    return {"rate": rate, "p50_ms": p50, "p99_ms": p99, "rss_mb": rss}


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="messages per timed run")
    parser.add_argument("--naive-n", type=int, default=2000)
    parser.add_argument("--paced-rate", type=int, default=10_000, help="msg/s of the latency run")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs; medians are printed")
    parser.add_argument("--quick", action="store_true", help="N = 20,000, one run, short paced run")
    args = parser.parse_args()
    n, paced_s = (20_000, 3) if args.quick else (args.n, 5)
    if args.quick:
        args.repeat = 1
    with tempfile.TemporaryDirectory() as tmp_s, Mosquitto() as broker, InfluxDB() as influx:
        tmp = Path(tmp_s)
        now_ms = int(time.time() * 1000)
        msgs = build_messages(tmp / "fleet.csv", n, now_ms)
        packets = publish_packets(msgs)
        runs: dict[str, list[float]] = {
            "sub": [],
            "one": [],
            "two": [],
            "one_rss": [],
            "two_rss": [],
        }
        for run in range(args.repeat):  # interleaved, so drifting load hits every figure alike
            runs["sub"].append(bench_mosquitto_sub(broker, packets, now_ms, run))
            for key, procs in (("one", 1), ("two", 2)):
                rate, rss = bench_ingester(tmp, broker, influx, packets, procs=procs,
                                           now_ms=now_ms, run=run)  # fmt: skip
                runs[key].append(rate)
                runs[f"{key}_rss"].append(rss)
        fig = {key: statistics.median(values) for key, values in runs.items()}
        fig["raw"] = bench_influx_raw(influx, n)
        fig["naive"] = bench_naive(broker, influx, msgs[: args.naive_n])
        paced = bench_latency(tmp, broker, influx, args.paced_rate, paced_s)
        fig |= {"paced_rate": paced["rate"], "p50_ms": paced["p50_ms"],
                "p99_ms": paced["p99_ms"], "paced_rss": paced["rss_mb"]}  # fmt: skip
    report(fig, n, args.naive_n)
    print("runs (msg/s): " + "; ".join(
        f"{key} " + ", ".join(f"{v:,.0f}" for v in runs[key]) for key in ("sub", "one", "two")
    ))  # fmt: skip


def report(fig: dict[str, float], n: int, naive_n: int) -> None:
    """Print the figures and their ratios."""
    sub, raw, naive = fig["sub"], fig["raw"], fig["naive"]
    print(f"\nN = {n:,} single-reading messages from {DEVICES} devices, QoS 1; consumers "
          "subscribed before the clock; raw-socket publisher; medians of the runs")  # fmt: skip
    print(f"mosquitto -> mosquitto_sub      {sub:>10,.0f} msg/s")
    print(f"InfluxDB /write, 5000/batch     {raw:>10,.0f} points/s")
    print(f"naive bridge (N={naive_n:,})       {naive:>10,.0f} msg/s")
    for label, key in (("1 process  ", "one"), ("2 processes", "two")):
        rate, rss = fig[key], fig[f"{key}_rss"]
        print(f"xiuhua ingest, {label}    {rate:>10,.0f} msg/s  = {rate / sub:.0%} of "
              f"mosquitto_sub, {rate / raw:.0%} of InfluxDB, {rate / naive:.0f}x naive, "
              f"peak RSS {rss:.0f} MiB (largest process)")  # fmt: skip
    print(f"paced {fig['paced_rate']:,.0f} msg/s (1 process): ts -> ack p50 "
          f"{fig['p50_ms']:.0f} ms, p99 {fig['p99_ms']:.0f} ms, "
          f"peak RSS {fig['paced_rss']:.0f} MiB")  # fmt: skip
    print("(end to end: first publish -> last point acknowledged by InfluxDB; no loss: counted)")


if __name__ == "__main__":
    main()
