"""Layer 5. Files a run depends on: atomic writes that survive a full disk (``atomic``), HDF5
files built in memory (``hdf5_image``), checkpoints (``checkpoint``), a run's JSON files
(``json_file``), the lock that gives a run folder to one process (``run_lock``), and the checks
on a converter's output (``output_check``). May import backend only."""
