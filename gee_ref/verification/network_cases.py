"""Golden cases for whole networks: the digits net and genetic ResNet basic blocks, over T steps.

Each case stores the inputs, every parameter and BN buffer by its module name, the outputs
(logits and loss, or the block's output spikes), the spikes of every LIF layer, the BN
buffers after the training-mode forward, and the gradient of every parameter, the global G
(eq. 1, one gradient summed over all genetic layers) included.

Parameters are drawn here, not by the models' initialisation, so that G is not the identity
and the LIF neurons fire at useful rates. Hard spikes make a network's output a step
function of its inputs: draws are repeated (deterministically) until every LIF membrane
stays at least ``NETWORK_MARGIN`` from its threshold (``margins``), so that a float32 or
reordered float64 candidate fires exactly the same spikes.
"""
from __future__ import annotations

import contextlib

import numpy

from gee_ref import autograd, backend
from gee_ref.autograd import functional
from gee_ref.verification import conventions as conv
from gee_ref.verification import margins
from gee_ref.verification.case import Case, as_float64
from gee_ref.models import build_model
from gee_ref.nn import (LIF, AvgPool2d, BasicBlock, BatchNorm, Conv2d, Flatten, GeneBank, GeneticConv2d, GeneticLinear,
                        GlobalAvgPool2d, LayerFactory, Linear, MaxPool2d, Sequential, set_time_steps)
from gee_ref.nn.genetic import _GeneticLayer
from gee_ref.nn.lif import lif_modules

NETWORK_MARGIN = 1e-4
MAX_DRAWS = 50

DIGITS_CONFIG = {"genes": 3, "channels": [2, 3], "hidden": 5, "num_classes": 3, "in_channels": 1,
                 "image_size": 6, "time_steps": 3, "batch": 2}

BLOCK_CONFIGS = {
    "network/resnet_block/projection_s2": {"genes": 3, "in_channels": 2, "out_channels": 3, "stride": 2,
                                           "image_size": 4, "time_steps": 3, "batch": 2},
    "network/resnet_block/identity_s1": {"genes": 3, "in_channels": 2, "out_channels": 2, "stride": 1,
                                         "image_size": 3, "time_steps": 3, "batch": 2},
}

BLOCK_EQUATION = ("out = LIF(BN(conv3x3_1(LIF(BN(conv3x3_s(x))))) + shortcut(x)); shortcut(x) = x, or "
                  "BN(conv1x1_s(x)) when the stride or the channel count changes; x and out [T*N, C, H, W]")



def describe_layers(model) -> list:
    """The forward of a SpikingNetwork as a list of layer records (machine-readable, JSON-ready).

    ``[stem layers..., repeat_time, body layers..., mean_over_time]``; each record names the
    module (its parameters are ``<name>.<parameter>``) and its settings; a genetic Linear layer
    whose X_in is chained (eq. 3) names the parameter it reads as ``x_in``.
    """

    def record(name, m):
        if isinstance(m, GeneticConv2d):
            return {"name": name, "type": "genetic_conv2d", "kernel_size": list(m.kernel_size),
                    "stride": list(m.stride), "padding": list(m.padding)}
        if isinstance(m, Conv2d):
            return {"name": name, "type": "conv2d", "stride": list(m.stride), "padding": list(m.padding)}
        if isinstance(m, GeneticLinear):
            record = {"name": name, "type": "genetic_linear", "bias": m.b is not None}
            if not m.owns_x_in:  # eq. 3: X_in is the previous genetic layer's X_out
                record["x_in"] = f"{names[id(m.x_in_source)]}.x_out"
            return record
        if isinstance(m, Linear):
            return {"name": name, "type": "linear", "bias": m.b is not None}
        if isinstance(m, BatchNorm):
            return {"name": name, "type": "batch_norm", "eps": m.eps, "momentum": m.momentum}
        if isinstance(m, LIF):
            return {"name": name, "type": "lif", "tau": m.tau, "v_th": m.v_th, "v_reset": m.v_reset,
                    "surrogate": m.surrogate, "alpha": m.alpha, "detach_reset": m.detach_reset, "soft": m.soft}
        if isinstance(m, MaxPool2d):
            return {"name": name, "type": "max_pool2d", "kernel_size": m.kernel_size, "stride": m.stride,
                    "padding": m.padding}
        if isinstance(m, AvgPool2d):
            return {"name": name, "type": "avg_pool2d", "kernel_size": m.kernel_size, "stride": m.stride,
                    "padding": m.padding}
        if isinstance(m, GlobalAvgPool2d):
            return {"name": name, "type": "global_avg_pool2d"}
        if isinstance(m, Flatten):
            return {"name": name, "type": "flatten"}
        raise ValueError(f"describe_layers: no record for {type(m).__name__} ({name})")

    names = {id(m): n for n, m in model.named_modules()}

    def walk(prefix, sequential):
        if not isinstance(sequential, Sequential):
            raise ValueError(f"describe_layers expects {prefix} to be a Sequential")
        return [record(f"{prefix}.{i}", m) for i, m in enumerate(sequential)]

    return (walk("stem", model.stem) + [{"type": "repeat_time", "time_steps": model.time_steps}]
            + walk("body", model.body) + [{"type": "mean_over_time"}])


