"""HTTP surface: one FastAPI app, one port, path prefixes per concern."""
