"""Layer 5: training and evaluating a network or a stacked population (``loop``), its
optimiser (``optimizer``) and how a long loop shows its progress (``progress``).

May import layers 1-5 (backend, ops, autograd, nn, models, optim, data, measure)."""
