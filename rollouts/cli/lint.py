"""`lint -f FILE`: schema and semantic checks of Rollout and analysis manifests, without a cluster.

The schema part is `rollouts.schema` (what the API server would reject, plus unknown fields, which
Argo's lint rejects too). The semantic part is what a schema cannot say and Argo's
`validation.ValidateRollout` checks; its messages are Argo's, with field paths that name the real
field (`spec.strategy.canary.steps[2].setWeight`, where Argo prints `spec.strategy.steps[2]...`).

TODO(merge): `rollouts/spec.py` (the controller's InvalidSpec validation) did not exist when this was
written; once it does, `semantic_problems` should call it instead of keeping a second copy.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from rollouts import schema
from rollouts.cli.durations import parse_go_duration, parse_step_duration

GROUP = "pyrollouts.io"

MISSING_FIELD = "Rollout has missing field '{}'"
INVALID_SET_WEIGHT = "SetWeight needs to be between 0 and {}"
INVALID_DURATION = "Duration needs to be greater than 0"
INVALID_MAX_SURGE_MAX_UNAVAILABLE = "MaxSurge and MaxUnavailable both can not be zero"
INVALID_STEP = "Step must have one of the following set: experiment, setWeight, setCanaryScale, plugin or pause"
MULTIPLE_STEP_ACTIONS = "Step must have exactly one action, found: {}"
INVALID_STRATEGY = "Multiple Strategies can not be listed"
DUPLICATED_SERVICES_BLUEGREEN = (
    "This rollout uses the same service for the active and preview services, but two different services are required."
)
DUPLICATED_SERVICES_CANARY = (
    "This rollout uses the same service for the stable and canary services, but two different services are required."
)
INVALID_TRAFFIC_ROUTING = "Canary service and Stable service must to be set to use Traffic Routing"
SELECTOR_MISMATCH = "`selector` does not match template `labels`"
TEMPLATE_WITH_WORKLOAD_REF = "template must be empty for workload reference rollout"
INVALID_SET_CANARY_SCALE = "SetCanaryScale requires TrafficRouting to be set"
INVALID_SCALE_DOWN_DELAY = "Canary scaleDownDelaySeconds can only be used with traffic routing"
INVALID_DYNAMIC_STABLE_SCALE = "Canary dynamicStableScale can only be used with traffic routing"
INVALID_MAX_WEIGHT = "Canary maxTrafficWeight in traffic routing only supported in Nginx and Plugins"
BAD_DURATION = "not a duration: use a Go duration such as 30s, 5m or 1h"
BAD_STEP_DURATION = "not a duration: use seconds (30) or a Go duration such as 30s, 5m or 1h"

STEP_ACTIONS = (
    "setWeight",
    "pause",
    "experiment",
    "analysis",
    "setCanaryScale",
    "setHeaderRoute",
    "setMirrorRoute",
    "plugin",
)
# Routers that need both canaryService and stableService (Argo's requireCanaryStableServices, plus ours).
_ROUTERS_NEEDING_SERVICES = ("nginx", "smi", "alb", "apisix", "ambassador", "appMesh", "traefik", "gatewayAPI")
_DEFAULT_SURGE = "25%"
_DEFAULT_PROGRESS_DEADLINE = 600


@dataclass(frozen=True)
class Problem:
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


def _go_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value, sort_keys=True, default=str)


def _invalid(path: str, value: Any, message: str) -> Problem:
    return Problem(path, f"Invalid value: {_go_value(value)}: {message}")


def _required(path: str, message: str) -> Problem:
    return Problem(path, f"Required value: {message}")


def _map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _int_or_percent(value: Any) -> int | None:
    """Argo's getIntOrPercentValue: 3 -> 3, "25%" -> 25, "3" -> 3; None when neither."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        text = value[:-1] if value.endswith("%") else value
        try:
            return int(text)
        except ValueError:
            return None
    return None


def _selector_matches(selector: Mapping[str, Any], labels: Mapping[str, Any]) -> bool:
    for label, value in _map(selector.get("matchLabels")).items():
        if labels.get(label) != value:
            return False
    for raw in selector.get("matchExpressions") or []:
        expr = _map(raw)
        key, op, values = str(expr.get("key", "")), expr.get("operator"), list(expr.get("values") or [])
        present = key in labels
        if op == "In" and (not present or labels.get(key) not in values):
            return False
        if op == "NotIn" and present and labels.get(key) in values:
            return False
        if op == "Exists" and not present:
            return False
        if op == "DoesNotExist" and present:
            return False
    return True


