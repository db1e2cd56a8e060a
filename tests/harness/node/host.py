"""What a real node changes on the machine outside its own directory, and putting it back.

A kubelet, its container runtime and kube-proxy write to the host whatever their flags
say: iptables rules (in nftables tables, which iptables-nft leaves behind empty when its
chains are flushed), sysctls, network namespaces, files under /var and /run, cgroups.
``HostState`` is a snapshot of all of it; ``leftovers`` says what differs between two
(pure); ``restore_host`` puts back what a node changed. One node at a time per machine:
they would share those paths (``NodeLock``).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from harness.databases import ServerUnavailable

LOCK_PATH = Path("/run/lock/stratum-operator-node.lock")

# Written outside the kubelet's root whatever its flags say: device-plugin and
# pod-resources sockets, the container-log links, the CNI result cache, network
# namespaces, the shims' sockets.
OUTSIDE_PATHS = (
    Path("/var/lib/kubelet"),
    Path("/var/log/pods"),
    Path("/var/log/containers"),
    Path("/usr/libexec/kubernetes"),
    Path("/var/lib/cni"),
    Path("/run/netns"),
    Path("/run/containerd"),
)

# Set by the parts at start-up: the bridge plugin turns on forwarding; the kubelet sets
# its kernel tunables (protectKernelDefaults off). kube-proxy would set the bridge hooks,
# route_localnet and conntrack limits; it is configured not to, and they are watched.
SYSCTLS = (
    "net/ipv4/ip_forward",
    "net/ipv6/conf/all/forwarding",
    "net/ipv4/conf/all/route_localnet",
    "net/bridge/bridge-nf-call-iptables",
    "net/bridge/bridge-nf-call-ip6tables",
    "vm/overcommit_memory",
    "vm/panic_on_oom",
    "kernel/panic",
    "kernel/panic_on_oops",
    "kernel/keys/root_maxkeys",
    "kernel/keys/root_maxbytes",
    "net/netfilter/nf_conntrack_max",
    "net/netfilter/nf_conntrack_tcp_timeout_established",
    "net/netfilter/nf_conntrack_tcp_timeout_close_wait",
)

# where the runtime mounts on the host: network namespaces, shims' state
_RUNTIME_MOUNT_ROOTS = (Path("/run/netns"), Path("/run/containerd"))

_COUNTERS = re.compile(r"\[\d+:\d+\]")


@dataclass(frozen=True)
class HostState:
    links: frozenset[tuple[str, str]]  # (name, kind) of veths and bridges
    nft_tables: dict[tuple[str, str], str]  # (family, name) -> the table as nft lists it
    iptables: str  # iptables-save and ip6tables-save, counters and dates stripped
    sysctls: dict[str, str]
    outside: dict[Path, frozenset[str] | None]  # entries of each OUTSIDE_PATHS (None: absent)
    shims: frozenset[int]  # pids of containerd shims
    mounts: frozenset[str]  # mount points under the watched roots

    @classmethod
    def take(cls, watched: tuple[Path, ...] = ()) -> HostState:
        """The machine now; ``watched``: directories whose mounts count (the node's)."""
        roots = (*watched, *_RUNTIME_MOUNT_ROOTS)
        return cls(_links(), _nft_tables(), _iptables(), _sysctls(), _outside(), _shims(),
                   _mounts_under(roots))  # fmt: skip


def leftovers(before: HostState, after: HostState) -> list[str]:
    """Everything ``after`` has that ``before`` had not (or had otherwise), in words."""
    found = [f"{kind} {name}" for name, kind in sorted(after.links - before.links)]
    for table in sorted(after.nft_tables.keys() | before.nft_tables.keys()):
        if after.nft_tables.get(table) != before.nft_tables.get(table):
            found.append(f"nftables table {' '.join(table)} changed")
    if after.iptables != before.iptables:
        found.append("iptables-save differs:\n" + after.iptables)
    found += [f"sysctl {k}={after.sysctls[k]} (was {v})" for k, v in before.sysctls.items()
              if after.sysctls.get(k) != v]  # fmt: skip
    for path, entries in after.outside.items():
        added = (entries or frozenset()) - (before.outside[path] or frozenset())
        if before.outside[path] is None and entries is not None:
            found.append(f"{path} created")
        found += [f"{path / name} left" for name in sorted(added)]
    found += [f"containerd shim pid {pid}" for pid in sorted(after.shims - before.shims)]
    found += [f"mount {m}" for m in sorted(after.mounts - before.mounts)]
    return found


def restore_host(before: HostState) -> None:
    """Put back what a node changed since ``before``: nftables tables, sysctls, the paths
    outside its root. Its processes, mounts and links must already be gone."""
    now = _nft_tables()
    for (family, name), text in now.items():
        if before.nft_tables.get((family, name)) == text:
            continue
        script = f"delete table {family} {name}\n" + before.nft_tables.get((family, name), "")
        subprocess.run(["nft", "-f", "-"], input=script, text=True, capture_output=True,
                       check=True)  # fmt: skip
    for key, value in before.sysctls.items():
        path = Path("/proc/sys") / key
        if path.read_text().strip() != value:
            path.write_text(value)
    for path, entries in before.outside.items():
        if entries is None:
            shutil.rmtree(path, ignore_errors=True)
        elif path.exists():
            for child in path.iterdir():
                if child.name not in entries:
                    _remove(child)


def kill_cgroup_tree(root: str) -> None:
    """SIGKILL every process in cgroup ``root`` (in every hierarchy), then remove it."""
    for hierarchy in Path("/sys/fs/cgroup").iterdir():
        top = hierarchy / root.lstrip("/")
        if not top.is_dir():
            continue
        for _ in range(50):
            pids = [p for procs in top.rglob("cgroup.procs") for p in procs.read_text().split()]
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(pid), signal.SIGKILL)
            if not pids:
                break
            time.sleep(0.1)
        below = [d for d in top.rglob("*") if d.is_dir()]
        for cgroup in sorted(below, key=lambda d: -len(d.parts)):  # children first
            cgroup.rmdir()
        top.rmdir()


