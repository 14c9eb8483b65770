"""The sandbox's object store: the semantics of kube-apiserver + etcd for every served kind.

Everything runs on one asyncio loop, so each method is atomic. Stored objects are never mutated
in place: every write stores a new dict, which lets readers serialise them without copying.

The store keeps the objects, their resourceVersions and the verbs (create, update, patch, delete,
namespace termination); watches.py fans its events out, garbage.py is its garbage collector,
pagination.py pages its LISTs, and admission.py checks what it is asked to store.
"""

from __future__ import annotations

import builtins
import json
import secrets
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from rollouts.sandbox import admission, crds, limits
from rollouts.sandbox.defaults import BuiltinDefaults
from rollouts.sandbox.errors import (
    STALE_OBJECT,
    ApiError,
    Cause,
    already_exists,
    bad_request,
    conflict,
    invalid,
    namespace_terminating,
    not_found,
)
from rollouts.sandbox.garbage import GarbageCollector
from rollouts.sandbox.jsoncopy import json_copy
from rollouts.sandbox.managedfields import record_manager, without_managed_fields
from rollouts.sandbox.pagination import list_page
from rollouts.sandbox.patches import APPLY_PATCH, APPLY_PATCH_CBOR, apply_patch, patch_by_media_type
from rollouts.sandbox.resources import Registry, ResourceType
from rollouts.sandbox.scale import requested_replicas, scale_of, with_replicas
from rollouts.sandbox.selectors import parse_field_selector, parse_label_selector
from rollouts.sandbox.watches import Event, EventHub, Watcher, WatchItem

HISTORY_LIMIT = 50_000  # events a watch can resume from (the window an etcd compaction leaves)
_NAME_CHARS = "bcdfghjklmnpqrstvwxz2456789"

ObjKey = tuple[str, str]  # (namespace, name)


def now_rfc3339(clock: Callable[[], float] = time.time) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(clock()))


# Kinds whose registry answers a finished DELETE with the deleted object rather than a Status.
_RETURNS_DELETED_OBJECT = frozenset({"/pods", "/services", "/serviceaccounts", "/namespaces"})

# Kinds whose PUT creates a missing object (AllowCreateOnUpdate in their registry strategy).
_CREATE_ON_UPDATE = frozenset({"/endpoints", "/events", "events.k8s.io/events", "coordination.k8s.io/leases"})


def _spec_part(obj: Mapping[str, Any], has_status: bool) -> dict[str, Any]:
    """What counts as 'spec' for generation: everything but metadata (and status, when it is a subresource)."""
    skip = {"metadata", "status"} if has_status else {"metadata"}
    return {k: v for k, v in obj.items() if k not in skip}


