"""The training half: MNIST, models, recipes, the training loop, run folders, export, evaluation, reports.

The only subpackage that may import torch (lazily, inside its modules); nothing in `inference`, `feedback` or
`web` imports it, so a serve-only install never needs torch. Importing this package itself loads nothing.
"""
