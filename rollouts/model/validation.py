"""The semantic checks of a Rollout that the CRD schema cannot express: each error names the field,
in Argo Rollouts' wording where Argo has one, and becomes the message of an ``InvalidSpec`` condition
(the controller) or a ``lint`` finding (the plugin).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from rollouts.model.experiment_weights import experiment_weight_errors
from rollouts.model.limits import limit_errors
from rollouts.model.pingpong import ping_pong_errors
from rollouts.model.spec import (
    MAX_TRAFFIC_WEIGHT,
    BlueGreenSpec,
    CanarySpec,
    RolloutSpec,
    Step,
    max_traffic_weight,
    scaled_int_or_percent,
)
from rollouts.traffic.registry import ROUTERS, SHARED_KEYS, build_routers
from rollouts.traffic.router import Router


def _is_int_or_percent(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return value >= 0
    return bool(re.fullmatch(r"[0-9]+%?", str(value).strip()))


def _go(value: Any) -> str:
    """A value as Go's ``field.Invalid`` prints it (close enough: strings quoted, others as JSON)."""
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _invalid(path: str, value: Any, detail: str) -> str:
    return f"{path}: Invalid value: {_go(value)}: {detail}"


def _required(path: str, detail: str) -> str:
    return f"{path}: Required value: {detail}"


def selector_matches(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """Does a LabelSelector (matchLabels + matchExpressions) select these labels?"""
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != str(value):
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), [str(v) for v in expr.get("values") or []]
        present = key in labels
        if op == "In" and not (present and labels[key] in values):
            return False
        if op == "NotIn" and present and labels[key] in values:
            return False
        if op == "Exists" and not present:
            return False
        if op == "DoesNotExist" and present:
            return False
    return True


def validate_rollout(
    ro: RolloutSpec,
    template: Mapping[str, Any] | None,
    services: Mapping[str, Any] | None = None,
    workload_error: str | None = None,
) -> list[str]:
    """Semantic errors of a Rollout, each naming the field, in Argo's wording where Argo has one.

    ``template`` is the resolved pod template (from ``spec.template`` or the ``workloadRef``);
    ``services`` maps the names of the Services that exist in the namespace to anything (None
    skips the existence check); ``workload_error`` says why a ``workloadRef`` could not be resolved.
    """
    return [
        *_workload_errors(ro, workload_error),
        *_selector_errors(ro, template),
        *_template_errors(template, workload_error),
        *_timing_errors(ro),
        *_strategy_errors(ro, services),
        *limit_errors(ro),
    ]


def _workload_errors(ro: RolloutSpec, workload_error: str | None) -> list[str]:
    errors: list[str] = []
    if ro.replicas < 0:
        errors.append(_invalid("spec.replicas", ro.replicas, "must be greater than or equal to 0"))
    if workload_error:
        errors.append(_invalid("spec.workloadRef", dict(ro.raw_spec.get("workloadRef") or {}), workload_error))
    if ro.workload_ref is not None and ro.template and (ro.template.get("spec") or ro.template.get("metadata")):
        errors.append(
            _invalid(
                "spec.template",
                "",
                "template must be empty for workload reference rollout; remove spec.template or spec.workloadRef",
            )
        )
    return errors


def _selector_errors(ro: RolloutSpec, template: Mapping[str, Any] | None) -> list[str]:
    selector = ro.selector
    if selector is None and ro.workload_ref is not None:
        return []  # Argo takes the Deployment's selector: checked once the Deployment is read
    if selector is None:
        return [_required("spec.selector", "Rollout has missing field '.spec.selector'")]
    if not (selector.get("matchLabels") or selector.get("matchExpressions")):
        return [_invalid("spec.selector", dict(selector), "empty selector is invalid for deployment")]
    if template is not None:
        labels = {str(k): str(v) for k, v in ((template.get("metadata") or {}).get("labels") or {}).items()}
        if not selector_matches(selector, labels):
            return [_invalid("spec.template.metadata.labels", labels, "`selector` does not match template `labels`")]
    return []


def _template_errors(template: Mapping[str, Any] | None, workload_error: str | None) -> list[str]:
    if template is None and workload_error is None:
        return [_required("spec.template", "Rollout has missing field '.spec.template'")]
    if template is not None and not ((template.get("spec") or {}).get("containers")):
        return [_required("spec.template.spec.containers", "a pod template needs at least one container")]
    return []


