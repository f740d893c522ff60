"""gee_ref's CMA-ES against pycma on behaviour (Hansen's reference implementation, `pip install cma`).

Both use active CMA (negative weights for the worst lambda - mu samples) by default, the same
lambda, mu, positive weights, mu_eff, c_1 and c_c, but they differ in details: pycma's
c_sigma is (mu_eff + 2) / (n + mu_eff + 3) (the tutorial's is ... + 5, hence also another
d_sigma), its rank-mu rate c_mu uses the later 1/4 + mu_eff + 1/mu_eff - 2 form, and its
negative weights follow from that c_mu. So trajectories cannot be compared number by number.
*Behaviour* can: on the same functions (n = 5), from the same start, the evaluations needed
to reach f < 1e-10 must have medians over 5 seeds within a factor of 1.5 (measured ratios
were 0.96-1.03).
"""
import numpy as np
import pytest

cma = pytest.importorskip("cma")

from gee_ref.cmaes import CMAES  # noqa: E402
from gee_ref.verification.cmaes_cases import ellipsoid, rosenbrock  # noqa: E402

TARGET = 1e-10
BUDGET = 20000
SEEDS = range(5)
FACTOR = 1.5


def sphere(x):
    x = np.atleast_2d(x)
    return np.sum(x * x, axis=1)


FUNCTIONS = {"sphere": (sphere, 1.0), "ellipsoid": (ellipsoid, 1.0), "rosenbrock": (rosenbrock, 0.0)}


def evaluations_gee_ref(f, x0, seed, sigma0=0.5):
    es = CMAES(x0, sigma0, seed=seed)
    while es.evaluations < BUDGET:
        X = es.ask()
        fx = f(X)
        es.tell(X, fx)
        if fx.min() < TARGET:
            return es.evaluations
    return np.inf


def evaluations_pycma(f, x0, seed, sigma0=0.5):
    options = {"seed": seed + 1, "verbose": -9, "maxfevals": BUDGET, "tolfun": 0, "tolx": 0,
               "tolfunhist": 0, "tolstagnation": 10**9}
    es = cma.CMAEvolutionStrategy(x0, sigma0, options)
    while not es.stop():
        X = es.ask()
        fx = f(np.array(X))
        es.tell(X, list(fx))
        if fx.min() < TARGET:
            return es.countevals
    return np.inf


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_evaluations_to_target_match_pycma(name):
    f, start = FUNCTIONS[name]
    x0 = np.full(5, start)
    ours = np.median([evaluations_gee_ref(f, x0, s) for s in SEEDS])
    theirs = np.median([evaluations_pycma(f, x0, s) for s in SEEDS])
    assert np.isfinite(ours) and np.isfinite(theirs), (ours, theirs)
    assert 1 / FACTOR <= ours / theirs <= FACTOR, f"{name}: gee_ref median {ours}, pycma median {theirs}"


@pytest.mark.parametrize("n", [5, 20])
def test_default_strategy_parameters_against_pycma(n):
    """What is shared is equal; the one documented difference in c_sigma is what pycma does."""
    par = CMAES(np.zeros(n), 0.5, seed=0).params
    theirs = cma.CMAEvolutionStrategy(np.zeros(n), 0.5, {"verbose": -9, "seed": 1})
    sp = theirs.sp
    assert par.popsize == sp.popsize and par.mu == sp.weights.mu
    np.testing.assert_allclose(par.weights[:par.mu], np.asarray(sp.weights)[:par.mu], rtol=1e-12)
    assert np.all(np.asarray(sp.weights)[par.mu:] < 0) and np.all(par.weights[par.mu:] < 0)
    assert par.mu_eff == pytest.approx(sp.weights.mueff, rel=1e-12)
    assert par.c_1 == pytest.approx(sp.c1, rel=1e-12)
    assert par.c_c == pytest.approx(sp.cc, rel=1e-12)
    assert par.c_sigma == pytest.approx((par.mu_eff + 2) / (n + par.mu_eff + 5), rel=1e-12)
    assert theirs.adapt_sigma.cs == pytest.approx((par.mu_eff + 2) / (n + par.mu_eff + 3), rel=1e-12)
