"""The AnalysisRun controller: the I/O around :mod:`analysis.runner`.

Runs in the ``pyrollouts controller`` process: :mod:`rollouts.controller.operator` feeds AnalysisRuns, the Jobs
we create and the templates into the shared :class:`~rollouts.controller.client.Cache` and calls the ``on_*``
methods; a work queue keyed per run calls :meth:`AnalysisController.reconcile`, which measures what
is due (all due metrics of a run concurrently), writes the status with the run's resourceVersion and
asks to be woken when the next measurement is due (never by polling).

Secrets (``secretKeyRef`` args, provider credentials) are read through the API at measurement time,
used, and never stored: every measurement, status message, Event and log line goes through
:func:`analysis.providers.base.redact` with the values read during that reconcile.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import datetime as dt
import logging
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from analysis.caps import MAX_VALUE_CHARS, cap_text
from analysis.phases import AnalysisPhase, MetricCounters, is_completed
from analysis.providers.base import (
    Context,
    Measurement,
    Provider,
    ProviderError,
    ProviderSetup,
    build_providers,
    format_time,
    redact,
)
from analysis.providers.job import RUN_UID_LABEL
from analysis.runner import (
    Task,
    assess,
    due_tasks,
    in_flight,
    metric_specs,
    next_wake,
    prepare_status,
    record_measurement,
    terminated,
    ttl_deadline,
)
from analysis.spec import (
    UNRESOLVED_ARGS_ANNOTATION,
    ArgError,
    provider_kind,
    referenced_args,
    substitute,
    validate_metrics,
    validate_run_spec,
    validate_template,
)
from rollouts.controller import client as kube
from rollouts.controller.client import (
    ANALYSISRUNS,
    ANALYSISTEMPLATES,
    CLUSTERANALYSISTEMPLATES,
    EVENTS,
    SECRETS,
    ApiError,
    Cache,
    Client,
)

__all__ = [
    "COMPONENT",
    "INVALID",
    "JOB_LABEL_SELECTOR",
    "AnalysisController",
    "Queue",
    "invalid_condition",
    "template_status",
]

log = logging.getLogger("pyrollouts.analysis")

COMPONENT = "pyrollouts-analysis"
JOB_LABEL_SELECTOR = RUN_UID_LABEL  # the Job watch only sees Jobs we created

Key = tuple[str, str]


class Queue(Protocol):
    def add(self, key: Key) -> None: ...

    def add_after(self, key: Key, delay: float) -> None: ...


def _field(obj: Mapping[str, Any], path: str) -> str:
    node: Any = obj
    for part in path.replace("['", ".").replace("']", "").split("."):
        if not part:
            continue
        if not isinstance(node, Mapping) or part not in node:
            raise ProviderError(f'fieldRef "{path}" not found on the AnalysisRun')
        node = node[part]
    return str(node)


INVALID = "Invalid"


def _template_kind(obj: Mapping[str, Any]) -> kube.Kind:
    if obj.get("kind") == CLUSTERANALYSISTEMPLATES.kind:
        return CLUSTERANALYSISTEMPLATES
    if obj.get("kind") == ANALYSISTEMPLATES.kind:
        return ANALYSISTEMPLATES
    return ANALYSISTEMPLATES if (obj.get("metadata") or {}).get("namespace") else CLUSTERANALYSISTEMPLATES


def invalid_condition(status: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The template's ``Invalid`` condition, if it has one."""
    for cond in status.get("conditions") or []:
        if isinstance(cond, Mapping) and cond.get("type") == INVALID:
            return cond
    return None


def template_status(
    status: Mapping[str, Any], problems: list[str], generation: Any, now: dt.datetime
) -> dict[str, Any] | None:
    """The template status to write for these validation ``problems``, or None when ``status`` says it already.

    One condition ``Invalid``: True with reason ``InvalidSpec`` and the problems joined by "; ", or False
    with reason ``Valid``; its ``lastTransitionTime`` is kept while the condition does not flip. Other
    condition types are kept as they are."""
    invalid = bool(problems)
    old = invalid_condition(status)
    cond: dict[str, Any] = {
        "type": INVALID,
        "status": "True" if invalid else "False",
        "reason": "InvalidSpec" if invalid else "Valid",
        "message": "; ".join(problems),
    }
    same = old is not None and all(old.get(k) == v for k, v in cond.items())
    if old is not None and old.get("status") == cond["status"] and old.get("lastTransitionTime"):
        cond["lastTransitionTime"] = old["lastTransitionTime"]
    else:
        cond["lastTransitionTime"] = now.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    observed = int(generation) if isinstance(generation, int) or str(generation or "").isdigit() else None
    if same and status.get("observedGeneration") == observed:
        return None
    others = [c for c in status.get("conditions") or [] if not (isinstance(c, Mapping) and c.get("type") == INVALID)]
    new: dict[str, Any] = {"conditions": [*others, cond]}
    if observed is not None:
        new["observedGeneration"] = observed
    return new


