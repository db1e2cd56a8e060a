"""stratum-proxy: a Stratum V1 proxy that records the fate of every share."""

__version__ = "0.1.0"
