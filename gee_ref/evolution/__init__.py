"""Layer 6. The method of GEE: the genotype, eq. 9 (``genome``), the fitness, eq. 13-16
(``fitness``), an individual's evaluation on common random numbers (``evaluation``), where a
generation's evaluations run (``executors``), the CMA-ES loop with its log and checkpoints
(``search``) and the final choice (``selection``). May import layers 1-6 (cmaes among them)."""
