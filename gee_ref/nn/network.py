"""A spiking network with direct input encoding and a mean-over-time readout (DESIGN.md 3).

    x [N, C, H, W]  --stem (conv + BN, once)-->  [N, ...]  --repeat T times-->  [T*N, ...]
                    --body (LIF, conv, BN, pools, blocks, FC)-->  [T*N, classes]
                    --split time, mean over t-->  logits [N, classes]

The image is the same at every time step, so the stem's conv and BN (which come before the
first LIF neuron) run once on [N, ...]; ``repeat_time`` then copies the result T times and,
in backward, sums the T gradients: on the tape this equals running them T times. The one
visible difference: in training mode BN's *running* variance uses the unbiased factor
n/(n-1) with n = N*H*W rather than T*N*H*W (its normalisation is identical).

A genetic network holds one ``GeneBank`` (``model.genes``, G named "genes.G"); a dense twin
has ``model.genes = None``. For evolution (eq. 9, genotype [log sigma_1..L, vec(G)]):
``genetic_layers()`` lists the L genetic layers in forward order, ``genes.assign(G)`` sets G
and ``initialise_encodings(rng, sigmas)`` draws every layer's encodings.
"""
from __future__ import annotations

from gee_ref import autograd, backend
from gee_ref.autograd import functional
from gee_ref.nn.genetic import GeneBank, _GeneticLayer, default_sigmas
from gee_ref.nn.lif import lif_modules, set_soft_lif, set_time_steps
from gee_ref.nn.module import Module
from gee_ref.nn.time import repeat_time, split_time
from gee_ref.nn.weight_layer import WeightLayer


class SpikingNetwork(Module):
    """Base of gee_ref's models: subclasses set ``self.stem`` and ``self.body`` then call ``_finish``."""

    def __init__(self, gene_bank: GeneBank | None):
        super().__init__()
        self.genes = gene_bank  # registered first, so the shared G is named "genes.G"

    def _finish(self, time_steps: int, arch: str, config: dict) -> None:
        self.arch, self.config = arch, dict(config)
        self.population_size = None  # P for a stacked population (gee_ref.nn.population)
        self.set_time_steps(time_steps)

    # --- structure ----------------------------------------------------------------------
    def weight_layers(self) -> list:
        """Conv2d/Linear/GeneticConv2d/GeneticLinear modules in forward order."""
        return [m for m in self.modules() if isinstance(m, WeightLayer)]

    def genetic_layers(self) -> list:
        """The genetic layers in forward order (one sigma_l each in the genotype, eq. 9)."""
        return [m for m in self.modules() if isinstance(m, _GeneticLayer)]

    def lif_layers(self) -> list:
        return lif_modules(self)

    @property
    def is_genetic(self) -> bool:
        return self.genes is not None

    def _first_parameter(self):
        return next(p for _, p in self.named_parameters())

    @property
    def dtype(self):
        return self._first_parameter().dtype

    @property
    def device(self) -> str:
        return backend.device_of(self._first_parameter().data)

    def set_time_steps(self, time_steps: int) -> None:
        set_time_steps(self, time_steps)
        self.time_steps = time_steps

    def set_soft_lif(self, soft: bool = True) -> None:
        """Soft spikes (the surrogate's primitive) in every LIF module: exact gradients for FD checks."""
        set_soft_lif(self, soft)

    # --- eq. 9 --------------------------------------------------------------------------
    def initialise_encodings(self, rng, sigmas=None) -> list:
        """Draw every genetic layer's encodings (eq. 9) with ``sigmas`` (default: Kaiming-matching)."""
        layers = self.genetic_layers()
        if not layers:
            raise ValueError("this network has no genetic layers")
        sigmas = default_sigmas(layers, self.genes.G.data) if sigmas is None else [float(s) for s in sigmas]
        if len(sigmas) != len(layers):
            raise ValueError(f"need {len(layers)} sigmas (one per genetic layer), got {len(sigmas)}")
        return [layer.initialise_encodings(rng, s) for layer, s in zip(layers, sigmas)]

    # --- forward ------------------------------------------------------------------------
    def _as_input(self, x):
        if isinstance(x, autograd.Tensor):
            return x
        data = backend.to_device(x, self.device)
        xp = backend.get_array_module(data)
        return autograd.Tensor(xp.asarray(data, dtype=self.dtype))

    def forward(self, x):
        """Images [N, C, H, W] (Tensor or array) -> logits [N, classes], the mean over T steps
        (a population's [N, P, classes])."""
        x = self._as_input(x)
        if x.ndim != 4:
            raise ValueError(f"{self.arch} expects images [N, C, H, W], got shape {tuple(x.shape)}")
        h = self.body(repeat_time(self.stem(x), self.time_steps))
        return functional.mean_over_time(split_time(h, self.time_steps))
