"""What an experiment's JSON says about its data and its command (no equation of the paper).

Every result names its data exactly: the file (path, size, SHA-256), the file's own
attributes (``source``, and the ``subset`` record of ``data_tools.subset``: the source file's
hash, the per-class counts, the seed, the resize), the split sizes, the image size and the
classes. ``data_line`` and ``model_line`` give the scale line every table starts with.
"""
from __future__ import annotations

import json
import os
import shlex
import sys
from pathlib import Path

import h5py

from gee_ref.data.datasets import dataset_info, file_sha256

def _attribute(value):
    """An HDF5 attribute as JSON: text (a JSON text parsed when it is one), or a number."""
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if isinstance(value, str):
        try:
            return json.loads(value) if value[:1] in "[{" else value
        except json.JSONDecodeError:
            return value
    return value.tolist() if hasattr(value, "tolist") else value


def describe_data(path) -> dict:
    """The data record of an experiment (see the module docstring); a DatasetError or OSError,
    one line, for a file that is missing or not a gee_ref dataset."""
    path = Path(path)
    info = dataset_info(path)  # checks the layout and reads the shapes without the pixels
    with h5py.File(path, "r") as f:
        attributes = {name: _attribute(value) for name, value in f.attrs.items()}
    train, test = info.shapes["train"], info.shapes["test"]
    return {"path": str(path.resolve()), "bytes": os.path.getsize(path), "sha256": file_sha256(path),
            "source": info.source, "attributes": attributes,
            "splits": {"train": int(train[0]), "test": int(test[0])},
            "image_shape": [int(side) for side in train[1:]], "classes": list(info.classes)}


def data_line(data: dict) -> str:
    """'CIFAR-10 (JPEG re-encoding) ...; images 16x16x3; train 50000 / test 10000': the data part
    of the scale every table states."""
    height, width, channels = data["image_shape"]
    return (f"{data['source'] or data['path']}; images {height}x{width}x{channels}; "
            f"train {data['splits']['train']} / test {data['splits']['test']}")


def model_line(settings: dict) -> str:
    """'vgg8 width 16; T = 2; batch 64; seeds 0, 1, 2': the model part of the scale."""
    arch = settings["arch"] + (f" width {settings['width']}" if settings.get("width") is not None else "")
    seeds = ", ".join(str(s) for s in settings["seeds"])
    return f"{arch}; T = {settings['time_steps']}; batch {settings['batch_size']}; seeds {seeds}"


def epochs_text(epochs: int, steps_per_epoch=None) -> str:
    """'2 epochs', '1 epoch of at most 5 steps'."""
    return f"{epochs} epoch{'s' if epochs != 1 else ''}" + (f" of at most {steps_per_epoch} steps"
                                                            if steps_per_epoch else "")


def command_line(argv=None, program: str = "python -m gee_ref.reproduce") -> str:
    """The command that made a result, as a shell would take it back."""
    argv = sys.argv[1:] if argv is None else list(argv)
    return " ".join([program, *(shlex.quote(str(a)) for a in argv)])
