"""Datasets: the Echo2Mix layout and the embedded synthetic two-speaker corpus."""

from .echo2mix import Echo2MixDataset, find_utterances
from .synthetic import make_corpus

__all__ = ["Echo2MixDataset", "find_utterances", "make_corpus"]
