"""Notifications from the controller: the hook the reconciler calls for every Event it records on a Rollout.

The hook returns at once; a task reads the notification ConfigMap and Secret (only for a Rollout with a
subscription), decides what to send (:mod:`rollouts.notifications.decide`), records the notifications in
the Rollout's ``notified.notifications.pyrollouts.io`` annotation *before* sending them (a patch guarded by
the resourceVersion: of two writers one wins, and a notification already recorded is never sent again, by
this controller after a restart or by another one), then sends each with retries and backoff. A
notification that still fails becomes a Warning Event ``NotificationFailed`` on the Rollout. Only the
leader records Events, and the client refuses the leader's writes once it has lost the Lease, so a
controller that is not the leader sends nothing. Secret values never reach a log line or an Event."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

from rollouts.controller.client import CONFIGMAPS, EVENTS, ROLLOUTS, SECRETS, ApiError, Client, event_body
from rollouts.notifications.config import CONFIGMAP, SECRET, Config, ConfigError, parse_config
from rollouts.notifications.decide import NOTIFIED_ANNOTATION, Notification, notifications_for
from rollouts.notifications.delivery import DeliveryError, send
from rollouts.notifications.subscriptions import subscribed

log = logging.getLogger("pyrollouts.notifications")

COMPONENT = "rollouts-controller"
FAILED_REASON = "NotificationFailed"
#: Waits between delivery attempts (so four attempts in all).
BACKOFF_SECONDS = (0.5, 2.0, 5.0)
#: The notified annotation keeps this many most recent records.
KEEP_RECORDS = 100
CLAIM_ATTEMPTS = 5


def merged_records(current: str | None, keys: Sequence[str], now: float) -> dict[str, int] | None:
    """The annotation's records with ``keys`` added, or None when every key is already there."""
    try:
        records = {str(k): int(v) for k, v in json.loads(current or "{}").items()}
    except (ValueError, AttributeError):
        records = {}  # unreadable (edited by hand): start again rather than never notify
    new = [k for k in keys if k not in records]
    if not new:
        return None
    records.update(dict.fromkeys(new, int(now)))
    newest = sorted(records.items(), key=lambda kv: kv[1], reverse=True)[:KEEP_RECORDS]
    return dict(sorted(newest))


class Notifier:
    """Sends the notifications the Rollout's Events call for; :meth:`on_event` never blocks."""

    def __init__(self, client: Client, namespace: str, backoff: Sequence[float] = BACKOFF_SECONDS) -> None:
        self.client = client
        self.namespace = namespace
        self.backoff = tuple(backoff)
        self._tasks: set[asyncio.Task[None]] = set()

    def on_event(self, rollout: Mapping[str, Any], reason: str, message: str) -> None:
        if reason == FAILED_REASON or not subscribed((rollout.get("metadata") or {}).get("annotations")):
            return
        task = asyncio.get_running_loop().create_task(self._notify(rollout, reason, message), name=f"notify {reason}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def stop(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def idle(self) -> None:
        """Wait for the notifications in flight (for tests and an orderly shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def _notify(self, rollout: Mapping[str, Any], reason: str, message: str) -> None:
        meta = rollout.get("metadata") or {}
        where = f"rollout {meta.get('namespace')}/{meta.get('name')}"
        config = Config()
        try:
            config = await self.load()
            due = notifications_for(config, rollout, reason, message)
            if not due or not await self._claim(rollout, [n.key for n in due]):
                return
        except ConfigError as exc:
            await self._failed(rollout, config.redact(str(exc)))
            return
        except ApiError as exc:
            log.warning("%s: notifications for %s not sent: %s", where, reason, config.redact(str(exc)))
            return
        await asyncio.gather(*(self._deliver(rollout, config, n) for n in due))

    async def load(self) -> Config:
        """The ConfigMap and Secret, read now (an absent Secret is no Secret; an absent ConfigMap, no services)."""
        configmap = await self._get_optional(CONFIGMAPS, CONFIGMAP)
        secret = await self._get_optional(SECRETS, SECRET)
        return parse_config((configmap or {}).get("data"), secret)

    async def _get_optional(self, kind: Any, name: str) -> dict[str, Any] | None:
        try:
            return await self.client.get(kind, self.namespace, name)
        except ApiError as exc:
            if exc.not_found:
                return None
            raise

    async def _claim(self, rollout: Mapping[str, Any], keys: list[str]) -> bool:
        """Record ``keys`` as sent on the Rollout; False when they already were (or it is gone)."""
        meta = rollout.get("metadata") or {}
        ns, name = str(meta.get("namespace") or ""), str(meta["name"])
        for _ in range(CLAIM_ATTEMPTS):
            try:
                live = await self.client.get(ROLLOUTS, ns, name)
            except ApiError as exc:
                if exc.not_found:
                    return False
                raise
            annotations = live["metadata"].get("annotations") or {}
            records = merged_records(annotations.get(NOTIFIED_ANNOTATION), keys, time.time())
            if records is None:
                return False
            patch = {
                "metadata": {
                    "resourceVersion": live["metadata"]["resourceVersion"],
                    "annotations": {NOTIFIED_ANNOTATION: json.dumps(records, separators=(",", ":"))},
                }
            }
            try:
                await self.client.patch(ROLLOUTS, ns, name, patch)
                return True
            except ApiError as exc:
                if exc.status != 409:
                    raise
        return False

    async def _deliver(self, rollout: Mapping[str, Any], config: Config, note: Notification) -> None:
        what = f"{note.trigger} ({note.template}) to {note.destination}"
        meta = rollout.get("metadata") or {}
        for attempt, wait in enumerate((*self.backoff, None), start=1):
            try:
                await asyncio.to_thread(send, config, note.content, note.destination)
                log.info("rollout %s/%s: sent %s", meta.get("namespace"), meta.get("name"), what)
                return
            except DeliveryError as exc:
                error = config.redact(str(exc))
            if wait is None:
                await self._failed(rollout, f"could not send {what} after {attempt} attempts: {error}")
                return
            log.info("%s: attempt %d failed (%s); again in %.1fs", what, attempt, error, wait)
            await asyncio.sleep(wait)

    async def _failed(self, rollout: Mapping[str, Any], message: str) -> None:
        meta = rollout.get("metadata") or {}
        ns = str(meta.get("namespace") or "")
        log.warning("rollout %s/%s: %s", ns, meta.get("name"), message)
        try:
            await self.client.create(
                EVENTS, ns, event_body(rollout, "Warning", FAILED_REASON, message[:1024], COMPONENT)
            )
        except ApiError as exc:
            log.warning("could not record event %s on rollout %s/%s: %s", FAILED_REASON, ns, meta.get("name"), exc)
