"""The product on a real node, as a pool operator meets it: our images made importable,
the namespaces our pods run in, ``helm`` and ``kubectl stratum`` as a person runs them,
and the one check every fault scenario ends with (every share a miner was told of is
stored exactly once, with what it was told).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness.databases import Database
from harness.images import build_images
from harness.node.plane import NodeControlPlane
from harness.node.runtime import archive_images
from stratum_sim.miners import MinerStats


def product_image_archives() -> list[Path]:
    """Our proxy, writer and operator images (``make images``: minutes the first time,
    then buildah's cache), as the OCI archives a node imports."""
    built = build_images()
    archived = archive_images(*built.values())
    return [archived[image.split("/")[-1].split(":")[0]][1] for image in built.values()]


def restricted_namespace(name: str) -> dict[str, Any]:
    """A namespace whose pods the API server holds to the ``restricted`` profile."""
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {
        "name": name, "labels": {"pod-security.kubernetes.io/enforce": "restricted"}}}  # fmt: skip


def helm(plane: NodeControlPlane, *args: str) -> str:
    out = subprocess.run([str(plane.bin / "helm"), *args, "--kubeconfig", str(plane.kubeconfig)],
                         capture_output=True, text=True, timeout=600, check=False)  # fmt: skip
    assert out.returncode == 0, f"helm {' '.join(args)}: {out.stdout}{out.stderr}"
    return out.stdout


def kubectl_stratum(plane: NodeControlPlane, *args: str) -> str:
    """As a person types it: kubectl finds kubectl-stratum on PATH and runs it."""
    path = os.pathsep.join([str(Path(sys.executable).parent), str(plane.bin), os.environ["PATH"]])
    env = {**os.environ, "PATH": path, "KUBECONFIG": str(plane.kubeconfig)}
    out = subprocess.run(["kubectl", "stratum", *args], env=env, capture_output=True, text=True,
                         timeout=120, check=False)  # fmt: skip
    assert out.returncode == 0, out.stderr
    return out.stdout


def assert_told_stored_once(
    plane: NodeControlPlane, db: Database, stats: list[MinerStats], at_least: int
) -> None:
    """Every share the miners were told of (``Behaviour(keep_heard=True)``) is, or soon
    is, stored exactly once with the verdict they were told; no share is stored twice."""
    told = [(*h[:5], str(h[5] or 0)) for s in stats for h in s.heard]
    assert len(told) > at_least, f"only {len(told)} shares answered: the fleet stalled"
    plane.wait("every told share stored", lambda: not _not_stored_once(db, told), 120)
    assert db.scalar("SELECT count(*) FROM share_events") == db.scalar(
        "SELECT count(DISTINCT share_id) FROM share_events"), "a share stored twice"  # fmt: skip


def _not_stored_once(db: Database, told: Sequence[tuple[str, ...]]) -> list[tuple[str, ...]]:
    """The told shares (job, extranonce1, extranonce2, ntime, nonce, code) not stored
    exactly once with that code (0: accepted); PostgreSQL's rows as psql -A prints them."""
    rows = db.query("SELECT job_id, extranonce1, extranonce2, ntime, nonce, "
                    "coalesce(error_code, 0) FROM share_events")  # fmt: skip
    stored = Counter(tuple(line.split("|")) for line in rows.splitlines())
    return [share for share in told if stored[share] != 1]
