"""AnalysisTemplate / ClusterAnalysisTemplate / AnalysisRun: durations, args, templating, validation,
and building an AnalysisRun from templates.

Pure functions only (no I/O). Follows argo-rollouts ``utils/analysis/factory.go``
(``NewAnalysisRunFromTemplates``, ``FlattenTemplates``, ``MergeArgs``, ``ValidateMetric``) and
``utils/template`` (``ResolveArgs``): ``{{args.name}}`` placeholders are substituted into a metric's
fields when it is measured, from the run's ``spec.args``; Secret values are resolved by the analysis
controller at that moment and never written back to the run.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Final

from analysis.expr.condition import check_syntax
from analysis.phases import effective_count, measurement_retention, resolve_dry_run
from analysis.providers import registry
from rollouts.model.durations import parse_go_duration

__all__ = [
    "API_VERSION",
    "UNRESOLVED_ARGS_ANNOTATION",
    "ArgError",
    "SpecError",
    "build_analysis_run",
    "duration_seconds",
    "flatten_templates",
    "merge_args",
    "provider_kind",
    "referenced_args",
    "resolve_rollout_args",
    "substitute",
    "validate_metrics",
    "validate_run_spec",
    "validate_template",
]

API_VERSION: Final = "pyrollouts.io/v1alpha1"
#: On an AnalysisRun whose Rollout could not give some arg a value for this revision (a ``fieldRef`` to a
#: label the Rollout lacks): why, for the analysis controller to make the run's Error (Argo: the error
#: belongs to the run that needs the arg, not to the Rollout's spec).
UNRESOLVED_ARGS_ANNOTATION: Final = "analysis.pyrollouts.io/unresolved-args"

#: Go's ``time.Duration`` holds at most 2^63-1 ns (about 292 years); Argo cannot parse more.
MAX_DURATION_SECONDS: Final = (2**63 - 1) / 1e9
INT32_MAX: Final = 2**31 - 1
TTL_MAX_SECONDS: Final = INT32_MAX
_PLACEHOLDER: Final = re.compile(r"\{\{\s*args\.([A-Za-z0-9_.\-]+)\s*\}\}")
_ANY_PLACEHOLDER: Final = re.compile(r"\{\{[^{}]*\}\}")


class SpecError(ValueError):
    """A template or run spec that cannot work; the message names the field."""


class ArgError(ValueError):
    """An argument that cannot be resolved; the message names the argument (never a secret value)."""


# --------------------------------------------------------------------------- durations


def duration_seconds(value: Any, field: str) -> float | None:
    """Seconds of a Go duration field (``30s``, ``1m30s``); ``None`` when unset.

    Raises :class:`SpecError` naming ``field`` for text Go would reject or a negative duration."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise SpecError(f"{field}: invalid duration {value!r}")
    try:
        seconds = parse_go_duration(value)
    except ValueError:
        raise SpecError(
            f'{field}: Invalid value: "{value}": not a duration: use a Go duration such as 30s, 5m or 1h'
        ) from None
    if seconds < 0:
        raise SpecError(f'{field}: negative duration "{value}"')
    if seconds > MAX_DURATION_SECONDS:
        raise SpecError(
            f'{field}: Invalid value: "{value}": longer than Go\'s longest duration (2562047h): use a shorter one'
        )
    return seconds


# --------------------------------------------------------------------------- args


def referenced_args(value: Any) -> list[str]:
    """Names of the ``{{args.x}}`` placeholders in any string inside ``value``, in order, once each."""
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, str):
            for match in _PLACEHOLDER.finditer(node):
                if match.group(1) not in found:
                    found.append(match.group(1))
        elif isinstance(node, Mapping):
            for item in node.values():
                walk(item)
        elif isinstance(node, list | tuple):
            for item in node:
                walk(item)

    walk(value)
    return found


