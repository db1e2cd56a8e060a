"""Each StratumPool's own loop: when to reconcile it, and writing out what a pass found.

kopf watches the pools and our children and tells ``Pools`` (``handlers.py``); it keeps
no state on the pools itself: no finalizer (a pool can always be deleted, operator or
not, except while its spool claims wait for a drain), no bookkeeping annotations, no
log line per tick. Each pool has one task here that runs a pass when woken (the pool
changed, one of its children changed) or every ``TICK_S``, never two at once:

- a full pass when the pool or a child changed, or a minute passed; a light one (reads
  only) otherwise (``reconcile.py``);
- a pool being deleted is finalized (``deletion.py``) every ``DELETION_RETRY_S``;
- a pass that fails is retried with a backoff that doubles to ``ERROR_BACKOFF_CAP_S``;
  its error is logged and posted once per distinct message, not once per retry.

What a pass found is written here, once: the status fields that changed (the API's
answer becomes the pool as we know it, so the next pass never works on a stale status),
each Event under the operator's name, and one log line per Event naming the pool.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from typing import Any

from stratum_operator import deletion, metrics, reporting, upgrade
from stratum_operator.builders import naming
from stratum_operator.images import ImageDefaults
from stratum_operator.k8s import patching, posting
from stratum_operator.k8s.errors import NotFound
from stratum_operator.outcome import Event, Outcome
from stratum_operator.pool_memory import PoolMemory
from stratum_operator.reconcile import reconcile
from stratum_operator.vocabulary import Reason
from stratum_operator.workload import hand_scaled

TICK_S = 10.0
DELETION_RETRY_S = 5.0
ERROR_BACKOFF_CAP_S = 300.0
# children whose deletion by hand is news when we put them back (the StatefulSet is
# told of by the pass itself; Jobs and claims we delete ourselves)
_RESTORED_KINDS = ("Service", "ConfigMap", "PodDisruptionBudget", "CronJob")

log = logging.getLogger("stratum_operator")


def _version(obj: dict[str, Any]) -> int:
    raw = str(obj["metadata"].get("resourceVersion") or "0")
    return int(raw) if raw.isdigit() else 0


class PoolLoop:
    def __init__(self, namespace: str, name: str, images: ImageDefaults) -> None:
        self.ref = f"{namespace}/{name}"
        self.namespace, self.name = namespace, name
        self.images = images
        self.pool: dict[str, Any] | None = None
        self.memo = PoolMemory()
        self._wake = asyncio.Event()
        self._full = True
        self._written = ""  # the resourceVersion of our own last status write
        self._failures = 0
        self._last_error = ""
        self._task: asyncio.Task[None] | None = None
        self._gone = False

    # -- what kopf tells us -----------------------------------------------------------

    def saw_pool(self, pool: dict[str, Any]) -> None:
        """The pool as the watch delivered it: a pass follows unless it is our own write."""
        if self.pool is not None and _version(pool) < _version(self.pool):
            return  # older than what our own write returned: the watch is catching up
        self.pool = pool
        if pool["metadata"].get("resourceVersion") != self._written:
            self.poke(full=True)

    def saw_child(self, event_type: str, child: dict[str, Any]) -> None:
        kind = child.get("kind", "")
        if kind == "StatefulSet":
            known = self.memo.statefulset
            if event_type == "DELETED":
                self.memo.statefulset = None
            elif known is None or _version(child) >= _version(known):
                self.memo.statefulset = child
                # a hand scale our next apply may undo before any pass reads it
                if (hand := hand_scaled(child)) is not None:
                    self.memo.hand_scaled = hand
        elif event_type == "DELETED" and kind in _RESTORED_KINDS:
            self.memo.deleted_children.append(f"{kind} {child['metadata']['name']}")
        self.poke(full=kind != "StatefulSet" or event_type == "DELETED")

    def poke(self, *, full: bool) -> None:
        self._full = self._full or full
        self._wake.set()

    # -- the loop ---------------------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"pool {self.ref}")

    def retire(self) -> None:
        """The pool is gone: the loop ends after the pass it may be in (whose Events
        still go out), never in the middle of it."""
        self._gone = True
        self._wake.set()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        await self._sleep(random.uniform(0, 0.2))  # spreads a resync's burst
        while not self._gone:
            full, self._full = self._full, False
            try:
                delay = await self._pass(full)
                self._failures, self._last_error = 0, ""
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a failed pass is retried, never fatal
                delay = await self._failed(exc)
            await self._sleep(delay)
        metrics.forget_pool(self.namespace, self.name)  # after the last pass: none come back

    async def _sleep(self, delay: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), delay)
        self._wake.clear()

    async def _pass(self, full: bool) -> float:
        pool = self.pool
        if pool is None:
            return TICK_S
        if await upgrade.forget_kopf_state(pool):
            return 0.5  # the watch brings the pool as it is now; pass on that
        if pool["metadata"].get("deletionTimestamp"):
            with metrics.reconciling(metrics.Trigger.DELETE):
                out, done = await deletion.finalize(pool, self.memo, self.images)
            await self._write(pool, out)
            if done:  # last: the pool is gone the moment our finalizer is
                await patching.set_finalizer(pool, naming.SPOOL_FINALIZER, present=False)
            return TICK_S if done else DELETION_RETRY_S
        with metrics.reconciling(metrics.Trigger.FULL if full else metrics.Trigger.TICK):
            out = await reconcile(pool, self.memo, full=full, images=self.images)
        await self._write(pool, out)
        return TICK_S

    async def _failed(self, exc: Exception) -> float:
        self._failures += 1
        delay = float(min(ERROR_BACKOFF_CAP_S, TICK_S * 2 ** (self._failures - 1)))
        message = f"{type(exc).__name__}: {exc}"
        if message != self._last_error:  # once per distinct error, not once per retry
            self._last_error = message
            log.warning("[%s] reconcile failed, retrying in %.0fs: %s", self.ref, delay,
                        message, exc_info=exc)  # fmt: skip
            if self.pool is not None:
                with contextlib.suppress(Exception):
                    await self._post(self.pool, Event(Reason.RECONCILE_ERROR, message, True))
        self._full = True
        return delay

    async def _write(self, pool: dict[str, Any], out: Outcome) -> None:
        """Events first: a pass that let the pool go (its last finalizer removed) still
        tells what it did, and a status write to a pool that is gone is no error."""
        found = reporting.report(pool, out)
        for event in found.events:
            await self._post(pool, event)
        if not found.status:
            return
        name, namespace = naming.name_of(pool)
        try:
            updated = await patching.patch_status(pool["apiVersion"], pool["kind"], namespace,
                                                  name, found.status)  # fmt: skip
        except NotFound:
            return  # deleted meanwhile: its DELETED event ends this loop
        self._written = str(updated["metadata"].get("resourceVersion", ""))
        if self.pool is None or _version(updated) >= _version(self.pool):
            self.pool = updated

    async def _post(self, pool: dict[str, Any], event: Event) -> None:
        level = logging.WARNING if event.warning else logging.INFO
        log.log(level, "[%s] %s: %s", self.ref, event.reason.value, event.message)
        await posting.post_event(pool, event.reason.value, event.message, warning=event.warning)


class Pools:
    """Every pool's loop, by (namespace, name)."""

    def __init__(self, images: ImageDefaults) -> None:
        self.images = images  # the defaults of what a pool's spec leaves unset
        self.loops: dict[tuple[str, str], PoolLoop] = {}

    async def pool_event(self, event_type: str | None, pool: dict[str, Any]) -> None:
        name, namespace = naming.name_of(pool)
        key = (namespace, name)
        if event_type == "DELETED":
            loop = self.loops.pop(key, None)
            if loop is not None:
                loop.retire()
            return
        if key not in self.loops:
            self.loops[key] = PoolLoop(namespace, name, self.images)
            self.loops[key].start()
        self.loops[key].saw_pool(pool)

    def child_event(self, event_type: str | None, child: dict[str, Any]) -> None:
        key = (child["metadata"].get("namespace", ""), naming.pool_of(child))
        loop = self.loops.get(key)
        if loop is not None:
            loop.saw_child(event_type or "", child)

    async def stop(self) -> None:
        for loop in self.loops.values():
            await loop.stop()
        self.loops.clear()
