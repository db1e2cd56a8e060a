"""Where a pool's images come from when its spec names none.

The proxy and writer images are released with the operator, under one registry. The
chart tells the operator the full references it installed with (its ``image`` values:
one registry for every image, a tag or a digest each, a pull policy), as environment
variables; without them (a source checkout, tests) they are this release's names on
the public registry. A pool that names ``proxy.image`` / ``writer.image`` keeps them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, get_args

from stratum_operator import __version__

REGISTRY = "ghcr.io/stratum-operator"
PullPolicy = Literal["Always", "IfNotPresent", "Never"]
PULL_POLICIES: tuple[PullPolicy, ...] = get_args(PullPolicy)
# what the chart sets (templates/deployment.yaml); a test renders the chart and reads them
PROXY_IMAGE_ENV = "STRATUM_OPERATOR_PROXY_IMAGE"
WRITER_IMAGE_ENV = "STRATUM_OPERATOR_WRITER_IMAGE"
PULL_POLICY_ENV = "STRATUM_OPERATOR_IMAGE_PULL_POLICY"


def release_image(component: str, registry: str = REGISTRY) -> str:
    """One of our images, tagged with the operator's own version: released together."""
    return f"{registry}/stratum-{component}:{__version__}"


@dataclass(frozen=True)
class ImageDefaults:
    """The images (and pull policy) a pool's pods get when its spec sets none."""

    proxy: str
    writer: str
    pull_policy: PullPolicy | None = None  # None: Kubernetes' own default

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ImageDefaults:
        """The chart's settings; ValueError names a pull policy that isn't one."""
        policy = env.get(PULL_POLICY_ENV) or None
        if policy is not None and policy not in PULL_POLICIES:
            raise ValueError(f"{PULL_POLICY_ENV}={policy}: one of {', '.join(PULL_POLICIES)}")
        return cls(
            proxy=env.get(PROXY_IMAGE_ENV) or release_image("proxy"),
            writer=env.get(WRITER_IMAGE_ENV) or release_image("writer"),
            pull_policy=policy,
        )


RELEASE = ImageDefaults(proxy=release_image("proxy"), writer=release_image("writer"))