def _run_error(run: Mapping[str, Any], spec: Mapping[str, Any], metrics: Mapping[str, Mapping[str, Any]]) -> str:
    """Why the run cannot be measured at all ("" when it can): an arg its Rollout could not give a value
    for this revision, or an invalid spec (checked again with the plain args in place: `count:
    "{{args.n}}"` with n = -1, an address arg...)."""
    unresolved = ((run.get("metadata") or {}).get("annotations") or {}).get(UNRESOLVED_ARGS_ANNOTATION)
    if unresolved:
        return str(unresolved)
    problems = validate_run_spec(spec) or validate_metrics(list(metrics.values()))
    return "InvalidSpec: " + "; ".join(problems) if problems else ""


class AnalysisController:
    def __init__(self, client: Client, cache: Cache, providers: Mapping[str, Provider] | None = None) -> None:
        self.client = client
        self.cache = cache
        self.providers: dict[str, Provider] = dict(providers or build_providers(ProviderSetup(client, cache)))
        self.queue: Queue | None = None
        # Told (namespace, name, type, reason) of each Event recorded: the controller counts them.
        self.on_event: Callable[[str, str, str, str], None] = lambda *_: None
        # The HTTP libraries log request URLs (httpx at INFO, urllib3 at DEBUG); a URL may carry a
        # secret argument, so they only speak about warnings.
        for noisy in ("httpx", "httpcore", "urllib3"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
        self._reported: dict[str, str] = {}  # template uid -> last InvalidSpec message
        self._tasks: set[asyncio.Task[None]] = set()

    # ------------------------------------------------------------------ notifications

    def _enqueue(self, namespace: str, name: str) -> None:
        if self.queue is not None:
            self.queue.add((namespace, name))

    def on_run(self, obj: dict[str, Any]) -> None:
        meta = obj.get("metadata") or {}
        self._enqueue(str(meta.get("namespace", "")), str(meta.get("name", "")))

    def on_job(self, obj: dict[str, Any]) -> None:
        owner = kube.controller_uid(obj)
        ns = str((obj.get("metadata") or {}).get("namespace", ""))
        for run in self.cache.all(ANALYSISRUNS, ns):
            if (run.get("metadata") or {}).get("uid") == owner:
                self._enqueue(ns, str(run["metadata"]["name"]))
                return

    def on_template(self, obj: dict[str, Any]) -> None:
        """Validate a template that was added or changed: condition ``Invalid`` in its status, and a
        Warning Event ``InvalidSpec`` naming the field when it becomes invalid (or its problems change).

        The status write comes back as a watch event; it then matches and nothing is written again."""
        meta = obj.get("metadata") or {}
        uid = str(meta.get("uid", ""))
        kind = _template_kind(obj)
        namespace, name = str(meta.get("namespace") or ""), str(meta.get("name") or "")
        cached = self.cache.get(kind, namespace, name)
        if cached is None or (cached.get("metadata") or {}).get("uid") != meta.get("uid"):
            self._reported.pop(uid, None)  # deleted (the cache forgets it before we are told)
            return
        obj = cached  # the newest version we know (maybe our own status write's answer)
        meta = obj.get("metadata") or {}
        problems = validate_template(obj)
        message = "; ".join(problems)
        status: Mapping[str, Any] = obj.get("status") or {}
        old = invalid_condition(status)
        new = template_status(status, problems, meta.get("generation"), dt.datetime.now(dt.UTC))
        if new is not None:
            self._spawn(self._write_template_status(kind, obj, new))
        if not problems:
            self._reported.pop(uid, None)
            return
        # Known to be reported already: by us since we started, or in the status we wrote before.
        previous = self._reported.get(uid)
        if previous is None and old is not None and old.get("status") == "True":
            previous = str(old.get("message", ""))
        self._reported[uid] = message
        if previous == message:
            return
        log.warning("%s %s: InvalidSpec: %s", obj.get("kind"), name, message)
        self._spawn(self._event(obj, "Warning", "InvalidSpec", message))

    async def _write_template_status(self, kind: kube.Kind, obj: Mapping[str, Any], status: dict[str, Any]) -> None:
        """Status patch guarded by the template's resourceVersion: on a conflict a newer version is on
        its way through the watch, and that event writes the status again."""
        meta = obj.get("metadata") or {}
        namespace, name = str(meta.get("namespace") or ""), str(meta.get("name") or "")
        patch = {"metadata": {"resourceVersion": meta.get("resourceVersion")}, "status": status}
        try:
            updated = await self.client.patch(kind, namespace, name, patch, subresource="status")
        except ApiError as exc:
            if exc.not_found or exc.status == 409:  # gone, or changed since: the next event handles it
                log.debug("%s %s: status not written: %s", kind.kind, name, exc)
                return
            log.warning("%s %s: could not write the Invalid condition: %s", kind.kind, name, exc)
            return
        self.cache.put(kind, updated)

    def _spawn(self, coro: Any) -> None:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _event(self, obj: Mapping[str, Any], etype: str, reason: str, message: str) -> None:
        namespace = str((obj.get("metadata") or {}).get("namespace") or "default")
        body = kube.event_body(obj, etype, reason, message[:1024], COMPONENT)
        body["metadata"]["namespace"] = namespace
        name = str((obj.get("metadata") or {}).get("name"))
        try:
            await self.client.create(EVENTS, namespace, body)
        except ApiError as exc:
            log.warning("could not record event %s on %s: %s", reason, name, exc)
            return
        self.on_event(namespace, name, etype, reason)

    # ------------------------------------------------------------------ reconcile

    async def reconcile(self, key: Key) -> float | None:
        """One pass over one AnalysisRun; returns seconds until it wants to be looked at again."""
        namespace, name = key
        run = self.cache.get(ANALYSISRUNS, namespace, name)
        if run is None or (run.get("metadata") or {}).get("deletionTimestamp"):
            return None
        now = dt.datetime.now(dt.UTC)
        spec: Mapping[str, Any] = run.get("spec") or {}
        status: Mapping[str, Any] = run.get("status") or {}
        if is_completed(status.get("phase")):
            return await self._expire(run, now)
        metrics = metric_specs(spec, self._plain_args(run))
        error = _run_error(run, spec, metrics)
        if error:
            message = cap_text(error, MAX_VALUE_CHARS)
            work = dict(status)
            work.update(phase=AnalysisPhase.ERROR.value, message=message)
            work.setdefault("startedAt", format_time(now))
            work["completedAt"] = format_time(now)
            if await self._write(run, status, work):
                log.warning("analysisrun %s/%s: %s", namespace, name, message)
                await self._event(run, "Warning", "AnalysisRunError", message)
            return None
        work = prepare_status(spec, status, now)
        secrets: set[str] = set()
        tasks = due_tasks(spec, work, now, metrics)
        taken = await asyncio.gather(*(self._take(run, work, task, now, secrets) for task in tasks))
        for task, measurement in zip(tasks, taken, strict=True):
            record_measurement(work, task.name, measurement.redacted(secrets))
            if measurement.phase is AnalysisPhase.ERROR:
                log.info("analysisrun %s/%s: metric %s: Error: %s", namespace, name, task.name,
                         redact(measurement.message, secrets))
        stop = assess(spec, work, now, metrics)
        if stop:
            ended = await asyncio.gather(
                *(self._take(run, work, Task(n, in_flight(work, n), terminate=True), now, secrets) for n in stop)
            )
            for metric_name, measurement in zip(stop, ended, strict=True):
                record_measurement(work, metric_name, measurement.redacted(secrets))
            assess(spec, work, now, metrics)
        if not await self._write(run, status, work):
            return 0.0
        await self._announce(run, status, work, secrets)
        wake = next_wake(spec, work, metrics)
        if wake is None:
            return None
        return max(0.0, (wake - dt.datetime.now(dt.UTC)).total_seconds())

    async def _expire(self, run: Mapping[str, Any], now: dt.datetime) -> float | None:
        deadline = ttl_deadline(run.get("spec") or {}, run.get("status") or {})
        if deadline is None:
            return None
        if deadline > now:
            return (deadline - now).total_seconds()
        meta = run.get("metadata") or {}
        try:
            await self.client.delete(ANALYSISRUNS, str(meta.get("namespace")), str(meta.get("name")),
                                     uid=str(meta.get("uid") or "") or None)
        except ApiError as exc:
            if not exc.not_found:
                raise
        log.info("analysisrun %s/%s: deleted by its ttlStrategy", meta.get("namespace"), meta.get("name"))
        return None

    # ------------------------------------------------------------------ measuring

    def _plain_args(self, run: Mapping[str, Any]) -> dict[str, str]:
        """Args whose values are not secret: ``value`` and ``fieldRef`` (read from the run)."""
        out: dict[str, str] = {}
        for arg in (run.get("spec") or {}).get("args") or []:
            source = arg.get("valueFrom") or {}
            if arg.get("value") is not None:
                out[str(arg.get("name"))] = str(arg["value"])
            elif source.get("fieldRef"):
                try:
                    out[str(arg.get("name"))] = _field(run, str(source["fieldRef"].get("fieldPath", "")))
                except ProviderError:
                    continue  # reported when a metric needs it
        return out

    async def _get_secret(self, namespace: str, name: str) -> Mapping[str, Any]:
        try:
            secret: Mapping[str, Any] = await self.client.get(SECRETS, namespace, name)
        except ApiError as exc:
            if exc.not_found:
                raise ProviderError(f'secret "{name}" not found in namespace "{namespace}"') from None
            raise ProviderError(f'cannot read secret "{name}": {exc.status} {exc.reason}') from None
        return secret

    async def _read_secret_data(self, namespace: str, name: str) -> dict[str, str]:
        """Every key of a Secret, decoded (a provider reading Argo's credential Secrets, :mod:`analysis.providers`)."""
        secret = await self._get_secret(namespace, name)
        out = {str(k): str(v) for k, v in (secret.get("stringData") or {}).items()}
        for key, encoded in (secret.get("data") or {}).items():
            try:
                out[str(key)] = base64.b64decode(str(encoded), validate=True).decode()
            except (binascii.Error, UnicodeDecodeError):
                raise ProviderError(f'secret "{name}" key "{key}" is not valid base64 text') from None
        return out

    async def _read_secret(self, namespace: str, name: str, key: str) -> str:
        secret = await self._get_secret(namespace, name)
        data = secret.get("data") or {}
        if key in data:
            try:
                return base64.b64decode(str(data[key]), validate=True).decode()
            except (binascii.Error, UnicodeDecodeError):
                raise ProviderError(f'secret "{name}" key "{key}" is not valid base64 text') from None
        if key in (secret.get("stringData") or {}):
            return str(secret["stringData"][key])
        raise ProviderError(f'secret "{name}" has no key "{key}"')

    async def _resolve(self, run: Mapping[str, Any], metric: Mapping[str, Any], context: Context) -> dict[str, str]:
        declared = {str(a.get("name")): a for a in (run.get("spec") or {}).get("args") or []}
        values: dict[str, str] = {}
        for name in referenced_args(metric):
            arg = declared.get(name)
            if arg is None:
                raise ProviderError(f'argument "{name}" is not declared in spec.args')
            source = arg.get("valueFrom") or {}
            if arg.get("value") is not None:
                values[name] = str(arg["value"])
            elif source.get("secretKeyRef"):
                ref = source["secretKeyRef"]
                try:
                    values[name] = await context.secret(str(ref.get("name")), str(ref.get("key")))
                except ProviderError as exc:
                    raise ProviderError(f'argument "{name}": {exc}') from None
            elif source.get("fieldRef"):
                values[name] = _field(run, str(source["fieldRef"].get("fieldPath", "")))
            else:
                raise ProviderError(f'argument "{name}" has no value')
        return values

    async def _take(
        self, run: Mapping[str, Any], status: Mapping[str, Any], task: Task, now: dt.datetime, secrets: set[str]
    ) -> Measurement:
        """Measure, resume or terminate one metric; never raises for a measurement problem."""
        meta = run.get("metadata") or {}
        namespace = str(meta.get("namespace", ""))
        metrics = (run.get("spec") or {}).get("metrics") or []
        raw: Mapping[str, Any] = next((m for m in metrics if m.get("name") == task.name), {})
        results = status.get("metricResults") or []
        entry: Mapping[str, Any] = next((r for r in results if r.get("name") == task.name), {})
        counters = MetricCounters.from_status(entry)

        async def read(name: str, key: str) -> str:
            return await self._read_secret(namespace, name, key)

        context = Context(run=run, namespace=namespace, now=now, args={}, read_secret=read,
                          attempt=counters.count + counters.error + 1, secrets=secrets,
                          history=tuple(Measurement.from_status(m) for m in entry.get("measurements") or []),
                          counted=counters.count, read_secret_data=self._read_secret_data)
        started = format_time(now)
        try:
            values = await self._resolve(run, raw, context)
            context.args = values
            metric = substitute(raw, values)
            kind = provider_kind(metric)
            provider = self.providers.get(kind or "")
            if provider is None:
                raise ProviderError(f'provider "{kind}" is not supported')
            if task.terminate and task.in_flight is not None:
                return terminated(await provider.terminate(metric, task.in_flight, context), now)
            if task.in_flight is not None:
                return await provider.resume(metric, task.in_flight, context)
            return await provider.measure(metric, context)
        except (ProviderError, ArgError) as exc:
            message = str(exc)
        except ApiError as exc:
            message = f"API error: {exc}"
        except Exception as exc:  # a provider bug must not stop the other metrics; logged with its trace
            log.exception("analysisrun %s/%s: metric %s: provider failed", namespace, meta.get("name"), task.name)
            message = f"{type(exc).__name__}: {exc}"
        if task.terminate and task.in_flight is not None:
            return terminated(task.in_flight, now)
        return Measurement(AnalysisPhase.ERROR, message=message, started_at=started,
                           finished_at=format_time(dt.datetime.now(dt.UTC)))

    # ------------------------------------------------------------------ writing

    async def _write(self, run: Mapping[str, Any], old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
        """Status patch guarded by the run's resourceVersion; False on a conflict (the run is re-read)."""
        if dict(old) == dict(new):
            return True
        meta = run.get("metadata") or {}
        patch_status: dict[str, Any] = {k: None for k in old if k not in new}
        patch_status.update(new)
        patch = {"metadata": {"resourceVersion": meta.get("resourceVersion")}, "status": patch_status}
        namespace, name = str(meta.get("namespace", "")), str(meta.get("name", ""))
        try:
            updated = await self.client.patch(ANALYSISRUNS, namespace, name, patch, subresource="status")
        except ApiError as exc:
            if exc.not_found:
                return True
            if exc.status != 409:
                raise
            log.info("analysisrun %s/%s: conflict writing status; reading it again", namespace, name)
            try:
                self.cache.put(ANALYSISRUNS, await self.client.get(ANALYSISRUNS, namespace, name))
            except ApiError as again:
                if not again.not_found:
                    raise
            return False
        self.cache.put(ANALYSISRUNS, updated)
        return True

    async def _announce(
        self, run: Mapping[str, Any], old: Mapping[str, Any], new: Mapping[str, Any], secrets: set[str]
    ) -> None:
        """Events as Argo's: ``Metric<Phase>`` when a metric completes, ``AnalysisRun<Phase>`` when the run does."""
        before = {r.get("name"): r.get("phase") for r in old.get("metricResults") or []}
        meta = run.get("metadata") or {}
        for result in new.get("metricResults") or []:
            phase = result.get("phase")
            if is_completed(phase) and before.get(result.get("name")) != phase:
                etype = "Normal" if phase == AnalysisPhase.SUCCESSFUL else "Warning"
                text = f"Metric '{result.get('name')}' Completed. Result: {phase}"
                if result.get("message") and phase != AnalysisPhase.SUCCESSFUL:
                    text += f": {result['message']}"
                await self._event(run, etype, f"Metric{phase}", redact(text, secrets))
        if is_completed(new.get("phase")) and old.get("phase") != new.get("phase"):
            phase = new.get("phase")
            etype = "Normal" if phase == AnalysisPhase.SUCCESSFUL else "Warning"
            text = f"Analysis Completed. Result: {phase}"
            if new.get("message"):
                text += f": {new['message']}"
            log.info("analysisrun %s/%s: %s", meta.get("namespace"), meta.get("name"), redact(text, secrets))
            await self._event(run, etype, f"AnalysisRun{phase}", redact(text, secrets))

    async def stop(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
