"""The genotype that GEE evolves, and its mapping to a network (paper eq. 9, section 3.2).

    x = [log sigma_1, ..., log sigma_L, vec(G)]        n = L + g*g numbers

* sigma_l, one per genetic layer in forward order (``model.genetic_layers()``), is the
  standard deviation of the truncated normal (mean 0, cut to [-2 sigma_l, 2 sigma_l]) from
  which that layer's encodings X_out and X_in are drawn (eq. 9). It is evolved in log space,
  so every real vector is a valid genotype (sigma_l > 0).
* G is the global gene interaction matrix [g, g] shared by every genetic layer (eq. 1);
  vec(G) is its row-major flattening, ``G.reshape(-1)`` (reconstruction: the paper does not
  say which order).

Starting genotype (the CMA-ES mean m_0 and the "random" variant of the ablation): G = I and
each sigma_l = ``kaiming_sigma(fan_in_l, I)``, the value that gives W = X_out G X_in^T the
Kaiming-normal variance (``gee_ref.nn.genetic.default_sigmas``).

A phenotype is a network whose G is the genotype's and whose encodings are freshly drawn with
the genotype's sigmas (``apply_genome``): the genotype fixes the *distribution* of the
initial wiring, the random generator the particular draw.

``save_genome``/``load_genome`` keep a genotype in an HDF5 file (a gee_ref checkpoint with the
group ``genome`` holding ``vector``, written atomically) with the architecture, g, the names
of the genetic layers and the model settings, so that ``python -m gee_ref.train --genome``
rebuilds exactly the network it belongs to.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

import numpy

from gee_ref import backend
from gee_ref.nn.genetic import default_sigmas
from gee_ref.storage.checkpoint import CheckpointError, load_checkpoint, save_checkpoint

GENOME_FORMAT = "gee_ref-genome-v1"


class GenomeError(ValueError):
    """A genome that does not fit a network, or a file that is not a genome; one line."""


@dataclass(frozen=True)
class Genome:
    """One genotype (eq. 9) with what it takes to rebuild its network.

    ``vector`` is float64 [L + g*g] on the host; ``layer_names`` are the module names of the
    L genetic layers in forward order; ``model_config`` the ``build_model`` settings
    (classes, channels, image size, time steps, ...) of the network it was made for.
    """

    vector: numpy.ndarray
    arch: str
    genes: int
    layer_names: tuple
    model_config: dict = field(default_factory=dict)

    def __post_init__(self):
        vector = numpy.array(backend.to_host(self.vector), dtype=numpy.float64).reshape(-1)
        genes, layers = int(self.genes), len(self.layer_names)
        if genes <= 0:
            raise GenomeError(f"genes must be positive, got {self.genes}")
        if vector.size != genotype_length(layers, genes):
            raise GenomeError(f"a genotype for {layers} genetic layers and g = {genes} has "
                              f"{genotype_length(layers, genes)} numbers, got {vector.size}")
        vector.flags.writeable = False
        object.__setattr__(self, "vector", vector)
        object.__setattr__(self, "genes", genes)
        object.__setattr__(self, "layer_names", tuple(str(n) for n in self.layer_names))
        object.__setattr__(self, "model_config", dict(self.model_config))

    @property
    def num_layers(self) -> int:
        return len(self.layer_names)

    @property
    def log_sigmas(self) -> numpy.ndarray:
        return self.vector[:self.num_layers]

    @property
    def sigmas(self) -> numpy.ndarray:
        """sigma_l = exp(x_l), l = 1..L."""
        return numpy.exp(self.log_sigmas)

    @property
    def G(self) -> numpy.ndarray:
        """The gene interaction matrix [g, g] (row-major vec^-1 of the tail of x)."""
        return self.vector[self.num_layers:].reshape(self.genes, self.genes)

    def with_vector(self, vector) -> "Genome":
        """The same network description with another genotype vector."""
        return Genome(vector, self.arch, self.genes, self.layer_names, self.model_config)


def genotype_length(num_layers: int, genes: int) -> int:
    """n = L + g^2 (eq. 9)."""
    return int(num_layers) + int(genes) ** 2


def genotype_vector(log_sigmas, G) -> numpy.ndarray:
    """x = [log sigma_1..L, vec(G)] (eq. 9), float64 on the host."""
    log_sigmas = numpy.asarray(backend.to_host(log_sigmas), dtype=numpy.float64).reshape(-1)
    G = numpy.asarray(backend.to_host(G), dtype=numpy.float64)
    if G.ndim != 2 or G.shape[0] != G.shape[1]:
        raise GenomeError(f"G must be a square matrix, got shape {G.shape}")
    return numpy.concatenate([log_sigmas, G.reshape(-1)])


def genetic_layer_names(model) -> tuple:
    """Module names of the model's genetic layers, in forward order (one sigma_l each)."""
    layers = model.genetic_layers()
    names = {id(module): name for name, module in model.named_modules()}
    return tuple(names[id(layer)] for layer in layers)


def _model_genes(model) -> int:
    if getattr(model, "genes", None) is None or not model.genetic_layers():
        raise GenomeError("a genome needs a genetic network (one with genetic layers and a GeneBank)")
    return int(model.genes.genes)


def describe(model) -> Genome:
    """The genome of ``model`` as it is now: its G and each layer's current sigma_l."""
    genes = _model_genes(model)
    sigmas = [layer.sigma for layer in model.genetic_layers()]
    vector = genotype_vector(numpy.log(sigmas), backend.to_host(model.genes.G.data))
    return Genome(vector, model.config.get("arch", model.arch), genes, genetic_layer_names(model),
                  _model_config(model))