def substitute(value: Any, args: Mapping[str, str]) -> Any:
    """A deep copy of ``value`` with ``{{args.name}}`` replaced in every string (keys too).

    An int-or-string field that becomes an integer after substitution (``count: "{{args.n}}"``)
    stays a string here; :mod:`analysis.phases` reads such strings as integers.
    Raises :class:`ArgError` for a placeholder whose argument has no value.
    """

    def text(source: str) -> str:
        def repl(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in args:
                raise ArgError(f'argument "{name}" was not supplied or has no value')
            return args[name]

        return _PLACEHOLDER.sub(repl, source)

    def walk(node: Any) -> Any:
        if isinstance(node, str):
            return text(node)
        if isinstance(node, Mapping):
            return {text(k) if isinstance(k, str) else k: walk(v) for k, v in node.items()}
        if isinstance(node, list | tuple):
            return [walk(v) for v in node]
        return copy.deepcopy(node)

    return walk(value)


def merge_args(incoming: Sequence[Mapping[str, Any]] | None, template_args: Sequence[Mapping[str, Any]] | None
               ) -> list[dict[str, Any]]:
    """Argo's ``MergeArgs``: the templates' declared args, with values from ``incoming`` where given.

    An incoming arg the templates do not declare is ignored. Every arg must end with a ``value`` or a
    ``valueFrom``; otherwise :class:`ArgError` ``args.NAME was not resolved``.
    """
    merged = [copy.deepcopy(dict(a)) for a in template_args or []]
    by_name = {str(a.get("name")): a for a in merged}
    for arg in incoming or []:
        target = by_name.get(str(arg.get("name")))
        if target is None:
            continue
        if arg.get("value") is not None:
            target["value"] = arg["value"]
            target.pop("valueFrom", None)
        elif arg.get("valueFrom") is not None:
            target["valueFrom"] = copy.deepcopy(arg["valueFrom"])
            target.pop("value", None)
    for arg in merged:
        if arg.get("value") is None and not arg.get("valueFrom"):
            raise ArgError(f"args.{arg.get('name')} was not resolved")
    return merged


def _field_path(obj: Mapping[str, Any], path: str) -> str:
    """``metadata.name``, ``metadata.labels['x']``, ``spec.replicas``... of ``obj`` as a string."""
    node: Any = obj
    for part in re.findall(r"[^.\[\]]+|\[[^\]]*\]", path):
        key = part[1:-1].strip("'\"") if part.startswith("[") else part
        if not isinstance(node, Mapping) or key not in node:
            raise ArgError(f"fieldRef {path!r} not found")
        node = node[key]
    if isinstance(node, Mapping | list):
        raise ArgError(f"fieldRef {path!r} is not a single value")
    if isinstance(node, bool):
        return "true" if node else "false"
    return str(node)


def resolve_rollout_args(
    args: Sequence[Mapping[str, Any]] | None,
    rollout: Mapping[str, Any],
    stable_hash: str | None,
    latest_hash: str | None,
    unresolved: list[str] | None = None,
) -> list[dict[str, Any]]:
    """Args of a Rollout's analysis as they go into an AnalysisRun (Argo's ``BuildArgumentsForRolloutAnalysisRun``).

    ``valueFrom.podTemplateHashValue`` (``Stable``/``Latest``) and ``valueFrom.fieldRef`` (read from the
    Rollout) become plain values; ``secretKeyRef`` stays a reference, resolved at measurement time.
    With ``unresolved`` given, a ``fieldRef`` the Rollout cannot answer is not raised: its message goes
    there and the arg keeps its reference (the run it goes into is the one in error).
    """
    out: list[dict[str, Any]] = []
    for arg in args or []:
        name = str(arg.get("name"))
        source = arg.get("valueFrom") or {}
        if arg.get("value") is not None or not source:
            out.append(copy.deepcopy(dict(arg)))
        elif source.get("podTemplateHashValue") is not None:
            which = source["podTemplateHashValue"]
            value = stable_hash if which == "Stable" else latest_hash if which == "Latest" else None
            if which not in ("Stable", "Latest"):
                raise ArgError(f"args.{name}: podTemplateHashValue must be Stable or Latest, not {which!r}")
            if value is None:
                raise ArgError(f"args.{name}: no {which.lower()} pod template hash yet")
            out.append({"name": name, "value": value})
        elif source.get("fieldRef") is not None:
            path = str((source.get("fieldRef") or {}).get("fieldPath", ""))
            try:
                out.append({"name": name, "value": _field_path(rollout, path)})
            except ArgError as exc:
                kind = str(rollout.get("kind") or "Rollout")
                owner = str((rollout.get("metadata") or {}).get("name") or "")
                message = f'args.{name}: {exc} in {kind} "{owner}": add it to the {kind} or give the arg a value'
                if unresolved is None:
                    raise ArgError(message) from None
                unresolved.append(message)
                out.append(copy.deepcopy(dict(arg)))
        else:
            out.append(copy.deepcopy(dict(arg)))
    return out


# --------------------------------------------------------------------------- validation


def provider_kind(metric: Mapping[str, Any]) -> str | None:
    """The one provider key of a metric (``prometheus``, ``web``, ``job``...), or None."""
    provider = metric.get("provider") or {}
    kinds = [k for k in provider if provider.get(k) is not None] if isinstance(provider, Mapping) else []
    return kinds[0] if len(kinds) == 1 else None


def _neutral(source: str) -> str:
    # Placeholders become "1" padded with spaces to their own length, so positions stay true.
    return _ANY_PLACEHOLDER.sub(lambda m: "1" + " " * (len(m.group(0)) - 1), source)


# The smallest value of each integer field: failureLimit -1 disables the limit (Argo); the others
# count measurements. All are int32 in Argo's CRD.
_INT_MINIMUM: Final = {"failureLimit": -1}


def _int_field(metric: Mapping[str, Any], key: str, base: str) -> list[str]:
    value = metric.get(key)
    if value is None:
        return []
    if isinstance(value, str) and _PLACEHOLDER.fullmatch(value.strip()):
        return []  # checked once the argument is substituted
    if isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d+\s*", value):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        return [f"{base}.{key}: expected an integer, got {value!r}"]
    minimum = _INT_MINIMUM.get(key, 0)
    if not minimum <= value <= INT32_MAX:
        return [f"{base}.{key}: Invalid value: {value}: must be between {minimum} and {INT32_MAX}"]
    return []


def validate_metrics(metrics: Sequence[Mapping[str, Any]], base: str = "spec.metrics") -> list[str]:
    """Problems with a list of metrics, each naming its field (Argo's ``ValidateMetric`` and more).

    Duplicate names, conditions that do not parse (with the column; ``{{args.x}}`` placeholders
    count as a value), durations Go would reject, non-integer limits, ``count > 1`` without an
    ``interval``, no provider or more than one, providers this controller cannot run.
    """
    problems: list[str] = []
    seen: set[str] = set()
    for index, metric in enumerate(metrics):
        where = f"{base}[{index}]"
        if not isinstance(metric, Mapping):
            problems.append(f"{where}: expected an object")
            continue
        problems += _name_problems(metric, where, seen)
        problems += _hidden_character_problems(metric, where)
        problems += _condition_problems(metric, where)
        problems += _schedule_problems(metric, where)
        problems += _provider_problems(metric, where)
    return problems


# C0 controls but tab and newlines, DEL, and the bidirectional overrides and isolates (U+202A-U+202E,
# U+2066-U+2069): a NUL cuts a query short in C libraries, and an override shows a reviewer other text
# than the provider runs ("Trojan Source").
_HIDDEN: Final = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u202a-\u202e\u2066-\u2069]")


