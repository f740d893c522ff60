"""``python -m gee_ref.report RUN_DIR``: plots of an evolve run, in the manner of paper Fig. 4.

    python -m gee_ref.report runs/evolve-digits-g16-ste-seed0 [--out PLOTS_DIR]

Reads the run's ``log.jsonl`` and ``best_genome.h5`` (``gee_ref.evolution.search``) and writes PNGs
(default folder ``RUN_DIR/plots``):

    fitness.png    fitness (eq. 16) min / median / max per generation, the validation loss of
                   the best individual, and every individual's validation accuracy, coloured
                   by generation (light = early), as in Fig. 4's sampled candidates
    sigmas.png     the trajectory of each layer's sigma_l (eq. 9) in the CMA-ES mean, and the
                   population's mean R_T (eq. 13) and R_S (eq. 14-15)
    best_G.png     a heatmap of the best genotype's gene interaction matrix G

For an ablation folder (``ablation.json``) it prints the table instead. matplotlib is an
optional extra (``pip install gee_ref[plots]``); without it the command says so in one line.
"""
from __future__ import annotations

import io
import json
from pathlib import Path

from gee_ref.cli.errors import ArgumentParser, run_main
from gee_ref.evolution.genome import load_genome
from gee_ref.evolution.search import BEST_GENOME_NAME, LOG_NAME, read_log
from gee_ref.runs.ablation import TABLE_JSON, load_table, markdown_table
from gee_ref.runs.evolution_run import CONFIG_NAME, SUMMARY_NAME
from gee_ref.storage import atomic


class ReportError(ValueError):
    """The run folder cannot be reported on, or matplotlib is missing; one line."""


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise ReportError("gee_ref.report needs matplotlib for its plots: pip install gee_ref[plots]") from None
    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt
    return plt