def _timing_errors(ro: RolloutSpec) -> list[str]:
    errors: list[str] = []
    if ro.min_ready_seconds < 0:
        errors.append(_invalid("spec.minReadySeconds", ro.min_ready_seconds, "must be greater than or equal to 0"))
    if ro.revision_history_limit < 0:
        errors.append(
            _invalid("spec.revisionHistoryLimit", ro.revision_history_limit, "must be greater than or equal to 0")
        )
    if ro.progress_deadline_seconds <= ro.min_ready_seconds:
        errors.append(
            _invalid(
                "spec.progressDeadlineSeconds", ro.progress_deadline_seconds, "must be greater than minReadySeconds"
            )
        )
    return errors


def _strategy_errors(ro: RolloutSpec, services: Mapping[str, Any] | None) -> list[str]:
    """Exactly one of canary and blueGreen, and the errors of that one."""
    strategy = ro.raw_spec.get("strategy") or {}
    has_canary, has_bg = strategy.get("canary") is not None, strategy.get("blueGreen") is not None
    if not has_canary and not has_bg:
        return [
            _required("spec.strategy", "Rollout has missing field '.spec.strategy.canary or .spec.strategy.blueGreen'")
        ]
    if has_canary and has_bg:
        return [
            _invalid(
                "spec.strategy",
                f"blueGreen: {str(has_bg).lower()} canary: {str(has_canary).lower()}",
                "Multiple Strategies can not be listed",
            )
        ]
    if ro.canary is not None and has_canary:
        return _validate_canary(ro, ro.canary, services)
    if ro.blue_green is not None and has_bg:
        return _validate_blue_green(ro, ro.blue_green, services)
    return []


def _missing_services(
    ro: RolloutSpec, path: str, services: Mapping[str, Any] | None, fields: Sequence[tuple[str, str]]
) -> list[str]:
    """An error for each named Service (field under `path`, name) not in `services` (None: not checked)."""
    if services is None:
        return []
    return [
        _invalid(
            f"{path}.{key}",
            name,
            f'service "{name}" not found in namespace "{ro.namespace}": create it or fix the name',
        )
        for key, name in fields
        if name and name not in services
    ]


def _negative_ints(path: str, raw: Mapping[str, Any], names: Sequence[str]) -> list[str]:
    """An error for each of the optional fields `names` of `raw` (at `path`) set to other than an int >= 0."""
    errors = []
    for name in names:
        value = raw.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            errors.append(_invalid(f"{path}.{name}", value, "must be greater than or equal to 0"))
    return errors


def _validate_blue_green(ro: RolloutSpec, bg: BlueGreenSpec, services: Mapping[str, Any] | None) -> list[str]:
    errors: list[str] = []
    path = "spec.strategy.blueGreen"
    if not bg.active_service:
        errors.append(
            _required(f"{path}.activeService", "a blue/green Rollout needs activeService: the Service users reach")
        )
    elif bg.active_service == bg.preview_service:
        errors.append(
            _invalid(
                f"{path}.activeService",
                bg.active_service,
                "This rollout uses the same service for the active and preview services, "
                "but two different services are required.",
            )
        )
    errors.extend(
        _missing_services(
            ro, path, services, (("activeService", bg.active_service), ("previewService", bg.preview_service))
        )
    )
    value = bg.raw.get("maxUnavailable")
    if value is not None and not _is_int_or_percent(value):
        errors.append(
            _invalid(f"{path}.maxUnavailable", value, "must be a non-negative integer or a percentage like 25%")
        )
    errors.extend(
        _negative_ints(
            path,
            bg.raw,
            (
                "previewReplicaCount",
                "autoPromotionSeconds",
                "scaleDownDelaySeconds",
                "scaleDownDelayRevisionLimit",
                "abortScaleDownDelaySeconds",
            ),
        )
    )
    anti = bg.anti_affinity
    if anti is not None:
        required = anti.get("requiredDuringSchedulingIgnoredDuringExecution")
        preferred = anti.get("preferredDuringSchedulingIgnoredDuringExecution")
        if (required is None) == (preferred is None):
            errors.append(
                _invalid(
                    f"{path}.antiAffinity",
                    dict(anti),
                    "AntiAffinity must have exactly one of the following set: "
                    "requiredDuringSchedulingIgnoredDuringExecution or preferredDuringSchedulingIgnoredDuringExecution",
                )
            )
        elif isinstance(preferred, Mapping):
            weight = preferred.get("weight")
            if isinstance(weight, bool) or not isinstance(weight, int) or not 1 <= weight <= 100:
                errors.append(
                    _invalid(
                        f"{path}.antiAffinity.preferredDuringSchedulingIgnoredDuringExecution.weight",
                        weight,
                        "AntiAffinity weight must be between 1 and 100",
                    )
                )
    return errors


