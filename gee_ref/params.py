"""Parameter counts, dense against genetic, layer by layer (paper eq. 2, Tables 1-2).

    python -m gee_ref.params                                  # every architecture, its defaults
    python -m gee_ref.params --arch resnet19 --genes 100 [--classes 10]
    python -m gee_ref.params --arch vgg8 --width 8 --image-size 16

Without ``--arch`` one line per registered architecture (default g, scope, input and width)
gives the dense and genetic totals. With ``--arch`` the command builds the dense twin and the genetic network and counts the numbers each module holds,
from the built models' parameters (nothing is re-derived): a genetic layer holds
g*(C_out + C_in*kh*kw) (eq. 2; g*C_out with a chained X_in, eq. 3) where its dense twin holds
C_out*C_in*kh*kw, plus the same bias; G is counted once (g*g); batch-norm gammas and betas
are listed too. Buffers (BN running statistics) are state, not parameters, and are left out.
"""
from __future__ import annotations

from gee_ref.cli.errors import ArgumentParser, run_main
from gee_ref.measure.parameters import count_parameters, module_counts
from gee_ref.models import ARCHITECTURES, build_model
from gee_ref.nn import (BatchNorm, Conv2d, GeneBank, GeneticConv2d, GeneticLinear, Linear,
                        WeightLayer)
from gee_ref.nn.factory import SCOPES


def describe(module) -> tuple[str, str]:
    """(kind, weight shape) of a module, for the table."""
    if isinstance(module, GeneBank):
        return "gene matrix G", f"{module.genes}x{module.genes}"
    if isinstance(module, (Conv2d, GeneticConv2d)):
        kh, kw = module.kernel_size
        kind = f"{'genetic ' if isinstance(module, GeneticConv2d) else ''}conv {kh}x{kw}"
        return kind, f"{module.out_channels}x{module.in_channels}x{kh}x{kw}"
    if isinstance(module, (Linear, GeneticLinear)):
        kind = "genetic fc" if isinstance(module, GeneticLinear) else "fc"
        if isinstance(module, GeneticLinear) and not module.owns_x_in:
            kind += " (x_in chained)"
        return kind, f"{module.out_features}x{module.in_features}"
    if isinstance(module, BatchNorm):
        return "batch norm", f"2x{module.num_features}"
    return type(module).__name__, ""


def bias_count(module) -> int:
    bias = getattr(module, "b", None) if isinstance(module, WeightLayer) else None
    return 0 if bias is None else int(bias.size)


def parameter_table(dense_model, genetic_model) -> dict:
    """Rows (name, kind, shape, bias, dense, genetic) and totals for two twins of one layout."""
    dense = {name: count for name, _, count in module_counts(dense_model)}
    rows = []
    for name, module, count in module_counts(genetic_model):
        kind, shape = describe(module)
        rows.append((name, kind, shape, bias_count(module), dense.get(name, 0), count))
    genetic_names = {r[0] for r in rows}
    for name, module, count in module_counts(dense_model):
        if name not in genetic_names:  # never for twins built by build_model; kept for safety
            kind, shape = describe(module)
            rows.append((name, kind, shape, bias_count(module), count, 0))
    total_dense = count_parameters(dense_model)
    total_genetic = count_parameters(genetic_model)
    return {"rows": rows, "dense": total_dense, "genetic": total_genetic,
            "ratio": total_genetic / total_dense}


def format_table(table, title: str) -> str:
    header = ("layer", "kind", "weight shape", "bias", "dense", "genetic")
    body = [(r[0], r[1], r[2], f"{r[3]:,}" if r[3] else "-", f"{r[4]:,}" if r[4] else "-",
             f"{r[5]:,}" if r[5] else "-") for r in table["rows"]]
    total = ("total", "", "", "", f"{table['dense']:,}", f"{table['genetic']:,}")
    widths = [max(len(str(row[i])) for row in [header, total] + body) for i in range(6)]

    def line(row):
        return "  ".join(str(c).ljust(w) if i < 3 else str(c).rjust(w) for i, (c, w) in enumerate(zip(row, widths)))

    rule = "-" * len(line(header))
    out = [title, line(header), rule] + [line(r) for r in body] + [rule, line(total)]
    out.append(f"genetic / dense = {100 * table['ratio']:.2f}%  (dense is {1 / table['ratio']:.2f}x the genetic "
               f"count; {table['dense'] / 1e6:.2f}M vs {table['genetic'] / 1e6:.2f}M)")
    return "\n".join(out)