def semantic_problems(rollout: Mapping[str, Any]) -> list[Problem]:
    """What Argo's ValidateRollout rejects and a schema cannot express; [] when the spec is sound."""
    spec = _map(rollout.get("spec"))
    problems: list[Problem] = []
    template = spec.get("template")
    workload_ref = spec.get("workloadRef")
    selector = spec.get("selector")
    if workload_ref is None:
        if not isinstance(selector, Mapping):
            problems.append(_required("spec.selector", MISSING_FIELD.format(".spec.selector")))
        elif not _map(selector.get("matchLabels")) and not selector.get("matchExpressions"):
            problems.append(_invalid("spec.selector", dict(selector), "empty selector is invalid for deployment"))
        else:
            labels = _map(_map(_map(template).get("metadata")).get("labels"))
            if not _selector_matches(selector, labels):
                problems.append(_invalid("spec.template.metadata.labels", dict(labels), SELECTOR_MISMATCH))
    elif template:
        problems.append(Problem("spec.template", f"Internal error: {TEMPLATE_WITH_WORKLOAD_REF}"))
    progress_deadline = spec.get("progressDeadlineSeconds", _DEFAULT_PROGRESS_DEADLINE)
    min_ready = spec.get("minReadySeconds", 0)
    if isinstance(progress_deadline, int) and isinstance(min_ready, int) and progress_deadline <= min_ready:
        problems.append(
            _invalid("spec.progressDeadlineSeconds", progress_deadline, "must be greater than minReadySeconds")
        )

    strategy = _map(spec.get("strategy"))
    canary, bluegreen = strategy.get("canary"), strategy.get("blueGreen")
    if canary is None and bluegreen is None:
        problems.append(
            _required("spec.strategy", MISSING_FIELD.format(".spec.strategy.canary or .spec.strategy.blueGreen"))
        )
    elif canary is not None and bluegreen is not None:
        problems.append(_invalid("spec.strategy", "blueGreen: true canary: true", INVALID_STRATEGY))
    elif isinstance(bluegreen, Mapping):
        if bluegreen.get("activeService") == bluegreen.get("previewService"):
            active = bluegreen.get("activeService")
            problems.append(_invalid("spec.strategy.blueGreen.activeService", active, DUPLICATED_SERVICES_BLUEGREEN))
    elif isinstance(canary, Mapping):
        problems.extend(_canary_problems(canary))
    return problems


def _canary_problems(canary: Mapping[str, Any]) -> list[Problem]:
    base = "spec.strategy.canary"
    problems: list[Problem] = []
    surge = canary.get("maxSurge", _DEFAULT_SURGE)
    unavailable = canary.get("maxUnavailable", _DEFAULT_SURGE)
    if _int_or_percent(surge) == 0 and _int_or_percent(unavailable) == 0:
        problems.append(_invalid(f"{base}.maxSurge", surge, INVALID_MAX_SURGE_MAX_UNAVAILABLE))
    canary_service, stable_service = canary.get("canaryService") or "", canary.get("stableService") or ""
    if canary_service and stable_service and canary_service == stable_service:
        problems.append(_invalid(f"{base}.stableService", stable_service, DUPLICATED_SERVICES_CANARY))
    routing = canary.get("trafficRouting")
    routing_map = _map(routing)
    needs_services = any(routing_map.get(router) is not None for router in _ROUTERS_NEEDING_SERVICES) or (
        _map(routing_map.get("istio")) and _map(routing_map.get("istio")).get("destinationRule") is None
    )
    if routing is not None and needs_services and canary.get("pingPong") is None:
        if not stable_service:
            problems.append(_invalid(f"{base}.stableService", stable_service, INVALID_TRAFFIC_ROUTING))
        if not canary_service:
            problems.append(_invalid(f"{base}.canaryService", canary_service, INVALID_TRAFFIC_ROUTING))
    if routing is None:
        if canary.get("scaleDownDelaySeconds") is not None:
            delay = canary["scaleDownDelaySeconds"]
            problems.append(_invalid(f"{base}.scaleDownDelaySeconds", delay, INVALID_SCALE_DOWN_DELAY))
        if canary.get("dynamicStableScale") is True:
            problems.append(_invalid(f"{base}.dynamicStableScale", True, INVALID_DYNAMIC_STABLE_SCALE))
    elif (
        routing_map.get("maxTrafficWeight") is not None
        and routing_map.get("nginx") is None
        and not routing_map.get("plugins")
    ):
        problems.append(
            _invalid(f"{base}.trafficRouting.maxTrafficWeight", routing_map["maxTrafficWeight"], INVALID_MAX_WEIGHT)
        )
    max_weight = routing_map.get("maxTrafficWeight", 100)
    max_weight = max_weight if isinstance(max_weight, int) and not isinstance(max_weight, bool) else 100
    for index, step in enumerate(canary.get("steps") or []):
        path = f"{base}.steps[{index}]"
        step = _map(step)
        actions = [name for name in STEP_ACTIONS if step.get(name) is not None]
        if not actions:
            problems.append(_invalid(path, dict(step), INVALID_STEP))
        elif len(actions) > 1:
            problems.append(_invalid(path, ", ".join(actions), MULTIPLE_STEP_ACTIONS.format(" and ".join(actions))))
        weight = step.get("setWeight")
        if isinstance(weight, int) and not isinstance(weight, bool) and not 0 <= weight <= max_weight:
            problems.append(_invalid(f"{path}.setWeight", weight, INVALID_SET_WEIGHT.format(max_weight)))
        pause = step.get("pause")
        if isinstance(pause, Mapping) and pause.get("duration") is not None:
            duration = pause["duration"]
            if parse_step_duration(duration) is None:
                message = INVALID_DURATION if isinstance(duration, int) else BAD_STEP_DURATION
                problems.append(_invalid(f"{path}.pause.duration", duration, message))
        if step.get("setCanaryScale") is not None and routing is None:
            problems.append(_required(f"{base}.trafficRouting", INVALID_SET_CANARY_SCALE))
    return problems