def unmount_new(before: HostState, node_dir: Path) -> None:
    """Unmount, deepest first, what was mounted under ``node_dir`` or the runtime's host
    paths since ``before``."""
    mounts = _mounts_under((node_dir, *_RUNTIME_MOUNT_ROOTS)) - before.mounts
    for mount in sorted(mounts, key=lambda m: -m.count("/")):
        subprocess.run(["umount", "-l", mount], capture_output=True, check=False)


class NodeLock:
    """One real node per machine: the paths in OUTSIDE_PATHS are shared."""

    def __init__(self) -> None:
        LOCK_PATH.parent.mkdir(parents=True, exist_ok=True)
        self.file = LOCK_PATH.open("a+")
        try:
            fcntl.flock(self.file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.file.seek(0)
            holder = self.file.read().strip() or "unknown"
            self.file.close()
            raise ServerUnavailable(
                f"another real test node is up on this machine (lock {LOCK_PATH}, pid {holder}):"
                " one node at a time, its kubelet and runtime write to shared host paths"
            ) from None
        self.file.truncate(0)
        self.file.write(str(os.getpid()))
        self.file.flush()

    def release(self) -> None:
        self.file.truncate(0)
        fcntl.flock(self.file, fcntl.LOCK_UN)
        self.file.close()


def shim_pids(address: Path) -> list[int]:
    """The containerd shims serving the containerd at ``address``."""
    return [pid for pid in _shims() if str(address) in _cmdline(pid)]


# -- reading the machine -------------------------------------------------------------


def _run(*argv: str) -> str:
    return subprocess.run(argv, capture_output=True, text=True, check=True).stdout


def _links() -> frozenset[tuple[str, str]]:
    links = json.loads(_run("ip", "-j", "-d", "link", "show"))
    kinds = ((link["ifname"], link.get("linkinfo", {}).get("info_kind", "")) for link in links)
    return frozenset((name, kind) for name, kind in kinds if kind in ("veth", "bridge"))


def _nft_tables() -> dict[tuple[str, str], str]:
    listed = json.loads(_run("nft", "-j", "list", "tables"))["nftables"]
    tables = [(t["table"]["family"], t["table"]["name"]) for t in listed if "table" in t]
    return {(f, n): _run("nft", "-s", "list", "table", f, n) for f, n in tables}  # no counters


def _iptables() -> str:
    text = _run("iptables-save") + _run("ip6tables-save")
    return "\n".join(_COUNTERS.sub("", line) for line in text.splitlines()
                     if not line.startswith("#"))  # fmt: skip


def _sysctls() -> dict[str, str]:
    paths = ((key, Path("/proc/sys") / key) for key in SYSCTLS)
    return {key: path.read_text().strip() for key, path in paths if path.exists()}


def _outside() -> dict[Path, frozenset[str] | None]:
    return {p: frozenset(os.listdir(p)) if p.is_dir() else None for p in OUTSIDE_PATHS}


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _shims() -> frozenset[int]:
    pids = (int(p) for p in os.listdir("/proc") if p.isdigit())
    return frozenset(pid for pid in pids if "containerd-shim" in _cmdline(pid).split(" ")[0])


def _mounts_under(roots: tuple[Path, ...]) -> frozenset[str]:
    points = (line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines())
    prefixes = tuple(f"{root}/" for root in roots)
    return frozenset(p for p in points if p.startswith(prefixes) or p in map(str, roots))


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
