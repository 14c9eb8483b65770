"""Pod-template hashes: stable, label-independent, collision-aware, in Kubernetes' safe alphabet."""

from __future__ import annotations

from rollouts.model.hashing import SAFE_ALPHABET, fnv32a, pod_template_hash, safe_encode, step_hash

TEMPLATE = {
    "metadata": {"labels": {"app": "web"}},
    "spec": {"containers": [{"name": "web", "image": "nginx:1.25"}]},
}


def test_fnv32a_matches_reference_vectors() -> None:
    assert fnv32a(b"") == 0x811C9DC5
    assert fnv32a(b"a") == 0xE40C292C
    assert fnv32a(b"foobar") == 0xBF9CF968


def test_safe_encode_uses_kubernetes_alphabet() -> None:
    # rand.SafeEncodeString("1234567890") in Go.
    assert safe_encode("1234567890") == "56789bcdf4"
    assert set(pod_template_hash(TEMPLATE)) <= set(SAFE_ALPHABET)


def test_hash_is_stable_and_known() -> None:
    # Pinned: a change here renames every ReplicaSet of every Rollout on upgrade.
    assert pod_template_hash(TEMPLATE) == "59bd5955b7"


def test_hash_ignores_key_order_and_our_label() -> None:
    reordered = {
        "spec": {"containers": [{"image": "nginx:1.25", "name": "web"}]},
        "metadata": {"labels": {"app": "web"}},
    }
    labelled = {
        "metadata": {"labels": {"app": "web", "rollouts-pod-template-hash": "xyz"}},
        "spec": {"containers": [{"name": "web", "image": "nginx:1.25"}]},
    }
    assert pod_template_hash(reordered) == pod_template_hash(TEMPLATE) == pod_template_hash(labelled)


def test_hash_changes_with_content_and_collision_count() -> None:
    changed = {**TEMPLATE, "spec": {"containers": [{"name": "web", "image": "nginx:1.26"}]}}
    assert pod_template_hash(changed) != pod_template_hash(TEMPLATE)
    assert pod_template_hash(TEMPLATE, 1) != pod_template_hash(TEMPLATE)
    assert pod_template_hash(TEMPLATE, 1) != pod_template_hash(TEMPLATE, 2)
    assert pod_template_hash(TEMPLATE, 0) != pod_template_hash(TEMPLATE)


def test_step_hash_depends_on_steps() -> None:
    assert step_hash('[{"setWeight":20}]') != step_hash('[{"setWeight":30}]')
