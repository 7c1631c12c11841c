"""Shared code of the recipes in ``egs/``: data preparation (stage 0) and the comparison recipe.

* :mod:`.echo2mix`, :mod:`.librimix`, :mod:`.wsj0mix`, :mod:`.wham`: check a downloaded dataset and
  write the metadata that the dataset classes read (Asteroid's ``LibriMix``, ``Wsj0mixDataset``,
  ``WhamDataset``; this package's ``Echo2MixDataset``);
* training and evaluation: :mod:`asteroid_spmamba.training` (``asteroid-spmamba train|evaluate``);
* :mod:`.compare`: the comparison recipe (the paper's Echo2Mix table, timing, memory, plot).

Modules are imported on use: ``import asteroid_spmamba.recipes.librimix``.
"""
