"""CMA-ES, the optimiser of GEE's genotype (paper eqs. 10-12).

Follows Hansen, "The CMA Evolution Strategy: A Tutorial" (2016): every line of the update
carries the tutorial's equation number, (38)-(47) being its algorithm summary and (48)-(58)
its default parameters (see ``cmaes_parameters``). In short, one generation is::

    z_k ~ N(0, I),  y_k = B D z_k,  x_k = m + sigma y_k                 (38)-(40)
    <y>_w = sum_i w_i y_{i:lambda},  m <- m + c_m sigma <y>_w           (41)-(42)
    p_sigma <- (1 - c_sigma) p_sigma + sqrt(c_sigma (2 - c_sigma) mu_eff) C^-1/2 <y>_w   (43)
    sigma <- sigma exp(c_sigma / d_sigma (||p_sigma|| / E||N(0,I)|| - 1))               (44)
    p_c <- (1 - c_c) p_c + h_sigma sqrt(c_c (2 - c_c) mu_eff) <y>_w                     (45)
    C <- (1 + c_1 delta(h_sigma) - c_1 - c_mu sum w) C + c_1 p_c p_c^T
         + c_mu sum_i w_i y_{i:lambda} y_{i:lambda}^T                                   (47)

with C = B D^2 B^T. The eigendecomposition is lazy (recomputed only after
lambda / (c_1 + c_mu) / n / 10 evaluations), so a generation costs O(lambda n^2) between
decompositions. ``diagonal=True`` is the separable variant (Ros & Hansen 2008), which keeps
only the diagonal of C (B = I) and costs O(lambda n).

Choices of gee_ref:
- ``active=True`` (default) gives the worst lambda - mu samples the tutorial's negative
  weights in (46)-(47) ("active CMA"); ``active=False`` uses positive weights only. See
  ``cmaes_parameters``.
- non-finite fitness values (NaN, +inf, -inf) rank last, in their sampling order, and are
  counted in ``nonfinite_evaluations``.
- the N(0, I) samples always come from a seeded NumPy generator on the host (``backend.rng(seed,
  "cpu")``) and are moved to the device: the state of that generator can be saved and restored
  bit for bit, and a run on "cpu" and "gpu" draws the same samples. The eigenvectors in B are
  sign-normalised (largest entry of each column positive). Where C's eigenvalues are distinct
  that makes B unique, and the same samples give the same candidates on either device; but a
  repeated eigenvalue (C after a rank-(mu + 1) update has n - mu - 1 of them) leaves any
  rotation of its eigenspace a valid B, and LAPACK and cuSOLVER may choose differently. The
  candidates then differ between devices though their distribution N(m, sigma^2 C) is the same;
  the update from given (X, f) is device-independent, and a run replays bit for bit on one device.
- termination (tutorial Appendix B.3): tolfun, the range of the best f of the last
  10 + ceil(30 n / lambda) generations and of all f of the last one; tolx, sigma * sqrt(C_ii)
  and sigma * |p_c,i| below tolx for all i; condition, cond(C) above max_condition; maxiter.
"""
from __future__ import annotations

import math

import numpy

from gee_ref import backend as array_backend
from gee_ref.cmaes.parameters import cma_parameters
from gee_ref.cmaes.state import load_state, save_state


