"""``python -m graceful`` runs the command line."""

from graceful.cli.app import main

main()
