"""Undo NumPy broadcasting in a gradient: sum over the axes that were broadcast."""


def unbroadcast(grad, shape):
    """Sum grad down to ``shape`` (the shape the operand had before broadcasting)."""
    while grad.ndim > len(shape):
        grad = grad.sum(axis=0)
    for axis, size in enumerate(shape):
        if size == 1 and grad.shape[axis] != 1:
            grad = grad.sum(axis=axis, keepdims=True)
    return grad