def randomise(module, gene_bank, rng) -> None:
    """Fresh parameter and buffer values for every layer under ``module`` (and G)."""

    g = gene_bank.genes
    gene_bank.G.data[...] = numpy.eye(g) + 0.3 * rng.standard_normal((g, g))
    for _, layer in module.named_modules():
        if isinstance(layer, _GeneticLayer):
            scale = (2.0 / (layer.fan_in * g)) ** 0.25  # Var(W) ~ 2 / fan_in, as Kaiming (eq. 9)
            layer.x_out.data[...] = scale * rng.standard_normal(layer.x_out.shape)
            if layer.owns_x_in:
                layer.x_in.data[...] = scale * rng.standard_normal(layer.x_in.shape)
        elif isinstance(layer, (Conv2d, Linear)):
            layer.w.data[...] = (2.0 / layer.fan_in) ** 0.5 * rng.standard_normal(layer.w.shape)
        elif isinstance(layer, BatchNorm):
            c = layer.num_features
            layer.gamma.data[...] = 1.0 + 0.2 * rng.standard_normal(c)
            layer.beta.data[...] = 0.4 + 0.2 * rng.standard_normal(c)
            layer.running_mean[...] = 0.1 * rng.standard_normal(c)
            layer.running_var[...] = 1.0 + 0.2 * rng.random(c)
        b = getattr(layer, "b", None) if isinstance(layer, (_GeneticLayer, Linear)) else None
        if b is not None:
            b.data[...] = 0.3 * rng.standard_normal(b.shape)


@contextlib.contextmanager
def lif_inputs(module, store: list):
    """While active, every LIF module under ``module`` appends (lif, input array) to ``store``."""

    neurons = lif_modules(module)
    for neuron in neurons:
        def forward(x, neuron=neuron):
            store.append((neuron, x.data))
            return LIF.forward(neuron, x)
        object.__setattr__(neuron, "forward", forward)
    try:
        yield
    finally:
        for neuron in neurons:
            neuron.__dict__.pop("forward", None)


def threshold_margin(recorded) -> float:
    """The smallest distance of any LIF membrane H - v_th to a kink, over the recorded LIF inputs."""
    smallest = numpy.inf
    for neuron, x in recorded:
        x_seq = backend.to_host(x).reshape((neuron.time_steps, -1) + tuple(x.shape[1:]))
        h = margins.membrane(x_seq, neuron.tau, neuron.v_th, neuron.v_reset, neuron.surrogate, neuron.alpha,
                             neuron.soft)
        smallest = min(smallest, margins.margin(h, neuron.v_th,
                                                margins.kinks(neuron.surrogate, neuron.alpha, neuron.soft)))
    return float(smallest)


def _state(module, gene_bank):
    """Parameters (G first, as "genes.G") and buffers by name, as float64 host copies."""
    params = {"genes.G": as_float64(gene_bank.G.data)}
    params.update({n: as_float64(p.data) for n, p in module.named_parameters() if p is not gene_bank.G})
    buffers = {n: as_float64(b) for n, b in module.named_buffers()}
    return params, buffers


def _grads(module, gene_bank):
    grads = {"genes.G": as_float64(gene_bank.G.grad)}
    grads.update({n: as_float64(p.grad) for n, p in module.named_parameters() if p is not gene_bank.G})
    return grads


def _lif_spikes(module) -> dict:
    """The last spikes [T, N, ...] of every LIF module, by module name."""
    return {name: as_float64(m.last_spikes) for name, m in module.named_modules() if isinstance(m, LIF)}


def _draw_until_margin(build, draw_inputs, run, rng):
    """(module, gene_bank, inputs, margin, draws): the first draw whose LIF margin is wide enough."""
    for draw in range(1, MAX_DRAWS + 1):
        module, gene_bank = build()
        randomise(module, gene_bank, rng)
        inputs = draw_inputs()
        _, buffers = _state(module, gene_bank)
        recorded = []
        with autograd.no_grad(), lif_inputs(module, recorded):
            run(module, inputs)
        margin = threshold_margin(recorded)
        if margin >= NETWORK_MARGIN:
            for name, buffer in module.named_buffers():  # undo the trial forward's BN update
                buffer[...] = buffers[name]
            return module, gene_bank, inputs, margin, draw
    raise RuntimeError(f"no draw in {MAX_DRAWS} kept every LIF membrane {NETWORK_MARGIN} from threshold")


def digits_case(share_encodings: bool):
    def build_case(name, rng) -> Case:
        return _digits_case(name, rng, share_encodings)
    return build_case


