#!/usr/bin/env python
"""Count the options of every command-line entry point of the package (a measure of its surface).

    python tools/count_cli_options.py

Each entry point's parser is built by asking it for ``--help``; an option with several spellings
counts once, a hidden one (a refused or deprecated spelling) not at all. Other entry points can be
given as ``module:function`` arguments. Prints one line per entry point and the totals.
"""

import argparse
import contextlib
import importlib
import io
import sys

ENTRY_POINTS = sys.argv[
    1:
] or [  # module:function taking argv; asteroid_spmamba.commands:main: every sub-command
    "asteroid_spmamba.commands:main",
    "asteroid_spmamba.commands.compare:train_main",
    "asteroid_spmamba.commands.compare:bench_main",
    "asteroid_spmamba.commands.compare:collect_main",
    "asteroid_spmamba.commands.prepare:echo2mix_main",
    "asteroid_spmamba.commands.prepare:librimix_main",
    "asteroid_spmamba.commands.prepare:wsj0mix_main",
    "asteroid_spmamba.commands.prepare:wham_main",
    "asteroid_spmamba.commands.bench_streaming:main",
]


def main() -> int:
    built = []
    init = argparse.ArgumentParser.__init__

    def recording_init(self, *args, **kwargs):
        init(self, *args, **kwargs)
        built.append(self)

    argparse.ArgumentParser.__init__ = recording_init
    for spec in ENTRY_POINTS:
        module, _, function = spec.partition(":")
        first = len(built)
        with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):
            getattr(importlib.import_module(module), function)(["--help"])
        for parser in built[first:]:
            if parser._subparsers is None and parser.prog.startswith(("count_cli", "python -m")):
                parser.entry = spec
    total = 0
    parsers = [p for p in built if p._subparsers is None]
    for parser in parsers:
        options = [
            a
            for a in parser._actions
            if a.option_strings and a.dest != "help" and a.help != argparse.SUPPRESS
        ]
        total += len(options)
        print(f"{getattr(parser, 'entry', parser.prog):50s} {len(options):3d}")
    print(f"{len(parsers)} entry points, {total} options")
    return 0


if __name__ == "__main__":
    sys.exit(main())
