"""The seed article's worked examples, computed correctly and checked against torch autograd.

The seed article is the essay on the principles of large models that guimo grew from. It teaches
three things by worked example: gradient descent on a one-weight model, backpropagation on a tiny
network, and a first PyTorch training script. Throughout this package "the article" means that
essay; its text is not in the repository, only the numbers it prints that the code checks.

Each function returns data (dataclasses), never prints; `guimo principles` and
`python -m guimo.principles.docs` format the same results as tables. torch is imported only by the
functions that use it, so importing this package stays cheap.

* ``gradient_descent``: J(w) = (w*x - y)^2 by gradient descent, with its closed form and the
  divergence bound lr > 1/x^2.
* ``article_backprop``: the article's element-wise network, one backprop step by hand and by
  autograd, and where the article's published numbers do not follow from its formulas.
* ``mlp_backprop``: the same procedure on a 2-2-1 network with matrix weights.
* ``first_model.train`` / ``train_seeds`` / ``search``: the article's first training script,
  corrected, and how reliably it learns XOR.
"""

from guimo.principles.backprop import article_backprop
from guimo.principles.first_model import FirstModelConfig, make_dataset, search, train, train_seeds
from guimo.principles.gradient_descent import gradient_descent
from guimo.principles.mlp import mlp_backprop

__all__ = [
    "FirstModelConfig", "article_backprop", "gradient_descent", "make_dataset", "mlp_backprop", "search",
    "train", "train_seeds",
]
