"""Layer 5. Image datasets on disk and their checks (``datasets``), mini-batches with shuffling,
augmentation and normalisation (``loader``), and the input noise of the robustness test
(``noise``). May import layers 1-5 (storage, for the files it writes)."""
