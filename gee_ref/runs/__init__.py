"""Layer 6. The runs behind the commands: a run's data (``data``) and folder (``folder``), the
training run with checkpoints, resume and report (``training_run``, ``report``), the evolution
run that ends with the final training (``evolution_run``) and the paired ablation of Table 4
(``ablation``); the count checks they share (``checks``). May import layers 1-6; the commands of layer 7 call these."""
