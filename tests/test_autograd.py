"""The tape itself: accumulation, no_grad, freed buffers, dtype of scalars, thread-local mode."""
import threading

import numpy as np
import pytest

from gee_ref import autograd
from gee_ref.autograd import functional as F
from gee_ref.autograd import Tensor


def test_a_tensor_used_twice_accumulates_both_gradients():
    x = Tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
    y = F.sum(F.mul(x, x) + x)           # d/dx (x^2 + x) = 2x + 1
    y.backward()
    np.testing.assert_array_equal(x.grad, 2 * x.data + 1)


def test_leaf_gradients_accumulate_across_backward_calls_until_zero_grad():
    x = Tensor(np.ones(2), requires_grad=True)
    F.sum(x).backward()
    F.sum(x * 3.0).backward()
    np.testing.assert_array_equal(x.grad, [4.0, 4.0])
    x.zero_grad()
    assert x.grad is None


def test_no_grad_records_nothing():
    x = Tensor(np.ones(2), requires_grad=True)
    with autograd.no_grad():
        y = F.sum(x * 2.0)
    assert y.creator is None and not y.requires_grad


def test_saved_buffers_are_freed_after_backward():
    x = Tensor(np.ones((2, 3)), requires_grad=True)
    z = F.mul(x, x)
    fn = z.creator
    assert fn.cache is not None
    F.sum(z).backward()
    assert fn.cache is None and z.creator is None


def test_backward_without_gradient_needs_a_scalar():
    x = Tensor(np.ones(3), requires_grad=True)
    with pytest.raises(ValueError, match="scalar"):
        (x * 2.0).backward()


def test_python_scalars_keep_the_tensor_dtype():
    x = Tensor(np.ones(3, np.float32), requires_grad=True)
    y = F.sum(x * 2.0 + 1.0 - x)
    y.backward()
    assert y.dtype == np.float32 and x.grad.dtype == np.float32


def test_grad_mode_is_per_thread():
    seen = []
    with autograd.no_grad():
        worker = threading.Thread(target=lambda: seen.append(autograd.is_grad_enabled()))
        worker.start()
        worker.join()
        seen.append(autograd.is_grad_enabled())
    assert seen == [True, False] and autograd.is_grad_enabled()


def test_deep_graphs_do_not_hit_the_recursion_limit():
    x = Tensor(np.ones(1), requires_grad=True)
    y = x
    for _ in range(5000):
        y = y * 1.0
    F.sum(y).backward()
    np.testing.assert_array_equal(x.grad, [1.0])