def _digits_case(name, rng, share_encodings) -> Case:
    """The digits net (every layer genetic, one shared G), a training-mode forward and backward."""

    cfg = {**DIGITS_CONFIG, "share_encodings": share_encodings}
    n, size = cfg["batch"], cfg["image_size"]

    def build():
        model = build_model("digits", genes=cfg["genes"], channels=tuple(cfg["channels"]), hidden=cfg["hidden"],
                            num_classes=cfg["num_classes"], in_channels=cfg["in_channels"], image_size=size,
                            time_steps=cfg["time_steps"], share_encodings=share_encodings, dtype=numpy.float64)
        return model, model.genes

    def draw_inputs():
        return {"images": 2.0 * rng.random((n, cfg["in_channels"], size, size)),
                "labels": rng.integers(0, cfg["num_classes"], size=n).astype(numpy.int64)}

    model, bank, inputs, margin, draws = _draw_until_margin(build, draw_inputs, lambda m, x: m(x["images"]), rng)
    params, buffers = _state(model, bank)
    model.train().record(True)
    logits = model(inputs["images"])
    loss = functional.cross_entropy(logits, inputs["labels"])
    loss.backward(numpy.float64(1.0))
    outputs = {"logits": as_float64(logits.data), "loss": as_float64(loss.data)}
    outputs.update({f"buffers/{k}": as_float64(v) for k, v in model.named_buffers()})
    outputs.update({f"spikes/{k}": v for k, v in _lif_spikes(model).items()})
    return Case(
        name=name, kind="network", function="gee_ref.models.build_model",
        description=f"digits net, genetic g={cfg['genes']}{', chained encodings (eq. 3)' if share_encodings else ''}, "
                    f"T={cfg['time_steps']}, batch {n}, "
                    f"{size}x{size} images: logits, loss and every parameter gradient",
        params=dict(cfg), conventions={**conv.network(cfg["time_steps"], conv.lif(), conv.batch_norm()),
                                       "architecture": repr(model), "lif_threshold_margin": margin},
        inputs={**inputs, **{f"parameters/{k}": v for k, v in params.items()},
                **{f"buffers/{k}": v for k, v in buffers.items()}},
        upstream={"loss": numpy.float64(1.0)}, outputs=outputs, grads=_grads(model, bank),
        extra_attrs={"draws": draws, "layers": describe_layers(model),
                     "call": "logits = model(inputs/images) in training mode; loss = cross_entropy(logits, "
                             "inputs/labels); grads = d loss / d parameters"})


def block_case(config):
    """A genetic BasicBlock (tdBN style, every conv genetic, shared G) on spike inputs [T*N, C, H, W]."""
    def build_case(name, rng) -> Case:

        cfg = config
        t, n, size = cfg["time_steps"], cfg["batch"], cfg["image_size"]

        def build():
            bank = GeneBank(cfg["genes"], dtype=numpy.float64)
            factory = LayerFactory(bank, scope="all", rng=backend.rng(0), dtype=numpy.float64)
            block = BasicBlock(factory, cfg["in_channels"], cfg["out_channels"], cfg["stride"])
            set_time_steps(block, t)
            return block, bank

        def draw_inputs():
            return {"x": (rng.random((t * n, cfg["in_channels"], size, size)) < 0.4).astype(numpy.float64)}

        block, bank, inputs, margin, draws = _draw_until_margin(
            build, draw_inputs, lambda m, x: m(autograd.Tensor(x["x"])), rng)
        params, buffers = _state(block, bank)
        block.train().record(True)
        x = autograd.Tensor(inputs["x"].copy(), requires_grad=True)
        y = block(x)
        upstream = rng.standard_normal(y.shape)
        y.backward(upstream)
        outputs = {"y": as_float64(y.data)}
        outputs.update({f"buffers/{k}": as_float64(v) for k, v in block.named_buffers()})
        outputs.update({f"spikes/{k}": v for k, v in _lif_spikes(block).items()})
        shortcut = "projection (genetic conv1x1 + BN)" if block.shortcut is not None else "identity"
        return Case(
            name=name, kind="network", function="gee_ref.nn.BasicBlock",
            description=f"genetic ResNet basic block {cfg['in_channels']}->{cfg['out_channels']} stride "
                        f"{cfg['stride']}, {shortcut} shortcut, g={cfg['genes']}, T={t}: output spikes and "
                        f"every gradient",
            params=dict(cfg), conventions={**conv.network(t, conv.lif(), conv.batch_norm()),
                                           "architecture": BLOCK_EQUATION, "lif_threshold_margin": margin},
            inputs={**inputs, **{f"parameters/{k}": v for k, v in params.items()},
                    **{f"buffers/{k}": v for k, v in buffers.items()}},
            upstream={"y": upstream}, outputs=outputs,
            grads={"x": as_float64(x.grad), **_grads(block, bank)}, extra_attrs={"draws": draws})
    return build_case


NETWORK_CASES = {"network/digits/genetic_g3_T3": digits_case(False),
                 "network/digits/genetic_g3_T3_chained": digits_case(True),
                 **{name: block_case(cfg) for name, cfg in BLOCK_CONFIGS.items()}}
