"""stratum-writer: drains the share spool into the pool's database, exactly once."""

__version__ = "0.1.0"
