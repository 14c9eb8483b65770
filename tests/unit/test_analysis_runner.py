"""analysis/runner.py: scheduling, phase transitions, retention, terminate and ttl, driven by a fake clock."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest

from analysis.phases import AnalysisPhase as P
from analysis.providers.base import Measurement, format_time
from analysis.runner import (
    TERMINATED_MESSAGE,
    assess,
    due_tasks,
    metric_specs,
    next_wake,
    prepare_status,
    record_measurement,
    terminated,
    ttl_deadline,
)

T0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


def metric(name: str = "m", **extra: Any) -> dict[str, Any]:
    return {"name": name, "provider": {"web": {"url": "http://127.0.0.1/"}}, **extra}


def done(phase: P, now: dt.datetime, message: str = "") -> Measurement:
    return Measurement(phase, value="1", message=message, started_at=format_time(now), finished_at=format_time(now))


class Sim:
    """Runs the controller's loop over the pure runner: wake at next_wake, measure what is due."""

    def __init__(
        self, spec: dict[str, Any], outcomes: dict[str, Callable[[int], P]], args: dict[str, str] | None = None
    ) -> None:
        self.spec = spec
        self.args = args or {}
        self.outcomes = outcomes
        self.status: dict[str, Any] = {}
        self.taken: dict[str, list[float]] = {n: [] for n in outcomes}
        self.now = T0

    def step(self) -> None:
        metrics = metric_specs(self.spec, self.args)
        status = prepare_status(self.spec, self.status, self.now)
        for task in due_tasks(self.spec, status, self.now, metrics):
            if task.terminate and task.in_flight is not None:
                record_measurement(status, task.name, terminated(task.in_flight, self.now))
                continue
            n = len(self.taken[task.name])
            self.taken[task.name].append((self.now - T0).total_seconds())
            phase = self.outcomes[task.name](n)
            if phase is P.RUNNING:
                record_measurement(status, task.name, Measurement(P.RUNNING, started_at=format_time(self.now)))
            else:
                record_measurement(status, task.name, done(phase, self.now, "boom" if phase is P.ERROR else ""))
        stop = assess(self.spec, status, self.now, metrics)
        for name in stop:
            flying = Measurement.from_status(next(r for r in status["metricResults"] if r["name"] == name)[
                "measurements"][-1])
            record_measurement(status, name, terminated(flying, self.now))
        if stop:
            assert assess(self.spec, status, self.now, metrics) == []
        self.status = status

    def run(self, limit: float = 120.0) -> dict[str, Any]:
        for _ in range(500):
            self.step()
            wake = next_wake(self.spec, self.status, metric_specs(self.spec, self.args))
            if self.status["phase"] not in ("Running", "Pending") or wake is None:
                break
            self.now = max(wake, self.now)
            if (self.now - T0).total_seconds() > limit:
                break
        return self.status


def seq(*phases: P) -> Callable[[int], P]:
    return lambda n: phases[min(n, len(phases) - 1)]


def result(status: dict[str, Any], name: str = "m") -> dict[str, Any]:
    return next(r for r in status["metricResults"] if r["name"] == name)


