"""The checks a Rollout gets because the controller never trusts what the API server let through:
integers past ``int32`` (the CRD says ``format: int32``, but a server that does not enforce formats,
or an older CRD, lets ``replicas: 1099511627776`` in), percentages past 100, pause durations past what
Argo can hold, selector expressions Kubernetes would refuse, analysis with no templates or a
``startingStep`` outside the steps, experiment steps without templates, and steps this controller cannot run yet.

Each error names the field and the fix, in the form of :mod:`rollouts.model.validation`, which calls
:func:`limit_errors`; it becomes the Rollout's ``InvalidSpec`` condition and a ``lint`` finding.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from typing import Any, Final

from rollouts.model.spec import RolloutSpec
from rollouts.model.stepplugins import plugin_step_errors

__all__ = ["INT32_MAX", "UNSUPPORTED_STEPS", "limit_errors"]

INT32_MAX: Final = 2**31 - 1

#: Step actions a Rollout may name (the CRD has them) that this controller does not run: such a step
#: would hang the Rollout at that step with no message, so it is InvalidSpec until it is built.
UNSUPPORTED_STEPS: Final[dict[str, str]] = {}

# Integer fields (path under spec, relative names) that the CRD types as int32.
_TOP_INTS: Final = ("replicas", "minReadySeconds", "revisionHistoryLimit", "progressDeadlineSeconds")
_CANARY_INTS: Final = (
    "scaleDownDelaySeconds", "scaleDownDelayRevisionLimit", "abortScaleDownDelaySeconds", "minPodsPerReplicaSet",
    "maxSurge", "maxUnavailable",
)  # fmt: skip
_BLUE_GREEN_INTS: Final = (
    "previewReplicaCount", "autoPromotionSeconds", "scaleDownDelaySeconds", "scaleDownDelayRevisionLimit",
    "abortScaleDownDelaySeconds", "maxUnavailable",
)  # fmt: skip
_STEP_INTS: Final = (("setWeight",), ("setCanaryScale", "replicas"), ("setCanaryScale", "weight"))
_ANALYSIS_KEYS: Final = ("prePromotionAnalysis", "postPromotionAnalysis")


def _text(value: Any) -> str:
    return json.dumps(value, default=str)


def _int32(path: str, value: Any) -> list[str]:
    if isinstance(value, bool) or not isinstance(value, int) or -INT32_MAX - 1 <= value <= INT32_MAX:
        return []
    return [f"{path}: Invalid value: {value}: must be at most {INT32_MAX} (int32): use a smaller number"]


def _int_fields(raw: Mapping[str, Any], base: str, names: tuple[str, ...]) -> Iterator[tuple[str, Any]]:
    for name in names:
        if name in raw:
            yield f"{base}.{name}", raw[name]


def _strategy(spec: Mapping[str, Any]) -> Mapping[str, Any]:
    strategy = spec.get("strategy")
    return strategy if isinstance(strategy, Mapping) else {}


def _all_ints(spec: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
    yield from _int_fields(spec, "spec", _TOP_INTS)
    canary = _strategy(spec).get("canary")
    if isinstance(canary, Mapping):
        yield from _int_fields(canary, "spec.strategy.canary", _CANARY_INTS)
        routing = canary.get("trafficRouting")
        if isinstance(routing, Mapping):
            yield from _int_fields(routing, "spec.strategy.canary.trafficRouting", ("maxTrafficWeight",))
        for index, step in enumerate(canary.get("steps") or []):
            if not isinstance(step, Mapping):
                continue
            for keys in _STEP_INTS:
                node: Any = step
                for key in keys:
                    node = node.get(key) if isinstance(node, Mapping) else None
                if node is not None:
                    yield f"spec.strategy.canary.steps[{index}].{'.'.join(keys)}", node
    blue_green = _strategy(spec).get("blueGreen")
    if isinstance(blue_green, Mapping):
        yield from _int_fields(blue_green, "spec.strategy.blueGreen", _BLUE_GREEN_INTS)


def _percent_errors(spec: Mapping[str, Any]) -> list[str]:
    """``maxUnavailable`` past 100% (Kubernetes refuses it on a Deployment: more than every pod)."""
    strategy = _strategy(spec)
    errors = []
    for name in ("canary", "blueGreen"):
        section = strategy.get(name)
        value = section.get("maxUnavailable") if isinstance(section, Mapping) else None
        match = re.fullmatch(r"\s*([0-9]+)%\s*", value) if isinstance(value, str) else None
        if match is not None and int(match.group(1)) > 100:
            errors.append(
                f"spec.strategy.{name}.maxUnavailable: Invalid value: {_text(value)}: "
                "must not be greater than 100%: use a percentage from 0% to 100%"
            )
    return errors


def _analysis_errors(ro: RolloutSpec) -> list[str]:
    """Every ``analysis`` block names at least one template, each by ``templateName``."""
    places: list[tuple[str, Any]] = []
    if ro.canary is not None:
        places.append(("spec.strategy.canary.analysis", ro.canary.raw.get("analysis")))
        places += [(f"spec.strategy.canary.steps[{s.index}].analysis", s.raw.get("analysis")) for s in ro.canary.steps]
    if ro.blue_green is not None:
        places += [(f"spec.strategy.blueGreen.{key}", ro.blue_green.raw.get(key)) for key in _ANALYSIS_KEYS]
    errors: list[str] = []
    for path, block in places:
        if block is None:
            continue
        templates = block.get("templates") if isinstance(block, Mapping) else None
        if not templates:
            errors.append(
                f"{path}.templates: Required value: analysis needs at least one template: "
                "add a templateName or remove the analysis"
            )
            continue
        for index, ref in enumerate(templates):
            if not isinstance(ref, Mapping) or not str(ref.get("templateName") or "").strip():
                errors.append(f"{path}.templates[{index}].templateName: Required value: name an AnalysisTemplate")
    return errors


def _experiment_step_errors(path: str, experiment: Any) -> list[str]:
    """An experiment step runs at least one template, each named once; each analysis names its template."""
    raw = experiment if isinstance(experiment, Mapping) else {}
    templates = raw.get("templates")
    if not isinstance(templates, list) or not templates:
        return [f"{path}.templates: Required value: an experiment step runs at least one template (specRef: stable "
                "or canary)"]  # fmt: skip
    errors: list[str] = []
    names: set[str] = set()
    for index, template in enumerate(templates):
        name = str(template.get("name") or "") if isinstance(template, Mapping) else ""
        if name in names:
            errors.append(f'{path}.templates[{index}].name: Duplicate value: "{name}": give each template its own name')
        names.add(name)
    for index, analysis in enumerate(raw.get("analyses") or []):
        if not isinstance(analysis, Mapping) or not str(analysis.get("templateName") or "").strip():
            errors.append(f"{path}.analyses[{index}].templateName: Required value: name an AnalysisTemplate")
    return errors


def _step_errors(ro: RolloutSpec) -> list[str]:
    errors: list[str] = []
    for step in ro.canary.steps if ro.canary is not None else ():
        path = f"spec.strategy.canary.steps[{step.index}]"
        errors += [f"{path}.{a}: {UNSUPPORTED_STEPS[a]}" for a in step.actions if a in UNSUPPORTED_STEPS]
        if "plugin" in step.actions:
            errors += plugin_step_errors(step.raw.get("plugin"), f"{path}.plugin")
        if "experiment" in step.actions:
            errors += _experiment_step_errors(f"{path}.experiment", step.raw.get("experiment"))
        if step.pause and step.pause_seconds is not None and step.pause_seconds > INT32_MAX:
            errors.append(
                f"{path}.pause.duration: Invalid value: {_text(step.pause_raw)}: "
                f"must be at most {INT32_MAX} seconds: use a shorter pause, or pause without a duration"
            )
    return errors


def _starting_step_errors(ro: RolloutSpec) -> list[str]:
    """Background analysis' ``startingStep``: a step index (0 .. the number of steps)."""
    analysis = ro.canary.raw.get("analysis") if ro.canary is not None else None
    starting = analysis.get("startingStep") if isinstance(analysis, Mapping) else None
    if starting is None or ro.canary is None:
        return []
    last = len(ro.canary.steps)
    if isinstance(starting, bool) or not isinstance(starting, int) or not 0 <= starting <= last:
        return [
            f"spec.strategy.canary.analysis.startingStep: Invalid value: {_text(starting)}: "
            f"must be a step index from 0 to {last}"
        ]
    return []


