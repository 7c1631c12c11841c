"""``python -m asteroid_spmamba``: the ``asteroid-spmamba`` command line."""

import sys

from .cli import main

sys.exit(main())