def overview() -> list:
    """[(arch, input, width, g, scope, dense, genetic)] for every registered architecture, at its defaults."""
    rows = []
    for arch, spec in ARCHITECTURES.items():
        genetic, dense = build_model(arch), build_model(arch, genetic=False)
        cfg = genetic.config
        rows.append((arch, f"{cfg['in_channels']}x{cfg['image_size']}x{cfg['image_size']}", cfg.get("width"),
                     cfg["genes"], cfg["scope"], count_parameters(dense), count_parameters(genetic)))
    return rows


def format_overview(rows) -> str:
    header = ("architecture", "input", "width", "g", "scope", "dense", "genetic", "genetic/dense")
    body = [(arch, shape, "-" if width is None else str(width), str(genes), scope, f"{dense:,}", f"{genetic:,}",
             f"{100 * genetic / dense:.1f}%") for arch, shape, width, genes, scope, dense, genetic in rows]
    widths = [max(len(row[i]) for row in [header] + body) for i in range(len(header))]

    def line(row):
        return "  ".join(c.ljust(w) if i in (0, 4) else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths)))

    return "\n".join([line(header), "-" * len(line(header))] + [line(r) for r in body])


def main(argv=None):
    parser = ArgumentParser(prog="python -m gee_ref.params",
                            description="Dense vs genetic parameter counts per layer (paper eq. 2).")
    parser.add_argument("--arch", default=None, choices=sorted(ARCHITECTURES),
                        help="one architecture, layer by layer (default: every architecture's totals)")
    parser.add_argument("--genes", type=int, default=None, help="g (default: the architecture's)")
    parser.add_argument("--classes", type=int, default=None, help="number of classes (default: the architecture's)")
    parser.add_argument("--image-size", type=int, default=None)
    parser.add_argument("--in-channels", type=int, default=None)
    parser.add_argument("--scope", choices=sorted(SCOPES), default=None,
                        help="which layers are genetic (default: the architecture's)")
    parser.add_argument("--share-encodings", action="store_true", help="chain genetic FC encodings (eq. 3)")
    parser.add_argument("--width", type=int, default=None,
                        help="the layout's width (vgg8, resnet14; default: the architecture's)")
    args = parser.parse_args(argv)
    if args.arch is None:
        if any(v not in (None, False) for k, v in vars(args).items() if k != "arch"):
            raise ValueError("the options --genes, --classes, ... need --arch (without it: every architecture's defaults)")
        print(format_overview(overview()))
        return
    common = dict(num_classes=args.classes, image_size=args.image_size, in_channels=args.in_channels)
    if args.width is not None:
        common["width"] = args.width
    genetic = build_model(args.arch, genetic=True, genes=args.genes, scope=args.scope,
                          share_encodings=args.share_encodings, **common)
    dense = build_model(args.arch, genetic=False, **common)
    cfg = genetic.config
    title = (f"{args.arch}: g={cfg['genes']}, scope {cfg['scope']}, {cfg['num_classes']} classes, "
             f"{cfg['in_channels']}x{cfg['image_size']}x{cfg['image_size']} input"
             f"{', width ' + str(cfg['width']) if 'width' in cfg else ''}"
             f"{', chained encodings' if cfg['share_encodings'] else ''}")
    print(format_table(parameter_table(dense, genetic), title))


if __name__ == "__main__":
    run_main(main, memory_hint="try a smaller --image-size or --genes")
