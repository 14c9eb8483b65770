"""Job metrics: each measurement creates a ``batch/v1`` Job from ``provider.job`` (owned by the
AnalysisRun, so it goes with it), is Running until the Job has a ``Complete`` (Successful) or
``Failed`` (Failed) condition, and deletes the Job when the run terminates it.

The Job is named ``<run-uid[:8]>.<metric>.<n>`` (``n`` counts the metric's measurements), so a
measurement whose status write was lost adopts the Job it already created. The controller's Job
watch requeues the run when the Job changes, and every pass of the run resumes the measurement (reads the
Job from the cache); ``resumeAt`` is only a safety net.
"""

from __future__ import annotations

import copy
import datetime as dt
import re
from collections.abc import Mapping
from typing import Any, Final

from analysis.phases import AnalysisPhase
from analysis.providers.base import Context, Measurement, ProviderSetup, format_time
from analysis.providers.spec_checks import job_problems
from analysis.runner import parse_time
from rollouts.controller.client import JOBS, ApiError, Cache, Client

__all__ = ["JOB_NAME_KEY", "METRIC_LABEL", "POLL_SECONDS", "RUN_LABEL", "RUN_UID_LABEL", "JobProvider", "job_name"]

RUN_LABEL: Final = "analysisrun.pyrollouts.io/name"
RUN_UID_LABEL: Final = "analysisrun.pyrollouts.io/uid"
METRIC_LABEL: Final = "analysisrun.pyrollouts.io/metric-name"
JOB_NAME_KEY: Final = "job-name"
POLL_SECONDS: Final = 10.0


def job_name(run_uid: str, metric: str, n: int) -> str:
    """``<uid prefix>.<metric>.<n>``, a valid DNS subdomain of at most 63 characters."""
    slug = re.sub(r"[^a-z0-9-]+", "-", metric.lower()).strip("-") or "metric"
    tail = f".{n}"
    head = run_uid.replace("-", "")[:8] + "."
    return head + slug[: 63 - len(head) - len(tail)].rstrip("-") + tail


def _label(value: str) -> str:
    text = re.sub(r"[^A-Za-z0-9_.-]+", "-", value)[:63]
    return text.strip("-_.")


class JobProvider:
    kind = "job"
    spec_problems = staticmethod(job_problems)

    def __init__(self, client: Client, cache: Cache) -> None:
        self.client = client
        self.cache = cache

    @classmethod
    def build(cls, setup: ProviderSetup) -> JobProvider:
        return cls(setup.client, setup.cache)

    def _body(self, metric: Mapping[str, Any], context: Context, name: str) -> dict[str, Any]:
        spec = (metric.get("provider") or {}).get("job") or {}
        meta = spec.get("metadata") or {}
        run_meta = context.run.get("metadata") or {}
        labels = {
            **(meta.get("labels") or {}),
            RUN_LABEL: _label(str(run_meta.get("name", ""))),
            RUN_UID_LABEL: str(run_meta.get("uid", "")),
            METRIC_LABEL: _label(str(metric.get("name", ""))),
        }
        metadata: dict[str, Any] = {
            "name": name,
            "namespace": context.namespace,
            "labels": labels,
            "ownerReferences": [
                {
                    "apiVersion": str(context.run.get("apiVersion") or "pyrollouts.io/v1alpha1"),
                    "kind": "AnalysisRun",
                    "name": str(run_meta.get("name", "")),
                    "uid": str(run_meta.get("uid", "")),
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        }
        if meta.get("annotations"):
            metadata["annotations"] = dict(meta["annotations"])
        return {"apiVersion": "batch/v1", "kind": "Job", "metadata": metadata, "spec": copy.deepcopy(spec.get("spec"))}

    async def measure(self, metric: Mapping[str, Any], context: Context) -> Measurement:
        now = context.now
        uid = str((context.run.get("metadata") or {}).get("uid", ""))
        name = job_name(uid, str(metric.get("name", "")), context.attempt)
        started = format_time(now)
        try:
            created = await self.client.create(JOBS, context.namespace, self._body(metric, context, name))
            self.cache.put(JOBS, created)
        except ApiError as exc:
            if not exc.already_exists:
                return Measurement(
                    AnalysisPhase.ERROR,
                    message=f'cannot create Job "{name}": {exc.message or exc}',
                    started_at=started,
                    finished_at=format_time(now),
                )
        return Measurement(
            AnalysisPhase.RUNNING,
            metadata={JOB_NAME_KEY: name},
            started_at=started,
            resume_at=format_time(now + dt.timedelta(seconds=POLL_SECONDS)),
        )

    async def _job(self, namespace: str, name: str) -> dict[str, Any] | None:
        job = self.cache.get(JOBS, namespace, name)
        if job is not None:
            return job
        try:
            job = await self.client.get(JOBS, namespace, name)
        except ApiError as exc:
            if exc.not_found:
                return None
            raise
        self.cache.put(JOBS, job)
        return job

    async def resume(self, metric: Mapping[str, Any], measurement: Measurement, context: Context) -> Measurement:
        name = measurement.metadata.get(JOB_NAME_KEY, "")
        now = context.now
        try:
            job = await self._job(context.namespace, name) if name else None
        except ApiError as exc:
            return Measurement(
                AnalysisPhase.ERROR,
                message=f'cannot read Job "{name}": {exc.message or exc}',
                metadata=measurement.metadata,
                started_at=measurement.started_at,
                finished_at=format_time(now),
            )
        if job is None:
            return Measurement(
                AnalysisPhase.ERROR,
                message=f'Job "{name}" no longer exists',
                metadata=measurement.metadata,
                started_at=measurement.started_at,
                finished_at=format_time(now),
            )
        for condition in (job.get("status") or {}).get("conditions") or []:
            if condition.get("status") != "True":
                continue
            if condition.get("type") == "Complete":
                return Measurement(
                    AnalysisPhase.SUCCESSFUL,
                    metadata=measurement.metadata,
                    started_at=measurement.started_at,
                    finished_at=format_time(now),
                )
            if condition.get("type") == "Failed":
                why = condition.get("message") or condition.get("reason") or "failed"
                return Measurement(
                    AnalysisPhase.FAILED,
                    message=f'Job "{name}" failed: {why}',
                    metadata=measurement.metadata,
                    started_at=measurement.started_at,
                    finished_at=format_time(now),
                )
        # Every pass of the run resumes a Job measurement: an unchanged poll time leaves its status unchanged.
        poll = parse_time(measurement.resume_at)
        return Measurement(
            AnalysisPhase.RUNNING,
            metadata=measurement.metadata,
            started_at=measurement.started_at,
            resume_at=measurement.resume_at if poll is not None and poll > now
            else format_time(now + dt.timedelta(seconds=POLL_SECONDS)),
        )

    async def terminate(self, metric: Mapping[str, Any], measurement: Measurement, context: Context) -> Measurement:
        name = measurement.metadata.get(JOB_NAME_KEY, "")
        if name:
            try:
                await self.client.delete(JOBS, context.namespace, name)
            except ApiError as exc:
                if not exc.not_found:
                    raise
        return measurement
