"""The node's container runtime: Debian's containerd and runc, with a root, state, socket
and runc root of their own under the node's directory, and the node's images imported.

``restrict_oom_score_adj`` is what makes pods run here at all: root on this kind of
machine lacks CAP_SYS_RESOURCE, and without it runc fails to lower a sandbox's OOM
score ("can't get final child's PID from pipe: EOF").
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

from harness.databases import ServerUnavailable
from harness.kubernetes import ROOT

CNI_BIN_DIR = Path("/usr/lib/cni")  # Debian's containernetworking-plugins
CRI_NAMESPACE = "k8s.io"  # the containerd namespace a kubelet sees


@dataclass(frozen=True)
class NodeImages:
    pause: tuple[str, Path]  # image name, OCI archive
    busybox: tuple[str, Path]


def archive_images(*images: str) -> dict[str, tuple[str, Path]]:
    """The node's own images (pause, busybox), built or found cached by provisioning's
    script, and ``images`` from buildah's storage archived by it: each image's short name
    (``pause``, ``stratum-proxy``) -> (image name, OCI archive)."""
    out = subprocess.run(["bash", str(ROOT / "tools" / "build-node-images.sh"), *images],
                         capture_output=True, text=True, check=False, timeout=900)  # fmt: skip
    if out.returncode != 0:
        raise ServerUnavailable(f"building the node's images failed: {out.stderr[-3000:]}")
    built = {}
    for line in out.stdout.strip().splitlines():
        name, archive = line.split(" ", 1)
        built[name.split("/")[-1].split(":")[0]] = (name, Path(archive))
    return built


def build_node_images() -> NodeImages:
    built = archive_images()
    return NodeImages(pause=built["pause"], busybox=built["busybox"])


def _toml(value: str | bool | int | list[str]) -> str:
    return json.dumps(value)  # strings, booleans, integers and string lists read alike


def containerd_config(root: Path, sandbox_image: str, cni_conf_dir: Path) -> str:
    """containerd 1.6's configuration (version 2) for a node rooted at ``root``."""
    cri = '[plugins."io.containerd.grpc.v1.cri"'
    settings: list[tuple[str, dict[str, str | bool | int | list[str]]]] = [
        ("", {"version": 2, "root": str(root / "root"), "state": str(root / "state"),
              # snapshotters this kernel can't serve; overlayfs is the one used
              "disabled_plugins": ["io.containerd.snapshotter.v1.aufs",
                                   "io.containerd.snapshotter.v1.btrfs",
                                   "io.containerd.snapshotter.v1.zfs",
                                   "io.containerd.snapshotter.v1.devmapper"]}),
        ("[grpc]", {"address": str(socket_path(root))}),
        ("[ttrpc]", {"address": f"{socket_path(root)}.ttrpc"}),
        ("[debug]", {"address": ""}),
        ("[metrics]", {"address": ""}),
        ('[plugins."io.containerd.internal.v1.opt"]', {"path": str(root / "opt")}),
        (f"{cri}]", {"sandbox_image": sandbox_image, "restrict_oom_score_adj": True,
                     "stream_server_address": "127.0.0.1", "stream_server_port": "0",
                     "enable_selinux": False}),
        (f"{cri}.containerd]", {"snapshotter": "overlayfs", "default_runtime_name": "runc"}),
        (f"{cri}.containerd.runtimes.runc]", {"runtime_type": "io.containerd.runc.v2"}),
        (f"{cri}.containerd.runtimes.runc.options]",
         {"SystemdCgroup": False, "Root": str(root / "runc")}),
        (f"{cri}.cni]", {"bin_dir": str(CNI_BIN_DIR), "conf_dir": str(cni_conf_dir),
                         "max_conf_num": 1}),
    ]  # fmt: skip
    lines = []
    for header, values in settings:
        lines += [header] if header else []
        lines += [f"{key} = {_toml(value)}" for key, value in values.items()]
    return "\n".join(lines) + "\n"


def socket_path(root: Path) -> Path:
    return root / "containerd.sock"


def ctr(root: Path, *args: str) -> str:
    """containerd's own client, in the namespace the kubelet uses."""
    out = subprocess.run(["ctr", "--address", str(socket_path(root)), "-n", CRI_NAMESPACE, *args],
                         capture_output=True, text=True, check=False, timeout=120)  # fmt: skip
    if out.returncode != 0:
        raise RuntimeError(f"ctr {' '.join(args)}: {out.stderr.strip()}")
    return out.stdout


def running_tasks(root: Path) -> list[str]:
    """The containers whose processes are running (``ctr tasks ls``)."""
    rows = ctr(root, "tasks", "ls").splitlines()[1:]
    return [row.split()[0] for row in rows if row.split()[-1] == "RUNNING"]
