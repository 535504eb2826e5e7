"""``python -m costkit.report report costs.db`` (the same as the ``costkit`` script)."""

import sys

from .cli import main

sys.exit(main())
