"""CMA-ES, the optimiser of GEE's genotype (paper eqs. 10-12).

Follows Hansen, "The CMA Evolution Strategy: A Tutorial" (2016): every line of the update
carries the tutorial's equation number, (38)-(47) being its algorithm summary and (48)-(58)
its default parameters (``parameters``). One generation, with S = diag(s_1..s_n) the fixed
per-coordinate multipliers of sigma0 (``stds``; S = I by default, see below)::

    z_k ~ N(0, I),  y_k = B D z_k,  x_k = m + sigma S y_k                  (38)-(40)
    y_{i:lambda} = S^-1 (x_{i:lambda} - m) / sigma, sorted by f           (39)-(40)
    <y>_w = sum_{i<=mu} w_i y_{i:lambda},  m <- m + c_m sigma S <y>_w      (41)-(42)
    p_sigma <- (1 - c_sigma) p_sigma + sqrt(c_sigma (2 - c_sigma) mu_eff) C^-1/2 <y>_w   (43)
    p_c <- (1 - c_c) p_c + h_sigma sqrt(c_c (2 - c_c) mu_eff) <y>_w                     (45)
    C <- (1 + c_1 delta(h_sigma) - c_1 - c_mu sum w) C + c_1 p_c p_c^T
         + c_mu sum_i w°_i y_{i:lambda} y_{i:lambda}^T                                 (46)-(47)
    sigma <- sigma exp(c_sigma / d_sigma (||p_sigma|| / E||N(0,I)|| - 1))               (44)

``tell`` runs these in blocks as pycma's purecma.py does: sort, recombination, cumulation,
covariance, step size. C = B D^2 B^T lives in a covariance object (``covariance``): the full
matrix with a lazy eigendecomposition (refreshed only after lambda / (c_1 + c_mu) / n / 10
evaluations, so a generation costs O(lambda n^2) between decompositions), or with
``diagonal=True`` only its diagonal (separable CMA-ES, Ros & Hansen 2008, O(lambda n)).

Initial standard deviation per coordinate (pycma's ``CMA_stds``): with ``stds = s`` the
search starts from N(x0, sigma0^2 S^2), and S stays as given: it is "not represented in C".
The tutorial's algorithm runs unchanged in the coordinates u = S^-1 x; only the three places
where x meets y change, (40) sampling, the mean difference y_{i:lambda} of (39)-(40) that
feeds the paths and C, and the mean update (42). Step size and paths are those of the scaled
problem: sigma0 is the std of a coordinate with s_i = 1, sigma s_i sqrt(C_ii) is coordinate
i's (``sample_stds``). All ones is exactly the plain algorithm (multiplying by 1.0 is exact),
and s = 2^k (1, ..., 1) is exactly sigma0 2^k.

Choices of gee_ref:
- ``active=True`` (default) gives the worst lambda - mu samples the tutorial's negative
  weights in (46)-(47) ("active CMA"); ``active=False`` uses positive weights only.
- non-finite fitness values (NaN, +inf, -inf) rank last, in their sampling order, and are
  counted in ``nonfinite_evaluations``.
- the N(0, I) samples always come from a seeded NumPy generator on the host (``backend.rng(seed,
  "cpu")``) and are moved to the device: the state of that generator can be saved and restored
  bit for bit, and a run on "cpu" and "gpu" draws the same samples. The eigenvectors in B are
  sign-normalised (largest entry of each column positive). Where C's eigenvalues are distinct
  that makes B unique, and the same samples give the same candidates on either device; but a
  repeated eigenvalue (C after a rank-(mu + 1) update has n - mu - 1 of them) leaves any
  rotation of its eigenspace a valid B, and LAPACK and cuSOLVER may choose differently. The
  candidates then differ between devices though their distribution N(m, sigma^2 S C S) is the
  same; the update from given (X, f) is device-independent, and a run replays bit for bit on
  one device.
- every eigendecomposition is checked (the largest eigenvalue finite and positive; on CuPy
  also B finite and B^T B = I), and a failed one raises ``EigensystemError`` (a ValueError,
  one line) instead of sampling NaN (``covariance.check_eigensystem``).
- termination: ``termination.stop_criteria`` (tutorial Appendix B.3 and two of pycma's).
"""
from __future__ import annotations

import math

import numpy

