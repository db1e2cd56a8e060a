"""Our container images, built by ``make images`` (buildah), run the way a kubelet runs
a pod's containers: the image's own filesystem and USER, its ENTRYPOINT, a read-only
root, and writable only the volumes the operator mounts (spool, tmp).

``buildah run`` has no read-only root, so the image's root is mounted with
``buildah mount`` and entered with ``unshare --mount`` + ``chroot``: the mount points
are made first (as the container runtime makes them), then the root is remounted
read-only, the volumes bound in, /proc and /dev provided. The process keeps its PID
through the ``exec`` chain, so signals reach it as they would in a pod.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
from pathlib import Path
from typing import Any

from harness.databases import ServerUnavailable
from harness.kubernetes import ROOT

ENV = {"STORAGE_DRIVER": "vfs", "BUILDAH_ISOLATION": "chroot"}


def buildah(*args: str, check: bool = True) -> str:
    out = subprocess.run(["buildah", *args], capture_output=True, text=True, check=False,
                         env={**os.environ, **ENV})  # fmt: skip
    if check and out.returncode != 0:
        raise RuntimeError(f"buildah {args[0]} failed: {out.stderr[-2000:]}")
    return out.stdout.strip()


def build_images() -> dict[str, str]:
    """component -> image name, built (or found in buildah's cache) by make's script."""
    out = subprocess.run(["bash", str(ROOT / "tools" / "build-images.sh")], capture_output=True,
                         text=True, check=False, timeout=1800)  # fmt: skip
    if out.returncode != 0:
        raise ServerUnavailable(f"building the images failed: {out.stderr[-3000:]}")
    return dict(line.split(" ", 1) for line in out.stdout.strip().splitlines())


class ImageRoot:
    def __init__(self, image: str) -> None:
        self.image = image
        self.container = buildah("from", "--quiet", image)
        self.root = Path(buildah("mount", self.container))
        config: dict[str, Any] = json.loads(buildah("inspect", "--type", "container",
                                                    self.container))["OCIv1"]["config"]  # fmt: skip
        self.entrypoint: list[str] = config.get("Entrypoint") or []
        self.user: str = config.get("User") or "0:0"
        self.env = dict(e.split("=", 1) for e in config.get("Env") or [])

    def run_argv(
        self,
        args: list[str],
        volumes: dict[str, Path],
        env: dict[str, str] | None = None,
        *,
        entrypoint: list[str] | None = None,
    ) -> list[str]:
        """The entrypoint with ``args``, as a pod runs it; ``volumes`` container path ->
        host directory (made writable for the image's user)."""
        root = shlex.quote(str(self.root))
        uid, _, gid = self.user.partition(":")
        lines = ["mount --make-rprivate /"]
        for path, host in volumes.items():
            host.mkdir(parents=True, exist_ok=True)
            os.chown(host, int(uid), int(gid or uid))
            lines.append(f"mkdir -p {root}{shlex.quote(path)}")
        lines += [f"mount --bind {root} {root}", f"mount -o remount,bind,ro {root}"]
        for path, host in volumes.items():
            lines.append(f"mount --bind {shlex.quote(str(host))} {root}{shlex.quote(path)}")
        lines += [f"mount -t proc proc {root}/proc", f"mount --rbind /dev {root}/dev"]
        environment = [f"{k}={v}" for k, v in {**self.env, **(env or {})}.items()]
        command = ["chroot", f"--userspec={uid}:{gid or uid}", str(self.root), "/usr/bin/env",
                   "-i", *environment, *(self.entrypoint if entrypoint is None else entrypoint),
                   *args]  # fmt: skip
        lines.append("exec " + shlex.join(command))
        return ["unshare", "--mount", "--", "/bin/sh", "-ec", "\n".join(lines)]

    def remove(self) -> None:
        buildah("umount", self.container, check=False)
        buildah("rm", self.container, check=False)
