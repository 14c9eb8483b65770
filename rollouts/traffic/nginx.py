"""NGINX Ingress (`trafficRouting.nginx`): a canary Ingress `<rollout>-<stable ingress>-canary` next to
each stable Ingress, owned by the Rollout.

The canary Ingress copies the stable Ingress's class (`ingressClassName` and the
`kubernetes.io/ingress.class` annotation), its TLS, and only the rules whose backend is the stable
Service, with the backend changed to the canary Service. Its annotations: `<prefix>/canary: "true"`,
`<prefix>/canary-weight` (and `canary-weight-total` when maxTrafficWeight is not 100),
`additionalIngressAnnotations` (under the prefix) and `canaryIngressAnnotations` (as written). The
stable Ingress is never modified.

A `setHeaderRoute` step becomes the ingress-nginx `canary-by-header` annotations (one header per
route: `exact` -> `canary-by-header-value`, `regex`/`prefix` -> `canary-by-header-pattern`).
NGINX cannot mirror (`setMirrorRoute` is rejected at validation).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from rollouts.traffic.objects import annotations_of, merge_diff, owned_by, parse_weight
from rollouts.traffic.registry import RouterContext, missing_services
from rollouts.traffic.router import (
    DesiredTraffic,
    HeaderRoute,
    ObjectRef,
    ObjectWrite,
    Owner,
    RoutedKind,
    RouterResult,
    RoutingProblem,
)

API_VERSION = "networking.k8s.io/v1"
KIND = "Ingress"
PLURAL = "ingresses"
DEFAULT_PREFIX = "nginx.ingress.kubernetes.io"
INGRESS_CLASS_ANNOTATION = "kubernetes.io/ingress.class"
MAX_NAME = 253


def canary_ingress_name(rollout: str, stable_ingress: str) -> str:
    """Argo's `GetCanaryIngressName`: `<rollout>-<stable>-canary`, cut to the longest name the API takes."""
    return f"{rollout}-{stable_ingress}-canary"[:MAX_NAME]


