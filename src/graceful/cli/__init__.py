"""The ``graceful`` command line (typer)."""
