"""y = a * b (broadcasting); dy/da = b, dy/db = a."""
from typing import NamedTuple

from gee_ref.ops.broadcast import unbroadcast


class Cache(NamedTuple):
    a: object
    b: object


def forward(a, b):
    return a * b, Cache(a, b)


def backward(grad, cache):
    a, b = cache
    return unbroadcast(grad * b, a.shape), unbroadcast(grad * a, b.shape)