_OPERATORS: Final = {"In": True, "NotIn": True, "Exists": False, "DoesNotExist": False}  # needs values?


def _selector_errors(spec: Mapping[str, Any]) -> list[str]:
    """``matchExpressions`` the way Kubernetes' LabelSelector validation has them: a known operator,
    values for In/NotIn and none for Exists/DoesNotExist (an unknown operator would select everything)."""
    selector = spec.get("selector")
    expressions = selector.get("matchExpressions") if isinstance(selector, Mapping) else None
    errors: list[str] = []
    for index, expr in enumerate(expressions if isinstance(expressions, list) else []):
        path = f"spec.selector.matchExpressions[{index}]"
        operator = expr.get("operator") if isinstance(expr, Mapping) else None
        if operator not in _OPERATORS:
            errors.append(
                f"{path}.operator: Unsupported value: {_text(operator)}: use In, NotIn, Exists or DoesNotExist"
            )
        elif bool(expr.get("values")) != _OPERATORS[operator]:
            need = "must be non-empty" if _OPERATORS[operator] else "must be empty"
            errors.append(f"{path}.values: Invalid value: {_text(expr.get('values'))}: {need} for {operator}")
    return errors


def limit_errors(ro: RolloutSpec) -> list[str]:
    """What the controller refuses although the API server accepted it (see the module's docstring)."""
    errors = [error for path, value in _all_ints(ro.raw_spec) for error in _int32(path, value)]
    errors += _percent_errors(ro.raw_spec) + _selector_errors(ro.raw_spec)
    return errors + _analysis_errors(ro) + _starting_step_errors(ro) + _step_errors(ro)
