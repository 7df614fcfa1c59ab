"""``python -m wmark`` runs the ``wmark`` command line."""
from cli import main

main()
