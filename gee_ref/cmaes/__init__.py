"""Layer 6: CMA-ES after Hansen's tutorial (2016): ``strategy`` (ask, tell, stop),
``parameters`` (the default strategy parameters), ``state`` (save and load)."""
from gee_ref.cmaes.strategy import CMAES

__all__ = ["CMAES"]
