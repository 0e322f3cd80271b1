"""graceful inside the training frameworks people use: one module per framework.

Each module needs its framework, installed by the extra of the same name, and importing
it without that extra is one :class:`~graceful.errors.MissingExtraError` naming it:

- :mod:`graceful.integrations.transformers` (``graceful[transformers]``): a Hugging Face
  ``Trainer`` that adds a regression loss against the old model's logits (cached once per
  training example, or computed online) and ``compute_metrics`` reporting NFR;
- :mod:`graceful.integrations.lightning` (``graceful[lightning]``): a callback logging
  the update metrics against the old model at each validation epoch, and a mixin adding
  the regression loss to ``training_step``;
- :mod:`graceful.integrations.sentence_transformers` (``graceful[sentence-transformers]``):
  a loss for a new encoder that stays compatible with an old encoder's gallery.

This package imports none of them.

Example:
    >>> import graceful.integrations
    >>> graceful.integrations.__all__
    []
"""

__all__: list[str] = []
