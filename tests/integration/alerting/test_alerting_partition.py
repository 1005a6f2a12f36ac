"""Scale-out by partition: two instances, disjoint districts, one down delays only its own."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.integration.alerting.kit import (
    MIN_MS,
    Collector,
    Publisher,
    make_fleet,
    series,
    start_service,
    write_config,
)
from xiuhua.services import Mosquitto, wait_until

pytestmark = pytest.mark.integration


def test_two_partitioned_instances_split_the_districts_and_one_down_delays_only_its_own(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    fleet = tmp_path / "fleet.csv"
    make_fleet(fleet)
    configs = {
        district: write_config(
            tmp_path / f"{district}.toml",
            fleet,
            mosquitto.url,
            tmp_path / f"{district}.db",
            instance=f"al-{district}",
            districts=(district,),
        )
        for district in ("jiaojiang", "huangyan")
    }
    collector = Collector(mosquitto.host, mosquitto.port)
    publisher = Publisher(mosquitto.host, mosquitto.port)
    jj = start_service(configs["jiaojiang"])
    hy = start_service(configs["huangyan"])
    t0 = int(time.time() * 1000) - 60 * MIN_MS
    try:
        publisher.publish(series("dr-jj-000000", t0, [1.2]) + series("dr-hy-000000", t0, [1.2]))
        got = collector.wait_for(2)
        assert sorted(t.device_id for t in got) == ["dr-hy-000000", "dr-jj-000000"]
        wait_until(lambda: hy.counters.checkpoints >= 1 and hy.backlog == 0)
        assert (jj.counters.evaluated, hy.counters.evaluated) == (1, 1)  # each its own district
        hy.stop()
        publisher.publish(series("dr-jj-000001", t0, [1.2]) + series("dr-hy-000001", t0, [1.2]))
        third = collector.wait_for(3)[-1]
        assert third.device_id == "dr-jj-000001"  # the running instance is not held up
        assert all(t.device_id != "dr-hy-000001" for t in collector.unique())
        hy = start_service(configs["huangyan"])
        fourth = collector.wait_for(4)[-1]  # queued by the broker in hy's session meanwhile
        assert fourth.device_id == "dr-hy-000001"
        assert len(collector.received) == 4  # nobody evaluated a district twice
    finally:
        jj.stop()
        hy.stop()
        publisher.close()
        collector.close()


def test_a_changed_partition_drops_the_old_filters_of_its_session(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    fleet, db = tmp_path / "fleet.csv", tmp_path / "s.db"
    make_fleet(fleet)
    both = write_config(tmp_path / "both.toml", fleet, mosquitto.url, db, instance="al-x",
                        districts=("jiaojiang", "huangyan"))  # fmt: skip
    start_service(both).stop()  # the session now holds both districts' filters
    one = write_config(tmp_path / "one.toml", fleet, mosquitto.url, db, instance="al-x",
                       districts=("jiaojiang",))  # fmt: skip
    service = start_service(one)
    publisher = Publisher(mosquitto.host, mosquitto.port)
    t0 = int(time.time() * 1000) - 60 * MIN_MS
    try:
        publisher.publish(series("dr-hy-000000", t0, [1.2]) + series("dr-jj-000000", t0, [1.2]))
        wait_until(lambda: service.counters.evaluated >= 1)
    finally:
        service.stop()  # the counters are final once the processor has stopped
        publisher.close()
    # huangyan's reading, published first, never came (it would be refused as not ours).
    assert service.counters.received == 1
    assert service.counters.rejected == 0
