"""Layer 4. The model registry: ``build_model(arch, ...)`` builds a genetic network or its dense
twin (may import layers 1-4).

    model = build_model("resnet19", genes=100)             # genetic (eq. 1-3), one shared G
    twin = build_model("resnet19", genetic=False)          # same layout, Conv2d/Linear, Kaiming init

Arguments left as None take the architecture's defaults (``ARCHITECTURES[arch]``): 10
classes, 3 channels, 32x32 images and g = 100 for the CIFAR networks; 1000 classes and
224x224 for resnet34; 10 classes, 1 channel, 8x8 and g = 32 for digits; 10 classes, 3
channels, 32x32 and g = 16 for the small nets vgg8 and resnet14. These two also take
``width=w`` (default 16), kept in ``model.config`` so that a genome file or a checkpoint
rebuilds the same network. ``scope`` picks which layers are genetic
(``gee_ref.nn.factory.SCOPES``; the default per architecture is justified in its module's
docstring). Parameters are drawn from ``backend.rng(seed)`` on the host in ``dtype`` and
then moved to ``device``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from gee_ref import backend
from gee_ref.models.cifarnet import cifarnet
from gee_ref.models.digits import digits
from gee_ref.models.options import positive_int
from gee_ref.models.resnet import resnet18, resnet19, resnet34
from gee_ref.models.resnet14 import resnet14
from gee_ref.models.vgg8 import vgg8
from gee_ref.models.vgg16 import vgg16
from gee_ref.nn.factory import LayerFactory, resolve_scope
from gee_ref.nn.genetic import GeneBank


@dataclass(frozen=True)
class ArchSpec:
    builder: Callable
    num_classes: int
    in_channels: int
    image_size: int
    genes: int
    scope: str
    summary: str
    width: int | None = None  # the default of the ``width`` option; None: the layout has no width option


ARCHITECTURES = {
    "cifarnet": ArchSpec(cifarnet, 10, 3, 32, 100, "all_but_classifier",
                         "CIFARNet of STBP (Wu et al.), 5 conv + 3 FC, 32x32"),
    "vgg16": ArchSpec(vgg16, 10, 3, 32, 100, "all_but_classifier", "VGG-16 with a 4096-4096 classifier, 32x32"),
    "resnet18": ArchSpec(resnet18, 10, 3, 32, 100, "convs", "ResNet-18, CIFAR 3x3 stem, 32x32"),
    "resnet19": ArchSpec(resnet19, 10, 3, 32, 100, "convs", "ResNet-19 of tdBN, 32x32"),
    "resnet34": ArchSpec(resnet34, 1000, 3, 224, 100, "convs", "ResNet-34, ImageNet 7x7 stem, 224x224"),
    "digits": ArchSpec(digits, 10, 1, 8, 32, "all", "small conv net for 8x8 UCI digits (works on 32x32 RGB too)"),
    "vgg8": ArchSpec(vgg8, 10, 3, 32, 16, "all", "small plain VGG, 6 conv + 2 FC, any side divisible by 8",
                     width=16),
    "resnet14": ArchSpec(resnet14, 10, 3, 32, 16, "convs", "small ResNet, 13 genetic convs, any side divisible by 4",
                         width=16),
}


def build_model(arch: str, genetic: bool = True, genes: int | None = None, num_classes: int | None = None,
                in_channels: int | None = None, image_size: int | None = None, time_steps: int = 4,
                share_encodings: bool = False, scope=None, seed: int = 0, dtype=backend.TRAIN_DTYPE,
                device: str = "cpu", **arch_options):
    """A spiking network of architecture ``arch`` (see ``ARCHITECTURES``): genetic or dense.

    Unknown architectures, non-positive sizes and a ``width`` for a layout without one are ValueErrors.
    """
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {arch!r}: expected one of {', '.join(ARCHITECTURES)}")
    spec = ARCHITECTURES[arch]
    genes = positive_int(spec.genes if genes is None else genes, "genes")
    num_classes = positive_int(spec.num_classes if num_classes is None else num_classes, "num_classes")
    in_channels = positive_int(spec.in_channels if in_channels is None else in_channels, "in_channels")
    image_size = positive_int(spec.image_size if image_size is None else image_size, "image_size")
    time_steps = positive_int(time_steps, "time_steps")
    if spec.width is not None:
        arch_options.setdefault("width", spec.width)
    elif "width" in arch_options:
        with_width = ", ".join(name for name, s in ARCHITECTURES.items() if s.width is not None)
        raise ValueError(f"{arch} has no width option (the architectures with one: {with_width})")
    scope = spec.scope if scope is None else scope
    resolve_scope(scope)
    backend.xp_for(device)  # refuse an unknown or unavailable device before building
    gene_bank = GeneBank(genes, dtype=dtype) if genetic else None
    factory = LayerFactory(gene_bank, scope=scope, share_encodings=share_encodings,
                           rng=backend.rng(seed), dtype=dtype)
    model = spec.builder(factory, num_classes, in_channels, image_size, time_steps, **arch_options)
    model.config.update(arch=arch, genetic=bool(genetic), genes=genes if genetic else None,
                        num_classes=num_classes, in_channels=in_channels, image_size=image_size,
                        time_steps=time_steps, share_encodings=bool(share_encodings),
                        scope=scope if isinstance(scope, str) else sorted(scope), seed=seed)
    if device != "cpu":
        model.to(device)
    return model


def build_from_config(config: dict, genetic=None):
    """The network a run's settings describe, on their device: genetic, or with ``genetic=False``
    the dense twin. ``config`` holds arch, genetic, genes, num_classes, image_shape [H, W, C],
    time_steps, seed and device (optionally scope, share_encodings and width); the weights are drawn
    from ``derive_seed(seed, "init")``, so a run, an evolution's individual and a resumed run
    build the same network from the same settings."""
    height, _, channels = config["image_shape"]
    width = {} if config.get("width") is None else {"width": config["width"]}
    return build_model(config["arch"], genetic=config["genetic"] if genetic is None else genetic,
                       genes=config["genes"], num_classes=config["num_classes"], in_channels=channels,
                       image_size=height, time_steps=config["time_steps"], scope=config.get("scope"),
                       share_encodings=config.get("share_encodings", False),
                       seed=backend.derive_seed(config["seed"], "init"), device=config["device"], **width)


__all__ = ["ARCHITECTURES", "ArchSpec", "build_from_config", "build_model"]