def _hidden_character_problems(node: Any, where: str) -> list[str]:
    """Each string of a metric (keys too) holding a control or bidirectional-override character."""
    if isinstance(node, str):
        found = _HIDDEN.search(node)
        if found is None:
            return []
        return [
            f"{where}: Invalid value: holds the control character U+{ord(found.group(0)):04X} "
            f"at offset {found.start()}: remove it"
        ]
    if isinstance(node, Mapping):
        problems: list[str] = []
        for key, value in node.items():
            problems += _hidden_character_problems(key, f"{where} (a key)")
            problems += _hidden_character_problems(value, f"{where}.{key}")
        return problems
    if isinstance(node, list | tuple):
        return [p for i, item in enumerate(node) for p in _hidden_character_problems(item, f"{where}[{i}]")]
    return []


def _undeclared_args(metrics: Sequence[Any], declared: Iterable[str], base: str) -> list[str]:
    """A ``{{args.x}}`` placeholder whose argument ``spec.args`` does not declare (it could never be
    substituted: every measurement would be an Error)."""
    known = set(declared)
    problems = []
    for index, metric in enumerate(metrics):
        for name in referenced_args(metric):
            if name not in known:
                problems.append(
                    f'{base}[{index}]: argument "{name}" ({{{{args.{name}}}}}) is not declared in spec.args: '
                    "declare it or fix the name"
                )
    return problems