class CMAES:
    """CMA-ES with the ask-and-tell interface; minimises."""

    def __init__(self, x0, sigma0, popsize=None, seed=None, diagonal=False, backend="cpu",
                 maxiter=None, tolfun=1e-11, tolx=1e-11, max_condition=1e14, active=True):
        x0_host = numpy.asarray(array_backend.to_host(x0), dtype=numpy.float64)
        if x0_host.ndim != 1 or x0_host.size < 1 or not numpy.all(numpy.isfinite(x0_host)):
            raise ValueError(f"x0 must be a non-empty 1-D array of finite numbers, got shape {x0_host.shape}")
        if not (isinstance(sigma0, (int, float, numpy.floating, numpy.integer))
                and math.isfinite(sigma0) and sigma0 > 0):
            raise ValueError(f"sigma0 must be a finite number > 0, got {sigma0!r}")
        if maxiter is not None and (not isinstance(maxiter, (int, numpy.integer)) or maxiter < 1):
            raise ValueError(f"maxiter must be None or an integer >= 1, got {maxiter!r}")
        for name, value in (("tolfun", tolfun), ("tolx", tolx), ("max_condition", max_condition)):
            if not (isinstance(value, (int, float, numpy.floating)) and value >= 0):
                raise ValueError(f"{name} must be a number >= 0, got {value!r}")

        self.xp = array_backend.xp_for(backend)
        self.device = backend
        self.params = cma_parameters(x0_host.size, popsize, diagonal, active)
        self.seed = seed
        self.maxiter = None if maxiter is None else int(maxiter)
        self.tolfun, self.tolx, self.max_condition = float(tolfun), float(tolx), float(max_condition)

        xp, n = self.xp, self.params.n
        self.mean = xp.asarray(x0_host)
        self.sigma = float(sigma0)
        self.p_sigma = xp.zeros(n)
        self.p_c = xp.zeros(n)
        if diagonal:
            self._diagonal_C = xp.ones(n)
            self.B = None  # the eigenvectors of a diagonal C are the coordinate axes
        else:
            self._C = xp.eye(n)
            self.B = xp.eye(n)
        self.D = xp.ones(n)  # square roots of C's eigenvalues: C = B D^2 B^T
        self._weights = xp.asarray(self.params.weights)  # [lambda], (53)

        self.generation = 0
        self.evaluations = 0
        self.eigen_updates = 0
        self.eigen_evaluations = 0  # value of `evaluations` at the last decomposition
        self.nonfinite_evaluations = 0
        self.best_x = x0_host.copy()
        self.best_f = math.inf
        self.best_history = []  # best finite f of each of the last generations (tolfun)
        self.last_f = numpy.zeros(0)  # sorted finite f of the last generation (tolfun)
        self.rng = array_backend.rng(seed, "cpu")

    # ------------------------------------------------------------------ properties
    @property
    def n(self) -> int:
        return self.params.n

    @property
    def popsize(self) -> int:
        return self.params.popsize

    @property
    def diagonal(self) -> bool:
        return self.params.diagonal

    @property
    def C(self):
        """The full covariance matrix (not kept by the separable variant); tell() updates this
        array in place, so copy it to keep one generation's C."""
        if self.diagonal:
            raise AttributeError("separable CMA-ES (diagonal=True) keeps only diagonal_C, not a full C")
        return self._C

    @property
    def diagonal_C(self):
        """The diagonal of C (a copy in the full variant)."""
        return self._diagonal_C if self.diagonal else self.xp.diag(self._C).copy()

    @property
    def condition_number(self) -> float:
        """cond(C): max(D)^2 / min(D)^2 from the latest (lazy) eigendecomposition; exact when diagonal."""
        if self.diagonal:
            return float(self.xp.max(self._diagonal_C) / self.xp.min(self._diagonal_C))
        return float(self.xp.max(self.D) / self.xp.min(self.D)) ** 2

    # ------------------------------------------------------------------ ask
    def ask(self, z=None):
        """Sample lambda candidates, an xp array [lambda, n] (eqs. 38-40).

        ``z`` optionally gives the [lambda, n] standard normal samples to use instead of the
        generator's (the generator is then left untouched): a stored trajectory replays exactly.
        """
        xp, lam, n = self.xp, self.popsize, self.n
        if z is None:
            z = self.rng.standard_normal((lam, n))  # z_k ~ N(0, I) (38)
        z = xp.asarray(z, dtype=xp.float64)
        if z.shape != (lam, n):
            raise ValueError(f"z must have shape (lambda, n) = {(lam, n)}, got {tuple(z.shape)}")
        self._update_eigensystem_if_due()
        if self.diagonal:
            y = z * self.D  # y_k = D z_k ~ N(0, C), B = I (39)
        else:
            y = (z * self.D) @ self.B.T  # y_k = B D z_k ~ N(0, C) (39)
        return self.mean + self.sigma * y  # x_k = m + sigma y_k ~ N(m, sigma^2 C) (40)

    def _update_eigensystem_if_due(self) -> None:
        """C = B D^2 B^T (tutorial Sec. 0.1), lazily: only when the evaluation gap is reached."""
        if self.evaluations <= self.eigen_evaluations + self.params.eigen_gap_evaluations:
            return
        xp = self.xp
        if self.diagonal:
            self.D = xp.sqrt(self._diagonal_C)
        else:
            self._C = xp.triu(self._C) + xp.triu(self._C, 1).T  # enforce symmetry
            eigenvalues, B = xp.linalg.eigh(self._C)
            # eigenvectors are unique up to sign: make each column's largest entry positive, so
            # that NumPy's LAPACK and CuPy's cuSOLVER give the same B (runs replay across devices)
            largest = xp.argmax(xp.abs(B), axis=0)
            self.B = B * xp.sign(B[largest, xp.arange(self.n)])
            # C is positive definite in exact arithmetic; a rounding-level eigenvalue is
            # floored far beyond max_condition, which then stops the run
            eigenvalues = xp.maximum(eigenvalues, xp.max(eigenvalues) * 1e-20)
            self.D = xp.sqrt(eigenvalues)
        self.eigen_evaluations = self.evaluations
        self.eigen_updates += 1

    def _inverse_sqrt_C_times(self, y):
        """C^-1/2 y = B D^-1 B^T y (tutorial Sec. 0.1) with the B, D used for sampling; y [n] or [n, k]."""
        D = self.D if y.ndim == 1 else self.D[:, None]
        if self.diagonal:
            return y / D
        return self.B @ ((self.B.T @ y) / D)

    # ------------------------------------------------------------------ tell
    def tell(self, X, f) -> None:
        """Update m, sigma, C, p_sigma and p_c from the candidates X [lambda, n] and their f."""
        xp, par = self.xp, self.params
        X = xp.asarray(X, dtype=xp.float64)
        if X.shape != (par.popsize, par.n):
            raise ValueError(f"X must have shape (lambda, n) = {(par.popsize, par.n)}, got {tuple(X.shape)}")
        if not bool(xp.all(xp.isfinite(X))):
            raise ValueError("X contains NaN or inf: tell() needs the candidates that ask() returned")
        f = numpy.asarray(array_backend.to_host(f), dtype=numpy.float64).reshape(-1)
        if f.size != par.popsize:
            raise ValueError(f"f must hold lambda = {par.popsize} values, got {f.size}")
        order = self._rank(X, f)
        self.evaluations += par.popsize

        g, mu = self.generation, par.mu
        y = (X[xp.asarray(order)] - self.mean) / self.sigma  # y_{i:lambda} (39)-(40)
        y_w = self._weights[:mu] @ y[:mu]  # <y>_w = sum_{i<=mu} w_i y_{i:lambda} (41)
        self.mean = self.mean + par.c_m * self.sigma * y_w  # m <- m + c_m sigma <y>_w (42)

        self.p_sigma = ((1 - par.c_sigma) * self.p_sigma
                        + math.sqrt(par.c_sigma * (2 - par.c_sigma) * par.mu_eff)
                        * self._inverse_sqrt_C_times(y_w))  # (43)
        norm_p_sigma = float(xp.linalg.norm(self.p_sigma))  # ||p_sigma|| (44)
        self.sigma = self.sigma * math.exp(
            par.c_sigma / par.d_sigma * (norm_p_sigma / par.chi_n - 1))  # (44)

        h_sigma = float(norm_p_sigma / math.sqrt(1 - (1 - par.c_sigma) ** (2 * (g + 1)))
                        < (1.4 + 2 / (par.n + 1)) * par.chi_n)  # h_sigma (tutorial, with (45))
        self.p_c = ((1 - par.c_c) * self.p_c
                    + h_sigma * math.sqrt(par.c_c * (2 - par.c_c) * par.mu_eff) * y_w)  # (45)

        weights_circ = self._weights  # w_i° = w_i where w_i >= 0 (46)
        if par.active:  # w_i° = w_i * n / ||C^-1/2 y_{i:lambda}||^2 where w_i < 0 (46)
            mahalanobis_sq = xp.maximum(xp.sum(self._inverse_sqrt_C_times(y.T) ** 2, axis=0), 1e-300)
            weights_circ = xp.where(self._weights < 0, self._weights * par.n / mahalanobis_sq,
                                    self._weights)  # (46)
        delta_h_sigma = (1 - h_sigma) * par.c_c * (2 - par.c_c)  # delta(h_sigma) (tutorial, with (47))
        decay = 1 + par.c_1 * delta_h_sigma - par.c_1 - par.c_mu * float(par.weights.sum())  # (47)
        if self.diagonal:
            self._diagonal_C = (decay * self._diagonal_C
                                + par.c_1 * self.p_c ** 2
                                + par.c_mu * (weights_circ @ y ** 2))  # (47), diagonal only
        else:
            # (47) as one product, in place: C <- decay C + V^T diag(a) V, the rows of V being
            # y_{1:lambda} ... y_{lambda:lambda} and p_c, a = (c_mu w_1°, ..., c_mu w_lambda°, c_1);
            # one [n, n] temporary where the sum of three terms took several
            rank_one_vectors = xp.concatenate([y, self.p_c[None, :]])  # V, [lambda + 1, n]
            coefficients = xp.concatenate([par.c_mu * weights_circ, xp.full((1,), par.c_1)])  # a (47)
            self._C *= decay  # (47)
            self._C += rank_one_vectors.T @ (coefficients[:, None] * rank_one_vectors)  # (47)
        self.generation = g + 1

    def _rank(self, X, f: numpy.ndarray) -> numpy.ndarray:
        """Indices that sort f ascending, non-finite values last (in index order); bookkeeping."""
        finite = numpy.isfinite(f)
        self.nonfinite_evaluations += int(f.size - finite.sum())
        order = numpy.argsort(numpy.where(finite, f, numpy.inf), kind="stable")
        self.last_f = f[order][: int(finite.sum())]
        if self.last_f.size:
            if self.last_f[0] < self.best_f:
                self.best_f = float(self.last_f[0])
                self.best_x = numpy.array(array_backend.to_host(X[int(order[0])]))
            self.best_history.append(float(self.last_f[0]))
            del self.best_history[:-self.history_length]
        return order

    @property
    def history_length(self) -> int:
        """Generations the tolfun criterion looks back over: 10 + ceil(30 n / lambda)."""
        return 10 + math.ceil(30 * self.n / self.popsize)

    # ------------------------------------------------------------------ stop
    def stop(self) -> dict:
        """The termination criteria that hold now, as {name: threshold}; empty to go on."""
        criteria = {}
        if self.maxiter is not None and self.generation >= self.maxiter:
            criteria["maxiter"] = self.maxiter
        if self.generation > 0 and self.last_f.size:
            recent = numpy.concatenate([self.last_f, numpy.asarray(self.best_history)])
            if recent.max() - recent.min() < self.tolfun:
                criteria["tolfun"] = self.tolfun
        if self.generation > 0:
            xp = self.xp
            stds = self.sigma * xp.sqrt(self.diagonal_C)
            if bool(xp.all(stds < self.tolx)) and bool(xp.all(self.sigma * xp.abs(self.p_c) < self.tolx)):
                criteria["tolx"] = self.tolx
        if self.condition_number > self.max_condition:
            criteria["condition"] = self.max_condition
        return criteria

    # ------------------------------------------------------------------ state
    def save(self, path) -> None:
        """Write the whole state, RNG included, to an HDF5 file (atomically)."""
        save_state(self, path)

    @classmethod
    def load(cls, path, backend=None) -> "CMAES":
        """A CMAES that continues a saved run bit for bit (on ``backend``, default: the saved one)."""
        return load_state(cls, path, backend)
