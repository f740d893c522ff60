"""The covariance matrix C of CMA-ES and its eigensystem C = B D^2 B^T (Hansen's tutorial, 2016).

Two classes with one interface, so that ``CMAES`` reads the same for both:

* ``FullCovariance`` keeps the [n, n] matrix C and decomposes it lazily (tutorial Sec. 0.1
  and its summary, eqs. 38-47): O(n^2) memory, O(lambda n^2) work per generation between
  decompositions, O(n^3) for one.
* ``DiagonalCovariance`` keeps only the diagonal of C (separable CMA-ES, Ros & Hansen 2008):
  B = I, D = sqrt(diag C), O(n) memory and O(lambda n) work.

What ``CMAES`` asks of either:

    sample(z)                y = B D z for each row z of z                        (39)
    inverse_sqrt_times(v)    C^-1/2 v = B D^-1 B^T v, v [n] or columns [n, k]      (43), (46)
    update(decay, ...)       C <- decay C + c_1 p_c p_c^T + c_mu sum w° y y^T      (47)
    decompose()              B, D from the current C
    diagonal, largest_std    diag(C); max(D) (termination)
    condition_number         cond(C) = max(D)^2 / min(D)^2
    state(), restore(arrays) the arrays a saved run needs (``gee_ref.cmaes.state``)

``check_eigensystem`` is what ``decompose`` runs afterwards: finite eigenvalues, the largest
positive, and on CuPy also B finite and orthonormal. A failure raises ``EigensystemError``,
one line, instead of letting NaN reach the samples: CuPy does not raise cuSOLVER's errors by
default, so a failed ``eigh`` would only surface later as "X contains NaN".
"""
from __future__ import annotations

import math

import numpy

# B^T B = I holds to O(n eps) for a converged symmetric eigensolver (LAPACK, measured: max
# |B^T B - I| = 2.9e-15 to 5.2e-15 for n = 100 to 2000); a failed one is off by O(1). The bound
# between them: half of float64's digits, 1.5e-8.
ORTHONORMALITY_TOLERANCE = float(numpy.sqrt(numpy.finfo(numpy.float64).eps))

# C is positive definite in exact arithmetic; an eigenvalue at rounding level is floored to
# this fraction of the largest, far beyond any max_condition, which then stops the run.
EIGENVALUE_FLOOR = 1e-20


class EigensystemError(ValueError):
    """The eigendecomposition of C failed (non-finite, not positive, or B not orthonormal)."""


def check_eigensystem(eigenvalues, B, xp, check_B: bool) -> None:
    """Raise ``EigensystemError`` unless C = B diag(eigenvalues) B^T is a usable decomposition.

    Always, in O(n): the largest eigenvalue finite (NaN anywhere makes it NaN) and positive
    (smaller ones are floored by ``square_roots``). ``check_B`` also checks B: finite, and
    max |B^T B - I| <= ORTHONORMALITY_TOLERANCE, an O(n^3) product. That is done on CuPy, whose
    ``eigh`` does not raise when cuSOLVER fails; NumPy's LAPACK raises LinAlgError itself, and
    returns finite eigenvectors with finite eigenvalues. ``B`` None stands for I (diagonal C).
    """
    largest = float(eigenvalues.max())  # NaN if any eigenvalue is NaN
    if not math.isfinite(largest):
        raise _failure(eigenvalues, xp, "returned NaN or inf eigenvalues: C is too ill-conditioned or the solver "
                                        "failed; stop the run earlier (max_condition, tolupsigma) or use diagonal=True")
    if not largest > 0:
        raise _failure(eigenvalues, xp, f"says C is not positive definite (largest eigenvalue {largest:.3g}): "
                                        "sigma or C collapsed; stop the run earlier (tolupsigma, max_condition)")
    if check_B and B is not None:
        if not math.isfinite(float(B.sum())):  # NaN or inf iff an entry is (|B_ij| <= 1 otherwise)
            raise _failure(eigenvalues, xp, "returned NaN or inf eigenvectors: the solver failed")
        deviation = float(xp.max(xp.abs(B.T @ B - xp.eye(B.shape[0]))))
        if not deviation <= ORTHONORMALITY_TOLERANCE:
            raise _failure(eigenvalues, xp, f"returned eigenvectors that are not orthonormal: max |B^T B - I| = "
                                            f"{deviation:.3g} > {ORTHONORMALITY_TOLERANCE:.3g}; the solver failed")


def square_roots(eigenvalues, xp):
    """D = sqrt of C's eigenvalues, each at least EIGENVALUE_FLOOR times the largest."""
    return xp.sqrt(xp.maximum(eigenvalues, xp.max(eigenvalues) * EIGENVALUE_FLOOR))


def _failure(eigenvalues, xp, what: str) -> EigensystemError:
    return EigensystemError(f"the eigendecomposition of C (n = {eigenvalues.shape[0]}, "
                            f"{xp.__name__}.linalg.eigh) {what}")