class Store:
    def __init__(self, registry: Registry | None = None, clock: Callable[[], float] = time.time) -> None:
        self.registry = registry or Registry()
        self.clock = clock
        self._objects: dict[str, dict[ObjKey, dict[str, Any]]] = {}
        self._rv = 1
        self.events = EventHub(HISTORY_LIMIT)
        self.garbage = GarbageCollector(self)
        self._applied: dict[tuple[str, ObjKey, str], dict[str, Any]] = {}
        self.defaults = BuiltinDefaults()
        self.create_internal(self._rtype("", "namespaces"), "", {"metadata": {"name": "default"}})
        self.create_internal(self._rtype("", "namespaces"), "", {"metadata": {"name": "kube-system"}})

    # ------------------------------------------------------------------ plumbing

    def _rtype(self, group: str, plural: str) -> ResourceType:
        rtype = self.registry.by_key(f"{group}/{plural}")
        assert rtype is not None, f"{group}/{plural} is a built-in resource"
        return rtype

    @property
    def resource_version(self) -> str:
        return str(self._rv)

    def subscribe(self, listener: Callable[[Event], None]) -> None:
        """In-process controllers (the simulated workloads) hear every event synchronously."""
        self.events.subscribe(listener)

    def _table(self, rtype: ResourceType) -> dict[ObjKey, dict[str, Any]]:
        return self._objects.setdefault(rtype.key, {})

    def _next_rv(self) -> int:
        self._rv += 1
        return self._rv

    def _store(
        self, rtype: ResourceType, key: ObjKey, obj: dict[str, Any], old: dict[str, Any] | None
    ) -> dict[str, Any]:
        rv = self._next_rv()
        obj["metadata"]["resourceVersion"] = str(rv)
        self._table(rtype)[key] = obj
        self.garbage.track(rtype.key, key, old, obj)
        self.events.emit(Event(rv, rtype.key, "MODIFIED" if old is not None else "ADDED", obj, old))
        if obj["metadata"].get("ownerReferences"):
            self.garbage.schedule_dangling_check(rtype.key, key)
        return obj

    def _object_key(self, rtype: ResourceType, namespace: str, name: str) -> ObjKey:
        return (namespace if rtype.namespaced else "", name)

    # ------------------------------------------------------------------ reads

    def get(self, rtype: ResourceType, namespace: str, name: str) -> dict[str, Any]:
        """The stored object itself: callers must not mutate it (copy with json_copy first)."""
        obj = self._table(rtype).get(self._object_key(rtype, namespace, name))
        if obj is None:
            raise not_found(rtype.plural, rtype.group, name)
        return obj

    def find(self, rtype: ResourceType, namespace: str, name: str) -> dict[str, Any] | None:
        return self._table(rtype).get(self._object_key(rtype, namespace, name))

    def object_at(self, rkey: str, key: ObjKey) -> dict[str, Any] | None:
        """The object stored under a resource key and (namespace, name), whether or not its kind is served."""
        return self._objects.get(rkey, {}).get(key)

    def objects(self, rtype: ResourceType, namespace: str | None = None) -> list[dict[str, Any]]:
        """All objects of a type (one namespace or all), in etcd key order."""
        table = self._table(rtype)
        return [table[k] for k in self._keys(rtype, namespace)]

    def _keys(self, rtype: ResourceType, namespace: str | None) -> builtins.list[ObjKey]:
        """The keys of a type's objects (one namespace or all), in etcd key order."""
        return sorted(k for k in self._table(rtype) if namespace is None or not rtype.namespaced or k[0] == namespace)

    def list(
        self,
        rtype: ResourceType,
        namespace: str | None,
        label_selector: str = "",
        field_selector: str = "",
        limit: int = 0,
        continue_token: str = "",
    ) -> tuple[list[dict[str, Any]], str, str, int | None]:
        """(items, resourceVersion, continue, remainingItemCount) as a paginated LIST answers."""
        labels = parse_label_selector(label_selector)
        fields = (
            parse_field_selector(field_selector, rtype.extra_field_selectors, rtype.kind) if field_selector else None
        )
        keys = self._keys(rtype, namespace)
        return list_page(self._table(rtype), keys, labels, fields, limit, continue_token, self._rv)

    # ------------------------------------------------------------------ watch

    def watch(
        self,
        rtype: ResourceType,
        namespace: str | None,
        resource_version: str,
        label_selector: str = "",
        field_selector: str = "",
        send_initial_events: bool | None = None,
    ) -> tuple[Watcher, builtins.list[WatchItem]]:
        """Open a watch; returns it with the events it must send first (replayed or synthetic ADDED)."""
        labels = parse_label_selector(label_selector)
        fields = (
            parse_field_selector(field_selector, rtype.extra_field_selectors, rtype.kind) if field_selector else None
        )
        watcher = Watcher(rtype.key, namespace if rtype.namespaced else None, labels, fields)
        if resource_version in ("", "0") or send_initial_events:
            backlog = [("ADDED", obj) for obj in self.objects(rtype, namespace) if watcher.matches(obj)]
        else:
            backlog = self.events.replay(watcher, resource_version, self._rv)
        self.events.add(watcher)
        return watcher, backlog

    def stop_watch(self, watcher: Watcher) -> None:
        self.events.stop(watcher)

    def close_all_watches(self) -> None:
        self.events.close_all()

    # ------------------------------------------------------------------ create

    def create(
        self,
        rtype: ResourceType,
        namespace: str,
        body: Any,
        dry_run: bool = False,
        field_validation: str = "",
        field_manager: str = "",
    ) -> dict[str, Any]:
        obj = admission.check_body(rtype, body)
        meta = obj.setdefault("metadata", {})
        if not isinstance(meta, dict):
            raise bad_request("metadata must be an object")
        if rtype.namespaced:
            if meta.get("namespace") and namespace and meta["namespace"] != namespace:
                raise bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request"
                )
            meta["namespace"] = namespace or meta.get("namespace") or "default"
            self._require_namespace(meta["namespace"], True, rtype, meta.get("name") or "")
        else:
            meta.pop("namespace", None)
        if not meta.get("name"):
            if meta.get("generateName"):
                meta["name"] = self._generate_name(
                    rtype, meta["namespace"] if rtype.namespaced else "", meta["generateName"]
                )
            else:
                raise invalid(
                    rtype.kind,
                    rtype.group,
                    "",
                    [Cause("metadata.name", "FieldValueRequired", "Required value: name or generateName is required")],
                )
        admission.check_name(rtype, meta["name"])
        key = self._object_key(rtype, meta.get("namespace", ""), meta["name"])
        if key in self._table(rtype):
            raise already_exists(rtype.plural, rtype.group, meta["name"])
        meta.pop("resourceVersion", None)
        for system in ("deletionTimestamp", "deletionGracePeriodSeconds"):
            meta.pop(system, None)
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = now_rfc3339(self.clock)
        meta["generation"] = 1
        if rtype.has_status:
            obj.pop("status", None)
        obj = self._admit(rtype, obj, None, field_validation)
        self.defaults.apply(rtype, obj)
        if field_manager:
            record_manager(obj, field_manager, "Update", now_rfc3339(self.clock))
        limits.check_object_size(rtype, obj)
        if dry_run:
            return obj
        stored = self._store(rtype, key, obj, None)
        self._after_write(rtype, None, stored)
        return stored

    def create_internal(self, rtype: ResourceType, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        """Create as a controller inside the cluster would, keeping the given status."""
        status = body.get("status")
        obj = self.create(rtype, namespace, {**body, "apiVersion": rtype.api_version, "kind": rtype.kind})
        if status is not None and rtype.has_status:
            obj = self.update_status(rtype, namespace, obj["metadata"]["name"], status)
        return obj

    def _generate_name(self, rtype: ResourceType, namespace: str, prefix: str) -> str:
        for _ in range(10):
            name = prefix[:58] + "".join(secrets.choice(_NAME_CHARS) for _ in range(5))
            if (namespace, name) not in self._table(rtype):
                return name
        raise ApiError(409, "AlreadyExists", f"could not generate a unique name from {prefix!r}")

    def _require_namespace(self, namespace: str, creating: bool, rtype: ResourceType | None = None,
                           name: str = "") -> None:
        ns = self._table(self._rtype("", "namespaces")).get(("", namespace))
        if ns is None:
            raise not_found("namespaces", "", namespace)
        if creating and ns["metadata"].get("deletionTimestamp"):
            plural, group = (rtype.plural, rtype.group) if rtype is not None else ("namespaces", "")
            raise namespace_terminating(namespace, plural, group, name)

    def _admit(
        self, rtype: ResourceType, obj: dict[str, Any], old: dict[str, Any] | None, field_validation: str
    ) -> dict[str, Any]:
        admission.check_metadata(rtype, obj)
        if rtype.schema is not None:
            return admission.admit_custom_resource(rtype, obj, field_validation)
        admission.admit_builtin(rtype, obj, old)
        return obj

    # ------------------------------------------------------------------ update / patch

    def update(
        self,
        rtype: ResourceType,
        namespace: str,
        name: str,
        body: Any,
        subresource: str = "",
        dry_run: bool = False,
        field_validation: str = "",
        field_manager: str = "",
    ) -> dict[str, Any]:
        """PUT. A stale resourceVersion is 409 Conflict; an unconditional PUT is allowed for built-in kinds."""
        if subresource == "scale":
            return self._write_scale(rtype, namespace, name, body, dry_run)
        new = admission.check_body(rtype, body)
        meta = new.get("metadata")
        if not isinstance(meta, dict):
            raise bad_request("metadata must be an object")
        if meta.get("name") and meta["name"] != name:
            raise bad_request(f"the name of the object ({meta['name']}) does not match the name on the URL ({name})")
        current = self.find(rtype, namespace, name)
        if current is None:
            if subresource or rtype.key not in _CREATE_ON_UPDATE:
                raise not_found(rtype.plural, rtype.group, name)
            meta["name"] = name
            return self.create(rtype, namespace, new, dry_run, field_validation, field_manager)
        rv = meta.get("resourceVersion")
        if rv:
            if rv != current["metadata"]["resourceVersion"]:
                raise conflict(rtype.plural, rtype.group, name, STALE_OBJECT)
        elif not rtype.builtin:
            raise invalid(
                rtype.kind,
                rtype.group,
                name,
                [
                    Cause(
                        "metadata.resourceVersion",
                        "FieldValueInvalid",
                        "Invalid value: 0x0: must be specified for an update",
                    )
                ],
            )
        return self._replace(rtype, current, new, subresource, dry_run, field_validation, field_manager)

    def _replace(
        self,
        rtype: ResourceType,
        current: dict[str, Any],
        new: dict[str, Any],
        subresource: str,
        dry_run: bool,
        field_validation: str = "",
        field_manager: str = "",
    ) -> dict[str, Any]:
        old_meta = current["metadata"]
        # Patches share untouched sub-dicts with the stored object; never write through them.
        new = {**new, "metadata": dict(new.get("metadata") or {})}
        if subresource == "status":
            # A /status write changes status only.
            merged = json_copy(current)
            if "status" in new:
                merged["status"] = new["status"]
            else:
                merged.pop("status", None)
            new = merged
            if rtype.schema is not None:
                # The status strategy validates (and prunes) the object against the CRD schema too.
                new = admission.admit_custom_resource(rtype, new, field_validation)
        else:
            if rtype.has_status:
                if "status" in current:
                    new["status"] = json_copy(current["status"])
                else:
                    new.pop("status", None)
            meta = new["metadata"]
            for system in (
                "uid",
                "creationTimestamp",
                "namespace",
                "name",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "generation",
            ):
                if system in old_meta:
                    meta[system] = old_meta[system]
                else:
                    meta.pop(system, None)
            if old_meta.get("deletionTimestamp"):
                added = set(meta.get("finalizers") or []) - set(old_meta.get("finalizers") or [])
                if added:
                    raise invalid(
                        rtype.kind,
                        rtype.group,
                        old_meta["name"],
                        [
                            Cause(
                                "metadata.finalizers",
                                "FieldValueForbidden",
                                "Forbidden: no new finalizers can be added if the object is being deleted, "
                                "found new finalizers []string{"
                                + ", ".join(json.dumps(f) for f in sorted(added))
                                + "}",
                            )
                        ],
                    )
            new = self._admit(rtype, new, current, field_validation)
            meta = new["metadata"]
            if _spec_part(new, rtype.has_status) != _spec_part(current, rtype.has_status):
                meta["generation"] = int(old_meta.get("generation", 1)) + 1
        new["metadata"].pop("resourceVersion", None)
        if _same_object(without_managed_fields(current), without_managed_fields(new)):
            # A no-op write changes nothing, neither resourceVersion nor managedFields, as on a real server
            # (kubectl relies on it to print "patched (no change)").
            return current
        if field_manager and subresource != "status":
            record_manager(new, field_manager, "Update", now_rfc3339(self.clock))
        limits.check_object_size(rtype, new)
        if dry_run:
            new["metadata"]["resourceVersion"] = old_meta["resourceVersion"]
            return new
        if old_meta.get("deletionTimestamp") and not new["metadata"].get("finalizers"):
            return self._remove(rtype, new)
        stored = self._store(
            rtype, self._object_key(rtype, old_meta.get("namespace", ""), old_meta["name"]), new, current
        )
        self._after_write(rtype, current, stored)
        return stored

    def update_status(self, rtype: ResourceType, namespace: str, name: str, status: Any) -> dict[str, Any]:
        """Controllers inside the sandbox set status directly."""
        current = self.get(rtype, namespace, name)
        return self._replace(rtype, current, {**current, "status": status}, "status", False)

    def replace_internal(self, rtype: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
        """Write a whole object (spec and metadata) as an in-cluster controller, without a precondition."""
        meta = obj["metadata"]
        current = self.get(rtype, meta.get("namespace", ""), meta["name"])
        return self._replace(rtype, current, json_copy(obj), "", False)

    def patch(
        self,
        rtype: ResourceType,
        namespace: str,
        name: str,
        content_type: str,
        patch: Any,
        subresource: str = "",
        dry_run: bool = False,
        field_manager: str = "",
        force: bool = False,
        field_validation: str = "",
    ) -> tuple[dict[str, Any], bool]:
        """PATCH in any of the four formats; returns (object, created) since apply may create."""
        _ = force  # field ownership conflicts are not modelled; every apply behaves as --force-conflicts
        if subresource == "scale":
            scale = self.get_scale(rtype, namespace, name)
            patched = patch_by_media_type(scale, content_type, patch, builtin=True)
            return self._write_scale(rtype, namespace, name, patched, dry_run), False
        current = self.find(rtype, namespace, name)
        if content_type in (APPLY_PATCH, APPLY_PATCH_CBOR):
            if not field_manager:
                raise ApiError(422, "Invalid", "PATCH /apply requires fieldManager to be set", {})
            if not isinstance(patch, dict):
                raise bad_request("an apply patch must be an object")
            admission.check_body(rtype, patch)
            akey = (rtype.key, (namespace if rtype.namespaced else "", name), field_manager)
            if current is None:
                if subresource:
                    raise not_found(rtype.plural, rtype.group, name)
                body = json_copy(patch)
                body.setdefault("metadata", {})["name"] = name
                created = self.create(rtype, namespace, body, dry_run, field_validation)
                if not dry_run:
                    self._applied[akey] = json_copy(patch)
                    created = self._record_apply(rtype, created, field_manager)
                return created, True
            merged = apply_patch(current, patch, rtype.builtin, self._applied.get(akey))
            result = self._replace(rtype, current, merged, subresource, dry_run, field_validation)
            if not dry_run:
                self._applied[akey] = json_copy(patch)
                result = self._record_apply(rtype, result, field_manager)
            return result, False
        if current is None:
            raise not_found(rtype.plural, rtype.group, name)
        patched = patch_by_media_type(current, content_type, patch, rtype.builtin)
        if not isinstance(patched, dict):
            raise bad_request("the patch produced something that is not an object")
        # A patch that gives a field the wrong JSON type (`{"metadata": "x"}`) is the decoder's 400.
        admission.check_shape(rtype, patched)
        meta = patched.setdefault("metadata", {})
        rv = meta.get("resourceVersion")
        if rv and rv != current["metadata"]["resourceVersion"]:
            raise conflict(rtype.plural, rtype.group, name, STALE_OBJECT)
        if meta.get("name") not in (None, name):
            raise bad_request(f"the name of the object ({meta['name']}) does not match the name on the URL ({name})")
        admission.check_body(rtype, patched)
        return self._replace(rtype, current, patched, subresource, dry_run, field_validation, field_manager), False

    def _record_apply(self, rtype: ResourceType, obj: dict[str, Any], manager: str) -> dict[str, Any]:
        # managedFields are informative only here; the applied configuration is kept aside for removals.
        updated = json_copy(obj)
        record_manager(updated, manager, "Apply", now_rfc3339(self.clock))
        meta = updated["metadata"]
        key = self._object_key(rtype, meta.get("namespace", ""), meta["name"])
        if _same_object(obj, updated):
            return obj
        updated["metadata"].pop("resourceVersion", None)
        return self._store(rtype, key, updated, obj)

    # ------------------------------------------------------------------ scale

    def get_scale(self, rtype: ResourceType, namespace: str, name: str) -> dict[str, Any]:
        if rtype.scale is None:
            raise not_found(rtype.plural, rtype.group, name)
        return scale_of(self.get(rtype, namespace, name), rtype.scale, rtype.builtin)

    def _write_scale(self, rtype: ResourceType, namespace: str, name: str, body: Any, dry_run: bool) -> dict[str, Any]:
        if rtype.scale is None:
            raise not_found(rtype.plural, rtype.group, name)
        if not isinstance(body, dict):
            raise bad_request("the object provided is unrecognized (must be of type Scale)")
        current = self.get(rtype, namespace, name)
        rv = (body.get("metadata") or {}).get("resourceVersion")
        if rv and rv != current["metadata"]["resourceVersion"]:
            raise conflict(rtype.plural, rtype.group, name, STALE_OBJECT)
        new = with_replicas(current, rtype.scale, requested_replicas(name, body))
        self._replace(rtype, current, new, "", dry_run)
        return self.get_scale(rtype, namespace, name)

    # ------------------------------------------------------------------ delete

    def delete(
        self,
        rtype: ResourceType,
        namespace: str,
        name: str,
        propagation: str = "",
        preconditions: Any = None,
        dry_run: bool = False,
    ) -> tuple[dict[str, Any], int]:
        """(response body, HTTP code) as the server answers a DELETE.

        Like kube-apiserver, the answer is 200 whether the object is gone or held by finalizers
        (then the body is the object, with its deletionTimestamp). A finished delete answers with
        the deleted object for the kinds whose registry sets ReturnDeletedObject (pods, services,
        service accounts) and with a `Status` Success naming the object for every other kind.
        """
        obj, gone = self._delete(rtype, namespace, name, propagation, preconditions, dry_run)
        if gone and rtype.key not in _RETURNS_DELETED_OBJECT:
            meta = obj["metadata"]
            details: dict[str, Any] = {"name": meta["name"], "kind": rtype.plural, "uid": meta["uid"]}
            if rtype.group:
                details["group"] = rtype.group
            return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details}, 200
        return obj, 200

    def _delete(
        self,
        rtype: ResourceType,
        namespace: str,
        name: str,
        propagation: str = "",
        preconditions: Any = None,
        dry_run: bool = False,
    ) -> tuple[dict[str, Any], bool]:
        """(object, gone): gone is False when finalizers (or foreground deletion) hold the object."""
        if preconditions is not None and not isinstance(preconditions, Mapping):
            raise bad_request("DeleteOptions.preconditions must be an object")
        if not isinstance(propagation, str) or propagation not in ("", "Background", "Foreground", "Orphan"):
            raise bad_request(
                f"propagationPolicy: Unsupported value: {json.dumps(propagation)}: supported values: "
                '"Foreground", "Background", "Orphan"'
            )
        current = self.get(rtype, namespace, name)
        meta = current["metadata"]
        pre = preconditions or {}
        if pre.get("uid") and pre["uid"] != meta["uid"]:
            raise conflict(
                rtype.plural,
                rtype.group,
                name,
                f"Precondition failed: UID in precondition: {pre['uid']}, UID in object meta: {meta['uid']}",
            )
        if pre.get("resourceVersion") and pre["resourceVersion"] != meta["resourceVersion"]:
            raise conflict(
                rtype.plural,
                rtype.group,
                name,
                f"Precondition failed: ResourceVersion in precondition: {pre['resourceVersion']}, "
                f"ResourceVersion in object meta: {meta['resourceVersion']}",
            )
        finalizers = list(meta.get("finalizers") or [])
        if dry_run:
            return current, not finalizers and rtype.key != "/namespaces"
        if rtype.key == "/namespaces":
            ns = self._delete_namespace(rtype, current)
            return ns, self.find(rtype, "", name) is None
        if propagation == "Foreground" and self.garbage.has_dependents(meta["uid"]) and (
            "foregroundDeletion" not in finalizers
        ):
            finalizers.append("foregroundDeletion")
        if propagation == "Orphan":
            self.garbage.orphan_dependents(meta["uid"])
        if finalizers:
            if meta.get("deletionTimestamp"):
                return current, False
            new = json_copy(current)
            new["metadata"]["finalizers"] = finalizers
            new["metadata"]["deletionTimestamp"] = now_rfc3339(self.clock)
            new["metadata"]["deletionGracePeriodSeconds"] = 0
            new["metadata"]["generation"] = int(meta.get("generation", 1)) + 1
            new["metadata"].pop("resourceVersion", None)
            stored = self._store(rtype, self._object_key(rtype, namespace, name), new, current)
            if "foregroundDeletion" in finalizers:
                self.garbage.delete_dependents(meta["uid"], "Foreground")
                stored = self.garbage.finish_foreground(meta["uid"]) or stored
            return stored, self.find(rtype, namespace, name) is None
        return self._remove(rtype, current), True

    def _remove(self, rtype: ResourceType, current: dict[str, Any]) -> dict[str, Any]:
        meta = current["metadata"]
        key = self._object_key(rtype, meta.get("namespace", ""), meta["name"])
        self._table(rtype).pop(key, None)
        rv = self._next_rv()
        final = {**current, "metadata": {**meta, "resourceVersion": str(rv)}}
        self.garbage.untrack(rtype.key, key, current)
        for akey in [a for a in self._applied if a[0] == rtype.key and a[1] == key]:
            del self._applied[akey]
        self.events.emit(Event(rv, rtype.key, "DELETED", final, None))
        self._after_delete(rtype, final)
        return final

    def _after_delete(self, rtype: ResourceType, final: dict[str, Any]) -> None:
        self.garbage.owner_removed(final)
        if rtype.key == crds.CRDS:
            self._remove_custom_resources(final)
        if rtype.namespaced:
            # The last object of a terminating namespace lets the namespace go.
            self.finish_namespace(final["metadata"].get("namespace", ""))

    def _remove_custom_resources(self, crd: dict[str, Any]) -> None:
        """A deleted CRD takes its custom resources with it, and its kinds are no longer served."""
        group, plural = crds.served_resource(crd)
        for obj in list(self._objects.get(f"{group}/{plural}", {}).values()):
            crtype = self.registry.by_key(f"{group}/{plural}")
            if crtype is not None:
                self._remove(crtype, obj)
        self.registry.remove_crd(group, plural)

    def _delete_namespace(self, rtype: ResourceType, current: dict[str, Any]) -> dict[str, Any]:
        name = current["metadata"]["name"]
        if not current["metadata"].get("deletionTimestamp"):
            new = json_copy(current)
            new["metadata"]["deletionTimestamp"] = now_rfc3339(self.clock)
            new["status"] = {"phase": "Terminating"}
            new["metadata"].pop("resourceVersion", None)
            current = self._store(rtype, ("", name), new, current)
        for rkey, table in list(self._objects.items()):
            otype = self.registry.by_key(rkey)
            if otype is None or not otype.namespaced:
                continue
            for (ns, oname), obj in list(table.items()):
                if ns == name and not obj["metadata"].get("deletionTimestamp"):
                    self._delete(otype, ns, oname)
        self.finish_namespace(name)
        return self._table(rtype).get(("", name), current)

    def finish_namespace(self, name: str) -> None:
        """Remove a terminating namespace once nothing is left in it."""
        rtype = self._rtype("", "namespaces")
        ns = self._table(rtype).get(("", name))
        if ns is None or not ns["metadata"].get("deletionTimestamp"):
            return
        for rkey, table in self._objects.items():
            otype = self.registry.by_key(rkey)
            if otype is not None and otype.namespaced and any(k[0] == name for k in table):
                return
        if ns["metadata"].get("finalizers"):
            return
        self._remove(rtype, ns)

    def delete_collection(
        self,
        rtype: ResourceType,
        namespace: str | None,
        label_selector: str = "",
        field_selector: str = "",
        propagation: str = "",
    ) -> builtins.list[dict[str, Any]]:
        items, _, _, _ = self.list(rtype, namespace, label_selector, field_selector)
        return [
            self._delete(rtype, i["metadata"].get("namespace", ""), i["metadata"]["name"], propagation)[0]
            for i in list(items)
        ]

    # ------------------------------------------------------------------ side effects

    def _after_write(self, rtype: ResourceType, old: dict[str, Any] | None, new: dict[str, Any]) -> None:
        if rtype.key == crds.CRDS:
            crds.register(self.registry, new)
        if rtype.namespaced:
            ns = new["metadata"].get("namespace", "")
            if old is not None and new["metadata"].get("deletionTimestamp"):
                self.finish_namespace(ns)

    def crd_types(self) -> Iterable[ResourceType]:
        return [t for t in self.registry.all() if not t.builtin]


def _same_object(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    def strip(o: Mapping[str, Any]) -> dict[str, Any]:
        return {**o, "metadata": {k: v for k, v in o["metadata"].items() if k != "resourceVersion"}}

    return strip(a) == strip(b)

