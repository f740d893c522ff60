"""Mean squared error: L = (1/n) sum (a - b)^2; dL/da = 2 (a - b) / n = -dL/db."""


def forward(a, b):
    diff = a - b
    return (diff * diff).mean(), diff


def backward(grad, diff):
    g = grad * 2.0 * diff / diff.size
    return g, -g
