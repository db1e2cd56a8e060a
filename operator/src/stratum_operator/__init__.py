"""stratum-operator: StratumPool resources in, proxies with writer sidecars out."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("stratum-operator")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0"
