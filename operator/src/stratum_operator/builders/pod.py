"""The volumes our pods mount, and where: one definition for the proxy Deployment and the
Jobs, so a path the writer reads is the same in every pod that runs it."""

from __future__ import annotations

from typing import Any

from stratum_operator.builders import naming
from stratum_operator.builders.config import CONFIG_DIR, DATABASE_URL_FILE
from stratum_operator.spec import SecretKeyRef

CONFIG_MOUNT = {"name": "config", "mountPath": CONFIG_DIR, "readOnly": True}
DATABASE_MOUNT = {
    "name": "database",
    "mountPath": DATABASE_URL_FILE.rsplit("/", 1)[0],
    "readOnly": True,
}
TMP_MOUNT = {"name": "tmp", "mountPath": "/tmp"}  # noqa: S108 - an emptyDir, not the host's


def config_volume(pool: str) -> dict[str, Any]:
    return {"name": "config", "configMap": {"name": naming.config_name(pool)}}


def database_volume(secret: SecretKeyRef) -> dict[str, Any]:
    """Only the URL's key, as the file the writer reads; readable by the pod's group."""
    return {
        "name": "database",
        "secret": {
            "secretName": secret.name,
            "items": [{"key": secret.key, "path": "url"}],
            "defaultMode": 0o440,
        },
    }


def tmp_volume(size: str) -> dict[str, Any]:
    """The one writable path besides the spool, in memory, bounded."""
    return {"name": "tmp", "emptyDir": {"medium": "Memory", "sizeLimit": size}}