def _name_problems(metric: Mapping[str, Any], where: str, seen: set[str]) -> list[str]:
    name = metric.get("name")
    if not name:
        return [f"{where}.name: required"]
    if name in seen:
        return [f'{where}.name: two metrics have the same name "{name}"']
    seen.add(str(name))
    return []


def _condition_problems(metric: Mapping[str, Any], where: str) -> list[str]:
    problems: list[str] = []
    for key in ("successCondition", "failureCondition"):
        source = metric.get(key)
        if source is None or source == "":
            continue
        if not isinstance(source, str):
            problems.append(f"{where}.{key}: expected a string")
            continue
        error = check_syntax(_neutral(source), f"{where}.{key}")
        if error is not None:
            problems.append(str(error).replace(_one(_neutral(source)), _one(source)))
    return problems


def _schedule_problems(metric: Mapping[str, Any], where: str) -> list[str]:
    """Durations, integer limits, and an ``interval`` for ``count > 1``."""
    problems: list[str] = []
    for key in ("interval", "initialDelay"):
        value = metric.get(key)
        if isinstance(value, str) and _PLACEHOLDER.fullmatch(value.strip()):
            continue
        try:
            duration_seconds(value, f"{where}.{key}")
        except SpecError as exc:
            problems.append(str(exc))
    for key in ("count", "failureLimit", "inconclusiveLimit", "consecutiveErrorLimit", "consecutiveSuccessLimit"):
        problems += _int_field(metric, key, where)
    if not problems or not problems[-1].startswith(f"{where}.count"):
        try:
            count = effective_count(metric) if not _PLACEHOLDER.search(str(metric.get("count", ""))) else None
        except ValueError:
            count = None
        if count is not None and count > 1 and not metric.get("interval"):
            problems.append(f"{where}.interval: required when count > 1")
    return problems


def _provider_problems(metric: Mapping[str, Any], where: str) -> list[str]:
    """Exactly one provider, registered (:mod:`analysis.providers.registry`), and its own spec check."""
    provider = metric.get("provider")
    kinds = [k for k in provider if provider.get(k) is not None] if isinstance(provider, Mapping) else []
    if not kinds:
        return [f"{where}.provider: one provider is required"]
    if len(kinds) > 1:
        return [f"{where}.provider: exactly one provider is allowed, got {', '.join(sorted(kinds))}"]
    if not registry.is_registered(kinds[0]):
        return [f"{where}.provider.{kinds[0]}: provider not supported by this controller"]
    assert isinstance(provider, Mapping)
    return registry.spec_problems(kinds[0], provider[kinds[0]], f"{where}.provider.{kinds[0]}", metric)


def _one(source: str) -> str:
    return " ".join(source.split("\n")).strip()


def _rules(entries: Any, kind: str, names: Sequence[str], base: str) -> list[str]:
    if not entries:
        return []
    try:
        if kind == "dryRun":
            resolve_dry_run(names, entries)
        else:
            measurement_retention(names, entries)
    except ValueError as exc:
        return [f"{base}.{exc}"]
    return []


def validate_run_spec(spec: Mapping[str, Any]) -> list[str]:
    """Problems with an AnalysisRun (or a template's) ``spec``: metrics, dryRun, measurementRetention."""
    metrics = spec.get("metrics") or []
    if not metrics:
        return ["spec.metrics: at least one metric is required (a run without metrics would never end)"]
    problems = validate_metrics(metrics)
    problems += _undeclared_args(metrics, (str(a.get("name")) for a in spec.get("args") or []), "spec.metrics")
    names = [str(m.get("name")) for m in metrics if isinstance(m, Mapping) and m.get("name")]
    problems += _rules(spec.get("dryRun"), "dryRun", names, "spec")
    problems += _rules(spec.get("measurementRetention"), "measurementRetention", names, "spec")
    return problems + _ttl_problems(spec.get("ttlStrategy"))


