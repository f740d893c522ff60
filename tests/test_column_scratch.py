"""The reusable column buffer of gee_ref.ops.im2col (scratch=True): same columns as a fresh
array, one reused memory per thread and dtype, and no op result that aliases it."""
import threading

import numpy as np
import pytest
from hypothesis import assume, given, strategies as st

from gee_ref.ops import conv2d, genetic_conv2d
from gee_ref.ops.im2col import channel_major_im2col, column_scratch, im2col


@given(n=st.integers(1, 3), c=st.integers(1, 3), h=st.integers(1, 6), w=st.integers(1, 6),
       k=st.integers(1, 3), stride=st.integers(1, 2), padding=st.integers(0, 2), seed=st.integers(0, 99))
def test_scratch_columns_equal_fresh_columns(n, c, h, w, k, stride, padding, seed):
    assume(h + 2 * padding >= k and w + 2 * padding >= k)
    x = np.random.default_rng(seed).standard_normal((n, c, h, w))
    column_scratch(np, (5000,), x.dtype)[...] = np.nan  # stale contents must not show through
    fresh = im2col(x, k, stride, padding)
    assert np.array_equal(im2col(x, k, stride, padding, scratch=True), fresh)
    assert np.array_equal(channel_major_im2col(x.transpose(1, 0, 2, 3), k, stride, padding, scratch=True), fresh)


def test_scratch_is_one_memory_per_dtype_that_grows():
    small = column_scratch(np, (3, 4), np.float64)
    again = column_scratch(np, (2, 5), np.float64)
    assert np.shares_memory(small, again)  # valid only until the next call: the same memory
    other_dtype = column_scratch(np, (3, 4), np.float32)
    assert other_dtype.dtype == np.float32 and not np.shares_memory(other_dtype, again)
    size = column_scratch(np, (1,), np.float64).base.size
    bigger = column_scratch(np, (size + 7,), np.float64)
    assert bigger.shape == (size + 7,)
    assert np.shares_memory(column_scratch(np, (2,), np.float64), bigger)  # kept at the larger size


def test_each_thread_has_its_own_scratch():
    here = column_scratch(np, (10,), np.float64)
    seen = []
    worker = threading.Thread(target=lambda: seen.append(column_scratch(np, (10,), np.float64)))
    worker.start()
    worker.join()
    assert not np.shares_memory(here, seen[0])


@pytest.mark.parametrize("stride", [1, 2])
def test_conv_results_do_not_alias_the_scratch(stride):
    """Outputs and gradients of conv2d and genetic_conv2d survive later convolutions."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3, 6, 6))
    w = rng.standard_normal((4, 3, 3, 3))
    x_out, g, x_in = rng.standard_normal((4, 2)), rng.standard_normal((2, 2)), rng.standard_normal((27, 2))
    for op, params in ((conv2d, (w,)), (genetic_conv2d, (x_out, g, x_in, 3))):
        y, cache = op.forward(x, *params, stride=stride, padding=1)
        grads = op.backward(np.ones_like(y), cache)
        kept = [y.copy()] + [a.copy() for a in grads]
        other = rng.standard_normal(x.shape)  # reuses every scratch buffer
        op.backward(np.ones_like(y), op.forward(other, *params, stride=stride, padding=1)[1])
        for before, after in zip(kept, [y, *grads]):
            assert np.array_equal(before, after)
            assert not np.shares_memory(after, column_scratch(np, (1,), after.dtype).base)


# --- convolutions block by block of images (gee_ref.ops.im2col.image_blocks) ------------------

def test_image_blocks_cover_the_images_with_enough_columns(monkeypatch):
    from gee_ref.ops import im2col as im2col_module
    monkeypatch.setattr(im2col_module, "COLUMN_BLOCK_BYTES", 1000)
    monkeypatch.setattr(im2col_module, "MIN_BLOCK_COLUMNS", 30)
    blocks = im2col_module.image_blocks(np, 23, 16, 400)  # 2 images fit 1000 bytes, 30 columns need 2 images
    assert [(b.start, b.stop) for b in blocks] == [(i, min(i + 2, 23)) for i in range(0, 23, 2)]
    assert len(im2col_module.image_blocks(np, 23, 4, 400)) == 3   # 8 images: 32 >= 30 columns
    assert im2col_module.image_blocks(np, 0, 4, 400) == []


@pytest.mark.parametrize("population", [None, "own input", "shared input"])
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("op_name, path", [("conv2d", None), ("genetic", "materialised"), ("genetic", "factored")])
def test_blocks_of_images_give_the_results_of_one_block(monkeypatch, op_name, path, stride, population):
    """Every output column and every image's dx comes from that image's columns alone; the weight
    gradients, which sum over all columns, still see them all at once."""
    from gee_ref.ops import im2col as im2col_module
    rng = np.random.default_rng(stride)
    size = 3 if population else None
    lead = () if size is None else (size,)
    x = rng.standard_normal((7,) + ((size,) if population == "own input" else ()) + (3, 6, 6))
    if op_name == "conv2d":
        params = (rng.standard_normal(lead + (4, 3, 3, 3)),)
        run = lambda: conv2d.forward(x, *params, stride=stride, padding=1)  # noqa: E731
        back = conv2d.backward
    else:
        params = (rng.standard_normal(lead + (4, 2)), rng.standard_normal(lead + (2, 2)),
                  rng.standard_normal(lead + (27, 2)))
        run = lambda: genetic_conv2d.forward(x, *params, 3, stride=stride, padding=1, path=path)  # noqa: E731
        back = genetic_conv2d.backward
    y, cache = run()
    upstream = rng.standard_normal(y.shape)
    whole = [y] + list(back(upstream, cache))
    monkeypatch.setattr(im2col_module, "COLUMN_BLOCK_BYTES", 1)
    monkeypatch.setattr(im2col_module, "MIN_BLOCK_COLUMNS", 1)  # one image a block: 7 blocks
    y_blocks, cache_blocks = run()
    blocked = [y_blocks] + list(back(upstream, cache_blocks))
    for a, b in zip(blocked, whole):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


@given(n=st.integers(1, 3), c=st.integers(1, 3), h=st.integers(1, 7), w=st.integers(1, 7),
       kernel=st.tuples(st.integers(1, 7), st.integers(1, 7)), stride_w=st.integers(1, 3),
       padding=st.tuples(st.integers(0, 3), st.integers(0, 3)), seed=st.integers(0, 99))
def test_row_block_gather_equals_the_row_by_row_gather(n, c, h, w, kernel, stride_w, padding, seed):
    """Short rows (stride 1 down the rows) are gathered as whole row blocks: the same columns."""
    from gee_ref.ops import im2col as im2col_module
    assume(h + 2 * padding[0] >= kernel[0] and w + 2 * padding[1] >= kernel[1])
    x = np.random.default_rng(seed).standard_normal((c, n, h, w))
    stride = (1, stride_w)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(im2col_module, "SHORT_ROWS", 0)  # every row gathered on its own
        by_rows = channel_major_im2col(x, kernel, stride, padding)
        patch.setattr(im2col_module, "SHORT_ROWS", 10 ** 6)
        assert np.array_equal(channel_major_im2col(x, kernel, stride, padding, scratch=True), by_rows)
