"""Which weight layers of a model are genetic (eq. 1) and which stay dense: the layer factory.

Models ask the factory for each weight layer with a *role*:

    "stem"        the first convolution (sees the analog image)
    "conv"        every other k x k convolution
    "shortcut"    a residual block's 1x1 projection
    "hidden_fc"   a fully connected layer that feeds LIF neurons
    "classifier"  the last fully connected layer (its outputs are the logits)

and the factory returns a genetic layer when the network has a GeneBank and the role is in
its *scope*, else the dense twin. Scopes (the paper does not list its genetic layers; which
one reproduces its Table 2 counts is recorded in each model's docstring):

    "all"                  every convolution and fully connected layer
    "all_but_classifier"   all but the last FC layer
    "convs"                the k x k convolutions (stem included); 1x1 shortcuts and FC dense
    "hidden"               all but the first convolution and the classifier

With ``share_encodings`` (eq. 3), a genetic Linear layer created right after another genetic
Linear layer whose output size equals its input size takes that layer's X_out as its X_in.
Any other layer in between breaks the chain.
"""
from __future__ import annotations

from gee_ref import backend
from gee_ref.nn.dense import Conv2d, Linear
from gee_ref.nn.genetic import GeneBank, GeneticConv2d, GeneticLinear
from gee_ref.nn.lif import LIF
from gee_ref.nn.norm import BatchNorm

ROLES = ("stem", "conv", "shortcut", "hidden_fc", "classifier")
SCOPES = {
    "all": frozenset(ROLES),
    "all_but_classifier": frozenset(ROLES) - {"classifier"},
    "convs": frozenset({"stem", "conv"}),
    "hidden": frozenset({"conv", "shortcut", "hidden_fc"}),
}


def resolve_scope(scope) -> frozenset:
    """A scope name or an iterable of roles -> the set of roles made genetic."""
    if isinstance(scope, str):
        if scope not in SCOPES:
            raise ValueError(f"unknown genetic scope {scope!r}: expected one of {', '.join(SCOPES)} "
                             f"or a set of roles from {', '.join(ROLES)}")
        return SCOPES[scope]
    roles = frozenset(scope)
    unknown = sorted(roles - set(ROLES))
    if unknown:
        raise ValueError(f"unknown layer roles {unknown}: expected roles from {', '.join(ROLES)}")
    return roles


class LayerFactory:
    """Builds a model's weight layers: genetic (sharing ``gene_bank``) or dense, by role."""

    def __init__(self, gene_bank: GeneBank | None, scope="all", share_encodings=False, rng=None,
                 dtype=backend.TRAIN_DTYPE):
        self.gene_bank = gene_bank
        self.roles = resolve_scope(scope)
        self.share_encodings = bool(share_encodings)
        self.rng = backend.rng(0) if rng is None else rng
        self.dtype = dtype
        self._previous = None  # the last layer made: a chain of genetic Linear layers continues from it

    def is_genetic(self, role: str) -> bool:
        if role not in ROLES:
            raise ValueError(f"unknown layer role {role!r}: expected one of {', '.join(ROLES)}")
        return self.gene_bank is not None and role in self.roles

    def conv(self, role, in_channels, out_channels, kernel_size, stride=1, padding=0):
        if self.is_genetic(role):
            layer = GeneticConv2d(in_channels, out_channels, kernel_size, self.gene_bank, stride=stride,
                                  padding=padding, rng=self.rng, dtype=self.dtype, role=role)
        else:
            layer = Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=padding,
                           rng=self.rng, dtype=self.dtype, role=role)
        self._previous = layer
        return layer

    def linear(self, role, in_features, out_features, bias=True):
        if self.is_genetic(role):
            source = self._previous
            chained = (self.share_encodings and isinstance(source, GeneticLinear)
                       and source.out_features == in_features)
            layer = GeneticLinear(in_features, out_features, self.gene_bank, bias=bias,
                                  x_in_source=source if chained else None, rng=self.rng,
                                  dtype=self.dtype, role=role)
        else:
            layer = Linear(in_features, out_features, bias=bias, rng=self.rng, dtype=self.dtype, role=role)
        self._previous = layer
        return layer

    def fc_head(self, in_features, hidden_widths, num_classes, normalised=False) -> list:
        """The fully connected head: FC -> LIF for each hidden width, then the classifier FC.

        ``normalised``: FC (no bias) -> BatchNorm -> LIF instead, batch norm setting the scale of
        the neurons' input as it does after every convolution (a bias before it would be removed
        again by its mean)."""
        layers = []
        for width in hidden_widths:
            if normalised:
                layers += [self.linear("hidden_fc", in_features, width, bias=False), BatchNorm(width, dtype=self.dtype)]
            else:
                layers.append(self.linear("hidden_fc", in_features, width))
            layers.append(LIF())
            in_features = width
        return layers + [self.linear("classifier", in_features, num_classes)]