def _validate_canary(ro: RolloutSpec, canary: CanarySpec, services: Mapping[str, Any] | None) -> list[str]:
    path = "spec.strategy.canary"
    errors = _surge_errors(canary, path)
    if canary.ping_pong:
        errors.extend(ping_pong_errors(canary, ro.namespace, services))
    elif canary.canary_service and canary.canary_service == canary.stable_service:
        errors.append(
            _invalid(
                f"{path}.stableService",
                canary.stable_service,
                "This rollout uses the same service for the stable and canary services, "
                "but two different services are required.",
            )
        )
    if not canary.ping_pong:
        fields = (("canaryService", canary.canary_service), ("stableService", canary.stable_service))
        errors.extend(_missing_services(ro, path, services, fields))
    routed = canary.traffic_routing is not None
    # Argo rejects scaleDownDelaySeconds without trafficRouting; we honour it (RolloutSpec.scale_down_delay).
    if not routed and canary.dynamic_stable_scale:
        errors.append(
            _invalid(
                f"{path}.dynamicStableScale",
                True,
                "Canary dynamicStableScale can only be used with traffic routing",
            )
        )
    errors.extend(
        _negative_ints(
            path,
            canary.raw,
            (
                "scaleDownDelaySeconds",
                "scaleDownDelayRevisionLimit",
                "abortScaleDownDelaySeconds",
                "minPodsPerReplicaSet",
            ),
        )
    )
    for step in canary.steps:
        errors.extend(_step_errors(canary, step, f"{path}.steps[{step.index}]", routed))
    if routed:
        errors.extend(validate_traffic_routing(ro, canary))
    errors.extend(experiment_weight_errors(ro, canary))
    return errors


def _surge_errors(canary: CanarySpec, path: str) -> list[str]:
    """maxSurge and maxUnavailable: each an int or a percentage, not both zero."""
    errors: list[str] = []
    for name in ("maxSurge", "maxUnavailable"):
        value = canary.raw.get(name)
        if value is not None and not _is_int_or_percent(value):
            errors.append(_invalid(f"{path}.{name}", value, "must be a non-negative integer or a percentage like 25%"))
    if not errors:
        surge = scaled_int_or_percent(canary.max_surge, 100, True)
        unavailable = scaled_int_or_percent(canary.max_unavailable, 100, False)
        if surge == 0 and unavailable == 0:
            errors.append(
                _invalid(f"{path}.maxSurge", canary.max_surge, "MaxSurge and MaxUnavailable both can not be zero")
            )
    return errors


def _step_errors(canary: CanarySpec, step: Step, spath: str, routed: bool) -> list[str]:
    """One canary step: exactly one action, and that action's values in range."""
    errors: list[str] = []
    if len(step.actions) > 1:
        errors.append(
            _invalid(
                spath,
                " ".join(step.actions),
                "Step must have exactly one of the following set: experiment, setWeight, setCanaryScale, "
                "plugin or pause (found " + ", ".join(step.actions) + ")",
            )
        )
    elif not step.actions:
        errors.append(
            _invalid(
                spath,
                dict(step.raw),
                "Step must have one of the following set: experiment, setWeight, setCanaryScale, plugin or pause",
            )
        )
    if step.raw.get("setWeight") is not None:
        weight = step.raw.get("setWeight")
        limit = max_traffic_weight(canary)
        if step.set_weight is None or not 0 <= step.set_weight <= limit:
            errors.append(_invalid(f"{spath}.setWeight", weight, f"SetWeight needs to be between 0 and {limit}"))
    if step.pause and step.pause_seconds is not None and step.pause_seconds < 0:
        errors.append(
            _invalid(
                f"{spath}.pause.duration",
                step.pause_raw,
                "Duration needs to be greater than 0 (seconds, or a duration such as 30s, 5m, 1h)",
            )
        )
    errors.extend(_canary_scale_errors(step, spath))
    for action in ("setHeaderRoute", "setMirrorRoute"):
        if action in step.actions and not routed:
            errors.append(_invalid(f"{spath}.{action}", "", f"{action[0].upper()}{action[1:]} requires TrafficRouting"))
    return errors


def _canary_scale_errors(step: Step, spath: str) -> list[str]:
    errors: list[str] = []
    scale = step.canary_scale
    if scale is None:
        return errors
    if scale.weight is not None and not 0 <= scale.weight <= MAX_TRAFFIC_WEIGHT:
        errors.append(
            _invalid(
                f"{spath}.setCanaryScale.weight",
                scale.weight,
                f"weight needs to be between 0 and {MAX_TRAFFIC_WEIGHT}",
            )
        )
    if scale.replicas is not None and scale.replicas < 0:
        errors.append(
            _invalid(f"{spath}.setCanaryScale.replicas", scale.replicas, "must be greater than or equal to 0")
        )
    return errors