def analysis_problems(template: Mapping[str, Any]) -> list[Problem]:
    """Durations in an AnalysisTemplate / ClusterAnalysisTemplate / AnalysisRun that Go would not parse."""
    problems: list[Problem] = []
    for index, metric in enumerate(_map(template.get("spec")).get("metrics") or []):
        metric = _map(metric)
        for key in ("interval", "initialDelay"):
            value = metric.get(key)
            if value is None or value == "":
                continue
            try:
                seconds = parse_go_duration(str(value)) if isinstance(value, str) else -1.0
            except ValueError:
                seconds = -1.0
            if seconds < 0:
                problems.append(_invalid(f"spec.metrics[{index}].{key}", value, BAD_DURATION))
    return problems


# --------------------------------------------------------------------------- files


@dataclass(frozen=True)
class Finding:
    kind: str
    name: str
    problem: str

    def __str__(self) -> str:
        return f'{self.kind} "{self.name}": {self.problem}'


def _unknown_fields(crds: Sequence[Mapping[str, Any]], doc: Mapping[str, Any]) -> list[str]:
    api_version = str(doc.get("apiVersion", ""))
    group, _, version = api_version.partition("/")
    crd = schema.find_crd(crds, group, str(doc.get("kind", "")))
    if crd is None:
        return []
    try:
        resolved = schema.crd_schema(crd, version)
    except (KeyError, ValueError):
        return []  # validate_object already reports the unserved version
    return [f'unknown field "{path}"' for path in schema.unknown_fields(resolved, doc)]


def lint_documents(documents: Iterable[Any], crds: Sequence[Mapping[str, Any]]) -> tuple[int, list[Finding]]:
    """(number of pyrollouts objects checked, what is wrong with them) for parsed YAML documents."""
    checked = 0
    findings: list[Finding] = []
    for doc in documents:
        if not isinstance(doc, Mapping) or not str(doc.get("apiVersion", "")).startswith(GROUP + "/"):
            continue
        checked += 1
        kind = str(doc.get("kind", "?"))
        name = str(_map(doc.get("metadata")).get("name", ""))
        schema_errors = schema.validate_object(crds, doc)
        problems = [str(e) for e in schema_errors]
        problems += _unknown_fields(crds, doc)
        semantic: list[Problem] = []
        if kind == "Rollout":
            semantic = semantic_problems(doc)
        elif kind in ("AnalysisTemplate", "ClusterAnalysisTemplate", "AnalysisRun"):
            semantic = analysis_problems(doc)
        reported = {e.field for e in schema_errors}
        problems += [str(p) for p in semantic if p.field not in reported]
        findings += [Finding(kind, name, problem) for problem in problems]
    return checked, findings


def load_documents(path: Path) -> list[Any]:
    """The YAML documents of a file ("-" reads standard input is handled by the caller)."""
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
