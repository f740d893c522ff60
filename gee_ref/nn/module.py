"""Module, Parameter and Sequential: the containers that hold a network's state.

A ``Parameter`` is a leaf ``Tensor`` that wants a gradient. A ``Module`` keeps three
ordered registries, filled by plain attribute assignment in ``__init__``:

* parameters (``self.w = Parameter(...)``),
* child modules (``self.conv = Conv2d(...)``),
* buffers, state that is not trained (``self.register_buffer("running_mean", array)``),

and walks them for ``parameters()``, ``state_dict()``, ``to(device)``, ``train()``/``eval()``.
Registration order is forward order in every gee_ref model, so ``named_modules()`` lists
layers in the order a forward pass meets them.

One Parameter may be registered in several places: the global gene matrix G of paper
eq. 1-3 is read by every genetic layer, and with chained encodings (eq. 3) layer l+1's
X_in is layer l's X_out. Every walk is therefore deduplicated by identity: a shared
Parameter appears once, under the first name that reaches it, receives one (summed)
gradient from the tape, and is saved, loaded and moved once.
"""
from __future__ import annotations

from collections import OrderedDict

from gee_ref import autograd, backend


class Parameter(autograd.Tensor):
    """A trainable leaf tensor: ``Tensor(data, requires_grad=True)``."""

    def __init__(self, data, name: str | None = None):
        super().__init__(data, requires_grad=True, name=name)


