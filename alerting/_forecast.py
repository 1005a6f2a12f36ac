"""The hydraulic forecast: where the network will flood in the next hour, from the gauges' rain.

Every ``STEP_S`` of event time while it rains (``issue``), the forecaster

1. brings its SWMM model of the network (``_swmm_model.py``) up to the issue time ``T`` on the
   rain the gauges measured (from the model state it saved at the previous issue, a SWMM
   hotstart file, or cold from the oldest rain the engine holds, four hours back);
2. runs it on from ``T`` for ``HORIZON_S`` under the rain the gauges' nowcast expects
   (``_nowcast.py``: a gauge whose rain follows an up-wind gauge's by a learnt lag gets that
   gauge's measured rain; beyond what has been measured up-wind, or at a gauge without such a
   match, the rain goes on at its last ten minutes' mean for the scenario's ``persist_s``, then
   stops), once per scenario the rules ask for;
3. keeps, per junction and scenario, the water's distance below the cover (negative: flooding)
   at each minute of the hour ahead.

Only readings up to ``T`` enter an issue, issues fall on multiples of ``STEP_S``, the engine
starts one once event time is ``ISSUE_DELAY_S`` past its boundary (the boundary's readings are
in by then), and an issue takes effect at ``T + EFFECT_S`` of event time (the engine waits for
it there if its runs are not done), so a live run, a replay and a restart give the same
forecasts however their ticks fall (a restart re-runs the
model cold from the rain it restored). The runs go on in a thread of the forecaster's own
while the engine evaluates on; SWMM itself runs in a child process (``_forecast_worker.py``):
one model per process, and C code that holds no GIL of the engine's. A failed or overdue run
logs why, leaves no forecast standing (a ``forecast`` condition is then false), and the next
issue starts cold.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time
import weakref
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, NamedTuple

import numpy as np
import structlog

from alerting._network import Network
from alerting._nowcast import Match, Nowcast, Rain, coherent, window_mean
from alerting._swmm_model import RAIN_STEP_S, StaticModel, model_text, static_model

log = structlog.get_logger()

STEP_S: Final = 300.0
HORIZON_S: Final = 3600.0
MIN_LAG_S: Final = 1200.0
"""Up-wind matches are learnt at lags of 20 min or more (nearer gauges share their rain)."""
STORM_MMH: Final = 0.5
"""Below this at every gauge for the whole window: dry weather, no forecast is run."""
PERSIST_MEAN_S: Final = 600.0
TIMEOUT_S: Final = 120.0
ISSUE_DELAY_S: Final = 30.0
"""The issue of boundary ``T`` starts once event time reaches ``T + ISSUE_DELAY_S``: by then the
readings up to ``T`` are in, live (where they arrive late by their transit) as in a replay."""
EFFECT_S: Final = 60.0
"""An issue at ``T`` takes effect at ``T + EFFECT_S`` of event time (its first forecast minute),
so its SWMM runs (a few tenths of a second) never hold up the evaluation of live readings."""


@dataclass(frozen=True, slots=True)
class NodeForecast:
    """One junction's forecast: issued at ``issued_s``; ``freeboard_m[k]`` is the water's
    distance below the cover at ``issued_s + 60·(k+1)`` (negative: flooding the street)."""

    issued_s: float
    freeboard_m: tuple[float, ...]

    def first_within(self, t: float, within_s: float, margin_m: float) -> float | None:
        """Seconds from ``t`` to the first forecast minute in ``(t, t + within_s]`` whose
        freeboard is at most ``margin_m``; ``None`` if none is."""
        for k, fb in enumerate(self.freeboard_m):
            at = self.issued_s + RAIN_STEP_S * (k + 1)
            if at <= t:
                continue
            if at - t > within_s:
                return None
            if fb <= margin_m:
                return at - t
        return None


class ForecastError(RuntimeError):
    """A SWMM run failed or took too long."""


@dataclass(slots=True)
class _Worker:
    proc: subprocess.Popen[str]

    @classmethod
    def start(cls) -> _Worker:
        script = Path(__file__).with_name("_forecast_worker.py")
        env = {**os.environ, "XIUHUA_FORECAST_PARENT": str(os.getpid())}
        proc = subprocess.Popen(
            [sys.executable, str(script)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, text=True, env=env,
        )  # fmt: skip
        return cls(proc)

    def run(self, inp: Path, report: Sequence[str], timeout_s: float) -> dict[str, object]:
        stdin, stdout = self.proc.stdin, self.proc.stdout
        if stdin is None or stdout is None:
            raise ForecastError("the forecast worker has no pipes")
        try:
            stdin.write(json.dumps({"inp": str(inp), "report": list(report)}) + "\n")
            stdin.flush()
        except (BrokenPipeError, OSError) as exc:
            raise ForecastError(f"the forecast worker is gone (exit {self.proc.poll()})") from exc
        ready, _, _ = select.select([stdout], [], [], timeout_s)
        if not ready:
            raise ForecastError(f"a SWMM run exceeded {timeout_s:.0f} s")
        line = stdout.readline()
        if not line:
            raise ForecastError(f"the forecast worker died (exit {self.proc.wait()})")
        reply: dict[str, object] = json.loads(line)
        if not reply.get("ok"):
            raise ForecastError(f"SWMM: {reply.get('error')}")
        return reply

    def close(self) -> None:
        """End of its stdin ends the worker; one that does not end in 5 s is killed."""
        try:
            if self.proc.stdin is not None:
                self.proc.stdin.close()
            self.proc.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def minute_bins(points: Iterable[tuple[float, float]], start_s: float, minutes: int) -> list[float]:
    """Mean intensity per minute from ``start_s``: a reading at ``ts`` is the rain of the
    minute ending at ``ts``."""
    total, count = np.zeros(minutes), np.zeros(minutes)
    for ts, mmh in points:
        k = math.ceil((ts - start_s) / RAIN_STEP_S) - 1
        if 0 <= k < minutes:
            total[k] += mmh
            count[k] += 1
    return [float(v) for v in np.divide(total, count, out=np.zeros(minutes), where=count > 0)]


def future_rain(
    rain: Rain, gauges: Sequence[str], matches: Mapping[str, Match], t: float, persist_s: float
) -> dict[str, list[float]]:
    """Per gauge, the rain of each minute of the hour after ``t`` by the nowcast: an up-wind
    match's measured rain, lagged and scaled (followed up-wind while it leads further ahead),
    else the last ten minutes' mean for ``persist_s``, then none."""
    minutes = int(HORIZON_S // RAIN_STEP_S)
    own = {g: window_mean(rain.get(g, ()), t, PERSIST_MEAN_S) or 0.0 for g in rain}

    def at(g: str, when: float, hops: int) -> float:
        if when <= t:
            return window_mean(rain.get(g, ()), when, RAIN_STEP_S) or 0.0
        m = matches.get(g)
        if m is not None and hops < len(matches):
            return m.scale * at(m.source, when - m.lag_s, hops + 1)
        return own.get(g, 0.0) if when - t <= persist_s else 0.0

    return {g: [at(g, t + RAIN_STEP_S * (k + 1), 0) for k in range(minutes)] for g in gauges}


class ForecastCounts(NamedTuple):
    """What the forecast did so far (cumulative), for metrics and reports."""

    runs: int
    failures: int
    seconds: float
    """Wall time the forecast thread spent on issues (SWMM and the files it reads)."""
    waited_s: float
    """Wall time evaluation waited for an issue at its effect time."""


@dataclass(frozen=True, slots=True)
class _Pending:
    """An issue whose SWMM runs go on in the forecast thread; it stands from ``effect_s``."""

    at: float
    sighted: frozenset[str]
    job: Future[dict[float, dict[str, NodeForecast]]] | None
    """``None``: a dry issue, which only clears the forecast."""

    @property
    def effect_s(self) -> float:
        return self.at + EFFECT_S


@dataclass
class Forecaster:
    """The network's forecast, issued each ``STEP_S`` while it rains (module doc).

    An issue is prepared on the engine's thread (the rain up to ``T``, the nowcast) and its
    SWMM runs go on in a thread of the forecaster's own, while the engine evaluates on. The
    forecast takes effect at event time ``T + EFFECT_S``: the engine applies it before the
    first reading or tick at or after that time, waiting for the runs if they are not done,
    so every run of the same readings sees each forecast from the same reading on.
    """

    network: Network
    scenarios: tuple[float, ...]
    """The ``persist_s`` of each scenario the rules ask for."""
    model: StaticModel
    timeout_s: float = TIMEOUT_S
    forecasts: dict[float, dict[str, NodeForecast]] = field(default_factory=dict)
    next_issue_s: float = -math.inf
    runs: int = 0
    failures: int = 0
    last_error: str | None = None
    seconds: float = 0.0
    """Wall time the forecast thread spent on issues (SWMM and the files it reads)."""
    waited_s: float = 0.0
    """Wall time the engine waited for an issue to finish at its effect time."""
    sighted: frozenset[str] = frozenset()
    """The gauges whose rain an up-wind gauge measured, by the forecast standing."""
    _worker: _Worker | None = None
    _tmp: Path | None = None
    _hot: tuple[float, Path] | None = None
    """The model state saved at the last issue: its time and hotstart file."""
    _pool: ThreadPoolExecutor | None = None
    _pending: _Pending | None = None

    @classmethod
    def for_network(cls, network: Network, scenarios: Iterable[float]) -> Forecaster | None:
        """A forecaster if the network file describes a whole district and names gauges."""
        model = static_model(network)
        wanted = tuple(sorted(set(scenarios)))
        if model is None or not wanted:
            return None
        return cls(network, wanted, model)

    def sees_rain_coming(self, node: str) -> bool:
        """Whether the rain at ``node``'s gauge was measured up-wind, by the forecast standing."""
        gauge = self.model.gauge_of.get(node)
        return gauge is not None and gauge in self.sighted

    def due(self, t: float) -> bool:
        return t >= self.next_issue_s

    @property
    def effect_s(self) -> float:
        """When the pending issue takes effect (infinite: none is pending)."""
        return math.inf if self._pending is None else self._pending.effect_s

    def counts(self) -> ForecastCounts:
        return ForecastCounts(self.runs, self.failures, self.seconds, self.waited_s)

    def issue(self, t: float, rain: Rain, nowcast: Nowcast) -> None:
        """Start the issue of the last step boundary at or before ``t`` (module doc); it takes
        effect at ``settle``."""
        self.settle()  # the issue before took effect long ago (EFFECT_S < STEP_S)
        at = t // STEP_S * STEP_S
        self.next_issue_s = at + STEP_S
        known = {g: deque((ts, v) for ts, v in points if ts <= at) for g, points in rain.items()}
        if not any(v >= STORM_MMH for points in known.values() for _, v in points):
            self._hot = None
            self._pending = _Pending(at, frozenset(), None)
        else:
            matches = coherent(nowcast.matches_at(known, at, MIN_LAG_S), self.network.rain_gauges)
            futures = {
                p: future_rain(known, self.model.gauges, matches, at, p) for p in self.scenarios
            }
            if self._pool is None:
                self._pool = ThreadPoolExecutor(1, thread_name_prefix="xiuhua-forecast")
                weakref.finalize(self, self._pool.shutdown, wait=False)
            job = self._pool.submit(self._run, at, known, futures)
            self._pending = _Pending(at, frozenset(matches), job)

    def settle(self) -> None:
        """Let the pending issue take effect, waiting for its runs if need be. A failed one
        leaves no forecast standing; the next issue starts cold."""
        pending, self._pending = self._pending, None
        if pending is None:
            return
        if pending.job is None:
            self.forecasts, self.sighted = {}, frozenset()
            return
        began = time.perf_counter()
        try:
            out = pending.job.result()
        except Exception as exc:  # a forecast that fails leaves none standing
            self.failures += 1
            self.last_error = f"forecast at {pending.at:.0f} failed: {exc}"
            log.warning(
                "forecast_failed", issued_s=pending.at, error=str(exc),
                effect="no forecast stands until the next issue, which starts cold",
                exc_info=not isinstance(exc, _EXPECTED),
            )  # fmt: skip
            self.forecasts, self.sighted = {}, frozenset()
        else:
            self.runs += 1
            self.forecasts, self.sighted = out, pending.sighted
        finally:
            self.waited_s += time.perf_counter() - began

    def _run(
        self, at: float, rain: Rain, futures: Mapping[float, Mapping[str, list[float]]]
    ) -> dict[float, dict[str, NodeForecast]]:
        """The forecast thread's part of an issue: the analysis run up to ``at``, then one
        forecast run per scenario. On any failure the model state is dropped."""
        began = time.perf_counter()
        try:
            return self._runs(at, rain, futures)
        except BaseException:
            self._hot = None
            self._stop_worker()
            raise
        finally:
            self.seconds += time.perf_counter() - began

    def _runs(
        self, at: float, rain: Rain, futures: Mapping[float, Mapping[str, list[float]]]
    ) -> dict[float, dict[str, NodeForecast]]:
        if self._worker is None:
            self._worker = _Worker.start()
            weakref.finalize(self, self._worker.close)
        worker = self._worker
        if self._tmp is None:
            self._tmp = Path(tempfile.mkdtemp(prefix="xiuhua-forecast-"))
            weakref.finalize(self, shutil.rmtree, self._tmp, ignore_errors=True)
        tmp = self._tmp
        hot_in = None
        if self._hot is not None and self._hot[0] == at - STEP_S:
            start, hot_in = self._hot
        else:
            first = min((ts for points in rain.values() for ts, _ in points), default=at)
            start = min(first // RAIN_STEP_S * RAIN_STEP_S - RAIN_STEP_S, at - STEP_S)
        minutes = int((at - start) // RAIN_STEP_S)
        measured = {g: minute_bins(rain.get(g, ()), start, minutes) for g in self.model.gauges}
        hot_out = tmp / f"state-{int(at)}.hsf"
        text = model_text(
            self.model, start, at, measured,
            use_hotstart=str(hot_in) if hot_in else None, save_hotstart=str(hot_out),
        )  # fmt: skip
        inp = tmp / "analysis.inp"
        inp.write_text(text, encoding="utf-8")
        worker.run(inp, (), self.timeout_s)
        if hot_in is not None:
            hot_in.unlink(missing_ok=True)
        self._hot = (at, hot_out)
        report = [j.id for j in self.model.junctions]
        depth_of = {j.id: j.depth_m for j in self.model.junctions}
        out: dict[float, dict[str, NodeForecast]] = {}
        for persist, future in futures.items():
            fc = tmp / "forecast.inp"
            fc.write_text(model_text(self.model, at, at + HORIZON_S, future,
                                     use_hotstart=str(hot_out)), encoding="utf-8")  # fmt: skip
            reply = worker.run(fc, report, self.timeout_s)
            depth, flood = reply["depth"], reply["flooding"]
            if not isinstance(depth, dict) or not isinstance(flood, dict):
                raise ForecastError("the forecast worker replied without depths")
            out[persist] = {
                n: NodeForecast(at, _freeboard(depth_of[n], depth[n], flood[n])) for n in report
            }
        return out

    def _stop_worker(self) -> None:
        worker, self._worker = self._worker, None
        if worker is not None:
            worker.close()

    def close(self) -> None:
        """Stop the worker (a run in progress fails at once), the thread, and remove the
        model files."""
        worker = self._worker
        if worker is not None:
            worker.proc.kill()
        # A pending issue is dropped unapplied: the kill just ended its run, which is no news.
        pending, self._pending = self._pending, None
        if pending is not None and pending.job is not None:
            with contextlib.suppress(Exception):
                pending.job.result()
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        self._stop_worker()
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None


_EXPECTED = (ForecastError, OSError, ValueError, KeyError)
"""What a failed run raises; anything else is logged with its traceback."""


def _freeboard(
    depth_m: float, depths: Sequence[float], flooding: Sequence[float]
) -> tuple[float, ...]:
    """The water's distance below the cover; above it (ponding on the street) negative, and
    at least a millimetre above it while the manhole overflows."""
    return tuple(
        round(min(depth_m - d, -0.001) if f > 0 else depth_m - d, 4)
        for d, f in zip(depths, flooding, strict=True)
    )
