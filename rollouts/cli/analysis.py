"""Pure: what `create analysisrun` and `terminate analysisrun` send.

The run itself is built by the analysis controller's own merge, `analysis.spec.build_analysis_run`
(Argo's `NewAnalysisRunFromTemplates`: metrics of every template, nested `spec.templates` followed,
args flattened and filled, dryRun / measurementRetention rules concatenated, the merged spec
validated), so a run created by hand is exactly what the controller would create from the same
templates. This module adds what only the command needs: `-a NAME=VALUE` parsing, Argo's choice of
name / generateName, arguments checked before anything is sent (an unknown argument is refused where
Argo ignores it silently; every missing argument is named with the flag that supplies it), and
errors as one exception type. Template lookups are passed in, so nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

ANALYSIS_TEMPLATE = "AnalysisTemplate"
CLUSTER_ANALYSIS_TEMPLATE = "ClusterAnalysisTemplate"
# Argo's `argo-rollouts.argoproj.io/controller-instance-id`, in our label namespace.
INSTANCE_ID_LABEL = "rollouts.pyrollouts.io/controller-instance-id"
TERMINATE_PATCH: dict[str, Any] = {"spec": {"terminate": True}}

# lookup(name, cluster_scope) -> the template object; raises (or returns None) when it does not exist.
TemplateLookup = Callable[[str, bool], Mapping[str, Any] | None]


class AnalysisSpecError(Exception):
    """The templates and arguments cannot make a run; the message names the template, metric or argument."""


class MissingArgumentsError(AnalysisSpecError):
    """Arguments without a default that the caller gave no value for."""

    def __init__(self, names: Sequence[str], template: str) -> None:
        self.names = list(names)
        noun = "argument" if len(self.names) == 1 else "arguments"
        quoted = ", ".join(f'"{n}"' for n in self.names)
        flags = " ".join(f"-a {n}=VALUE" for n in self.names)
        super().__init__(f"no value for {noun} {quoted} of {template} (no default): pass {flags}")


def _map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def describe(template: Mapping[str, Any]) -> str:
    """`AnalysisTemplate "name"` / `ClusterAnalysisTemplate "name"`."""
    kind = CLUSTER_ANALYSIS_TEMPLATE if template.get("kind") == CLUSTER_ANALYSIS_TEMPLATE else ANALYSIS_TEMPLATE
    return f'{kind} "{_map(template.get("metadata")).get("name", "")}"'


def parse_argument(text: str) -> tuple[str, str]:
    """`-a NAME=VALUE` (the value may contain '=' and may be empty)."""
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise ValueError(f'argument "{text}" must be in the form NAME=VALUE')
    return name, value


def run_name(template_name: str, name: str = "", generate_name: str = "") -> tuple[str, str]:
    """(name, generateName) as Argo's plugin picks them: --name, else --generate-name, else TEMPLATE-."""
    if name:
        return name, ""
    if generate_name:
        return "", generate_name
    if not template_name:
        raise AnalysisSpecError("the template has no name to derive the run's name from: pass --name")
    return "", f"{template_name}-"


def run_from_template(
    root: Mapping[str, Any],
    lookup: TemplateLookup,
    arguments: Sequence[tuple[str, str]] = (),
    *,
    name: str = "",
    generate_name: str = "",
    namespace: str = "",
    labels: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The AnalysisRun for `create analysisrun`: `root` (an AnalysisTemplate or ClusterAnalysisTemplate,
    by its kind) with its nested templates, the `-a` arguments, and Argo's default name (TEMPLATE-)."""
    from analysis import spec  # the controller's merge (imported here: other verbs never need it)

    cache: dict[tuple[str, bool], Mapping[str, Any] | None] = {}

    def cached(ref_name: str, cluster_scope: bool) -> Mapping[str, Any] | None:
        key = (ref_name, cluster_scope)
        if key not in cache:
            cache[key] = lookup(ref_name, cluster_scope)
        return cache[key]

    cluster = root.get("kind") == CLUSTER_ANALYSIS_TEMPLATE
    templates, cluster_templates = ([], [root]) if cluster else ([root], [])
    template_name = str(_map(root.get("metadata")).get("name", ""))
    run, generated = run_name(template_name, name, generate_name)
    try:
        declared = spec.flatten_templates(templates, cluster_templates, cached).get("args") or []
        given = dict(arguments)
        known = [str(_map(a).get("name")) for a in declared]
        unknown = [n for n in given if n not in known]
        if unknown:
            noun = "argument" if len(unknown) == 1 else "arguments"
            quoted = ", ".join(f'"{n}"' for n in unknown)
            raise AnalysisSpecError(
                f"unknown {noun} {quoted}: {describe(root)} declares {', '.join(known) or 'no arguments'}"
            )
        missing = [
            str(a.get("name")) for a in (_map(a) for a in declared)
            if a.get("value") is None and not a.get("valueFrom") and str(a.get("name")) not in given
        ]
        if missing:
            raise MissingArgumentsError(missing, describe(root))
        return spec.build_analysis_run(
            templates, cluster_templates, [{"name": n, "value": v} for n, v in arguments], run, namespace,
            labels=labels, generate_name=generated, lookup=cached,
        )
    except (spec.SpecError, spec.ArgError) as exc:
        raise AnalysisSpecError(f"{describe(root)}: {exc}") from exc
