"""``python -m cli`` runs the dealtrail command line."""

from cli.main import main

main()
