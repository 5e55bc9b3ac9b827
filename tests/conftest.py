"""Test-suite settings.

Tests run two workers on two cores (pytest-xdist); one intra-op thread per worker avoids
oversubscription, which makes small tensor operations tens of times slower.
"""
import torch

torch.set_num_threads(1)
