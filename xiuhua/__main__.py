"""``python -m xiuhua`` runs the CLI."""

from xiuhua.cli import main

main()