class NginxRouter:
    name = "nginx"
    KINDS: ClassVar[tuple[RoutedKind, ...]] = (RoutedKind(API_VERSION, KIND, PLURAL),)

    def __init__(self, context: RouterContext) -> None:
        self.context = context
        config = context.config
        names: list[str] = []
        if config.get("stableIngress"):
            names.append(str(config["stableIngress"]))
        for name in config.get("stableIngresses") or []:
            if str(name) not in names:
                names.append(str(name))
        self.stable_names = names
        self.prefix = str(config.get("annotationPrefix") or DEFAULT_PREFIX)
        self.additional = {str(k): str(v) for k, v in (config.get("additionalIngressAnnotations") or {}).items()}
        self.canary_annotations = {str(k): str(v) for k, v in (config.get("canaryIngressAnnotations") or {}).items()}

    # ------------------------------------------------------------------ protocol

    def stable_ref(self, name: str) -> ObjectRef:
        return ObjectRef(API_VERSION, KIND, PLURAL, self.context.namespace, name)

    def canary_ref(self, stable: str) -> ObjectRef:
        return self.stable_ref(canary_ingress_name(self.context.rollout, stable))

    def objects(self) -> Sequence[ObjectRef]:
        refs: list[ObjectRef] = []
        for name in self.stable_names:
            refs.extend((self.stable_ref(name), self.canary_ref(name)))
        return refs

    def supports_mirror(self) -> bool:
        return False

    def supports_header_routes(self) -> bool:
        return True

    def spec_problems(self) -> Sequence[RoutingProblem]:
        path = self.context.path
        problems: list[RoutingProblem] = list(missing_services(self.context))
        if not self.stable_names:
            problems.append(
                RoutingProblem(None, f"{path}.stableIngress", "an NGINX router needs stableIngress or stableIngresses")
            )
        if self.context.config.get("stableIngress") and self.context.config.get("stableIngresses"):
            problems.append(
                RoutingProblem(None, f"{path}.stableIngresses", "set either stableIngress or stableIngresses, not both")
            )
        return problems

    def reconcile(
        self,
        desired: DesiredTraffic,
        live: Mapping[ObjectRef, Mapping[str, Any] | None],
        owner: Owner,
    ) -> RouterResult:
        problems: list[RoutingProblem] = []
        writes: list[ObjectWrite] = []
        weights: list[int | None] = []
        header = self._header_annotations(desired.header_routes, problems)
        for name in self.stable_names:
            stable_ref, canary_ref = self.stable_ref(name), self.canary_ref(name)
            stable, canary = live.get(stable_ref), live.get(canary_ref)
            if canary is not None and not owned_by(canary, owner):
                problems.append(
                    RoutingProblem(
                        canary_ref,
                        "metadata.ownerReferences",
                        f'canary Ingress "{canary_ref.name}" already exists and is not owned by Rollout '
                        f'"{owner.name}": delete it or rename the stable Ingress',
                    )
                )
                continue
            weights.append(self._live_weight(canary))
            if stable is None:
                problems.append(
                    RoutingProblem(
                        stable_ref,
                        f"{self.context.path}.stableIngress",
                        f'Ingress "{name}" not found in namespace "{self.context.namespace}": '
                        "create it or fix the name",
                    )
                )
                continue
            wanted = self.desired_canary(stable, desired, header, owner, problems)
            if wanted is None:
                continue
            why = f"canary weight {desired.canary_weight}"
            if canary is None:
                writes.append(ObjectWrite(canary_ref, "create", wanted, why))
                continue
            patch = merge_diff(
                {"metadata": {"annotations": annotations_of(canary)}, "spec": canary.get("spec") or {}},
                {
                    "metadata": {"annotations": self._with_removals(annotations_of(canary), wanted)},
                    "spec": wanted["spec"],
                },
            )
            if patch:
                writes.append(ObjectWrite(canary_ref, "merge-patch", patch, why))
        if problems:
            return RouterResult(actual_canary_weight=_one(weights), problems=tuple(problems))
        return RouterResult(writes=tuple(writes), actual_canary_weight=_one(weights))

    # ------------------------------------------------------------------ the canary Ingress

    def desired_canary(
        self,
        stable: Mapping[str, Any],
        desired: DesiredTraffic,
        header: Mapping[str, str],
        owner: Owner,
        problems: list[RoutingProblem],
    ) -> dict[str, Any] | None:
        stable_name = str((stable.get("metadata") or {}).get("name", ""))
        stable_spec = stable.get("spec") or {}
        rules: list[dict[str, Any]] = []
        for rule in stable_spec.get("rules") or []:
            paths = []
            for p in ((rule.get("http") or {}).get("paths")) or []:
                service = ((p.get("backend") or {}).get("service")) or {}
                if service.get("name") != desired.stable_service:
                    continue
                changed = copy.deepcopy(dict(p))
                changed["backend"]["service"]["name"] = desired.canary_service
                paths.append(changed)
            if paths:
                copied = {k: copy.deepcopy(v) for k, v in rule.items() if k != "http"}
                copied["http"] = {"paths": paths}
                rules.append(copied)
        if not rules:
            problems.append(
                RoutingProblem(
                    self.stable_ref(stable_name),
                    "spec.rules",
                    f'Ingress "{stable_name}" has no rules using Service "{desired.stable_service}" as backend: '
                    "add one, or point stableService at the Service the Ingress routes to",
                )
            )
            return None
        spec: dict[str, Any] = {"rules": rules}
        if stable_spec.get("ingressClassName"):
            spec["ingressClassName"] = stable_spec["ingressClassName"]
        if stable_spec.get("tls"):
            spec["tls"] = copy.deepcopy(stable_spec["tls"])
        notes: dict[str, str] = {}
        stable_annotations = annotations_of(stable)
        if INGRESS_CLASS_ANNOTATION in stable_annotations:
            notes[INGRESS_CLASS_ANNOTATION] = stable_annotations[INGRESS_CLASS_ANNOTATION]
        for key, value in self.additional.items():
            notes[f"{self.prefix}/{key}"] = value
        notes.update(self.canary_annotations)
        notes.update(header)
        notes[f"{self.prefix}/canary"] = "true"
        notes[f"{self.prefix}/canary-weight"] = str(desired.canary_weight)
        if desired.max_weight != 100:
            notes[f"{self.prefix}/canary-weight-total"] = str(desired.max_weight)
        return {
            "apiVersion": API_VERSION,
            "kind": KIND,
            "metadata": {
                "name": canary_ingress_name(self.context.rollout, stable_name),
                "namespace": self.context.namespace,
                "annotations": notes,
                "ownerReferences": [owner.reference()],
            },
            "spec": spec,
        }

    def _with_removals(self, current: Mapping[str, str], wanted: Mapping[str, Any]) -> dict[str, str | None]:
        """The wanted annotations, plus None for the prefix annotations we manage that must go (a header
        route that ended, canary-weight-total after maxTrafficWeight went back to 100)."""
        out: dict[str, str | None] = dict(wanted["metadata"]["annotations"])
        managed = {f"{self.prefix}/{k}" for k in (*_HEADER_KEYS, "canary-weight-total")}
        for key in current:
            if key in managed and key not in out:
                out[key] = None
        return out

    def _live_weight(self, canary: Mapping[str, Any] | None) -> int | None:
        if canary is None:
            return 0
        notes = annotations_of(canary)
        if notes.get(f"{self.prefix}/canary") != "true":
            return 0
        return parse_weight(notes.get(f"{self.prefix}/canary-weight", "0"))

    def _header_annotations(self, routes: Sequence[HeaderRoute], problems: list[RoutingProblem]) -> dict[str, str]:
        if not routes:
            return {}
        if len(routes) > 1 or len(routes[0].matches) != 1:
            problems.append(
                RoutingProblem(
                    None,
                    "spec.strategy.canary.steps.setHeaderRoute",
                    "NGINX routes by one header at a time: use one setHeaderRoute with one match",
                )
            )
            return {}
        match = routes[0].matches[0]
        value = match.get("headerValue") or {}
        out = {f"{self.prefix}/canary-by-header": str(match.get("headerName", ""))}
        if value.get("exact") is not None:
            out[f"{self.prefix}/canary-by-header-value"] = str(value["exact"])
        elif value.get("regex") is not None:
            out[f"{self.prefix}/canary-by-header-pattern"] = str(value["regex"])
        elif value.get("prefix") is not None:
            out[f"{self.prefix}/canary-by-header-pattern"] = "^" + re.escape(str(value["prefix"])) + ".*"
        return out


_HEADER_KEYS = ("canary-by-header", "canary-by-header-value", "canary-by-header-pattern")


def _one(weights: Sequence[int | None]) -> int | None:
    """One live weight for several canary Ingresses: theirs when they agree, None when they do not."""
    if not weights:
        return None
    first = weights[0]
    return first if all(w == first for w in weights) else None
