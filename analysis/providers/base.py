"""What a metric provider is: ``measure`` (and, for providers whose measurements take a while,
``resume`` and ``terminate``), returning a :class:`Measurement`, and the check of its own spec; and how
the AnalysisRun controller builds the providers of :mod:`analysis.providers.registry`.

Providers never raise for a bad measurement: a fault (unreachable server, bad query, missing Secret)
is an Error measurement whose message names the cause. Secret values fetched through
:class:`Context` are remembered there, and :func:`redact` removes them from anything that leaves the
controller (status, Events, logs).
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Protocol, Self

from analysis.caps import cap_measurement
from analysis.expr.condition import compile_condition
from analysis.expr.errors import ConditionSyntaxError
from analysis.phases import AnalysisPhase, evaluate_measurement
from analysis.providers import registry

if TYPE_CHECKING:
    from rollouts.controller.client import Cache, Client

__all__ = [
    "JUDGE_STATE_KEY",
    "REDACTED",
    "Context",
    "Measurement",
    "Provider",
    "ProviderError",
    "ProviderSetup",
    "build_providers",
    "evaluate",
    "format_time",
    "format_value",
    "redact",
]

REDACTED = "*****"
JUDGE_STATE_KEY = "judgeState"  # measurement metadata holding a judge's test state (analysis.providers.judge.provider)


def format_time(when: dt.datetime) -> str:
    """RFC 3339 in UTC with microseconds (a valid ``date-time``; scheduling needs sub-second times)."""
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def format_value(result: Any) -> str:
    """``status...measurements[].value`` text: floats as Go prints them, lists as ``[a,b]``."""
    if result is None:
        return ""
    if isinstance(result, bool):
        return "true" if result else "false"
    if isinstance(result, float):
        return repr(result) if not result.is_integer() or abs(result) >= 1e21 else str(int(result))
    if isinstance(result, list | tuple):
        return "[" + ",".join(format_value(v) for v in result) + "]"
    if isinstance(result, Mapping):
        return "map[" + " ".join(f"{k}:{format_value(v)}" for k, v in result.items()) + "]"
    return str(result)


@dataclass(frozen=True)
class Measurement:
    """One measurement. ``result`` is the value the conditions see (not stored); ``value`` its text."""

    phase: AnalysisPhase
    value: str | None = None
    message: str = ""
    metadata: Mapping[str, str] = field(default_factory=dict)
    started_at: str | None = None
    finished_at: str | None = None
    resume_at: str | None = None
    result: Any = None
    # Completed, but decides nothing (a judge still collecting evidence): counted towards ``count``
    # only, not towards the phase counters or limits. Not stored: it matters when recorded.
    undecided: bool = False

    def to_status(self) -> dict[str, Any]:
        """The status entry, with value, message and metadata capped (:mod:`analysis.caps`)."""
        out: dict[str, Any] = {"phase": self.phase.value}
        if self.value is not None:
            out["value"] = self.value
        if self.message:
            out["message"] = self.message
        if self.metadata:
            out["metadata"] = {str(k): str(v) for k, v in self.metadata.items()}
        for key, stamp in (
            ("startedAt", self.started_at),
            ("finishedAt", self.finished_at),
            ("resumeAt", self.resume_at),
        ):
            if stamp:
                out[key] = stamp
        return cap_measurement(out)

    @classmethod
    def from_status(cls, entry: Mapping[str, Any]) -> Measurement:
        return cls(
            phase=AnalysisPhase(entry.get("phase") or "Pending"),
            value=entry.get("value"),
            message=str(entry.get("message") or ""),
            metadata=dict(entry.get("metadata") or {}),
            started_at=entry.get("startedAt"),
            finished_at=entry.get("finishedAt"),
            resume_at=entry.get("resumeAt"),
        )

    def redacted(self, secrets: set[str]) -> Measurement:
        return replace(
            self,
            value=redact(self.value, secrets) if self.value is not None else None,
            message=redact(self.message, secrets),
            metadata={redact(k, secrets): redact(v, secrets) for k, v in self.metadata.items()},
            result=None,
        )


def redact(text: str, secrets: set[str]) -> str:
    """``text`` with every secret value (and its base64 form) replaced by ``*****``."""
    for secret in sorted(secrets, key=len, reverse=True):
        if len(secret) < 3:
            continue  # a one- or two-character secret would blank out everything; not worth hiding
        text = text.replace(secret, REDACTED)
        encoded = base64.b64encode(secret.encode()).decode()
        text = text.replace(encoded, REDACTED)
    return text


class ProviderError(Exception):
    """A measurement could not be taken; the message (never a secret) says why."""


SecretReader = Callable[[str, str], Awaitable[str]]
#: (namespace, name) -> the Secret's keys and values, for providers that read a whole Secret (Argo's
#: ``datadog`` / ``newrelic`` / ``wavefront-api-tokens``), possibly in the controller's own namespace.
SecretDataReader = Callable[[str, str], Awaitable[Mapping[str, str]]]


@dataclass
class Context:
    """What a provider may use while measuring one metric of one run."""

    run: Mapping[str, Any]
    namespace: str
    now: dt.datetime
    args: Mapping[str, str]
    read_secret: SecretReader
    attempt: int = 1  # 1 + the number of measurements this metric took so far
    secrets: set[str] = field(default_factory=set)
    history: tuple[Measurement, ...] = ()  # the metric's retained measurements, oldest first
    counted: int = 0  # the metric's measurements counted towards ``count`` so far
    read_secret_data: SecretDataReader | None = None

    async def secret(self, name: str, key: str) -> str:
        """A Secret's key in the run's namespace; remembered for redaction. ProviderError names name and key."""
        value = await self.read_secret(name, key)
        self.secrets.add(value)
        return value

    async def secret_data(self, namespace: str, name: str, public: tuple[str, ...] = ()) -> dict[str, str]:
        """Every key of the Secret ``namespace/name``; the values of keys not in ``public`` (an address, a
        region: settings, not credentials) are remembered for redaction. ProviderError names the Secret."""
        if self.read_secret_data is None:
            raise ProviderError(f'cannot read secret "{name}" in namespace "{namespace}": no reader configured')
        data = dict(await self.read_secret_data(namespace, name))
        self.secrets.update(value for key, value in data.items() if key not in public and value)
        return data


async def authenticate(spec: Mapping[str, Any], context: Context, headers: dict[str, str]) -> tuple[str, str] | None:
    """`authentication` of a Prometheus or Web provider: a bearer token goes into `headers`; basic-auth
    credentials are returned (user, password). Secrets are read through `context`, never logged."""
    auth = spec.get("authentication") or {}
    bearer = (auth.get("bearerToken") or {}).get("secretKeyRef")
    if bearer:
        headers["Authorization"] = "Bearer " + await context.secret(str(bearer["name"]), str(bearer["key"]))
    basic = auth.get("basicAuth")
    if not basic:
        return None
    ref = basic.get("passwordSecretRef")
    password = await context.secret(str(ref["name"]), str(ref["key"])) if ref else str(basic.get("password") or "")
    return str(basic.get("username") or ""), password


def evaluate(metric: Mapping[str, Any], result: Any) -> tuple[AnalysisPhase, str]:
    """Phase of a measurement with value ``result`` from the metric's conditions (after templating)."""
    try:
        success = (
            compile_condition(str(metric["successCondition"]), "successCondition")
            if metric.get("successCondition")
            else None
        )
        failure = (
            compile_condition(str(metric["failureCondition"]), "failureCondition")
            if metric.get("failureCondition")
            else None
        )
    except ConditionSyntaxError as exc:
        return AnalysisPhase.ERROR, str(exc)
    return evaluate_measurement(success, failure, result)


