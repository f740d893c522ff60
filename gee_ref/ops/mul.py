"""y = a * b (broadcasting); dy/da = b, dy/db = a."""
from gee_ref.ops.broadcast import unbroadcast


def forward(a, b):
    return a * b, (a, b)


def backward(grad, cache):
    a, b = cache
    return unbroadcast(grad * b, a.shape), unbroadcast(grad * a, b.shape)
