"""Argo's ping-pong (``canary.pingPong``): the ping and pong Services take turns as stable and canary.
Each pass reads whose turn it is from ``status.canary.stablePingPong`` (``ping`` until the first
promotion) and plans with that pair as the canary's stable and canary Services; promoting a new version
hands the stable role to the Service that already selects it, so no Service selector changes under
live traffic at the promotion."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from rollouts.model.spec import PING, PONG

if TYPE_CHECKING:
    from rollouts.strategy.base import Planner

STATUS_KEY = "stablePingPong"


def _stable(planner: Planner) -> str:
    return PONG if (planner.old.get("canary") or {}).get(STATUS_KEY) == PONG else PING


def take_turns(planner: Planner) -> None:
    """Set the Rollout's stable and canary Services to this turn's ping and pong (nothing without pingPong)."""
    canary = planner.ro.canary
    if canary is not None and canary.ping_pong:
        planner.ro = dataclasses.replace(planner.ro, canary=canary.with_stable_ping_pong(_stable(planner)))


def record_turn(planner: Planner, new: dict[str, Any], promoted: bool) -> None:
    """``status.canary.stablePingPong``: kept, flipped when a new version was promoted over a previous
    stable one (``promoted``), dropped without pingPong."""
    canary = planner.ro.canary
    section = new.get("canary")
    if canary is None or not canary.ping_pong:
        if isinstance(section, dict):
            section.pop(STATUS_KEY, None)
        return
    stable = _stable(planner)
    if promoted:
        stable = PING if stable == PONG else PONG
    new.setdefault("canary", {})[STATUS_KEY] = stable
