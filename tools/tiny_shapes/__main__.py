"""``python -m tools.tiny_shapes --output-dir DIR``: train the toy model (see ``train.py``)."""

from .train import main

main()