class FullCovariance:
    """C as a full symmetric [n, n] matrix with a lazily refreshed eigensystem B, D."""

    diagonal_only = False

    def __init__(self, n: int, xp, check_orthonormal: bool = False):
        self.xp = xp
        self.check_orthonormal = check_orthonormal
        self.C = xp.eye(n)
        self.B = xp.eye(n)
        self.D = xp.ones(n)  # square roots of C's eigenvalues

    def sample(self, z):
        """y_k = B D z_k ~ N(0, C) for the rows z_k of z (tutorial eq. 39)."""
        return (z * self.D) @ self.B.T

    def inverse_sqrt_times(self, v):
        """C^-1/2 v = B D^-1 B^T v (tutorial Sec. 0.1), with the B, D used for sampling; v [n] or [n, k]."""
        D = self.D if v.ndim == 1 else self.D[:, None]
        return self.B @ ((self.B.T @ v) / D)

    def update(self, decay: float, c_1: float, p_c, c_mu: float, weights_circ, y) -> None:
        """C <- decay C + c_1 p_c p_c^T + c_mu sum_i w°_i y_i y_i^T (tutorial eq. 47), in place.

        One product: decay C + V^T diag(a) V, the rows of V being y_{1:lambda} ... y_{lambda:lambda}
        and p_c, a = (c_mu w°_1, ..., c_mu w°_lambda, c_1); one [n, n] temporary where the sum of
        three terms takes several.
        """
        xp = self.xp
        rank_one_vectors = xp.concatenate([y, p_c[None, :]])  # V, [lambda + 1, n]
        coefficients = xp.concatenate([c_mu * weights_circ, xp.full((1,), c_1)])  # a
        self.C *= decay
        self.C += rank_one_vectors.T @ (coefficients[:, None] * rank_one_vectors)

    def decompose(self) -> None:
        """B, D from C = B D^2 B^T after ``check_eigensystem``, eigenvectors sign-normalised."""
        xp = self.xp
        self.C = xp.triu(self.C) + xp.triu(self.C, 1).T  # enforce symmetry
        eigenvalues, B = xp.linalg.eigh(self.C)
        check_eigensystem(eigenvalues, B, xp, check_B=self.check_orthonormal)
        # eigenvectors are unique up to sign: make each column's largest entry positive, so that
        # NumPy's LAPACK and CuPy's cuSOLVER give the same B (runs replay across devices)
        largest = xp.argmax(xp.abs(B), axis=0)
        self.B = B * xp.sign(B[largest, xp.arange(B.shape[0])])
        self.D = square_roots(eigenvalues, xp)

    @property
    def diagonal(self):
        """diag(C), a copy."""
        return self.xp.diag(self.C).copy()

    @property
    def largest_std(self) -> float:
        """max(D) = sqrt of C's largest eigenvalue, from the latest decomposition."""
        return float(self.xp.max(self.D))

    @property
    def condition_number(self) -> float:
        """cond(C) = max(D)^2 / min(D)^2 from the latest (lazy) decomposition."""
        return float(self.xp.max(self.D) / self.xp.min(self.D)) ** 2

    def state(self) -> dict:
        return {"C": self.C, "B": self.B, "D": self.D}

    def restore(self, arrays: dict) -> None:
        self.C, self.B, self.D = (self.xp.asarray(arrays[name]) for name in ("C", "B", "D"))


class DiagonalCovariance:
    """C = diag(c_1..c_n), the separable variant (Ros & Hansen 2008): B = I, D = sqrt(diag C)."""

    diagonal_only = True
    B = None  # the eigenvectors of a diagonal C are the coordinate axes

    def __init__(self, n: int, xp, check_orthonormal: bool = False):
        self.xp = xp
        self.check_orthonormal = check_orthonormal  # nothing to check: B = I
        self.variances = xp.ones(n)  # diag(C)
        self.D = xp.ones(n)

    def sample(self, z):
        """y_k = D z_k ~ N(0, C) (tutorial eq. 39 with B = I)."""
        return z * self.D

    def inverse_sqrt_times(self, v):
        """C^-1/2 v = D^-1 v; v [n] or [n, k]."""
        return v / (self.D if v.ndim == 1 else self.D[:, None])

    def update(self, decay: float, c_1: float, p_c, c_mu: float, weights_circ, y) -> None:
        """The diagonal of tutorial eq. 47: c_ii <- decay c_ii + c_1 p_c,i^2 + c_mu sum_k w°_k y_k,i^2."""
        self.variances = decay * self.variances + c_1 * p_c ** 2 + c_mu * (weights_circ @ y ** 2)

    def decompose(self) -> None:
        """D = sqrt(diag C) after ``check_eigensystem``."""
        check_eigensystem(self.variances, None, self.xp, check_B=False)
        self.D = square_roots(self.variances, self.xp)

    @property
    def diagonal(self):
        """diag(C), the array itself: tell() replaces it, never changes it in place."""
        return self.variances

    @property
    def largest_std(self) -> float:
        return float(self.xp.max(self.D))

    @property
    def condition_number(self) -> float:
        """cond(C) = max c_ii / min c_ii, exact (the current C, not the last decomposition)."""
        return float(self.xp.max(self.variances) / self.xp.min(self.variances))

    def state(self) -> dict:
        return {"diagonal_C": self.variances, "D": self.D}

    def restore(self, arrays: dict) -> None:
        self.variances, self.D = (self.xp.asarray(arrays[name]) for name in ("diagonal_C", "D"))


def covariance_for(n: int, xp, diagonal: bool, check_orthonormal: bool):
    """The covariance object of a run: ``DiagonalCovariance`` or ``FullCovariance``, C = I."""
    kind = DiagonalCovariance if diagonal else FullCovariance
    return kind(n, xp, check_orthonormal)
