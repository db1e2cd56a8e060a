"""``kubectl stratum status POOL [-n NAMESPACE] [-o json]``: installed with the operator
package as ``kubectl-stratum``, which kubectl runs as a plugin."""

from __future__ import annotations

import argparse
import json
import sys

from stratum_operator.plugin.gather import PluginError, gather, kubectl
from stratum_operator.plugin.render import render


def _namespace(given: str | None) -> str:
    """-n, else the kubeconfig context's namespace, else default (as kubectl does)."""
    if given:
        return given
    found = kubectl("config", "view", "--minify", "-o", "jsonpath={..namespace}").strip()
    return found or "default"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kubectl stratum", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    status = commands.add_parser("status", help="a StratumPool's health on one screen")
    status.add_argument("pool")
    status.add_argument("-n", "--namespace")
    status.add_argument("-o", "--output", choices=["text", "json"], default="text")
    args = parser.parse_args(argv)
    try:
        found = gather(args.pool, _namespace(args.namespace))
    except PluginError as exc:
        print(f"kubectl stratum: {exc}", file=sys.stderr)
        return 1
    if args.output == "json":
        print(json.dumps(found.as_dict(), indent=2))
    else:
        sys.stdout.write(render(found))
    return 0


if __name__ == "__main__":
    sys.exit(main())
