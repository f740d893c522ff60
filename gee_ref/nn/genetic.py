"""Genetic layers (paper eq. 1-3, 9): weights made of neuronal encodings and one shared G.

    W = X_out @ G @ X_in.T                                     (eq. 1)

X_out [C_out, g] and X_in [C_in*kh*kw, g] belong to the layer; G [g, g], the gene
interaction matrix, belongs to the network's ``GeneBank`` and is shared by every genetic
layer, so a network of L genetic layers holds sum_l g*(C_out_l + fan_in_l) + g*g numbers
(eq. 2). The tape sums every layer's contribution into G's one gradient (eq. 4-5).

Chained encodings (eq. 3, option ``share_encodings``): in a stack of genetic Linear layers
the output encoding of layer l is the input encoding of layer l+1, W_{l+1} = X_out^{l+1} G
(X_out^l).T. Layer l+1 then receives layer l's X_out Parameter object as its ``x_in``; this
needs out_l == in_{l+1} (X_out^l is [out_l, g], X_in^{l+1} must be [in_{l+1}, g]).

Initialisation (eq. 9): the entries of X_out and X_in are drawn from N(0, sigma_l) truncated
to [-2 sigma_l, 2 sigma_l], one sigma_l per layer; G starts as the identity (reconstruction:
the paper does not say). The default sigma_l gives W the Kaiming-normal variance
(``default_sigmas``, from ``gee_ref.init.kaiming.kaiming_sigma``). A layer whose X_in is chained
draws only its X_out.
"""
from __future__ import annotations

import numbers

from gee_ref import backend
from gee_ref.autograd import functional
from gee_ref.init.kaiming import kaiming_sigma
from gee_ref.init.truncnorm import truncated_normal
from gee_ref.nn.module import Module, Parameter
from gee_ref.nn.weight_layer import WeightLayer
from gee_ref.ops import genetic_path

TRUNCATION_BOUND = 2.0  # eq. 9: encodings are cut at +-2 sigma_l


class GeneBank(Module):
    """The global gene interaction matrix G [g, g] (eq. 1), initially the identity."""

    def __init__(self, genes: int, dtype=backend.TRAIN_DTYPE):
        super().__init__()
        if not isinstance(genes, numbers.Integral) or isinstance(genes, bool) or genes <= 0:
            raise ValueError(f"the number of genes must be a positive int, got {genes!r}")
        self.genes = int(genes)
        self.G = Parameter(backend.xp_for("cpu").eye(genes, dtype=dtype))

    def assign(self, G) -> None:
        """Overwrite G in place (keeps its device and dtype), e.g. from a genotype."""
        if tuple(G.shape) != (self.genes, self.genes):
            raise ValueError(f"G must have shape ({self.genes}, {self.genes}), got {tuple(G.shape)}")
        xp = backend.get_array_module(self.G.data)
        self.G.data[...] = xp.asarray(backend.to_device(G, backend.device_of(self.G.data)), dtype=self.G.dtype)

    def extra_repr(self):
        return f"genes={self.genes}"


def default_sigmas(layers, G, known=None) -> list:
    """Eq. 9's calibrated sigma_l of each genetic layer, in the given (forward) order: the value
    that gives W = X_out G X_in^T the Kaiming-normal variance for this G
    (``gee_ref.init.kaiming.kaiming_sigma``). A chained layer (eq. 3) depends on its source's
    sigma: a source comes before the layers it feeds, or its sigma is in ``known`` (by id)."""
    sigmas, by_layer = [], dict(known or {})
    for layer in layers:
        source = None if layer.owns_x_in else by_layer[id(layer.x_in_source)]
        sigma = kaiming_sigma(layer.fan_in, G, sigma_in=source, bound=TRUNCATION_BOUND)
        by_layer[id(layer)] = sigma
        sigmas.append(sigma)
    return sigmas