def managed_route_names(traffic_routing: Mapping[str, Any]) -> list[str]:
    return [str(r.get("name")) for r in traffic_routing.get("managedRoutes") or [] if isinstance(r, Mapping)]


def validate_traffic_routing(ro: RolloutSpec, canary: CanarySpec) -> list[str]:
    """What is wrong with ``trafficRouting`` and the steps that need it, without looking at the cluster."""
    path = "spec.strategy.canary"
    routing = canary.traffic_routing or {}
    errors: list[str] = []
    if not any(key not in SHARED_KEYS for key in routing):
        errors.append(
            _required(
                f"{path}.trafficRouting",
                "trafficRouting names no router: add one of " + ", ".join(sorted(ROUTERS)),
            )
        )
    max_weight = routing.get("maxTrafficWeight")
    if max_weight is not None and (isinstance(max_weight, bool) or not isinstance(max_weight, int) or max_weight < 1):
        errors.append(_invalid(f"{path}.trafficRouting.maxTrafficWeight", max_weight, "must be at least 1"))
    stable, canary_service = canary.stable_service, canary.canary_service
    if canary.ping_pong:  # either way round: the routers' spec checks only need both names
        stable, canary_service = canary.ping_service, canary.pong_service
    routers, problems = build_routers(routing, ro.name, ro.namespace, stable, canary_service)
    errors.extend(f"{p.field}: {p.message}" for p in problems)
    for router in routers:
        errors.extend(f"{p.field}: {p.message}" for p in router.spec_problems())
    managed = managed_route_names(routing)
    if len(set(managed)) != len(managed):
        errors.append(_invalid(f"{path}.trafficRouting.managedRoutes", managed, "route names must be unique"))
    for step in canary.steps:
        for action in ROUTE_ACTIONS:
            raw = step.raw.get(action)
            if raw is not None:
                errors.extend(_route_step_errors(action, raw, f"{path}.steps[{step.index}]", routers, managed))
    return errors


#: The step actions that need a managed route and a router that can do them.
ROUTE_ACTIONS = ("setHeaderRoute", "setMirrorRoute")


def _can_do(router: Router, action: str) -> bool:
    return router.supports_header_routes() if action == "setHeaderRoute" else router.supports_mirror()


def _route_step_errors(
    action: str, raw: Any, spath: str, routers: Sequence[Router], managed: Sequence[str]
) -> list[str]:
    """A setHeaderRoute / setMirrorRoute step: a managed route's name, routers that can do it, valid matches."""
    if not isinstance(raw, Mapping) or not raw.get("name"):
        return [_required(f"{spath}.{action}.name", f"{action} needs a name listed in managedRoutes")]
    errors: list[str] = []
    name = str(raw["name"])
    if name not in managed:
        errors.append(
            _invalid(
                f"{spath}.{action}.name",
                name,
                f"route {name!r} is not in spec.strategy.canary.trafficRouting.managedRoutes: add it there",
            )
        )
    cannot = [r.name for r in routers if not _can_do(r, action)]
    if cannot:
        errors.append(
            _invalid(
                f"{spath}.{action}",
                name,
                f"traffic router {', '.join(cannot)} cannot do {action}: remove the step or use a router that can",
            )
        )
    if action == "setHeaderRoute":
        errors.extend(_header_match_errors(raw, spath))
    else:
        errors.extend(_mirror_percentage_errors(raw, spath))
    return errors


def _header_match_errors(raw: Mapping[str, Any], spath: str) -> list[str]:
    errors: list[str] = []
    for i, match in enumerate(raw.get("match") or []):
        value = match.get("headerValue") if isinstance(match, Mapping) else None
        kinds = [k for k in ("exact", "regex", "prefix") if isinstance(value, Mapping) and k in value]
        if len(kinds) != 1:
            errors.append(
                _invalid(
                    f"{spath}.setHeaderRoute.match[{i}].headerValue",
                    dict(value) if isinstance(value, Mapping) else value,
                    "set exactly one of exact, regex or prefix",
                )
            )
    return errors


def _mirror_percentage_errors(raw: Mapping[str, Any], spath: str) -> list[str]:
    percentage = raw.get("percentage")
    if percentage is not None and (
        isinstance(percentage, bool) or not isinstance(percentage, int) or not 0 <= percentage <= 100
    ):
        return [_invalid(f"{spath}.setMirrorRoute.percentage", percentage, "must be between 0 and 100")]
    return []