def _model_config(model) -> dict:
    """The ``build_model`` settings of a model that a genome file keeps (JSON-ready)."""
    keep = ("num_classes", "in_channels", "image_size", "time_steps", "share_encodings", "scope", "width")
    return {k: model.config[k] for k in keep if k in model.config}


STARTS = ("paper", "calibrated")


def starting_genome(model, start: str = "calibrated") -> Genome:
    """The starting genotype m_0 (the CMA-ES mean at generation 0), G = I_g in both starts:

    * ``"paper"``: every sigma_l = 1, the encodings drawn from N(0, 1) cut at +-2, as PyTorch's
      ``trunc_normal_`` defaults would draw a generic parameter (reconstruction: the paper's
      Table 4 "random" model and the start of its evolution, DESIGN.md eq. 9). Behind batch norm
      the forward pass is the same as from any other sigma; each layer's relative gradient is
      not: it scales as 1/sigma_l^2, which is the vanishing-gradient problem the paper evolves
      the encodings against.
    * ``"calibrated"``: sigma_l = kaiming_sigma(fan_in_l, I_g), which gives every W = X_out G X_in^T
      the Kaiming-normal variance (``gee_ref.nn.genetic.default_sigmas``): gee_ref's own
      addition, which solves that scale problem at the start.

    Computed for the identity whatever ``model``'s G is now; ``model`` is not changed.
    """
    if start not in STARTS:
        raise GenomeError(f"unknown start {start!r}: expected one of {', '.join(STARTS)}")
    genes = _model_genes(model)
    identity = numpy.eye(genes)
    layers = model.genetic_layers()
    sigmas = default_sigmas(layers, identity) if start == "calibrated" else [1.0] * len(layers)
    vector = genotype_vector(numpy.log(sigmas), identity)
    return Genome(vector, model.config.get("arch", model.arch), genes, genetic_layer_names(model),
                  _model_config(model))


def check_fits(model, genome: Genome) -> None:
    """GenomeError unless ``genome`` was made for ``model``'s architecture, g and layers."""
    genes = _model_genes(model)
    arch = model.config.get("arch", getattr(model, "arch", None))
    if genome.arch != arch:
        raise GenomeError(f"the genome is for architecture {genome.arch!r}, the network is {arch!r}")
    if genome.genes != genes:
        raise GenomeError(f"the genome has g = {genome.genes} genes, the network g = {genes}")
    names = genetic_layer_names(model)
    if genome.layer_names != names:
        raise GenomeError(f"the genome's {genome.num_layers} genetic layers do not match the network's "
                          f"{len(names)} ({', '.join(names)})")


def apply_genome(model, genome: Genome, rng) -> list:
    """Make ``model`` the phenotype of ``genome`` (eq. 9): set G, then draw every genetic
    layer's encodings from the truncated normal with its sigma_l, using ``rng``.

    Returns the sigmas used. Raises GenomeError when the genome belongs to another network,
    or when a sigma is not a finite positive number (exp of a huge log sigma).
    """
    check_fits(model, genome)
    sigmas = genome.sigmas
    if not numpy.all(numpy.isfinite(sigmas)) or not numpy.all(sigmas > 0):
        raise GenomeError(f"the genome's sigmas must be finite and positive, got {sigmas.tolist()}")
    if not numpy.all(numpy.isfinite(genome.G)):
        raise GenomeError("the genome's G holds NaN or inf")
    model.genes.assign(genome.G)
    return model.initialise_encodings(rng, [float(s) for s in sigmas])


# ---------------------------------------------------------------------------- files

def digest(genome: Genome) -> str:
    """A short fingerprint of a genome (its vector, architecture, g and layer names): what a run
    trained from a genome file keeps, so that the file may move with its run folder."""
    text = json.dumps([genome.arch, genome.genes, list(genome.layer_names)]).encode() + genome.vector.tobytes()
    return hashlib.sha256(text).hexdigest()[:16]


def save_genome(path, genome: Genome, extra: dict | None = None) -> None:
    """Write ``genome`` to the HDF5 file ``path`` atomically (``gee_ref.storage.checkpoint``).

    ``extra``: JSON-ready facts to keep beside it (its fitness, generation, run seed).
    """
    meta = {"format": GENOME_FORMAT, "arch": genome.arch, "genes": genome.genes,
            "layer_names": list(genome.layer_names), "model_config": genome.model_config,
            "extra": dict(extra or {})}
    save_checkpoint(path, {"genome": {"vector": genome.vector}}, meta)


def load_genome(path) -> Genome:
    """The Genome stored in ``path`` by ``save_genome``; GenomeError (one line) otherwise."""
    try:
        tensors, meta = load_checkpoint(path)
    except CheckpointError as error:
        raise GenomeError(f"cannot read genome: {error}") from None
    if meta.get("format") != GENOME_FORMAT or "vector" not in tensors.get("genome", {}):
        found = meta.get("format")
        raise GenomeError(f"{path} is not a gee_ref genome file: its format is "
                          f"{'not given' if found is None else repr(found)}, a genome's is {GENOME_FORMAT!r}")
    genome = Genome(tensors["genome"]["vector"], meta["arch"], meta["genes"], tuple(meta["layer_names"]),
                    meta.get("model_config", {}))
    if not numpy.all(numpy.isfinite(genome.vector)):
        raise GenomeError(f"{path}: the genotype holds NaN or inf")
    return genome


def load_genome_extra(path) -> dict:
    """The ``extra`` facts saved with a genome (empty when none)."""
    return dict(load_checkpoint(path)[1].get("extra", {}))


__all__ = ["GENOME_FORMAT", "STARTS", "Genome", "digest", "GenomeError", "apply_genome", "check_fits", "describe",
           "genetic_layer_names", "genotype_length", "genotype_vector", "load_genome", "load_genome_extra",
           "save_genome", "starting_genome"]