def judged(metric: Mapping[str, Any], result: Any, started: str, metadata: dict[str, str]) -> Measurement:
    """A finished measurement of ``result``, its phase given by the metric's conditions."""
    phase, message = evaluate(metric, result)
    return Measurement(
        phase,
        value=format_value(result),
        message=message,
        metadata=metadata,
        started_at=started,
        finished_at=format_time(dt.datetime.now(dt.UTC)),
        result=result,
    )


@dataclass(frozen=True)
class ProviderSetup:
    """What the AnalysisRun controller hands every provider it builds (only the job provider uses them)."""

    client: Client
    cache: Cache


class ImmediateProvider:
    """Base of providers whose measurement completes in one call: there is never a Running one to
    resume (a resume measures again) or to stop (terminate keeps it)."""

    @classmethod
    def build(cls, setup: ProviderSetup) -> Self:
        return cls()

    async def measure(self, metric: Mapping[str, Any], context: Context) -> Measurement:
        raise ProviderError(f"{type(self).__name__} does not define measure()")

    async def resume(self, metric: Mapping[str, Any], measurement: Measurement, context: Context) -> Measurement:
        return await self.measure(metric, context)

    async def terminate(self, metric: Mapping[str, Any], measurement: Measurement, context: Context) -> Measurement:
        return measurement


class Provider(Protocol):
    """One kind of metric provider, registered under its key ``kind`` in a metric's ``provider`` block
    (``prometheus``, ``web``, ``job``, ``judge``) in :mod:`analysis.providers.registry`."""

    kind: str

    @classmethod
    def build(cls, setup: ProviderSetup) -> Provider:
        """The provider the controller measures with."""
        ...

    def spec_problems(self, spec: Mapping[str, Any], where: str, metric: Mapping[str, Any] | None) -> list[str]:
        """What is wrong with the metric's ``provider.<kind>`` block, each problem naming its field under
        ``where``; pure (template validation calls it through the registry, without building a provider)."""
        ...

    async def measure(self, metric: Mapping[str, Any], context: Context) -> Measurement:
        """Take a measurement of ``metric`` (its ``{{args.x}}`` already substituted).

        Returns a completed measurement, or a Running one (with ``resume_at`` when it should be
        looked at again) for providers that wait for something."""
        ...

    async def resume(self, metric: Mapping[str, Any], measurement: Measurement, context: Context) -> Measurement:
        """Look again at a Running measurement."""
        ...

    async def terminate(self, metric: Mapping[str, Any], measurement: Measurement, context: Context) -> Measurement:
        """Stop a Running measurement (the run was decided or terminated)."""
        ...


def build_providers(setup: ProviderSetup) -> dict[str, Provider]:
    """One provider per key of :data:`analysis.providers.registry.PROVIDERS`, for the controller."""
    providers: dict[str, Provider] = {}
    for key in registry.PROVIDERS:
        cls = registry.provider_class(key)
        assert cls is not None
        providers[key] = cls.build(setup)
    return providers