from gee_ref import backend as array_backend
from gee_ref.cmaes import arguments
from gee_ref.cmaes.covariance import covariance_for
from gee_ref.cmaes.parameters import cma_parameters
from gee_ref.cmaes.state import load_state, save_state
from gee_ref.cmaes.termination import stop_criteria


class CMAES:
    """CMA-ES with the ask-and-tell interface; minimises.

    x0, sigma0: the start N(x0, sigma0^2 S^2); stds: the n multipliers s_i of S (None: ones).
    popsize: lambda (default 4 + floor(3 ln n)); seed: of the host generator of the z samples.
    diagonal: separable CMA-ES; active: negative weights; backend: "cpu" (NumPy) or "gpu" (CuPy).
    maxiter, tolfun, tolx, max_condition, tolupsigma, tolfacupx: ``termination``.
    """

    def __init__(self, x0, sigma0, popsize=None, seed=None, diagonal=False, backend="cpu",
                 maxiter=None, tolfun=1e-11, tolx=1e-11, max_condition=1e14, active=True,
                 stds=None, tolupsigma=1e20, tolfacupx=1e3):
        x0 = arguments.start_point(x0)
        self.sigma0 = arguments.step_size(sigma0)
        stds = arguments.coordinate_stds(stds, x0.size)
        self.maxiter = arguments.max_iterations(maxiter)
        self.tolfun, self.tolx, self.max_condition, self.tolupsigma, self.tolfacupx = (
            arguments.tolerance(name, value) for name, value in (
                ("tolfun", tolfun), ("tolx", tolx), ("max_condition", max_condition),
                ("tolupsigma", tolupsigma), ("tolfacupx", tolfacupx)))
        self.xp = xp = array_backend.xp_for(backend)
        self.device = backend
        self.params = cma_parameters(x0.size, popsize, diagonal, active)
        self.seed = seed
        self.rng = array_backend.rng(seed, "cpu")

        n = self.params.n
        self.mean = xp.asarray(x0)
        self.sigma = self.sigma0
        self.stds = xp.asarray(stds)  # the diagonal of S
        self.p_sigma = xp.zeros(n)
        self.p_c = xp.zeros(n)
        # cuSOLVER's eigh does not raise on failure: on CuPy, B is also checked to be orthonormal
        self.covariance = covariance_for(n, xp, diagonal, check_orthonormal=backend == "gpu")
        self._weights = xp.asarray(self.params.weights)  # [lambda], (53)

        self.generation = 0
        self.evaluations = 0
        self.eigen_updates = 0
        self.eigen_evaluations = 0  # value of `evaluations` at the last decomposition
        self.nonfinite_evaluations = 0
        self.best_x = x0.copy()
        self.best_f = math.inf
        self.best_history = []  # best finite f of each of the last generations (tolfun)
        self.last_f = numpy.zeros(0)  # sorted finite f of the last generation (tolfun)

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
        if self.covariance.diagonal_only:
            raise AttributeError("separable CMA-ES (diagonal=True) keeps only diagonal_C, not a full C")
        return self.covariance.C

    @property
    def diagonal_C(self):
        """The diagonal of C (a copy in the full variant)."""
        return self.covariance.diagonal

    @property
    def B(self):
        """C's eigenvectors from the latest decomposition (None for diagonal C: the coordinate axes)."""
        return self.covariance.B

    @property
    def D(self):
        """Square roots of C's eigenvalues from the latest decomposition: C = B D^2 B^T."""
        return self.covariance.D

    @property
    def condition_number(self) -> float:
        """cond(C): max(D)^2 / min(D)^2 from the latest (lazy) eigendecomposition; exact when diagonal."""
        return self.covariance.condition_number

    @property
    def sample_stds(self):
        """sigma s_i sqrt(C_ii): the standard deviation of coordinate i of the next samples."""
        return self.sigma * (self.stds * self.xp.sqrt(self.diagonal_C))

    # ------------------------------------------------------------------ ask
    def ask(self, z=None):
        """Sample lambda candidates, an xp array [lambda, n] (eqs. 38-40).

        ``z`` optionally gives the [lambda, n] standard normal samples to use instead of the
        generator's (the generator is then left untouched): a stored trajectory replays exactly.
        """
        shape = (self.popsize, self.n)
        if z is None:
            z = self.rng.standard_normal(shape)  # z_k ~ N(0, I) (38)
        z = arguments.samples(z, self.xp, shape)
        self._update_eigensystem_if_due()
        y = self.covariance.sample(z)  # y_k = B D z_k ~ N(0, C) (39)
        return self.mean + (self.sigma * self.stds) * y  # x_k = m + sigma S y_k ~ N(m, sigma^2 S C S) (40)

    def _update_eigensystem_if_due(self) -> None:
        """C = B D^2 B^T (tutorial Sec. 0.1), lazily: only when the evaluation gap is reached."""
        if self.evaluations <= self.eigen_evaluations + self.params.eigen_gap_evaluations:
            return
        self.covariance.decompose()
        self.eigen_evaluations = self.evaluations
        self.eigen_updates += 1

    # ------------------------------------------------------------------ tell
    def tell(self, X, f) -> None:
        """Update m, p_sigma, p_c, C and sigma from the candidates X [lambda, n] and their f."""
        xp, par, cov = self.xp, self.params, self.covariance
        X, f = arguments.candidates_and_values(X, f, xp, (par.popsize, par.n))
        g, mu = self.generation, par.mu

        # ---- sort: best first; the steps in the coordinates of C
        order = self._rank(X, f)
        self.evaluations += par.popsize
        y = (X[xp.asarray(order)] - self.mean) / (self.sigma * self.stds)  # y_{i:lambda} (39)-(40)

        # ---- recombination: the new mean
        y_w = self._weights[:mu] @ y[:mu]  # <y>_w = sum_{i<=mu} w_i y_{i:lambda} (41)
        self.mean = self.mean + par.c_m * self.sigma * (self.stds * y_w)  # m <- m + c_m sigma S <y>_w (42)

        # ---- cumulation: the evolution paths
        self.p_sigma = ((1 - par.c_sigma) * self.p_sigma
                        + math.sqrt(par.c_sigma * (2 - par.c_sigma) * par.mu_eff)
                        * cov.inverse_sqrt_times(y_w))  # (43)
        norm_p_sigma = float(xp.linalg.norm(self.p_sigma))  # ||p_sigma|| (43)-(44)
        h_sigma = float(norm_p_sigma / math.sqrt(1 - (1 - par.c_sigma) ** (2 * (g + 1)))
                        < (1.4 + 2 / (par.n + 1)) * par.chi_n)  # h_sigma (tutorial, with (45))
        self.p_c = ((1 - par.c_c) * self.p_c
                    + h_sigma * math.sqrt(par.c_c * (2 - par.c_c) * par.mu_eff) * y_w)  # (45)

        # ---- covariance matrix adaptation: rank-one and rank-mu update
        weights_circ = self._weights  # w_i° = w_i where w_i >= 0 (46)
        if par.active:  # w_i° = w_i * n / ||C^-1/2 y_{i:lambda}||^2 where w_i < 0 (46)
            mahalanobis_sq = xp.maximum(xp.sum(cov.inverse_sqrt_times(y.T) ** 2, axis=0), 1e-300)
            weights_circ = xp.where(self._weights < 0, self._weights * par.n / mahalanobis_sq,
                                    self._weights)  # (46)
        delta_h_sigma = (1 - h_sigma) * par.c_c * (2 - par.c_c)  # delta(h_sigma) (tutorial, with (47))
        decay = 1 + par.c_1 * delta_h_sigma - par.c_1 - par.c_mu * float(par.weights.sum())  # (47)
        cov.update(decay, par.c_1, self.p_c, par.c_mu, weights_circ, y)  # (47)

        # ---- step-size adaptation: cumulative step-size control
        self.sigma = self.sigma * math.exp(par.c_sigma / par.d_sigma * (norm_p_sigma / par.chi_n - 1))  # (44)
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
        """The termination criteria that hold now, as {name: threshold}; empty to go on.
        Names: maxiter, tolfun, tolx, condition, tolupsigma, tolfacupx (``termination``)."""
        return stop_criteria(self)

    # ------------------------------------------------------------------ state
    def save(self, path) -> None:
        """Write the whole state, RNG included, to an HDF5 file (atomically)."""
        save_state(self, path)

    @classmethod
    def load(cls, path, backend=None) -> "CMAES":
        """A CMAES that continues a saved run bit for bit (on ``backend``, default: the saved one)."""
        return load_state(cls, path, backend)
