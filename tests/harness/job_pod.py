"""Playing the kubelet for one Job pod: each container's command, run on this host.

Images are stood in for by the host's own programs (our CLIs from the venv, vtctldclient
from the Go tools), volumes by directories; everything else is the manifest's: command,
args, env, the order of init containers, and a failed step ending the pod.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Step:
    name: str
    argv: list[str]  # as the manifest says it, before mount paths are mapped
    returncode: int
    stdout: str
    stderr: str


def _host_path(arg: str, mounts: dict[str, Path]) -> str:
    """Container paths under a mount (a whole argument, or a word of a shell line)
    rewritten to the volume's host directory; the longest mount path wins."""
    for mount_path in sorted(mounts, key=len, reverse=True):
        word = re.compile(rf"(?<![\w./-]){re.escape(mount_path)}(?=/|$|\s|\")")
        host = str(mounts[mount_path])
        if word.search(arg):
            return word.sub(host.replace("\\", "\\\\"), arg)  # a path, not a template
    return arg


def run_job_pod(
    job: dict[str, Any],
    entrypoints: dict[str, list[str]],
    volumes: Path,
    *,
    path: list[Path],
    may_fail: frozenset[str] = frozenset(),
) -> list[Step]:
    """Run the pod's containers in order. ``entrypoints``: image -> the host command that
    stands for its ENTRYPOINT; ``path``: where commands like ``vtctldclient`` are found;
    a container in ``may_fail`` does not stop the pod (a step this host can't complete)."""
    pod = job["spec"]["template"]["spec"]
    env_path = os.pathsep.join([*map(str, path), os.environ.get("PATH", "")])
    steps: list[Step] = []
    for container in [*pod.get("initContainers", []), *pod["containers"]]:
        command = container.get("command")
        argv = [*(command or []), *container.get("args", [])]
        mounts = {}
        for mount in container.get("volumeMounts", []):
            mounts[mount["mountPath"]] = volumes / mount["name"]
            mounts[mount["mountPath"]].mkdir(parents=True, exist_ok=True)
        # the manifest's own words are mapped; the host's stand-in for an ENTRYPOINT is not
        mapped = [*([] if command else entrypoints[container["image"]]),
                  *(_host_path(arg, mounts) for arg in argv)]  # fmt: skip
        env = {**os.environ, "PATH": env_path}
        env.update({e["name"]: e["value"] for e in container.get("env", [])})
        out = subprocess.run(mapped, capture_output=True, text=True, env=env, timeout=120,
                             check=False)  # fmt: skip
        steps.append(Step(container["name"], argv, out.returncode, out.stdout, out.stderr))
        if out.returncode != 0 and container["name"] not in may_fail:
            break
    return steps