class _GeneticLayer(WeightLayer):
    """Shared state of GeneticConv2d and GeneticLinear: encodings, G, initialisation."""

    def _make_encodings(self, gene_bank: GeneBank, x_in_source, rng, dtype):
        if not isinstance(gene_bank, GeneBank):
            raise ValueError(f"a genetic layer needs a GeneBank, got {type(gene_bank).__name__}")
        # A reference, not a child module: G is the network's, named "genes.G" there.
        object.__setattr__(self, "gene_bank", gene_bank)
        g = gene_bank.genes
        xp = backend.xp_for("cpu")
        self.x_out = Parameter(xp.zeros((self.out_features, g), dtype=dtype))
        if x_in_source is not None:
            if not isinstance(x_in_source, _GeneticLayer) or x_in_source.out_features != self.fan_in:
                raise ValueError(f"chained encodings (eq. 3) need the previous genetic layer's output size "
                                 f"to equal this layer's fan_in {self.fan_in}")
            self.x_in = x_in_source.x_out  # the same Parameter object (eq. 3)
        else:
            self.x_in = Parameter(xp.zeros((self.fan_in, g), dtype=dtype))
        object.__setattr__(self, "x_in_source", x_in_source)
        self.sigma = None
        self.path = "auto"
        self.initialise_encodings(backend.rng(0) if rng is None else rng)

    @property
    def genes(self) -> int:
        return self.gene_bank.genes

    @property
    def owns_x_in(self) -> bool:
        """False when X_in is the previous layer's X_out (eq. 3)."""
        return self.x_in_source is None

    def initialise_encodings(self, rng, sigma: float | None = None) -> float:
        """Draw X_out (and X_in unless chained) from eq. 9's truncated normal; returns sigma_l.

        ``sigma=None``: the Kaiming-matching value for the current G (``default_sigmas``)."""
        if sigma is None:
            source = {} if self.owns_x_in else {id(self.x_in_source): self.x_in_source.sigma}
            sigma = default_sigmas([self], self.gene_bank.G.data, source)[0]
        sigma = float(sigma)
        if not sigma > 0:
            raise ValueError(f"sigma must be positive, got {sigma}")
        targets = [self.x_out] + ([self.x_in] if self.owns_x_in else [])
        for p in targets:
            values = truncated_normal(rng, p.shape, sigma, bound=TRUNCATION_BOUND, dtype=p.dtype)
            p.data[...] = backend.to_device(values, backend.device_of(p.data))
        self.sigma = sigma
        return sigma

    def weight(self):
        """W = X_out @ G @ X_in.T (eq. 1) as an array [C_out, fan_in] (for inspection, not training)."""
        return genetic_path.genetic_weight(self.x_out.data, self.gene_bank.G.data, self.x_in.data)

    def factored_macs(self, input_hw=None) -> int:
        """MACs of the factored path X_out (G (X_in.T cols)) for one sample and one time step."""
        return genetic_path.forward_macs("factored", self.out_features, self.fan_in, self.genes,
                                         self.output_positions(input_hw))


class GeneticConv2d(_GeneticLayer):
    """conv2d with W = X_out @ G @ X_in.T viewed as [C_out, C_in, kh, kw] (eq. 1); no bias."""

    def __init__(self, in_channels, out_channels, kernel_size, gene_bank: GeneBank, stride=1, padding=0,
                 x_in_source=None, rng=None, dtype=backend.TRAIN_DTYPE, role=None):
        super().__init__(role)
        self._set_conv_geometry(in_channels, out_channels, kernel_size, stride, padding)
        self._make_encodings(gene_bank, x_in_source, rng, dtype)

    def forward(self, x):
        self._observe(x)
        return functional.genetic_conv2d(x, self.x_out, self.gene_bank.G, self.x_in, self.kernel_size,
                                         stride=self.stride, padding=self.padding, path=self.path)

    def extra_repr(self):
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}, genes={self.genes}")


class GeneticLinear(_GeneticLayer):
    """y = x @ W.T + b with W = X_out @ G @ X_in.T (eq. 1), W [out, in]."""

    def __init__(self, in_features, out_features, gene_bank: GeneBank, bias=True, x_in_source=None,
                 rng=None, dtype=backend.TRAIN_DTYPE, role=None):
        super().__init__(role)
        self.in_features, self.out_features = int(in_features), int(out_features)
        self.fan_in = self.in_features
        self._make_encodings(gene_bank, x_in_source, rng, dtype)
        self.b = Parameter(backend.xp_for("cpu").zeros(self.out_features, dtype=dtype)) if bias else None

    def forward(self, x):
        self._observe(x)
        return functional.genetic_linear(x, self.x_out, self.gene_bank.G, self.x_in, self.b, path=self.path)

    def extra_repr(self):
        shared = ", x_in chained" if not self.owns_x_in else ""
        return f"{self.in_features}, {self.out_features}, genes={self.genes}, bias={self.b is not None}{shared}"
