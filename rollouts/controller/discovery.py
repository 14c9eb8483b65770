"""Which routing kinds the API server serves, re-checked on a slow timer.

kopf follows CRDs with a watch of its own and starts watching a kind once its CRD is installed, but it
misses a CRD created while that watch is starting (it skips the watch's initial listing), and without
the RBAC to watch CRDs it scans only once. So every :data:`RESCAN_SECONDS` the groups of the routing kinds
not served yet are scanned again, the way kopf does on a CRD event: a few discovery requests a minute while
a router's CRDs are absent, none per reconcile and none once every routing kind is served.

This reaches into kopf's private `_core` (no public hook re-scans); tests/unit/test_discovery.py fails if
kopf moves it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection

import kopf
from kopf._cogs.structs import references
from kopf._core.reactor import observation

from rollouts.controller.client import Kind

log = logging.getLogger("pyrollouts.operator")

RESCAN_SECONDS = 60.0
UNRESOLVED = "Unresolved resources cannot be served"


def unserved_groups(kinds: Collection[Kind], insights: references.Insights) -> list[str]:
    """The API groups of the `kinds` kopf does not watch (yet)."""
    served = {(r.group, r.version, r.plural) for r in insights.watched_resources}
    return sorted({k.group for k in kinds if (k.group, k.version, k.plural) not in served})


async def rescan(
    kinds: Collection[Kind],
    registry: kopf.OperatorRegistry,
    settings: kopf.OperatorSettings,
    insights: references.Insights,
    interval: float = RESCAN_SECONDS,
) -> None:
    """Forever: every `interval`, have kopf scan the groups of the unserved `kinds` again (it starts their
    watches when they are served now). Runs inside kopf's operator context (its credentials)."""
    while True:
        await asyncio.sleep(interval)
        for group in unserved_groups(kinds, insights):
            try:
                await observation.process_discovered_resource_event(
                    raw_event={"type": "MODIFIED", "object": {"spec": {"group": group}}},
                    settings=settings,
                    registry=registry,
                    insights=insights,
                )
            except Exception as exc:  # the next round tries again; kopf's own watch may notice first
                log.debug("discovery of API group %s failed: %s", group, exc)


class QuietUnresolved(logging.Filter):
    """kopf says "Unresolved resources cannot be served" at every scan while a router's CRDs are absent:
    that is normal (a cluster without Istio); said once here, not once a minute."""

    def __init__(self) -> None:
        super().__init__()
        self.said = False

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.getMessage().startswith(UNRESOLVED):
            return True
        if self.said:
            return False
        self.said = True
        record.levelno, record.levelname = logging.INFO, "INFO"
        record.msg, record.args = (
            "routing kinds not served (watched once their CRDs are installed): %s",
            (record.getMessage().partition(": ")[2],),
        )
        return True


def quiet_unresolved() -> None:
    logger = logging.getLogger(observation.__name__)
    if not any(isinstance(f, QuietUnresolved) for f in logger.filters):
        logger.addFilter(QuietUnresolved())
