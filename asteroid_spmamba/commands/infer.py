"""Asteroid's ``asteroid-infer`` with this package's models: ``asteroid-spmamba-infer`` (or
``python -m asteroid_spmamba.commands.infer``), same arguments, e.g.
``asteroid-spmamba-infer exp/best_model.pth --files mix.wav -o separated/``.

Plain ``asteroid-infer`` cannot load this package's models: Asteroid resolves ``model_name`` with
``asteroid.models.get``, which knows only the classes registered in the running process, has no
plugin hook (no entry points), and reads model files with ``torch.load(weights_only=True)``, which
imports nothing. This command imports :mod:`asteroid_spmamba.models` (registration, and folders for
Asteroid's loader) and then runs Asteroid's own ``asteroid.scripts.asteroid_cli.infer``, with one
change: the files of this package's models are written by their ``file_separate``, each source at
its level in the mixture (Asteroid's own path rescales all outputs together).

Not done: a ``.pth`` file in site-packages (or a ``sitecustomize``) importing the package at every
interpreter start would make plain ``asteroid-infer`` work, but it would import torch and Asteroid
into every Python process of the environment, it is installed only by some installation paths (a
wheel's data files, not an editable install), and it breaks silently when another
``sitecustomize`` wins.
"""

import sys
from typing import Optional


def main(argv: Optional[list[str]] = None) -> int:
    from asteroid.scripts import asteroid_cli

    import asteroid_spmamba.models  # noqa: F401  (registers the models with asteroid.models)

    asteroid_separate = asteroid_cli.separate

    def separate(model, filename, **kwargs):
        # Asteroid's file path scales all outputs together to the mixture's L1 norm, which moves
        # each source off its level; this package's models write each source at
        # its level in the mixture.
        # (--ola-window wraps the model in Asteroid's LambdaOverlapAdd,
        # which keeps Asteroid's path.)
        if hasattr(model, "file_separate") and type(model).__module__.startswith(
            "asteroid_spmamba."
        ):
            return model.file_separate(filename, **kwargs)
        return asteroid_separate(model, filename, **kwargs)

    asteroid_cli.separate = separate
    try:
        asteroid_cli.infer(argv)
    finally:
        asteroid_cli.separate = asteroid_separate
    return 0


if __name__ == "__main__":
    sys.exit(main())
