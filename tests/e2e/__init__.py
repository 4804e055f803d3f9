"""End-to-end: what `make run` starts, as a user would run it."""
