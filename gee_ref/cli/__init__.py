"""Layer 7. What the commands share: one-line errors and exit codes (``errors``), and the options
``train`` and ``evolve`` both take (``options``). May import every layer below."""
