"""Layer 6: the reproduction experiments (``python -m gee_ref.reproduce``), one small module each
(``gene_scale``, ``ablation``, ``fidelity``), and the pieces they share: the resumable experiment folder (``folder``), sub-runs
as ordinary training runs in their own processes (``subruns``), the data's provenance
(``provenance``), the statistics (``statistics``), the written tables (``tables``), the plots
(``plots``, matplotlib optional) and the driver that runs one experiment (``driver``).

May import layers 1-6 (runs, evolution, training, measure, models, data, storage, ...)."""