class Module:
    """Base class of layers and networks; subclasses call ``super().__init__()`` first."""

    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "recording", False)

    # --- registration -------------------------------------------------------------------
    def __setattr__(self, name, value):
        if "_parameters" not in self.__dict__:
            raise RuntimeError(f"{type(self).__name__}.__init__ must call super().__init__() "
                               f"before assigning attributes")
        if isinstance(value, (Parameter, Module)):
            self._forget(name)
            registry = self._parameters if isinstance(value, Parameter) else self._modules
            registry[name] = value
        elif name in self._buffers:
            self._buffers[name] = value
        else:
            self._forget(name)
            object.__setattr__(self, name, value)

    def _forget(self, name: str) -> None:
        """Remove ``name`` from every registry and from the plain attributes."""
        for registry in (self._parameters, self._modules, self._buffers):
            registry.pop(name, None)
        self.__dict__.pop(name, None)

    def __getattr__(self, name):
        # only called when normal lookup fails: look in the registries
        for registry in ("_parameters", "_modules", "_buffers"):
            entries = self.__dict__.get(registry)
            if entries is not None and name in entries:
                return entries[name]
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")

    def register_buffer(self, name: str, array) -> None:
        """Keep ``array`` (an xp array) as non-trained state, saved in ``state_dict``."""
        self.__dict__.pop(name, None)
        self._buffers[name] = array

    # --- traversal ----------------------------------------------------------------------
    def named_modules(self, prefix: str = ""):
        """(name, module) for self and every descendant, depth first, each module once."""
        seen = set()
        stack = [(prefix, self)]
        while stack:
            name, module = stack.pop()
            if id(module) in seen:
                continue
            seen.add(id(module))
            yield name, module
            children = [(f"{name}.{child}" if name else child, m) for child, m in module._modules.items()]
            stack.extend(reversed(children))

    def modules(self):
        return [m for _, m in self.named_modules()]

    def children(self):
        return list(self._modules.values())

    def named_parameters(self):
        """(name, Parameter) in registration order; a shared Parameter once, first name wins."""
        seen = set()
        for module_name, module in self.named_modules():
            for name, p in module._parameters.items():
                if id(p) in seen:
                    continue
                seen.add(id(p))
                yield (f"{module_name}.{name}" if module_name else name), p

    def parameters(self):
        return [p for _, p in self.named_parameters()]

    def named_buffers(self):
        for module_name, module in self.named_modules():
            for name, b in module._buffers.items():
                yield (f"{module_name}.{name}" if module_name else name), b

    def buffers(self):
        return [b for _, b in self.named_buffers()]

    # --- modes --------------------------------------------------------------------------
    def train(self, mode: bool = True) -> "Module":
        for m in self.modules():
            object.__setattr__(m, "training", bool(mode))
        return self

    def eval(self) -> "Module":
        return self.train(False)

    def record(self, flag: bool = True) -> "Module":
        """While recording, layers keep measurements of their last forward (spikes, input rates)."""
        for m in self.modules():
            object.__setattr__(m, "recording", bool(flag))
        return self

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.grad = None

    # --- state --------------------------------------------------------------------------
    def state_dict(self) -> "OrderedDict[str, object]":
        """name -> a NumPy copy of every parameter and buffer (shared Parameters once)."""
        state = OrderedDict()
        for name, p in self.named_parameters():
            state[name] = backend.to_host(p.data).copy()
        for name, b in self.named_buffers():
            state[name] = backend.to_host(b).copy()
        return state

    def load_state_dict(self, state) -> None:
        """Copy arrays from ``state`` into this module's parameters and buffers, in place.

        Every name must be present with the same shape; unknown names are refused too.
        Values keep the module's device and dtype.
        """
        targets = OrderedDict(self.named_parameters())
        buffer_owner = {}
        for module_name, module in self.named_modules():
            for name in module._buffers:
                buffer_owner[f"{module_name}.{name}" if module_name else name] = (module, name)
        names = list(targets) + list(buffer_owner)
        missing = [n for n in names if n not in state]
        unexpected = [n for n in state if n not in targets and n not in buffer_owner]
        if missing or unexpected:
            raise ValueError(f"state_dict does not fit {type(self).__name__}: missing "
                             f"{missing[:5] or 'none'}, unexpected {unexpected[:5] or 'none'}")
        for name in names:
            value = state[name]
            current = targets[name].data if name in targets else buffer_owner[name][0]._buffers[buffer_owner[name][1]]
            if tuple(value.shape) != tuple(current.shape):
                raise ValueError(f"state_dict[{name!r}] has shape {tuple(value.shape)}, "
                                 f"the model's is {tuple(current.shape)}")
        for name in names:
            value = state[name]
            current = targets[name].data if name in targets else buffer_owner[name][0]._buffers[buffer_owner[name][1]]
            xp = backend.get_array_module(current)
            current[...] = xp.asarray(backend.to_device(value, backend.device_of(current)), dtype=current.dtype)

    def to(self, device: str) -> "Module":
        """Move every parameter, gradient and buffer to ``device`` ("cpu" or "gpu")."""
        backend.xp_for(device)  # a clear error for an unknown or unavailable device
        for p in self.parameters():
            p.data = backend.to_device(p.data, device)
            if p.grad is not None:
                p.grad = backend.to_device(p.grad, device)
        for m in self.modules():
            for name in list(m._buffers):
                m._buffers[name] = backend.to_device(m._buffers[name], device)
        return self

    # --- calling ------------------------------------------------------------------------
    def forward(self, *args, **kwargs):
        raise NotImplementedError

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__}({self.extra_repr()}"]
        for name, child in self._modules.items():
            text = repr(child).replace("\n", "\n  ")
            lines.append(f"  ({name}): {text}")
        return "\n".join(lines) + (")" if len(lines) == 1 else "\n)")


class Sequential(Module):
    """Modules applied one after another; children are named "0", "1", ..."""

    def __init__(self, *modules):
        super().__init__()
        for i, m in enumerate(modules):
            if not isinstance(m, Module):
                raise ValueError(f"Sequential takes Modules, got {type(m).__name__} at position {i}")
            setattr(self, str(i), m)

    def __len__(self) -> int:
        return len(self._modules)

    def __getitem__(self, index: int) -> Module:
        return list(self._modules.values())[index]

    def __iter__(self):
        return iter(self._modules.values())

    def forward(self, x):
        for m in self._modules.values():
            x = m(x)
        return x
