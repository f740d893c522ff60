"""Small digits files for the command tests: the first images of scikit-learn's bundled digits."""
from gee_ref.data import datasets


def write_digits_file(folder, train: int, test: int, source: str = "UCI digits, first images"):
    """An HDF5 dataset of the first ``train`` / ``test`` images of each split, in ``folder``."""
    splits, classes = datasets.digits_splits()
    (x, y), (xt, yt) = splits["train"], splits["test"]
    return datasets.write_dataset(folder / "tiny.h5", {"train": (x[:train], y[:train]), "test": (xt[:test], yt[:test])},
                                  classes, source)
