"""``stratum-operator``: run the operator (one replica, standalone: no peering needed);
``stratum-operator check --health-url URL``: is it working (the chart's ``helm test``).

Settings from the environment (the chart sets them):

- ``STRATUM_OPERATOR_NAMESPACES``: comma-separated namespaces to watch; empty: all.
- ``STRATUM_OPERATOR_HEALTH_PORT`` (8080): ``/healthz`` for the liveness probe.
- ``STRATUM_OPERATOR_METRICS_PORT`` (9090): the operator's own ``/metrics``.
- ``STRATUM_OPERATOR_LOG_FORMAT`` (``json``): ``json`` or ``plain``.
- ``STRATUM_OPERATOR_LOG_LEVEL`` (``info``): ``debug``, ``info``, ``warning`` or ``error``.
  At ``info`` the log has one line per decision or transition, naming the pool (the
  Events the operator posts, and reconcile errors); routine passes are silent.
- ``STRATUM_OPERATOR_PROXY_IMAGE``, ``STRATUM_OPERATOR_WRITER_IMAGE``: the images a pool
  gets when its spec names none (the chart's registry, tag or digest); unset: this
  release's on ghcr.io/stratum-operator.
- ``STRATUM_OPERATOR_IMAGE_PULL_POLICY``: the pools' pods' ``imagePullPolicy`` when the
  spec sets none; unset: Kubernetes' default.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys

import kopf

from stratum_operator import __version__, check, metrics
from stratum_operator.images import ImageDefaults

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="stratum-operator", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"stratum-operator {__version__}")
    commands = parser.add_subparsers(dest="command")
    check_cmd = commands.add_parser("check", help="is the installed operator working? (helm test)")
    check_cmd.add_argument("--health-url", required=True, help="the operator's /healthz URL")
    args = parser.parse_args(argv)
    if args.command == "check":
        return check.run(args.health_url)
    namespaces = [n for n in os.environ.get("STRATUM_OPERATOR_NAMESPACES", "").split(",") if n]
    health = int(os.environ.get("STRATUM_OPERATOR_HEALTH_PORT", "8080"))
    fmt = os.environ.get("STRATUM_OPERATOR_LOG_FORMAT", "json")
    level = os.environ.get("STRATUM_OPERATOR_LOG_LEVEL", "info").upper()
    if level not in LOG_LEVELS:
        parser.error(f"STRATUM_OPERATOR_LOG_LEVEL={level.lower()}: one of "
                     f"{', '.join(lv.lower() for lv in LOG_LEVELS)}")  # fmt: skip
    try:
        ImageDefaults.from_env(os.environ)  # what handlers.py reads: refused here, in words
    except ValueError as exc:
        parser.error(str(exc))
    log_format = kopf.LogFormat.JSON if fmt == "json" else kopf.LogFormat.PLAIN
    kopf.configure(debug=level == "DEBUG", log_format=log_format)
    logging.getLogger().setLevel(level)
    if level != "DEBUG":  # kopf's per-object lines ("Handler ... succeeded.") are debugging
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    metrics.serve(int(os.environ.get("STRATUM_OPERATOR_METRICS_PORT", "9090")))
    import stratum_operator.handlers  # noqa: F401 - registers the handlers with kopf

    asyncio.run(
        kopf.operator(
            standalone=True,  # one replica with the Recreate strategy: never two at once
            clusterwide=not namespaces,
            namespaces=namespaces,
            liveness_endpoint=f"http://0.0.0.0:{health}/healthz",
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
