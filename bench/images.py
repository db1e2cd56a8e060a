"""Image sizes: each image, and what it adds over its base (``metric`` ``image_mb``).

Sizes are the uncompressed layers as buildah stores them (what a node unpacks); the
base here may be the debootstrap stand-in for python:3.11-slim (tools/build-images.sh),
so the added megabytes are the number to compare, not the total.
"""

from __future__ import annotations

import json

from bench.report import Reporter
from harness.images import build_images, buildah

BASE = "docker.io/library/python:3.11-slim"


def layer_bytes(image: str) -> list[int]:
    manifest = json.loads(json.loads(buildah("inspect", "--type", "image", image))["Manifest"])
    return [int(layer["size"]) for layer in manifest["layers"]]


def main() -> int:
    report = Reporter("images")
    base = layer_bytes(BASE)
    report.emit(system="base", metric="image_mb", value=sum(base) / 1e6, unit="MB", image=BASE)
    for component, image in build_images().items():
        layers = layer_bytes(image)
        assert layers[: len(base)] == base, f"{image} is not built on {BASE}"
        report.emit(system=component, metric="image_mb", value=sum(layers) / 1e6, unit="MB",
                    image=image, added_mb=round(sum(layers[len(base):]) / 1e6, 1))  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
