"""``python -m graceful`` runs the command line."""

from graceful.cli import main

main()
