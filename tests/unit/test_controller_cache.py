"""The controller's watch cache: newer resourceVersions win, deleted objects stay deleted against late
answers, and the tombstones that guarantee it are dropped after a while (bounded memory)."""

from __future__ import annotations

from typing import Any

from rollouts.controller.client import Cache, kind_of

CONFIGMAPS = kind_of("v1", "configmaps", "ConfigMap")


def obj(name: str, rv: int, owner: str | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": "ns", "resourceVersion": str(rv), "uid": f"uid-{name}"}
    if owner:
        meta["ownerReferences"] = [{"uid": owner, "controller": True}]
    return {"metadata": meta}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_an_older_version_never_replaces_a_newer_one() -> None:
    cache = Cache()
    assert cache.put(CONFIGMAPS, obj("a", 5))
    assert not cache.put(CONFIGMAPS, obj("a", 4))
    assert cache.get(CONFIGMAPS, "ns", "a") == obj("a", 5)


def test_a_late_answer_does_not_bring_back_a_deleted_object_and_tombstones_expire() -> None:
    clock = Clock()
    cache = Cache(tombstone_seconds=60, clock=clock)
    cache.put(CONFIGMAPS, obj("a", 5, owner="rollout-1"))
    cache.remove(CONFIGMAPS, obj("a", 6))
    assert not cache.put(CONFIGMAPS, obj("a", 5, owner="rollout-1"))  # our write's answer, arriving late
    assert cache.get(CONFIGMAPS, "ns", "a") is None
    assert cache.owned_by(CONFIGMAPS, "rollout-1") == []
    assert cache.put(CONFIGMAPS, obj("a", 7))  # created again later
    assert cache.tombstones == 1

    for i in range(100):  # deletions a second apart: only the last minute's tombstones are kept
        clock.now += 1
        cache.remove(CONFIGMAPS, obj(f"gone-{i}", 10 + i))
    assert cache.tombstones == 61
    clock.now += 61
    cache.remove(CONFIGMAPS, obj("last", 500))
    assert cache.tombstones == 1


def test_deleting_the_same_name_again_refreshes_its_tombstone() -> None:
    clock = Clock()
    cache = Cache(tombstone_seconds=60, clock=clock)
    cache.remove(CONFIGMAPS, obj("a", 5))  # t=1000
    clock.now += 50
    cache.remove(CONFIGMAPS, obj("b", 6))  # t=1050
    clock.now += 5
    cache.remove(CONFIGMAPS, obj("a", 7))  # t=1055: "a" is now younger than "b"
    clock.now += 56
    cache.remove(CONFIGMAPS, obj("c", 8))  # t=1111: "b" (61 s) expires, "a" (56 s) stays
    assert cache.tombstones == 2
    assert not cache.put(CONFIGMAPS, obj("a", 7))
    assert cache.put(CONFIGMAPS, obj("b", 6))
