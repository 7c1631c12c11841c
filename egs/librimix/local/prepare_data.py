#!/usr/bin/env python
"""Stage 0: check a generated Libri2Mix folder and write the CSVs of asteroid.data.LibriMix.

See ``python local/prepare_data.py --help`` (expected layout and where LibriMix comes from) and
:mod:`asteroid_spmamba.recipes.librimix`.
"""

import sys

from asteroid_spmamba.commands.prepare import librimix_main as main

if __name__ == "__main__":
    sys.exit(main())
