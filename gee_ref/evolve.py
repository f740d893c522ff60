"""``python -m gee_ref.evolve``: evolve the genetic encoding (GEE), train the best genotype, report.

    python -m gee_ref.evolve                                      # digits net, embedded digits
    python -m gee_ref.evolve --arch cifarnet --data cifar10.h5 --genes 100 --device gpu
    python -m gee_ref.evolve --executor dask --workers 4          # a LocalCluster
    python -m gee_ref.evolve --executor dask --dask-scheduler tcp://host:8786
    python -m gee_ref.evolve --executor batched       # a generation trained at once, stacked
    python -m gee_ref.evolve --out runs/x --resume    # continue a stopped run (same options)
    python -m gee_ref.evolve --ablation --seeds 3     # paper Table 4: five variants x seeds

The method and its files are ``gee_ref.runs.evolution_run`` (and ``gee_ref.runs.ablation`` for
``--ablation``); this command parses, checks, calls them and prints what they say.
"""
from __future__ import annotations

from pathlib import Path

from gee_ref import backend
from gee_ref.cli.errors import ArgumentParser, run_main
from gee_ref.cli.options import add_run_options, options_of, progress_mode
from gee_ref.evolution.fitness import SCALES, VARIANTS
from gee_ref.evolution.genome import STARTS
from gee_ref.evolution.selection import SELECT_MODES
from gee_ref.runs.ablation import run_ablation
from gee_ref.runs.data import read_run_data
from gee_ref.runs.evolution_run import (AUTO_DIAGONAL_ABOVE, CMAES_MODES, DEFAULT_ALPHA, DEFAULT_BETA,
                                        EVOLVE_DEFAULTS, EXECUTORS, OPTION_DEFAULTS, SIGMA0_GENES_SCALE,
                                        SIGMA0_LOG_SIGMA, default_out, make_run_executor, resolve_config,
                                        run_evolution)


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(prog="python -m gee_ref.evolve",
                            description="Evolve the genetic encoding of a spiking network (GEE), "
                                        "train the best genotype and report.")
    add_run_options(parser, out_help="output folder (default runs/evolve-<arch>-g<genes>-<variant>-seed<seed>)",
                    arch_default_help=f"default {OPTION_DEFAULTS['arch']}")
    add = parser.add_argument
    kinds = EVOLVE_DEFAULTS
    add("--generations", type=int, default=None,
        help=f"default {kinds['cifar']['generations']}, as the paper's section 4.4 (digits too)")
    add("--popsize", type=int, default=None,
        help=f"lambda (default {kinds['digits']['popsize']} on digits, {kinds['cifar']['popsize']} else; "
             f"0: the CMA-ES default 4 + 3 ln n)")
    add("--eval-steps", dest="eval_steps", type=int, default=None,
        help=f"training updates per individual (default {kinds['digits']['eval_steps']} on digits)")
    add("--eval-epochs", dest="eval_epochs", type=int, default=None,
        help=f"training epochs per individual, instead of --eval-steps (default {kinds['cifar']['eval_epochs']} "
             f"beyond digits)")
    add("--eval-lr", dest="eval_lr", type=float, default=OPTION_DEFAULTS["eval_lr"], help="lr of the short training")
    add("--val-fraction", dest="val_fraction", type=float, default=OPTION_DEFAULTS["val_fraction"],
        help="fraction of the training split held out to score individuals")
    add("--alpha", type=float, default=None, help=f"weight of R_T in eq. 16 (default {DEFAULT_ALPHA})")
    add("--beta", type=float, default=None, help=f"weight of R_S in eq. 16 (default {DEFAULT_BETA})")
    add("--variant", default=OPTION_DEFAULTS["variant"], choices=list(VARIANTS),
        help="fitness and search variant (paper Table 4): " + "; ".join(f"{k}: {v.description}" for k, v in VARIANTS.items()))
    add("--start", default=OPTION_DEFAULTS["start"], choices=STARTS,
        help="the CMA-ES's starting genotype: paper (sigma_l = 1, G = I, the default) or calibrated "
             "(Kaiming-matching sigma_l, G = I: gee_ref's addition)")
    add("--fitness-scale", dest="fitness_scale", default=OPTION_DEFAULTS["fitness_scale"], choices=SCALES,
        help="eq. 16 on terms divided by their spread within the generation (standardised, the default), or raw")
    add("--draws", type=int, default=OPTION_DEFAULTS["draws"],
        help="draws of the encodings per individual, averaged; shared by the generation (default 1)")
    add("--sigma0-log-sigma", dest="sigma0_log_sigma", type=float, default=None,
        help=f"CMA-ES initial std of each log sigma_l (default {SIGMA0_LOG_SIGMA})")
    add("--sigma0-genes", dest="sigma0_genes", type=float, default=None,
        help=f"CMA-ES initial std of each entry of G (default {SIGMA0_GENES_SCALE}/sqrt(g))")
    add("--sigma0", type=float, default=None, help="one CMA-ES initial std for every coordinate (overrides both)")
    add("--cmaes", default=OPTION_DEFAULTS["cmaes"], choices=CMAES_MODES,
        help=f"full or separable covariance; auto: diagonal above n = {AUTO_DIAGONAL_ABOVE}")
    add("--select", default=OPTION_DEFAULTS["select"], choices=SELECT_MODES,
        help="the genotype to train: reeval (re-evaluate the final mean and the best few, the default), "
             "mean (the final CMA-ES mean) or loss (the lowest validation loss seen)")
    add("--reeval-draws", dest="reeval_draws", type=int, default=OPTION_DEFAULTS["reeval_draws"],
        help="draws per candidate in the re-evaluation of --select reeval")
    add("--executor", default=OPTION_DEFAULTS["executor"], choices=EXECUTORS,
        help="batched: the whole generation trained at once as one stacked network")
    add("--dask-scheduler", dest="dask_scheduler", default=None, metavar="ADDR",
        help="Dask scheduler address (with --executor dask); default: a LocalCluster")
    add("--workers", type=int, default=None, help="LocalCluster worker processes (default 2)")
    add("--dask-timeout", dest="dask_timeout", type=float, default=10.0, help="seconds to reach the scheduler")
    add("--final-epochs", dest="final_epochs", type=int, default=None,
        help=f"epochs of the final training of the best genotype (default {kinds['digits']['final_epochs']} "
             f"on digits, {kinds['cifar']['final_epochs']} on CIFAR)")
    add("--final-steps-per-epoch", dest="final_steps_per_epoch", type=int, default=None,
        help="cap the batches per epoch of the final training (quick runs)")
    add("--ablation", action="store_true",
        help=f"run the variants of Table 4 ({', '.join(VARIANTS)}) over --seeds seeds, paired")
    add("--seeds", type=int, default=3, help="with --ablation: seeds seed, seed+1, ...")
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    backend.xp_for(args.device)  # a GPU asked for but missing: one line, before any work
    if args.ablation and args.seeds < 1:
        raise ValueError(f"--seeds must be >= 1, got {args.seeds}")
    data = read_run_data(args.data)
    config = resolve_config(options_of(args, OPTION_DEFAULTS), data)
    if args.arch is None:
        print(f"architecture: {config['arch']} (the default, whatever the data; --arch chooses another), "
              f"g = {config['genes']}")
    if config["tf32"]:
        backend.set_tf32(True)
    progress = progress_mode(args)
    with make_run_executor(config, timeout=args.dask_timeout) as executor:
        if args.ablation:
            out = Path(args.out) if args.out else Path("runs") / f"ablation-{config['arch']}-g{config['genes']}"
            run_ablation(config, data, out, executor, seeds=[args.seed + k for k in range(args.seeds)],
                         resume=args.resume, progress=progress)
        else:
            out = Path(args.out) if args.out else default_out(config)
            run_evolution(config, data, out, executor, resume=args.resume, progress=progress)
    return 0


if __name__ == "__main__":
    run_main(main, memory_hint="try a smaller --batch-size, --time-steps, --popsize or --genes")
