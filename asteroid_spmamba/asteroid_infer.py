"""Asteroid's ``asteroid-infer`` with this package's models: ``asteroid-spmamba-infer`` (or
``python -m asteroid_spmamba.asteroid_infer``), same arguments, e.g.
``asteroid-spmamba-infer exp/best_model.pth --files mix.wav -o separated/``.

Plain ``asteroid-infer`` cannot load this package's models: Asteroid resolves ``model_name`` with
``asteroid.models.get``, which knows only the classes registered in the running process, has no
plugin hook (no entry points), and reads model files with ``torch.load(weights_only=True)``, which
imports nothing. This command imports :mod:`asteroid_spmamba.models` (registration, and folders for
Asteroid's loader) and then runs Asteroid's own ``asteroid.scripts.asteroid_cli.infer`` unchanged.

Not done: a ``.pth`` file in site-packages (or a ``sitecustomize``) importing the package at every
interpreter start would make plain ``asteroid-infer`` work, but it would import torch and Asteroid
into every Python process of the environment, it is installed only by some installation paths (a
wheel's data files, not an editable install), and it breaks silently when another
``sitecustomize`` wins.
"""
import sys
from typing import List, Optional


def main(argv: Optional[List[str]] = None) -> int:
    from asteroid.scripts.asteroid_cli import infer

    import asteroid_spmamba.models  # noqa: F401  (registers the models with asteroid.models)

    infer(argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