def _ttl_problems(ttl: Any) -> list[str]:
    if not isinstance(ttl, Mapping):
        return []
    problems = []
    for key in ("secondsAfterCompletion", "secondsAfterFailure", "secondsAfterSuccess"):
        value = ttl.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                  or not 0 <= value <= TTL_MAX_SECONDS):
            problems.append(f"spec.ttlStrategy.{key}: Invalid value: {value!r}: must be from 0 to {TTL_MAX_SECONDS}")
    return problems


def validate_template(template: Mapping[str, Any]) -> list[str]:
    """Problems with an AnalysisTemplate / ClusterAnalysisTemplate, each naming the field.

    A template that only nests others (``spec.templates``) may have no metrics of its own.
    """
    spec = template.get("spec") or {}
    problems = validate_metrics(spec.get("metrics") or [])
    names = [str(m.get("name")) for m in spec.get("metrics") or [] if isinstance(m, Mapping)]
    if not spec.get("templates"):
        # The rules of a nesting template may name metrics of the nested ones: checked on the run.
        problems += _rules(spec.get("dryRun"), "dryRun", names, "spec")
        problems += _rules(spec.get("measurementRetention"), "measurementRetention", names, "spec")
        if not names:
            problems.append("spec.metrics: at least one metric is required")
        # A nesting template's metrics may use args the nested ones declare: checked on the run.
        args = (str(a.get("name")) for a in spec.get("args") or [] if isinstance(a, Mapping))
        problems += _undeclared_args(spec.get("metrics") or [], args, "spec.metrics")
    seen: dict[str, Any] = {}
    for index, arg in enumerate(spec.get("args") or []):
        name = str(arg.get("name"))
        if name in seen:
            problems.append(f'spec.args[{index}].name: duplicate argument "{name}"')
        seen[name] = arg
    return problems


# --------------------------------------------------------------------------- building a run

TemplateLookup = Callable[[str, bool], Mapping[str, Any] | None]


def flatten_templates(
    templates: Sequence[Mapping[str, Any]],
    cluster_templates: Sequence[Mapping[str, Any]] = (),
    lookup: TemplateLookup | None = None,
) -> dict[str, Any]:
    """One merged template spec (Argo's ``FlattenTemplates``), nested ``spec.templates`` included.

    Nested references are found among the given templates first, then through
    ``lookup(name, cluster_scope)``. Metrics keep their order; a metric name used twice is an error;
    args with the same name must agree on their value; dryRun and measurementRetention rules are
    concatenated (duplicates dropped).
    """
    local = {str((t.get("metadata") or {}).get("name")): t for t in templates}
    cluster = {str((t.get("metadata") or {}).get("name")): t for t in cluster_templates}
    metrics: list[dict[str, Any]] = []
    args: list[dict[str, Any]] = []
    dry_run: list[dict[str, Any]] = []
    retention: list[dict[str, Any]] = []
    visited: set[tuple[bool, str]] = set()

    def find(name: str, cluster_scope: bool) -> Mapping[str, Any]:
        found = (cluster if cluster_scope else local).get(name)
        if found is None and lookup is not None:
            found = lookup(name, cluster_scope)
        if found is None:
            kind = "ClusterAnalysisTemplate" if cluster_scope else "AnalysisTemplate"
            raise SpecError(f'{kind} "{name}" not found')
        return found

    def add(template: Mapping[str, Any], cluster_scope: bool, path: tuple[str, ...]) -> None:
        name = str((template.get("metadata") or {}).get("name"))
        key = (cluster_scope, name)
        if key in visited:
            if name in path:
                raise SpecError(f"templates: cycle through {' -> '.join((*path, name))}")
            return
        visited.add(key)
        spec = template.get("spec") or {}
        for ref in spec.get("templates") or []:
            add(find(str(ref.get("templateName")), bool(ref.get("clusterScope"))), bool(ref.get("clusterScope")),
                (*path, name))
        for metric in spec.get("metrics") or []:
            if any(m.get("name") == metric.get("name") for m in metrics):
                raise SpecError(f"two metrics have the same name \"{metric.get('name')}\"")
            metrics.append(copy.deepcopy(dict(metric)))
        for arg in spec.get("args") or []:
            same = next((a for a in args if a.get("name") == arg.get("name")), None)
            if same is None:
                args.append(copy.deepcopy(dict(arg)))
            elif (same.get("value"), same.get("valueFrom")) != (arg.get("value"), arg.get("valueFrom")):
                if same.get("value") is None and not same.get("valueFrom"):
                    same.update(copy.deepcopy(dict(arg)))
                elif arg.get("value") is not None or arg.get("valueFrom"):
                    raise SpecError(f"two args with the same name \"{arg.get('name')}\" and different values")
        for entry in spec.get("dryRun") or []:
            if dict(entry) not in dry_run:
                dry_run.append(dict(entry))
        for entry in spec.get("measurementRetention") or []:
            if dict(entry) not in retention:
                retention.append(dict(entry))

    for template in templates:
        add(template, False, ())
    for template in cluster_templates:
        add(template, True, ())
    flat: dict[str, Any] = {"metrics": metrics, "args": args}
    if dry_run:
        flat["dryRun"] = dry_run
    if retention:
        flat["measurementRetention"] = retention
    return flat


