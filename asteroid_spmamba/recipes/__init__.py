"""Shared code of the recipes in ``egs/``: data preparation, training/evaluation glue, comparison tables.

* :mod:`.echo2mix`, :mod:`.librimix`, :mod:`.wsj0mix`, :mod:`.wham`: check a downloaded dataset and
  write the metadata that the dataset classes read (Asteroid's ``LibriMix``, ``Wsj0mixDataset``,
  ``WhamDataset``; this package's ``Echo2MixDataset``);
* :mod:`.training`: the recipes' ``train.py``/``eval.py`` over :mod:`asteroid_spmamba.engine`;
* :mod:`.compare`: the comparison recipe (the paper's Echo2Mix table, timing, memory, plot).

Modules are imported on use: ``import asteroid_spmamba.recipes.librimix``.
"""
