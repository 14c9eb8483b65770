"""CustomResourceDefinitions in the sandbox's store: the kinds a stored CRD serves, and its first status."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rollouts.sandbox.resources import Registry, types_from_crd

CRDS = "apiextensions.k8s.io/customresourcedefinitions"  # the storage key of CRDs themselves


def served_resource(crd: Mapping[str, Any]) -> tuple[str, str]:
    """(group, plural) of the custom resource a CRD defines."""
    spec = crd.get("spec") or {}
    return spec.get("group", ""), (spec.get("names") or {}).get("plural", "")


def register(registry: Registry, crd: Mapping[str, Any]) -> None:
    """Serve what a created or updated CRD defines, in place of what it defined before."""
    group, plural = served_resource(crd)
    registry.remove_crd(group, plural)
    for crtype in types_from_crd(crd):
        registry.add(crtype)


def initial_status(crd: Mapping[str, Any]) -> dict[str, Any]:
    """The status the apiextensions controllers give a new CRD at once: names accepted, established."""
    names = (crd.get("spec") or {}).get("names") or {}
    return {
        "acceptedNames": names,
        "storedVersions": [v["name"] for v in crd["spec"].get("versions") or [] if v.get("storage")],
        "conditions": [
            {
                "type": t,
                "status": "True",
                "reason": r,
                "message": m,
                "lastTransitionTime": crd["metadata"]["creationTimestamp"],
            }
            for t, r, m in (
                ("NamesAccepted", "NoConflicts", "no conflicts found"),
                ("Established", "InitialNamesAccepted", "the initial names have been accepted"),
            )
        ],
    }
