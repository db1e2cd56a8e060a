"""A reference Stratum V1 pool and a load generator: the far ends of the proxy in tests."""
