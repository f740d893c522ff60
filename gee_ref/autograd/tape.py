"""A small autograd tape: Tensor, Function, backward, no_grad.

Reverse-mode differentiation in the smallest form that still serves deep
spiking networks:

* a ``Tensor`` wraps an xp array (NumPy or CuPy) and remembers the ``Function``
  that produced it;
* a ``Function`` runs a pure forward, keeps what its backward needs, and later
  turns the gradient of its output into gradients of its inputs;
* ``Tensor.backward()`` visits the graph in reverse topological order and
  *accumulates* gradients, so a tensor used twice (the global gene matrix G,
  shared by every genetic layer, paper eq. 1-3) receives the sum of both paths;
* after a Function's backward has run, its saved buffers are freed.

The pure math of every op lives in ``gee_ref.ops`` as ``forward``/``backward``
function pairs; ``OpFunction`` adapts such a pair to the tape.
"""
from __future__ import annotations

import contextlib
import threading

from gee_ref import backend
from gee_ref.ops import add as add_op, mean as mean_op, mul as mul_op, sum as sum_op

_mode = threading.local()  # per thread, so that threaded workers can evaluate side by side


def is_grad_enabled() -> bool:
    """Whether new operations are being recorded on the tape (in this thread)."""
    return getattr(_mode, "grad_enabled", True)


@contextlib.contextmanager
def no_grad():
    """Run a block without recording: evaluation, parameter updates."""
    previous = is_grad_enabled()
    _mode.grad_enabled = False
    try:
        yield
    finally:
        _mode.grad_enabled = previous


class Tensor:
    """An array with an optional gradient and a link to the Function that made it."""

    __array_priority__ = 1000  # so `ndarray * Tensor` defers to Tensor.__rmul__

    def __init__(self, data, requires_grad: bool = False, name: str | None = None):
        if isinstance(data, Tensor):
            data = data.data
        xp = backend.get_array_module(data)
        self.data = xp.asarray(data)
        self.requires_grad = bool(requires_grad)
        self.grad = None
        self.creator: Function | None = None
        self.name = name

    shape = property(lambda self: self.data.shape)
    dtype = property(lambda self: self.data.dtype)
    ndim = property(lambda self: self.data.ndim)
    size = property(lambda self: self.data.size)
    xp = property(lambda self: backend.get_array_module(self.data))

    def __repr__(self) -> str:
        label = f" {self.name}" if self.name else ""
        return f"Tensor{label}(shape={self.shape}, dtype={self.dtype}, requires_grad={self.requires_grad})"

    def __len__(self) -> int:
        return len(self.data)

    def numpy(self):
        """The data as a NumPy array on the host."""
        return backend.to_host(self.data)

    def item(self) -> float:
        return float(backend.to_host(self.data).reshape(-1)[0])

    def detach(self) -> "Tensor":
        """The same data, cut from the tape."""
        return Tensor(self.data)

    def zero_grad(self) -> None:
        self.grad = None

    def backward(self, grad=None) -> None:
        """Accumulate d(self)/d(leaf) * grad into every leaf's ``.grad``.

        ``grad`` defaults to ones for a scalar. Gradients of intermediate tensors
        are not kept; leaves (tensors with no creator) accumulate across calls
        until ``zero_grad``.
        """
        xp = self.xp
        if grad is None:
            if self.data.size != 1:
                raise ValueError("backward() without a gradient needs a scalar tensor")
            grad = xp.ones_like(self.data)
        grads = {id(self): xp.asarray(grad, dtype=self.dtype)}
        for tensor in _reverse_topological_order(self):
            g = grads.pop(id(tensor), None)
            if g is None:
                continue
            fn = tensor.creator
            if fn is None:
                if tensor.requires_grad:
                    tensor.grad = g if tensor.grad is None else tensor.grad + g
                continue
            input_grads = fn.backward(g)
            fn.release()
            for parent, pg in zip(fn.inputs, input_grads):
                if parent is None or pg is None or not parent.requires_grad:
                    continue
                key = id(parent)
                grads[key] = pg if key not in grads else grads[key] + pg
            tensor.creator = None  # the graph is consumed: buffers are gone

    # A few operators, so that tests and examples read naturally.
    def __add__(self, other):
        return apply(add_op, self, other)

    __radd__ = __add__

    def __mul__(self, other):
        return apply(mul_op, self, other)

    __rmul__ = __mul__

    def __neg__(self):
        return apply(mul_op, self, -1.0)

    def __sub__(self, other):
        return self + (-as_tensor(other, like=self))

    def sum(self):
        return apply(sum_op, self)

    def mean(self):
        return apply(mean_op, self)


