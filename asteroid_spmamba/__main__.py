"""``python -m asteroid_spmamba``: the ``asteroid-spmamba`` command line."""

import sys

from .commands import main

sys.exit(main())
