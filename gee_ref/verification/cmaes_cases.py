"""Golden CMA-ES trajectories (paper eq. 10-12; Hansen's tutorial (2016), eqs. 38-47 and 48-58).

``gee_ref.cmaes.CMAES`` runs 10 generations on a fixed objective, its samples given: the
standard normal z [generations, lambda, n] is stored in the file and fed to ``ask(z=...)``,
so another implementation can replay the same trajectory. After every ``tell`` the state is
recorded: mean, sigma, C (or the diagonal of C for the separable variant), p_sigma, p_c,
together with the candidates X and their f. The default strategy parameters (tutorial
Table 1) are outputs too, so constants can be checked before trajectories.

Replaying. The samples are y_k = B D z_k with C = B D^2 B^T from ``numpy.linalg.eigh``
(eigenvalues ascending, LAPACK's eigenvector signs). Another eigensolver may order or sign
the columns of B differently, and then draws other candidates from the same z. The update
itself (given X and f) depends on B and D only through C^-1/2 = B D^-1 B^T, which does not
depend on that choice: an implementation can therefore also replay by telling the stored X
and f each generation (then X is checked trivially). In these cases the eigendecomposition is
refreshed before every ask from generation 2 on (the lazy gap, stored as an attribute, is
shorter than one generation), so lazy and eager decompositions give the same numbers.
"""
from __future__ import annotations

import numpy

from gee_ref.verification.case import Case
from gee_ref.cmaes import CMAES

GENERATIONS = 10
DIMENSION = 5


def ellipsoid(x):
    """f(x) = sum_i 10^(6 (i-1)/(n-1)) x_i^2, condition number 1e6; rows of x are candidates."""
    x = numpy.atleast_2d(x)
    n = x.shape[1]
    weights = 10.0 ** (6.0 * numpy.arange(n) / max(n - 1, 1))
    return (x * x) @ weights


def rosenbrock(x):
    """f(x) = sum_i 100 (x_{i+1} - x_i^2)^2 + (1 - x_i)^2."""
    x = numpy.atleast_2d(x)
    return numpy.sum(100.0 * (x[:, 1:] - x[:, :-1] ** 2) ** 2 + (1.0 - x[:, :-1]) ** 2, axis=1)


OBJECTIVES = {
    "ellipsoid": (ellipsoid, "f(x) = sum_i 10^(6 (i-1)/(n-1)) x_i^2 (i = 1..n)"),
    "rosenbrock": (rosenbrock, "f(x) = sum_{i<n} 100 (x_{i+1} - x_i^2)^2 + (1 - x_i)^2"),
}


def trajectory_case(objective: str, diagonal: bool, active: bool = True, n=DIMENSION, generations=GENERATIONS,
                    sigma0=0.5):
    def build(name, rng) -> Case:
        function, formula = OBJECTIVES[objective]
        x0 = rng.uniform(-1.0, 1.0, n) + (1.0 if objective == "rosenbrock" else 0.0)
        es = CMAES(x0, sigma0, seed=0, diagonal=diagonal, active=active)
        lam = es.popsize
        z = rng.standard_normal((generations, lam, n))
        record = {k: [] for k in ("X", "f", "mean", "sigma", "C", "p_sigma", "p_c")}
        for g in range(generations):
            X = numpy.asarray(es.ask(z=z[g]), dtype=numpy.float64)
            f = function(X)
            es.tell(X, f)
            record["X"].append(X)
            record["f"].append(f)
            record["mean"].append(numpy.array(es.mean))
            record["sigma"].append(es.sigma)
            record["C"].append(numpy.array(es.diagonal_C if diagonal else es.C))
            record["p_sigma"].append(numpy.array(es.p_sigma))
            record["p_c"].append(numpy.array(es.p_c))
        if not diagonal and es.eigen_updates != generations - 1:
            raise RuntimeError("the golden CMA-ES case expects an eigendecomposition before every ask "
                               f"from generation 2 on, got {es.eigen_updates} in {generations} generations")
        par = es.params
        outputs = {k: numpy.asarray(v, dtype=numpy.float64) for k, v in record.items()}
        if diagonal:
            outputs["diagonal_C"] = outputs.pop("C")
        outputs.update({f"strategy/{k}": numpy.float64(getattr(par, k))
                        for k in ("mu_eff", "c_m", "c_sigma", "d_sigma", "c_c", "c_1", "c_mu", "chi_n")})
        outputs["strategy/weights"] = numpy.asarray(par.weights, dtype=numpy.float64)
        variant = ("separable (diagonal C, Ros & Hansen 2008)" if diagonal else "full covariance") + \
            (", active" if par.active else ", positive weights only")
        return Case(
            name=name, kind="cmaes", function="gee_ref.cmaes.CMAES",
            description=f"CMA-ES {variant}, {generations} generations on the {n}-D {objective}, samples given",
            params={"n": n, "sigma0": sigma0, "popsize": lam, "mu": par.mu, "generations": generations,
                    "objective": objective, "diagonal": diagonal, "active": bool(par.active)},
            conventions={
                "objective": formula, "minimise": True,
                "reference": "Hansen, The CMA Evolution Strategy: A Tutorial (2016), eqs. 38-47 and Table 1 (48-58)",
                "sampling": "x_k = m + sigma B D z_k, C = B D^2 B^T from numpy.linalg.eigh (ascending eigenvalues)",
                "weights": "w'_i = ln((lambda+1)/2) - ln i; the mu = floor(lambda/2) best get w'_i / sum of "
                           "those (sum 1) " + ("and the others the tutorial's negative weights (eqs. 50-53, "
                           "active CMA, with w_i° = w_i n / ||C^-1/2 y_i||^2 in the rank-mu update, eq. 46)"
                           if par.active else "and the others 0 (no active CMA)"),
                "c_mu_formula": "alpha_cov (mu_eff - 2 + 1/mu_eff) / ((n+2)^2 + alpha_cov mu_eff / 2), alpha_cov = 2",
                "h_sigma": "||p_sigma|| / sqrt(1 - (1 - c_sigma)^(2 (g+1))) < (1.4 + 2/(n+1)) E||N(0,I)||, "
                           "g = generations done before this tell",
                "chi_n": "E||N(0,I)|| = sqrt(n) (1 - 1/(4n) + 1/(21 n^2))",
                "eigen_gap_evaluations": float(par.eigen_gap_evaluations),
                "eigendecomposition": "before every ask except the first (lazy gap < lambda evaluations)"
                                      if not diagonal else "D = sqrt(diagonal of C) before every ask",
                "separable_rates": "c_1 and c_mu times (n + 2) / 3" if diagonal else "none (full variant)",
                "record": "row g of every output is the state after the tell of generation g + 1",
            },
            inputs={"x0": x0, "z": z},
            outputs=outputs)
    return build


CMAES_CASES = {
    "cmaes/full_active/ellipsoid5": trajectory_case("ellipsoid", diagonal=False),
    "cmaes/full_active/rosenbrock5": trajectory_case("rosenbrock", diagonal=False),
    "cmaes/full_positive_weights/ellipsoid5": trajectory_case("ellipsoid", diagonal=False, active=False),
    "cmaes/separable_active/ellipsoid5": trajectory_case("ellipsoid", diagonal=True),
}