def load_run(run_dir):
    """``(log records, best Genome or None, summary dict or None)`` of an evolve run folder."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ReportError(f"no run folder at {run_dir}")
    if not (run_dir / CONFIG_NAME).exists():
        raise ReportError(f"{run_dir} is not a gee_ref.evolve run folder (no {CONFIG_NAME})")
    try:
        records = read_log(run_dir / LOG_NAME)
    except json.JSONDecodeError:
        raise ReportError(f"{run_dir / LOG_NAME} is not a JSON-lines log") from None
    genome = load_genome(run_dir / BEST_GENOME_NAME) if (run_dir / BEST_GENOME_NAME).exists() else None
    summary_path = run_dir / SUMMARY_NAME
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else None
    return records, genome, summary


def _integer_generations(*axes) -> None:
    from matplotlib.ticker import MaxNLocator
    for axis in axes:
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))


def plot_fitness(plt, records, path) -> None:
    generations = [r["generation"] for r in records]
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for key, style in (("min", "-"), ("median", "--"), ("max", ":")):
        left.plot(generations, [_nan(r["fitness"][key]) for r in records], style, label=f"fitness {key}")
    left.plot(generations, [_nan((r["best_so_far"] or {}).get("loss")) for r in records], "k-",
              label="best validation loss so far")
    left.set_xlabel("generation")
    left.set_ylabel("F = L_cls - lambda (alpha R_T + beta R_S)")
    left.set_title("dynamic fitness (eq. 16), minimised")
    left.legend(fontsize=8)
    xs, ys, colours = [], [], []
    for r in records:
        for individual in r["individuals"]:
            if individual["accuracy"] is not None:
                xs.append(r["generation"])
                ys.append(100 * individual["accuracy"])
                colours.append(r["generation"])
    scatter = right.scatter(xs, ys, c=colours, cmap="Blues", vmin=-1, edgecolors="grey", linewidths=0.3)
    figure.colorbar(scatter, ax=right, label="generation")
    right.set_xlabel("generation")
    right.set_ylabel("validation accuracy after short training (%)")
    right.set_title("individuals (light: early generations)")
    _integer_generations(left, right)
    figure.tight_layout()
    _save_png(plt, figure, path)


def plot_sigmas(plt, records, layer_names, path) -> None:
    generations = [r["generation"] for r in records]
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    count = len(records[0]["sigmas_mean"])
    names = layer_names if layer_names and len(layer_names) == count else [f"layer {i + 1}" for i in range(count)]
    for i, name in enumerate(names):
        left.plot(generations, [r["sigmas_mean"][i] for r in records], marker=".", label=name)
    left.set_yscale("log")
    left.set_xlabel("generation")
    left.set_ylabel("sigma_l of the CMA-ES mean")
    left.set_title("encoding scales sigma_l (eq. 9)")
    left.legend(fontsize=7)
    right.plot(generations, [_nan(r["r_t"]["mean"]) for r in records], label="R_T (eq. 13), population mean")
    right.plot(generations, [_nan(r["r_s"]["mean"]) for r in records], label="R_S (eq. 14-15), population mean")
    right.set_xlabel("generation")
    right.set_ylim(0, 1)
    right.set_title("regularisers")
    right.legend(fontsize=8)
    _integer_generations(left, right)
    figure.tight_layout()
    _save_png(plt, figure, path)


def plot_gene_matrix(plt, genome, path) -> None:
    G = genome.G
    limit = float(abs(G).max()) or 1.0
    figure, axis = plt.subplots(figsize=(5, 4.3))
    image = axis.imshow(G, cmap="RdBu_r", vmin=-limit, vmax=limit, interpolation="nearest")
    figure.colorbar(image, ax=axis)
    axis.set_title(f"best genotype's G ({genome.genes} x {genome.genes})")
    axis.set_xlabel("gene")
    axis.set_ylabel("gene")
    figure.tight_layout()
    _save_png(plt, figure, path)


def _save_png(plt, figure, path) -> None:
    """Render ``figure`` as PNG in memory and write it atomically (a full disk: one line)."""
    image = io.BytesIO()
    figure.savefig(image, format="png", dpi=120)
    plt.close(figure)
    atomic.write_bytes(path, image.getbuffer(), what="plot")


def _nan(value):
    return float("nan") if value is None else value


def write_plots(run_dir, out=None, loaded=None) -> list:
    """Write the PNGs of an evolve run (``loaded``: ``load_run``'s answer, if at hand);
    returns their paths."""
    run_dir = Path(run_dir)
    records, genome, _ = load_run(run_dir) if loaded is None else loaded
    plt = _pyplot()
    out = Path(out) if out else run_dir / "plots"
    out.mkdir(parents=True, exist_ok=True)
    written = []
    if records:
        plot_fitness(plt, records, out / "fitness.png")
        plot_sigmas(plt, records, list(genome.layer_names) if genome else None, out / "sigmas.png")
        written += [out / "fitness.png", out / "sigmas.png"]
    if genome is not None:
        plot_gene_matrix(plt, genome, out / "best_G.png")
        written.append(out / "best_G.png")
    return written


def main(argv=None):
    parser = ArgumentParser(prog="python -m gee_ref.report",
                            description="Plot an evolve run: fitness, sigma_l trajectories, best G (Fig. 4).")
    parser.add_argument("run_dir", help="an evolve --out folder (or an --ablation folder)")
    parser.add_argument("--out", default=None, help="folder for the PNGs (default RUN_DIR/plots)")
    args = parser.parse_args(argv)
    run_dir = Path(args.run_dir)
    if (run_dir / TABLE_JSON).exists():
        print(markdown_table(load_table(run_dir)), end="")
        return 0
    loaded = load_run(run_dir)
    written = write_plots(run_dir, args.out, loaded)
    records, genome, summary = loaded
    print(f"{run_dir}: {len(records)} generations logged")
    if summary is not None:
        print(f"final test accuracy {summary['test_accuracy']:.4f} (report {summary['report']})")
    if not written:
        print("nothing to plot yet (no generation logged and no best genotype)")
    for path in written:
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    run_main(main)
