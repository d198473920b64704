"""Weight provenance (issue 18): was a team's model built from another's weights?

Reads two models' safetensors one tensor at a time (`weights.py`), sorts their tensors into
components (`components.py`), measures exact copies, correlations against a null baseline and
a permutation-robust matching test (`stats.py`), compares tokenizers (`tokenizer.py`), and
turns the figures into a verdict per component with the evidence that decided it
(`check.py`). `cli.py` is `showcase provenance`. Nothing here writes the show's log: a
server records a check's result through a command, as the other external checks do.
"""
