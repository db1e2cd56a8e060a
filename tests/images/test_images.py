"""The container images users pull, built here by ``make images`` (buildah, daemonless)
and run as a kubelet would run them: their own filesystem, USER and ENTRYPOINT, a
read-only root, and writable only the volumes the operator mounts.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from harness.databases import Database
from harness.images import ImageRoot, build_images, buildah
from harness.kubernetes import ROOT
from harness.proxy import ProxyProcess
from harness.sim import SimLoop, answers
from harness.writer import QUEUE, WriterProcess, assert_exactly
from stratum_operator import __version__
from stratum_operator.images import release_image

SPOOL, CONFIG, TMP = "/var/spool/stratum", "/etc/stratum", "/tmp"


@pytest.fixture(scope="module")
def images() -> dict[str, str]:
    return build_images()


def test_each_image_is_named_as_the_operator_expects_and_prints_its_version(
    images: dict[str, str],
) -> None:
    assert images == {c: release_image(c) for c in ("proxy", "writer", "operator")}
    for component, image in images.items():
        ctr = buildah("from", "--quiet", image)
        try:
            config = json.loads(buildah("inspect", "--type", "container", ctr))["OCIv1"]
            entrypoint = config["config"]["Entrypoint"]
            assert entrypoint == [f"stratum-{component}"]
            assert config["config"]["User"] == "65532:65532"
            labels = config["config"]["Labels"]
            assert labels["org.opencontainers.image.version"] == __version__
            assert labels["org.opencontainers.image.licenses"] == "Apache-2.0"
            assert labels["org.opencontainers.image.source"].startswith("https://")
            printed = buildah("run", "--isolation", "chroot", ctr, "--", *entrypoint, "--version")
            assert printed == f"stratum-{component} {__version__}"
            uid = buildah("run", "--isolation", "chroot", ctr, "--", "python3", "-c",
                          "import os; print(os.getuid())")  # fmt: skip
            assert uid == "65532"
        finally:
            buildah("rm", ctr)


def test_one_project_version_everywhere() -> None:
    """make images tags from operator/pyproject.toml; everything else must agree."""
    versions = {
        p: next(line.split('"')[1] for line in p.read_text().splitlines()
                if line.startswith("version = "))
        for p in [ROOT / "operator" / "pyproject.toml", *ROOT.glob("images/*/pyproject.toml"),
                  *ROOT.glob("packages/*/pyproject.toml")]
    }  # fmt: skip
    chart = (ROOT / "charts" / "stratum-operator" / "Chart.yaml").read_text()
    assert set(versions.values()) == {__version__}, versions
    assert f'appVersion: "{__version__}"' in chart


class ImageProxy(ProxyProcess):
    """The proxy image, with its ConfigMap and spool as volumes."""

    def __init__(self, image: ImageRoot, workdir: Path, upstreams: list[str]) -> None:
        super().__init__(workdir, upstreams)
        self.image = image
        self.config["spool_dir"] = SPOOL

    def start(self) -> ImageProxy:
        config_dir = self.config_file.parent / "proxy-config"
        config_dir.mkdir(parents=True, exist_ok=True)
        (config_dir / "proxy.json").write_text(json.dumps(self.config))
        volumes = {CONFIG: config_dir, SPOOL: self.spool, TMP: config_dir.parent / "proxy-tmp"}
        self.spawn(self.image.run_argv(["--config", f"{CONFIG}/proxy.json"], volumes))
        return self


class ImageWriter(WriterProcess):
    """The writer image, sharing the proxy's spool volume, as in the operator's pod."""

    def __init__(self, image: ImageRoot, spool: Path, url: str, *extra: str) -> None:
        super().__init__(spool, url, *extra)
        self.image = image

    def command(self, *command: str) -> list[str]:
        volumes = {SPOOL: self.spool, TMP: self.spool.parent / "writer-tmp"}
        return self.image.run_argv(["--spool", SPOOL, *command], volumes,
                                   {"STRATUM_DATABASE_URL": self.url})  # fmt: skip


def test_proxy_and_writer_images_store_every_share_exactly_once(
    images: dict[str, str], sim: SimLoop, postgres_db: Database, tmp_path: Path
) -> None:
    """The pod of the operator's Deployment minus the kubelet: both images over one spool,
    a reference pool upstream, a throw-away PostgreSQL behind; read-only roots."""
    proxy_root, writer_root = ImageRoot(images["proxy"]), ImageRoot(images["writer"])
    try:
        _pool, url = sim.pool()
        proxy = ImageProxy(proxy_root, tmp_path, [url]).start()
        writer = ImageWriter(writer_root, proxy.spool, postgres_db.url, "--batch-timeout-ms", "50")
        migrated = writer.run_command("migrate")
        assert migrated.returncode == 0, migrated.stderr
        writer.start()
        stats = sim.fleet(proxy.listen_port, miners=10, shares_per_s=200, duration=4)
        heard = answers(stats.result(60))
        submitted = sum(s.submitted for s in stats.result())
        assert submitted > 400 and sum(heard.values()) == submitted
        assert proxy.terminate() == 0
        writer.wait_for(QUEUE, lambda v: v == 0)
        assert_exactly(postgres_db, submitted)
        assert postgres_db.scalar("SELECT count(*) FROM share_events WHERE accepted") == heard[None]
        assert writer.terminate() == 0
    finally:
        proxy_root.remove()
        writer_root.remove()


def test_images_run_on_a_read_only_root_writing_only_their_volumes(
    images: dict[str, str], tmp_path: Path
) -> None:
    root = ImageRoot(images["writer"])
    try:
        script = ("import os\n"
                  "for path in ('/opt/stratum/new', '/etc/new', '/var/spool/stratum/ok', '/tmp/ok'):\n"
                  "    try:\n        open(path, 'w').close(); print(path, 'written')\n"
                  "    except OSError as exc:\n        print(path, exc.strerror)\n"
                  "print('uid', os.getuid())")  # fmt: skip
        argv = root.run_argv(["-c", script], {SPOOL: tmp_path / "spool", TMP: tmp_path / "tmp"},
                             entrypoint=["python3"])  # fmt: skip
        out = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=True).stdout
        assert out.splitlines() == [
            "/opt/stratum/new Read-only file system", "/etc/new Read-only file system",
            "/var/spool/stratum/ok written", "/tmp/ok written", "uid 65532",
        ]  # fmt: skip
    finally:
        root.remove()