def as_tensor(value, like: Tensor | None = None) -> Tensor:
    """Wrap a non-Tensor (array or number) as a constant Tensor.

    A Python number takes the dtype and device of ``like``, so that ``x * 2.0``
    on a float32 tensor stays float32 (NumPy 2 would promote a float64 0-d array).
    """
    if isinstance(value, Tensor):
        return value
    if like is not None and not hasattr(value, "dtype"):
        return Tensor(like.xp.asarray(value, dtype=like.dtype))
    return Tensor(backend.get_array_module(value).asarray(value))


def _reverse_topological_order(root: Tensor) -> list[Tensor]:
    """Tensors reachable from root, each after every tensor that consumes it."""
    order, seen = [], set()
    stack = [(root, False)]
    while stack:  # iterative DFS: deep networks over T steps would overflow recursion
        tensor, children_done = stack.pop()
        if children_done:
            order.append(tensor)
            continue
        if id(tensor) in seen:
            continue
        seen.add(id(tensor))
        stack.append((tensor, True))
        if tensor.creator is not None:
            for parent in tensor.creator.inputs:
                if parent is not None and id(parent) not in seen:
                    stack.append((parent, False))
    return order[::-1]


class Function:
    """One differentiable step on the tape.

    Subclasses implement ``forward(*arrays) -> array`` and
    ``backward(grad_output) -> tuple`` (one gradient, or None, per input).
    Inputs may be None (an absent bias): forward receives None, and its
    gradient is ignored.
    """

    def __call__(self, *inputs) -> Tensor:
        like = next((x for x in inputs if isinstance(x, Tensor)), None)
        tensors = tuple(None if x is None else as_tensor(x, like) for x in inputs)
        arrays = tuple(None if t is None else t.data for t in tensors)
        output = Tensor(self.forward(*arrays))
        needs_grad = any(t is not None and t.requires_grad for t in tensors)
        if is_grad_enabled() and needs_grad:
            output.requires_grad = True
            output.creator = self
            self.inputs = tensors
        else:
            self.release()
        return output

    def forward(self, *arrays):
        raise NotImplementedError

    def backward(self, grad_output):
        raise NotImplementedError

    def release(self) -> None:
        """Free what forward saved for backward."""


class OpFunction(Function):
    """Adapts a pure op (``forward(*arrays, **params) -> (out, cache)``,
    ``backward(grad_out, cache) -> grads``) from ``gee_ref.ops`` to the tape."""

    def __init__(self, forward, backward, **params):
        self._forward, self._backward, self.params = forward, backward, params
        self.cache = None

    def forward(self, *arrays):
        out, self.cache = self._forward(*arrays, **self.params)
        return out

    def backward(self, grad_output):
        grads = self._backward(grad_output, self.cache)
        return grads if isinstance(grads, tuple) else (grads,)

    def release(self) -> None:
        self.cache = None


def apply(op_module, *inputs, **params) -> Tensor:
    """Run ``op_module.forward``/``backward`` (a module of ``gee_ref.ops``) on the tape."""
    return OpFunction(op_module.forward, op_module.backward, **params)(*inputs)
