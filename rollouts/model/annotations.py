"""Annotation keys the controller writes on ReplicaSets and the plugin reads back."""

from __future__ import annotations

#: When an old ReplicaSet is due to scale down (RFC 3339), after `scaleDownDelaySeconds`.
SCALE_DOWN_DEADLINE = "rollouts.pyrollouts.io/scale-down-deadline"
