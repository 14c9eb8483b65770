"""The controller's watch cache: resourceVersions are compared within one object only (a server started
again empty counts from 1), and a fresh listing drops what the server no longer has."""

from __future__ import annotations

from typing import Any

from rollouts.controller.client import REPLICASETS, ROLLOUTS, Cache


def obj(name: str, uid: str, rv: int, owner: str | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"namespace": "ns", "name": name, "uid": uid, "resourceVersion": str(rv)}
    if owner:
        meta["ownerReferences"] = [{"uid": owner, "controller": True}]
    return {"metadata": meta}


def test_an_older_version_of_the_same_object_never_replaces_a_newer_one() -> None:
    cache = Cache()
    assert cache.put(ROLLOUTS, obj("web", "u1", 10))
    assert not cache.put(ROLLOUTS, obj("web", "u1", 9))
    assert cache.get(ROLLOUTS, "ns", "web") == obj("web", "u1", 10)


def test_another_object_of_the_same_name_replaces_it_whatever_its_version() -> None:
    cache = Cache()
    cache.put(ROLLOUTS, obj("web", "old-server", 5000))
    cache.remove(ROLLOUTS, obj("web", "old-server", 5001))
    assert cache.put(ROLLOUTS, obj("web", "new-server", 3))  # a server started again counts from 1
    assert not cache.put(ROLLOUTS, obj("web", "old-server", 4000))  # a late event of the deleted one


def test_a_listing_drops_what_it_lacks_unless_it_was_stored_after_the_listing_began() -> None:
    cache = Cache()
    cache.put(REPLICASETS, obj("web-1", "r1", 1, owner="ro"))
    cache.put(REPLICASETS, obj("web-2", "r2", 2, owner="ro"))
    mark = cache.mark()
    cache.put(REPLICASETS, obj("web-3", "r3", 3, owner="ro"))  # created while the listing was on its way
    dropped = cache.forget_unlisted(REPLICASETS, [obj("web-2", "r2", 2)], mark)
    assert [d["metadata"]["name"] for d in dropped] == ["web-1"]
    assert [r["metadata"]["name"] for r in cache.owned_by(REPLICASETS, "ro")] == ["web-2", "web-3"]
