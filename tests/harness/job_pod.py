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
    termination_message: str = ""  # what the container wrote to its terminationMessagePath


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
        # the kubelet backs the termination log with a file of its own, per container
        termination = volumes / f"{container['name']}.termination-log"
        termination.unlink(missing_ok=True)
        mounts[container.get("terminationMessagePath", "/dev/termination-log")] = termination
        # the manifest's own words are mapped; the host's stand-in for an ENTRYPOINT is not
        mapped = [*([] if command else entrypoints[container["image"]]),
                  *(_host_path(arg, mounts) for arg in argv)]  # fmt: skip
        env = {**os.environ, "PATH": env_path}
        env.update({e["name"]: e["value"] for e in container.get("env", [])})
        out = subprocess.run(mapped, capture_output=True, text=True, env=env, timeout=120,
                             check=False)  # fmt: skip
        message = termination.read_text() if termination.exists() else ""
        steps.append(Step(container["name"], argv, out.returncode, out.stdout, out.stderr, message))
        if out.returncode != 0 and container["name"] not in may_fail:
            break
    return steps


def project_volumes(pod: dict[str, Any], volumes: Path, files: dict[str, dict[str, str]]) -> None:
    """The kubelet's projection of ConfigMap and Secret volumes: ``files`` maps a volume
    name to its files' contents. Container paths inside them (the spool, the database
    URL file) are rewritten to the host directories that stand for the mounts, as the
    command line's are, and a listen address on all interfaces becomes a free loopback
    port (a pod has its own network; this host is shared)."""
    mounts = {m["mountPath"]: volumes / m["name"]
              for c in pod["containers"] for m in c.get("volumeMounts", [])}  # fmt: skip
    for volume, contents in files.items():
        (volumes / volume).mkdir(parents=True, exist_ok=True)
        # one pass, longest mount first, so a mapped host path is never mapped again
        paths = "|".join(re.escape(m) for m in sorted(mounts, key=len, reverse=True))
        container_path = re.compile(rf'"({paths})(?=[/"])')
        for key, text in contents.items():
            mapped = container_path.sub(lambda m: f'"{mounts[m.group(1)]}', text)
            mapped = re.sub(r'"0\.0\.0\.0:\d+"', '"127.0.0.1:0"', mapped)
            (volumes / volume / key).write_text(mapped)
