"""Layer 5. What the paper measures of a network: spike counts, Table 3 and eq. 13's R_T
(``spikes``), parameters, eq. 2 (``parameters``), energy, eq. 17 (``energy``), peak memory
(``memory``), and the statistics of paired experiments (``statistics``). May import layers 1-4."""
