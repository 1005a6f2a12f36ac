"""Print the simulator's hydrology figures quoted in docs/simulator.md (SWMM runs, ~1 minute).

    .venv/bin/python scripts/hydro_figures.py

Rain: peak (highest 5-minute intensity), wettest hour and total of every built-in storm. Drains:
under the typhoon, the share of manholes that overflow (city at 40 per district; Wenling at 300),
the first overflow, the fastest level rise per minute, the largest share of a district going from
normal (fill < 0.5) to surcharged within ten minutes; in dry weather the pipes running backwards;
and design storms on networks built to at least their return period.
"""

from __future__ import annotations

import numpy as np

from firmware_sim import list_scenarios, load_scenario, make_fleet
from firmware_sim._geo import DISTRICTS
from firmware_sim._network import Network, generate_network
from firmware_sim._rain import peak_mmh, wettest_mm
from firmware_sim._rainfield import RAIN_STEP_MIN, RainField, city_xy, event_mmh
from firmware_sim._scenario import Scenario
from firmware_sim._swmm import HydraulicResult, build_inp, prefixed, run_swmm
from telemetry_core.kinds import DeviceKind

START_S = 1_786_291_200.0


def _run(nets: list[Network], sc: Scenario) -> HydraulicResult:
    inp = build_inp(nets, RainField(sc, 1), START_S, sc.duration_s, sc.storm_surge)
    return run_swmm(inp, START_S, None, 1800)


def _rain() -> None:
    for info in list_scenarios():
        for k, event in enumerate(load_scenario(info.name).rain):
            s = event_mmh(event, k)
            hour, total = wettest_mm(s, RAIN_STEP_MIN), s.sum() * RAIN_STEP_MIN / 60
            print(  # noqa: T201
                f"rain {info.name}[{k}]: peak {peak_mmh(s):.1f} mm/h (5 min), "
                f"wettest hour {hour:.1f} mm, total {total:.1f} mm"
            )


def _spatial() -> None:
    sc = load_scenario("typhoon_rainstorm")
    field = RainField(sc, 1)
    gauges = [d for d in make_fleet(None, None, 9000, 1) if d.kind is DeviceKind.RAIN]
    xy = np.array([city_xy(d.lat, d.lon) for d in gauges])
    depth = field.depth_mm(xy[:, 0], xy[:, 1], sc.duration_s) / field.total_mm
    spread = []
    for name in DISTRICTS:
        mine = depth[[d.district == name for d in gauges]]
        spread.append(mine.max() / mine.min() - 1)
    lag = field.lag_s(xy[:, 0], xy[:, 1]) / 60
    print(  # noqa: T201
        f"typhoon at {len(gauges)} gauges: depth {depth.min():.2f}-{depth.max():.2f} x the "
        f"reference, within a district at most {max(spread):.0%} apart; arrival "
        f"{lag.min():+.0f} to {lag.max():+.0f} min"
    )


def _typhoon(nets: list[Network], label: str) -> None:
    res = _run(nets, load_scenario("typhoon_rainstorm"))
    names = {prefixed(n, j.name): (n, j) for n in nets for j in n.junctions}
    cols = [i for i, name in enumerate(res.node_names) if name in names]
    flooded = res.flooding_m3s[:, cols] > 1e-4
    first_h = res.times_s[int(np.argmax(flooded.any(axis=1)))] / 3600 if flooded.any() else np.nan
    depth = res.depth_m[:, cols]
    diameters = []
    for i in cols:
        net, j = names[res.node_names[i]]
        diameters.append(net.outgoing()[j.name].diameter_m)
    fill = depth / np.array(diameters)
    flips = max(((fill[k] < 0.5) & (fill[k + 10] > 1)).mean() for k in range(len(fill) - 10))
    print(f"typhoon {label}: {flooded.any(axis=0).mean():.1%} of {len(cols)} manholes overflow, "  # noqa: T201
          f"first at {first_h:.1f} h, fastest rise {np.diff(depth, axis=0).max():.2f} m/min, "
          f"at most {flips:.0%} of manholes normal->surcharged in 10 min")  # fmt: skip


def main() -> None:
    """Print every figure."""
    _rain()
    _spatial()
    city = [generate_network(name, 40) for name in DISTRICTS]
    _typhoon(city, "city, 40 per district")
    _typhoon([generate_network("wenling", 300)], "wenling, 300 nodes")
    dry = _run(city, load_scenario("normal_day"))
    back = (dry.flow_m3s < -1e-4).mean(axis=0)
    print(  # noqa: T201
        f"normal day: most backwards pipe {back.max():.1%} of the time; "
        f"{(back > 0.05).sum()} of {back.size} pipes backwards > 5 %"
    )
    for name, p in (("tiantai", 2.0), ("xianju", 5.0), ("jiaojiang", 1.0)):
        rain = [{"kind": "design_storm", "start_h": 1, "return_period_y": p, "duration_min": 120}]
        sc = Scenario(name="d", title="d", duration_h=6, rain=rain)  # type: ignore[arg-type]
        res = _run([generate_network(name, 40, min_return_y=p)], sc)
        print(  # noqa: T201
            f"design storm P={p} y on {name} built to >= {p} y: "
            f"{int((res.flooding_m3s > 1e-4).any(axis=0).sum())} manholes overflow"
        )


if __name__ == "__main__":
    main()