@pytest.mark.parametrize(
    ("m", "outcomes", "phase", "times", "message"),
    [
        (metric(), seq(P.SUCCESSFUL), P.SUCCESSFUL, [0], None),
        (metric(interval="5s", count=3), seq(P.SUCCESSFUL), P.SUCCESSFUL, [0, 5, 10], None),
        (metric(interval="5s", count=3, initialDelay="7s"), seq(P.SUCCESSFUL), P.SUCCESSFUL, [7, 12, 17], None),
        (metric(interval="2s", count=5, failureLimit=1), seq(P.FAILED), P.FAILED, [0, 2],
         'Metric "m" assessed Failed due to failed (2) > failureLimit (1)'),
        (metric(interval="2s", count=5, failureLimit=-1), seq(P.FAILED), P.SUCCESSFUL, [0, 2, 4, 6, 8], None),
        (metric(interval="2s", count=3, inconclusiveLimit=1), seq(P.INCONCLUSIVE), P.INCONCLUSIVE, [0, 2],
         'Metric "m" assessed Inconclusive due to inconclusive (2) > inconclusiveLimit (1)'),
        # Errors retry after min(interval, 10s) and do not use up the count; Error only past the limit.
        (metric(interval="30s", count=2), seq(P.ERROR), P.ERROR, [0, 10, 20, 30, 40],
         'Metric "m" assessed Error due to consecutiveErrors (5) > consecutiveErrorLimit (4): "Error Message: boom"'),
        (metric(interval="1s", count=2, consecutiveErrorLimit=1), seq(P.ERROR), P.ERROR, [0, 1], None),
        (metric(interval="1s", count=3), seq(P.ERROR, P.ERROR, P.SUCCESSFUL), P.SUCCESSFUL, [0, 1, 2, 3, 4], None),
        (metric(interval="1s", count=10, consecutiveSuccessLimit=2), seq(P.FAILED, P.SUCCESSFUL), P.FAILED,
         [0], None),
        (metric(interval="1s", count=3, consecutiveSuccessLimit=2, failureLimit=-1),
         seq(P.SUCCESSFUL, P.FAILED, P.SUCCESSFUL), P.FAILED, [0, 1, 2],
         'Metric "m" assessed Failed due to consecutiveSuccessLimit (2) not reached after count (3)'),
        (metric(interval="1s", count=10, consecutiveSuccessLimit=2, failureLimit=3),
         seq(P.FAILED, P.SUCCESSFUL), P.SUCCESSFUL, [0, 1, 2], None),
        (metric(interval="{{args.every}}", count="{{args.n}}"), seq(P.SUCCESSFUL), P.SUCCESSFUL, [0, 3], None),
    ],
)
def test_one_metric(
    m: dict[str, Any], outcomes: Callable[[int], P], phase: P, times: list[float], message: str | None
) -> None:
    spec = {"metrics": [m], "args": [{"name": "every", "value": "3s"}, {"name": "n", "value": "2"}]}
    sim = Sim(spec, {"m": outcomes}, {"every": "3s", "n": "2"})
    status = sim.run()
    assert status["phase"] == phase.value, status
    assert sim.taken["m"] == times
    assert status["startedAt"] == format_time(T0)
    assert status.get("completedAt")
    if message is not None:
        assert status.get("message") == message
    assert status["runSummary"]["count"] == 1


def test_worst_wins_and_a_decided_run_terminates_the_rest() -> None:
    spec = {"metrics": [metric("slow", interval="1s"), metric("bad", interval="1s", count=3, initialDelay="2s")]}
    status = Sim(spec, {"slow": seq(P.SUCCESSFUL), "bad": seq(P.FAILED)}).run()
    assert status["phase"] == "Failed"
    assert result(status, "slow")["phase"] == "Successful"  # indefinite: ends with the run
    assert result(status, "bad")["phase"] == "Failed"
    assert status["runSummary"] == {"count": 2, "successful": 1, "failed": 1, "inconclusive": 0, "error": 0}


def test_in_flight_measurement_is_terminated_when_the_run_is_decided() -> None:
    spec = {"metrics": [metric("job"), metric("bad")]}
    status = Sim(spec, {"job": seq(P.RUNNING), "bad": seq(P.FAILED)}).run()
    assert status["phase"] == "Failed"
    job = result(status, "job")
    assert job["phase"] == "Successful"
    assert job["measurements"][-1]["message"] == TERMINATED_MESSAGE
    assert job["measurements"][-1]["finishedAt"]


def test_dry_run_metric_never_decides() -> None:
    spec = {"metrics": [metric("dry", interval="1s", count=3), metric("real", interval="1s", count=3)],
            "dryRun": [{"metricName": "dry"}]}
    status = Sim(spec, {"dry": seq(P.FAILED), "real": seq(P.SUCCESSFUL)}).run()
    assert status["phase"] == "Successful"
    assert result(status, "dry")["phase"] == "Failed" and result(status, "dry")["dryRun"] is True
    assert status["dryRunSummary"]["failed"] == 1 and status["runSummary"]["successful"] == 1


def test_dry_run_wildcard() -> None:
    spec = {"metrics": [metric("a"), metric("b")], "dryRun": [{"metricName": "*"}]}
    status = Sim(spec, {"a": seq(P.FAILED), "b": seq(P.ERROR)}).run()
    assert status["phase"] == "Successful"


