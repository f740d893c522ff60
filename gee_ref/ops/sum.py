"""y = sum_i x_i (a scalar); dy/dx_i = 1."""
from gee_ref import backend


def forward(x):
    return x.sum(), x.shape


def backward(grad, shape):
    xp = backend.get_array_module(grad)
    return (xp.broadcast_to(grad, shape).copy(),)
