"""Real servers and real processes for the tests: nothing here is a mock."""
