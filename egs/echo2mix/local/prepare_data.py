#!/usr/bin/env python
"""Stage 0: check a downloaded Echo2Mix folder and link its splits as OUT/{train,valid,test}.

See ``python local/prepare_data.py --help`` (expected layout and where Echo2Mix comes from) and
:mod:`asteroid_spmamba.recipes.echo2mix`.
"""

import sys

from asteroid_spmamba.commands.prepare import echo2mix_main as main

if __name__ == "__main__":
    sys.exit(main())
