"""Layer 2. Pure ops: each module is one equation, a ``forward(*arrays, **params) -> (out, cache)``
and a ``backward(grad_out, cache) -> tuple of input gradients`` (None where an input has none).

No state and no tape here: ``gee_ref.autograd.apply`` connects an op to the tape, and
``gee_ref.autograd.functional`` names them for users. Every op uses the array module of its
inputs, so the same code runs on NumPy and CuPy.
"""
