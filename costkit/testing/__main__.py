"""``python -m costkit.testing``: the fake provider on a local port (see ``--help``)."""

from .server import main

main()
