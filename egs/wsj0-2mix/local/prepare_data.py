#!/usr/bin/env python
"""Stage 0: check a generated WSJ0-2mix folder and write the json lists of
asteroid.data.Wsj0mixDataset.

See ``python local/prepare_data.py --help`` (expected layout and where WSJ0-2mix comes from) and
:mod:`asteroid_spmamba.recipes.wsj0mix`.
"""

import sys

from asteroid_spmamba.commands.prepare import wsj0mix_main as main

if __name__ == "__main__":
    sys.exit(main())
