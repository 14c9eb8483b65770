"""The sandbox's garbage collector: who owns whom, and what deleting an owner does to its dependents.

As kube-controller-manager's garbage collector, it is a client of the store: it deletes and rewrites
objects through the store's own operations, so every step is a normal write with its events.
Background deletion removes dependents after their owner; foreground deletion holds the owner (with
the `foregroundDeletion` finalizer) until no blocking dependent is left; orphaning strips the owner
reference; a reference to an owner that is gone is removed, and an object with no owner left deleted.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any, Protocol

from rollouts.sandbox.errors import ApiError
from rollouts.sandbox.jsoncopy import json_copy
from rollouts.sandbox.resources import Registry, ResourceType

ObjKey = tuple[str, str]  # (namespace, name)
Location = tuple[str, ObjKey]  # (resource key, object key)


class CollectedStore(Protocol):
    """What the garbage collector needs of the store."""

    registry: Registry

    def object_at(self, rkey: str, key: ObjKey) -> dict[str, Any] | None: ...

    def delete(self, rtype: ResourceType, namespace: str, name: str, propagation: str = "") -> Any: ...

    def replace_internal(self, rtype: ResourceType, obj: dict[str, Any]) -> dict[str, Any]: ...


class GarbageCollector:
    """Indexes every stored object by uid and every owner by its dependents, and acts on deletions."""

    def __init__(self, store: CollectedStore) -> None:
        self._store = store
        self._by_uid: dict[str, Location] = {}
        self._dependents: dict[str, set[Location]] = {}

    # ------------------------------------------------------------------ the index

    def track(self, rkey: str, key: ObjKey, old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> None:
        """A stored object (created or updated)."""
        self._by_uid[new["metadata"]["uid"]] = (rkey, key)
        self._index_owners(rkey, key, old, new)

    def untrack(self, rkey: str, key: ObjKey, removed: Mapping[str, Any]) -> None:
        """An object removed from storage."""
        self._by_uid.pop(removed["metadata"]["uid"], None)
        self._index_owners(rkey, key, removed, None)

    def has_dependents(self, owner_uid: str) -> bool:
        return bool(self._dependents.get(owner_uid))

    def dependents(self, owner_uid: str) -> list[Location]:
        """Where the objects naming `owner_uid` in their ownerReferences are, in key order."""
        return sorted(self._dependents.get(owner_uid, ()))

    def _index_owners(
        self, rkey: str, key: ObjKey, old: Mapping[str, Any] | None, new: Mapping[str, Any] | None
    ) -> None:
        for obj, add in ((old, False), (new, True)):
            for ref in ((obj or {}).get("metadata") or {}).get("ownerReferences") or []:
                deps = self._dependents.setdefault(ref.get("uid", ""), set())
                if add:
                    deps.add((rkey, key))
                else:
                    deps.discard((rkey, key))

    # ------------------------------------------------------------------ owners gone

    def schedule_dangling_check(self, rkey: str, key: ObjKey) -> None:
        """The garbage collector looks at every object that names owners, a moment after the write."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # a bare Store (unit tests) has no garbage collector
        loop.call_soon(self._collect_if_dangling, rkey, key)

    def _collect_if_dangling(self, rkey: str, key: ObjKey) -> None:
        """As the garbage collector's attemptToDeleteItem: with no owner left the object is deleted; with
        some owners left, the references to missing owners are removed."""
        obj = self._store.object_at(rkey, key)
        rtype = self._store.registry.by_key(rkey)
        if obj is None or rtype is None:
            return
        refs = obj["metadata"].get("ownerReferences") or []
        dangling = [r for r in refs if r.get("uid") not in self._by_uid]
        if not dangling:
            return
        try:
            if len(dangling) == len(refs):
                if not obj["metadata"].get("deletionTimestamp"):
                    finalizers = obj["metadata"].get("finalizers") or []
                    policy = "Foreground" if "foregroundDeletion" in finalizers else "Background"
                    self._store.delete(rtype, key[0], key[1], policy)
            else:
                new = json_copy(obj)
                new["metadata"]["ownerReferences"] = [r for r in refs if r not in dangling]
                self._store.replace_internal(rtype, new)
        except ApiError:
            pass  # the next write retries, as the collector's queue would

    def owner_removed(self, final: Mapping[str, Any]) -> None:
        """An object left storage: its dependents go (background deletion), and an owner waiting in
        foreground deletion for it may go too."""
        uid = final["metadata"]["uid"]
        self.delete_dependents(uid, "Background")
        self._dependents.pop(uid, None)
        for ref in final["metadata"].get("ownerReferences") or []:
            self.finish_foreground(ref.get("uid", ""))

    # ------------------------------------------------------------------ propagation policies

    def delete_dependents(self, owner_uid: str, propagation: str) -> None:
        for rkey, key in sorted(self._dependents.get(owner_uid, set())):
            dtype = self._store.registry.by_key(rkey)
            obj = self._store.object_at(rkey, key)
            if dtype is None or obj is None or obj["metadata"].get("deletionTimestamp"):
                continue
            self._store.delete(dtype, key[0], key[1], propagation)

    def _blocking_dependents(self, owner_uid: str) -> bool:
        """Whether a dependent still blocks its owner's foreground deletion (blockOwnerDeletion: true),
        as the garbage collector decides it; other dependents are deleted but not waited for."""
        for rkey, key in self._dependents.get(owner_uid, set()):
            obj = self._store.object_at(rkey, key)
            for ref in ((obj or {}).get("metadata") or {}).get("ownerReferences") or []:
                if ref.get("uid") == owner_uid and ref.get("blockOwnerDeletion"):
                    return True
        return False

    def finish_foreground(self, owner_uid: str) -> dict[str, Any] | None:
        """Drop the owner's `foregroundDeletion` finalizer once no dependent blocks it; the owner as stored
        then (None when it is not waiting)."""
        located = self._by_uid.get(owner_uid)
        if located is None:
            return None
        rkey, key = located
        owner = self._store.object_at(rkey, key)
        rtype = self._store.registry.by_key(rkey)
        if owner is None or rtype is None:
            return None
        finalizers = owner["metadata"].get("finalizers") or []
        if "foregroundDeletion" not in finalizers or self._blocking_dependents(owner_uid):
            return None
        new = json_copy(owner)
        new["metadata"]["finalizers"] = [f for f in finalizers if f != "foregroundDeletion"]
        return self._store.replace_internal(rtype, new)

    def orphan_dependents(self, owner_uid: str) -> None:
        for rkey, key in sorted(self._dependents.get(owner_uid, set())):
            dtype = self._store.registry.by_key(rkey)
            obj = self._store.object_at(rkey, key)
            if dtype is None or obj is None:
                continue
            new = json_copy(obj)
            new["metadata"]["ownerReferences"] = [
                r for r in new["metadata"].get("ownerReferences") or [] if r.get("uid") != owner_uid
            ]
            if not new["metadata"]["ownerReferences"]:
                del new["metadata"]["ownerReferences"]
            self._store.replace_internal(dtype, new)
