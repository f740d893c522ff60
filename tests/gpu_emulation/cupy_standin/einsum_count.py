"""``cupy.einsum``: NumPy's values, with the kernels CuPy 14 launches for them counted (launches.py).

CuPy's route for subscripts without an ellipsis (cupy/linalg/_einsum.py): an index that only one
operand has and the output lacks is summed out of that operand first (a reduction); a single
operand is then done. Two operands go to ``reduced_binary_einsum``: the indices both share are
batch indices when the output keeps them, contracted ones otherwise; without contracted
indices the result is an elementwise product. Otherwise each operand is transposed to
[batch, kept, contracted] (the second one [batch, contracted, kept]; each group in label order)
and reshaped to three axes, which copies it when the transposed view cannot be reshaped in
place, and one (batched) matmul multiplies the two.
"""
from __future__ import annotations

import numpy

from . import functions, launches

_numpy_einsum = functions.from_numpy("cupy", "einsum", numpy.einsum)


def _parse(subscripts: str, count: int):
    inputs, arrow, output = subscripts.replace(" ", "").partition("->")
    inputs = inputs.split(",")
    if not arrow:  # implicit output: the indices seen once, in label order
        output = "".join(sorted(c for c in set("".join(inputs)) if "".join(inputs).count(c) == 1))
    if len(inputs) != count or "." in subscripts:
        return None
    return inputs, output


def _sum_out_private_indices(values, subscript, others, output):
    """CuPy's first step: sum out the indices no other operand and not the output has."""
    private = [i for i, label in enumerate(subscript) if label not in output and label not in others]
    if not private:
        return values, subscript
    summed = values.sum(axis=tuple(private))
    launches.record("reduction", values.size + summed.size)
    return summed, "".join(label for i, label in enumerate(subscript) if i not in private)


def _flattened(values, subscript, groups):
    """The operand transposed to ``groups`` of labels and reshaped to one axis per group;
    counted as a copy when NumPy (as CuPy) cannot make that a view."""
    order = [subscript.index(label) for group in groups for label in group]
    shape = tuple(int(numpy.prod([values.shape[subscript.index(label)] for label in group])) for group in groups)
    flattened = values.transpose(order).reshape(shape)
    if not numpy.shares_memory(flattened, values):
        launches.record("copy", 2 * values.size)
    return flattened


def _count_binary(a, sub_a, b, sub_b, output):
    shared = set(sub_a) & set(sub_b)
    batch = sorted(shared & set(output))
    contracted = sorted(shared - set(output))
    if not contracted:
        launches.record("elementwise", a.size + b.size + int(numpy.prod([a.shape[sub_a.index(c)] if c in sub_a else
                                                                            b.shape[sub_b.index(c)] for c in output])))
        return
    kept_a, kept_b = sorted(set(sub_a) - shared), sorted(set(sub_b) - shared)
    left = _flattened(a, sub_a, (batch, kept_a, contracted))
    right = _flattened(b, sub_b, (batch, contracted, kept_b))
    launches.record("matmul", left.size + right.size + left.shape[0] * left.shape[1] * right.shape[2])


def einsum(*operands, **kwargs):
    """cupy.einsum(subscripts, *arrays): the value NumPy computes; CuPy's kernels counted
    (only for a string of subscripts without an ellipsis, one or two operands)."""
    result = _numpy_einsum(*operands, **kwargs)
    if not operands or not isinstance(operands[0], str):
        return result
    arrays = [a._array for a in operands[1:]]
    parsed = _parse(operands[0], len(arrays))
    if parsed is None or len(arrays) > 2:
        return result
    subscripts, output = parsed
    reduced = []
    for k, (values, subscript) in enumerate(zip(arrays, subscripts)):
        others = "".join(s for j, s in enumerate(subscripts) if j != k)
        reduced.append(_sum_out_private_indices(values, subscript, others, output))
    if len(reduced) == 2:
        (a, sub_a), (b, sub_b) = reduced
        _count_binary(a, sub_a, b, sub_b, output)
    return result
