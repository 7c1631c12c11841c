#!/usr/bin/env python
"""Stage 0: check a generated WHAM! folder and write the json lists of asteroid.data.WhamDataset.

See ``python local/prepare_data.py --help`` (expected layout and where WHAM! comes from) and
:mod:`asteroid_spmamba.recipes.wham`.
"""

import sys

from asteroid_spmamba.commands.prepare import wham_main as main

if __name__ == "__main__":
    sys.exit(main())