@pytest.mark.parametrize(("rules", "kept"), [([], 10), ([{"metricName": "m", "limit": 2}], 2),
                                             ([{"metricName": ".*", "limit": 0}], 10)])
def test_measurement_retention(rules: list[dict[str, Any]], kept: int) -> None:
    spec = {"metrics": [metric(interval="1s", count=12)], "measurementRetention": rules}
    status = Sim(spec, {"m": seq(P.SUCCESSFUL)}).run()
    assert len(result(status)["measurements"]) == kept
    assert result(status)["count"] == 12


def test_terminate_stops_an_indefinite_metric() -> None:
    spec: dict[str, Any] = {"metrics": [metric(interval="1s")]}
    sim = Sim(spec, {"m": seq(P.SUCCESSFUL)})
    sim.step()
    sim.now = at(1)
    sim.step()
    assert sim.status["phase"] == "Running"
    spec["terminate"] = True
    sim.now = at(1.5)
    sim.step()
    assert sim.status["phase"] == "Successful"
    assert sim.status["message"] == "Run Terminated"
    assert sim.taken["m"] == [0, 1]


def test_terminate_before_any_measurement() -> None:
    spec = {"metrics": [metric(initialDelay="1h")], "terminate": True}
    status = Sim(spec, {"m": seq(P.FAILED)}).run()
    assert status["phase"] == "Successful" and status["message"] == "Run Terminated"


def test_next_wake_is_the_earliest_due_time() -> None:
    spec = {"metrics": [metric("a", interval="5s", count=3), metric("b", initialDelay="2s")]}
    metrics = metric_specs(spec, {})
    status = prepare_status(spec, None, T0)
    assert [t.name for t in due_tasks(spec, status, T0, metrics)] == ["a"]
    record_measurement(status, "a", done(P.SUCCESSFUL, T0))
    assess(spec, status, T0, metrics)
    assert next_wake(spec, status, metrics) == at(2)
    assert due_tasks(spec, status, at(1.9), metrics) == []
    record_measurement(status, "b", Measurement(P.RUNNING, started_at=format_time(at(2)),
                                                resume_at=format_time(at(4))))
    assess(spec, status, at(2), metrics)
    assert next_wake(spec, status, metrics) == at(4)
    assert [t.name for t in due_tasks(spec, status, at(4), metrics)] == ["b"]


def test_a_job_measurement_is_resumed_on_every_pass_before_its_poll() -> None:
    spec = {"metrics": [{"name": "j", "provider": {"job": {"spec": {}}}}, metric("w")]}
    metrics = metric_specs(spec, {})
    status = prepare_status(spec, None, T0)
    for name in ("j", "w"):
        record_measurement(status, name, Measurement(P.RUNNING, started_at=format_time(T0),
                                                     resume_at=format_time(at(10))))
    # The Job watch wakes the run when the Job finishes; the web metric waits for its resumeAt.
    assert [t.name for t in due_tasks(spec, status, at(1), metrics)] == ["j"]
    assert [t.name for t in due_tasks(spec, status, at(10), metrics)] == ["j", "w"]


@pytest.mark.parametrize(
    ("phase", "ttl", "after"),
    [
        ("Successful", {"secondsAfterSuccess": 5, "secondsAfterCompletion": 50}, 5),
        ("Failed", {"secondsAfterFailure": 7, "secondsAfterCompletion": 50}, 7),
        ("Error", {"secondsAfterFailure": 7, "secondsAfterCompletion": 50}, 50),
        ("Inconclusive", {"secondsAfterCompletion": 9}, 9),
        ("Successful", {"secondsAfterFailure": 7}, None),
        ("Running", {"secondsAfterCompletion": 9}, None),
    ],
)
def test_ttl_deadline(phase: str, ttl: dict[str, int], after: int | None) -> None:
    status = {"phase": phase, "completedAt": format_time(T0)}
    expected = None if after is None else at(after)
    assert ttl_deadline({"ttlStrategy": ttl}, status) == expected
    assert next_wake({"ttlStrategy": ttl, "metrics": []}, status, {}) == expected