def build_analysis_run(
    templates: Sequence[Mapping[str, Any]],
    cluster_templates: Sequence[Mapping[str, Any]],
    args: Sequence[Mapping[str, Any]] | None,
    name: str,
    namespace: str,
    labels: Mapping[str, str] | None = None,
    annotations: Mapping[str, str] | None = None,
    owner_references: Sequence[Mapping[str, Any]] | None = None,
    *,
    generate_name: str | None = None,
    dry_run: Iterable[Mapping[str, Any]] = (),
    measurement_retention: Iterable[Mapping[str, Any]] = (),
    lookup: TemplateLookup | None = None,
) -> dict[str, Any]:
    """An AnalysisRun manifest from templates, as Argo's ``NewAnalysisRunFromTemplates``.

    ``templates`` / ``cluster_templates`` are AnalysisTemplate / ClusterAnalysisTemplate objects
    (nested ``spec.templates`` are followed, found among them or through ``lookup``). ``args`` are the
    caller's (a Rollout's, after :func:`resolve_rollout_args`); they fill the templates' declared args.
    ``dry_run`` / ``measurement_retention`` are the caller's extra rules (a Rollout's
    ``analysis.dryRun`` ...), added after the templates' own. Raises :class:`SpecError` (bad or
    missing templates, an invalid merged spec) or :class:`ArgError` (an arg without a value).
    """
    flat = flatten_templates(templates, cluster_templates, lookup)
    merged_args = merge_args(args, flat.get("args"))
    spec: dict[str, Any] = {"metrics": flat["metrics"]}
    if merged_args:
        spec["args"] = merged_args
    dry = [*flat.get("dryRun", []), *(dict(e) for e in dry_run)]
    if dry:
        spec["dryRun"] = dry
    retention = [*flat.get("measurementRetention", []), *(dict(e) for e in measurement_retention)]
    if retention:
        spec["measurementRetention"] = retention
    problems = validate_run_spec(spec)
    if problems:
        raise SpecError("; ".join(problems))
    metadata: dict[str, Any] = {"namespace": namespace}
    if name:
        metadata["name"] = name
    elif generate_name:
        metadata["generateName"] = generate_name
    else:
        raise SpecError("an AnalysisRun needs a name or a generateName")
    if labels:
        metadata["labels"] = dict(labels)
    if annotations:
        metadata["annotations"] = dict(annotations)
    if owner_references:
        metadata["ownerReferences"] = [dict(r) for r in owner_references]
    return {"apiVersion": API_VERSION, "kind": "AnalysisRun", "metadata": metadata, "spec": spec}
