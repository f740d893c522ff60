"""Golden cases for compressing a dense weight into genetic form (paper eq. 6-8, ``gee_ref.init.lowrank``).

``from_dense(W, g, G)`` returns X_out = U_g S_g G^-1 and X_in = V_g. Singular vectors are
unique only up to sign (and, for equal singular values, rotation), so X_out and X_in are not
checked; their product W_g = X_out @ G @ X_in.T, the best rank-g approximation of W
(Eckart-Young), is unique when the g-th and (g+1)-th singular values differ, and is the
checked output, together with ||W - W_g||_F.
"""
from __future__ import annotations

import numpy

from gee_ref.verification.case import Case
from gee_ref.init.lowrank import from_dense


def from_dense_case(w_shape, genes):
    def build(name, rng) -> Case:

        w = rng.standard_normal(w_shape)
        G = numpy.eye(genes) + 0.5 * rng.standard_normal((genes, genes))
        x_out, x_in = from_dense(w, genes, G)
        w_g = x_out @ G @ x_in.T
        singular = numpy.linalg.svd(w.reshape(w_shape[0], -1), compute_uv=False)
        return Case(
            name=name, kind="lowrank", function="gee_ref.init.lowrank.from_dense",
            description=f"eq. 6-8: rank-{genes} genetic form of a {list(w_shape)} weight, through a random G",
            params={"g": genes},
            conventions={"layout": "W [C_out, fan_in]; a conv weight [C_out, C_in, kh, kw] is flattened to "
                                   "[C_out, C_in*kh*kw] (im2col row order)",
                         "checked": "W_g = X_out @ G @ X_in.T, [C_out, fan_in]; X_out, X_in themselves are "
                                    "unique only up to the signs of singular vectors",
                         "singular_value_gap": float(singular[genes - 1] - singular[genes])},
            inputs={"w": w, "G": G}, outputs={"w_g": w_g, "residual_norm": numpy.float64(
                numpy.linalg.norm(w.reshape(w_shape[0], -1) - w_g))},
            extra_attrs={"call": "x_out, x_in = from_dense(inputs/w, g, inputs/G); w_g = x_out @ G @ x_in.T"})
    return build


LOWRANK_CASES = {
    "lowrank/from_dense/linear_6x8_g3": from_dense_case((6, 8), 3),
    "lowrank/from_dense/conv_4x2x3x3_g2": from_dense_case((4, 2, 3, 3), 2),
}
