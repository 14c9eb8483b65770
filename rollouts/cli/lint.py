"""`lint -f FILE`: schema and semantic checks of Rollout and analysis manifests, without a cluster.

The schema part is `rollouts.schema` (what the API server would reject, plus unknown fields, which
Argo's lint rejects too). The semantic part of a Rollout is the controller's own
`rollouts.model.validation.validate_rollout` (what would become an `InvalidSpec` condition), so lint and the
controller never disagree; `extra_problems` adds the few Argo rules the controller does not check yet
(to be moved into `rollouts/spec.py`). AnalysisTemplates get their duration fields checked.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from analysis import spec as analysis_spec
from rollouts import schema
from rollouts.model.spec import RolloutSpec
from rollouts.model.validation import validate_rollout

GROUP = "pyrollouts.io"

INVALID_TRAFFIC_ROUTING = "Canary service and Stable service must to be set to use Traffic Routing"
INVALID_SET_CANARY_SCALE = "SetCanaryScale requires TrafficRouting to be set"
INVALID_MAX_WEIGHT = "Canary maxTrafficWeight in traffic routing only supported in Nginx and Plugins"
BAD_DURATION = "not a duration: use a Go duration such as 30s, 5m or 1h"
WORKLOAD_TEMPLATE_REQUIRED = "spec.template: Required value"

# Routers that need both canaryService and stableService (Argo's requireCanaryStableServices, plus ours).
_ROUTERS_NEEDING_SERVICES = ("nginx", "smi", "alb", "apisix", "ambassador", "appMesh", "traefik", "gatewayAPI")
_WORKLOAD_KINDS = {"Deployment": "apps", "ReplicaSet": "apps", "PodTemplate": ""}


@dataclass(frozen=True)
class Problem:
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"

    @staticmethod
    def parse(text: str) -> Problem:
        """A "field: message" line, as `validate_rollout` returns them."""
        field, _, message = text.partition(": ")
        return Problem(field, message)


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


def _workload_holder(rollout: Mapping[str, Any], documents: Sequence[Any]) -> Mapping[str, Any] | None:
    """What holds the template of the workload a `workloadRef` names (a Deployment's spec, a PodTemplate),
    when that workload is in the same file."""
    ref = _map(_map(rollout.get("spec")).get("workloadRef"))
    kind, name = ref.get("kind", "Deployment"), ref.get("name")
    for doc in documents:
        if not isinstance(doc, Mapping) or doc.get("kind") != kind or _map(doc.get("metadata")).get("name") != name:
            continue
        return doc if kind == "PodTemplate" else _map(doc.get("spec"))
    return None


def _workload_template(rollout: Mapping[str, Any], documents: Sequence[Any]) -> Mapping[str, Any] | None:
    """The pod template of the workload a `workloadRef` names, when that workload is in the same file."""
    template = _map(_workload_holder(rollout, documents)).get("template")
    return template if isinstance(template, Mapping) else None


def semantic_problems(rollout: Mapping[str, Any], documents: Sequence[Any] = ()) -> list[Problem]:
    """What the controller would reject as InvalidSpec (plus `extra_problems`); [] when the spec is sound.

    Call it on a schema-valid Rollout. A `workloadRef` is resolved against `documents` (the other
    objects of the file); when its workload is not among them, the template checks are skipped.
    """
    parsed = RolloutSpec.parse(rollout)
    spec = _map(rollout.get("spec"))
    if spec.get("workloadRef") is None:
        template = spec.get("template") if isinstance(spec.get("template"), Mapping) else None
        errors = validate_rollout(parsed, template)
    else:
        template = _workload_template(rollout, documents)
        if parsed.selector is None:  # Argo takes the Deployment's selector
            selector = _map(_workload_holder(rollout, documents)).get("selector")
            parsed = dataclasses.replace(parsed, selector=selector if isinstance(selector, Mapping) else None)
        errors = validate_rollout(parsed, template)
        if template is None:  # not resolvable offline: that is not the manifest's fault
            errors = [e for e in errors if not e.startswith(WORKLOAD_TEMPLATE_REQUIRED)]
    return [Problem.parse(e) for e in errors] + extra_problems(rollout)


def extra_problems(rollout: Mapping[str, Any]) -> list[Problem]:
    """Argo's rules that `rollouts.model.validation.validate_rollout` does not check yet (traffic routing needs)."""
    canary = _map(_map(_map(rollout.get("spec")).get("strategy")).get("canary"))
    base = "spec.strategy.canary"
    problems: list[Problem] = []
    routing = canary.get("trafficRouting")
    routing_map = _map(routing)
    canary_service, stable_service = canary.get("canaryService") or "", canary.get("stableService") or ""
    istio = _map(routing_map.get("istio"))
    needs_services = any(routing_map.get(router) is not None for router in _ROUTERS_NEEDING_SERVICES) or (
        bool(istio) and istio.get("destinationRule") is None
    )
    if routing is not None and needs_services and canary.get("pingPong") is None:
        if not stable_service:
            problems.append(_invalid(f"{base}.stableService", stable_service, INVALID_TRAFFIC_ROUTING))
        if not canary_service:
            problems.append(_invalid(f"{base}.canaryService", canary_service, INVALID_TRAFFIC_ROUTING))
    if (
        routing is not None
        and routing_map.get("maxTrafficWeight") is not None
        and routing_map.get("nginx") is None
        and not routing_map.get("plugins")
    ):
        problems.append(
            _invalid(f"{base}.trafficRouting.maxTrafficWeight", routing_map["maxTrafficWeight"], INVALID_MAX_WEIGHT)
        )
    if routing is None and any(_map(step).get("setCanaryScale") is not None for step in canary.get("steps") or []):
        problems.append(_required(f"{base}.trafficRouting", INVALID_SET_CANARY_SCALE))
    return problems


def analysis_problems(template: Mapping[str, Any]) -> list[Problem]:
    """The analysis controller's own checks of a template or run (conditions, durations, limits…)."""
    if template.get("kind") == "AnalysisRun":
        texts = analysis_spec.validate_run_spec(_map(template.get("spec")))
    else:
        texts = analysis_spec.validate_template(template)
    return [Problem.parse(text) for text in texts]


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
    """(number of pyrollouts objects checked, what is wrong with them) for parsed YAML documents.

    A field the schema already rejects is not reported again by the semantic checks."""
    documents = list(documents)
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
        try:
            if kind == "Rollout":
                semantic = semantic_problems(doc, documents)
            elif kind in ("AnalysisTemplate", "ClusterAnalysisTemplate", "AnalysisRun"):
                semantic = analysis_problems(doc)
        except (TypeError, ValueError, AttributeError):
            if not schema_errors:
                raise  # a schema-valid object must never break the semantic checks
            # The exception's text is Python's ("invalid literal for int()"), not the user's: the schema
            # errors above already name each bad field.
            problems.append("semantic checks skipped until the schema errors are fixed")
        reported = {e.field for e in schema_errors}
        problems += [str(p) for p in semantic if p.field not in reported]
        findings += [Finding(kind, name, problem) for problem in problems]
    return checked, findings


def load_documents(path: Path) -> list[Any]:
    """The YAML documents of a file ("-" reads standard input is handled by the caller)."""
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
