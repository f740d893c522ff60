"""Parameter counts, dense against genetic (paper eq. 2, Tables 1-2): the one place they are counted.

Eq. 2: a genetic layer holds g*(C_out + C_in*kh*kw) numbers, its two encodings X_out and X_in,
where its dense twin holds C_out*C_in*kh*kw weights; with chained encodings (eq. 3) X_in is
the previous layer's X_out and is not held again; G (g*g numbers) is held once by the whole
network. Biases and batch norm's gamma and beta count in both forms.

The counts are read from the built models' parameters, never re-derived: a Parameter shared
by several modules (G, a chained encoding) counts once, in the first module that holds it
(``Module.named_modules`` order, which is forward order). Buffers (the running statistics of
batch norm) are state, not parameters.
"""
from __future__ import annotations


def module_counts(model) -> list:
    """[(module name, module, numbers first held there)] for every module holding parameters."""
    seen, rows = set(), []
    for name, module in model.named_modules():
        count = 0
        for p in module._parameters.values():
            if p is not None and id(p) not in seen:
                seen.add(id(p))
                count += int(p.size)
        if module._parameters:
            rows.append((name, module, count))
    return rows


def count_parameters(model) -> int:
    """The numbers ``model`` holds (eq. 2 summed over its layers, G once)."""
    return sum(count for _, _, count in module_counts(model))


def twin_parameter_counts(build) -> dict:
    """``{"dense": n, "genetic": n}``: parameters of ``build(genetic=False)`` and ``build(genetic=True)``."""
    return {"dense": count_parameters(build(genetic=False)), "genetic": count_parameters(build(genetic=True))}
