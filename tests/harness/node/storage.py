"""The node's storage: Rancher's local-path provisioner and the default StorageClass it
serves (pure: settings in, manifests and argv out).

The provisioner runs on the host as a controller of the node's control plane (built by
``tools/build-go-tools.sh local-path``, pinned); for each claim it makes a directory
under the node's own ``root`` through a short helper pod in its namespace (our busybox
image, as root there: the directory is made world-writable, so any pod's user may write
its claim, as on the provisioner's default setup) and binds a hostPath volume to the
claim. ``WaitForFirstConsumer``: a claim binds once a pod that mounts it is scheduled,
on that pod's node, as with every provisioner of node-local disks.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

STORAGE_CLASS = "local-path"
PROVISIONER = "rancher.io/local-path"
NAMESPACE = "local-path-storage"  # the helper pods' (not a restricted one: hostPath, root)
SERVICE_ACCOUNT = "local-path-provisioner"
CONFIG_MAP = "local-path-config"

SETUP = 'set -eu\nmkdir -m 0777 -p "$VOL_DIR"\n'
TEARDOWN = 'set -eu\nrm -rf "$VOL_DIR"\n'


@dataclass(frozen=True)
class LocalPathStorage:
    root: Path  # where claims' directories are made, on the host
    helper_image: str

    def manifests(self) -> list[dict[str, Any]]:
        """The helper pods' namespace and ServiceAccount, the provisioner's ConfigMap, and
        the default StorageClass."""
        config = {"nodePathMap": [{"node": "DEFAULT_PATH_FOR_NON_LISTED_NODES",
                                   "paths": [str(self.root)]}]}  # fmt: skip
        return [
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}},
            {"apiVersion": "v1", "kind": "ServiceAccount",
             "metadata": {"name": SERVICE_ACCOUNT, "namespace": NAMESPACE},
             "automountServiceAccountToken": False},
            {"apiVersion": "v1", "kind": "ConfigMap",
             "metadata": {"name": CONFIG_MAP, "namespace": NAMESPACE},
             "data": {"config.json": json.dumps(config), "setup": SETUP, "teardown": TEARDOWN,
                      "helperPod.yaml": json.dumps(self.helper_pod())}},
            {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
             "metadata": {"name": STORAGE_CLASS, "annotations": {
                 "storageclass.kubernetes.io/is-default-class": "true"}},
             "provisioner": PROVISIONER, "volumeBindingMode": "WaitForFirstConsumer",
             "reclaimPolicy": "Delete"},
        ]  # fmt: skip

    def helper_pod(self) -> dict[str, Any]:
        """The pod that makes and removes a claim's directory (the provisioner adds the
        command, the hostPath and the script's ConfigMap volume)."""
        return {
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "helper-pod"},
            "spec": {"containers": [{
                "name": "helper-pod", "image": self.helper_image, "imagePullPolicy": "Never",
                "securityContext": {"runAsUser": 0, "runAsGroup": 0},
            }]},
        }  # fmt: skip

    def argv(self, bin_dir: Path, kubeconfig: Path) -> list[str]:
        return [
            str(bin_dir / "local-path-provisioner"), "start", f"--kubeconfig={kubeconfig}",
            f"--namespace={NAMESPACE}", f"--configmap-name={CONFIG_MAP}",
            f"--service-account-name={SERVICE_ACCOUNT}", f"--helper-image={self.helper_image}",
            f"--provisioner-name={PROVISIONER}",
        ]  # fmt: skip
