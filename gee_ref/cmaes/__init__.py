"""Layer 6: CMA-ES after Hansen's tutorial (2016): ``strategy`` (the CMAES class: ask, tell, stop),
``covariance`` (C = B D^2 B^T, full or diagonal), ``parameters`` (the default strategy
parameters), ``termination`` (the stop criteria), ``arguments`` (argument checks), ``state``
(save and load)."""
from gee_ref.cmaes.covariance import EigensystemError
from gee_ref.cmaes.strategy import CMAES

__all__ = ["CMAES", "EigensystemError"]
