"""y = (1/n) sum_i x_i (a scalar); dy/dx_i = 1/n."""
from gee_ref import backend


def forward(x):
    return x.mean(), x.shape


def backward(grad, shape):
    xp = backend.get_array_module(grad)
    size = 1
    for s in shape:
        size *= s
    return (xp.broadcast_to(grad / size, shape).copy(),)
