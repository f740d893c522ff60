#!/usr/bin/env bash
# The longer GPU checks, for the visits after the first. A GPU visit is about 15 minutes in all
# (the machine's start included) and one command at most 10 minutes, so each PART below stops
# itself after LIMIT seconds (default 540) and leaves a result that stands on its own.
# The first visit runs bench/gpu_first.sh instead (every GPU test, the sized-down bench, a short
# CIFAR-10 training, an evolution smoke run: one command); these parts come after it passed.
#
#     bash bench/gpu_session.sh PART [OUT]        (OUT defaults to $OUT, the folder that comes back)
#
# PART
#   bench            python -m bench --device gpu --only training,memory,stack,lif at full repeats
#                    (the figures of bench/README.md's targets; gpu_first.sh ran them with fewer)
#   bench-cmaes      python -m bench --device gpu --only cmaes (n = 10 .. 10000, NumPy and CuPy)
#   bench-population python -m bench --device gpu --only population (batched against one by one)
#   cifar-genetic    train genetic resnet19 (g = 100, T = 4) on CIFAR-10 for EPOCHS epochs
#   cifar-dense      the same schedule for the dense twin
#                    A full training does not fit one command: the run is stopped with SIGTERM
#                    at LIMIT, keeps its last complete epoch (checkpoint.h5, atomic) and the next
#                    call of the same part continues it (--resume), while the machine stays warm.
#                    OUT gets log.jsonl each call, report.json at the end, and checkpoint.h5 when
#                    CHECKPOINT_OUT=1 (to carry into runs/cifar-KIND/ on a later visit).
#   evolve-time      seconds per generation of `python -m gee_ref.evolve --arch resnet19` on the GPU,
#                    fused kernels off and on, each run given LIMIT / 2
#   evolve-short     a short CIFAR-10 evolution, VARIANT=random or ste (equal budgets), then the best
#                    genotype trained; resumable as the cifar parts
#
# The cifar and evolve parts read data/cifar10-jpeg.tar.gz: copy ../shared/data/cifar10-jpeg.tar.gz
# into the git-ignored data/ folder first and name `data` in the device tool's `carry`.
# Settings by environment: LIMIT (seconds, default 540), EPOCHS (cifar, default 200: the paper's
# schedule, over many calls), STEPS (batches per epoch, default all), VARIANT, GENERATIONS,
# POPSIZE, EVAL_STEPS, FINAL_EPOCHS (evolve-short), TF32=1 (adds --tf32), CHECKPOINT_OUT=1.
set -u
usage="usage: bash bench/gpu_session.sh bench|bench-cmaes|bench-population|cifar-genetic|cifar-dense|evolve-time|evolve-short [OUT]"
part=${1:-}
[ -n "$part" ] || { echo "error: no PART given ($usage)" >&2; exit 2; }
out=$(realpath -m "${2:-${OUT:-/tmp/gpu-session}}")
cd "$(dirname "$0")/.." || exit 2
python=${PYTHON:-$(command -v python3 || command -v python)}
limit=${LIMIT:-540}
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
export CUPY_CACHE_DIR=${CUPY_CACHE_DIR:-$PWD/.cupy-cache}  # compiled kernels kept while the machine stays
mkdir -p "$out" data runs
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$out/gpu.txt" 2>&1
tf32=()
[ "${TF32:-0}" = 1 ] && tf32=(--tf32)

cifar_h5=data/cifar10.h5
prepare_cifar() {
    if [ ! -f "$cifar_h5" ]; then
        "$python" -m data_tools.folder_tree data/cifar10-jpeg.tar.gz "$cifar_h5" \
            --source "CIFAR-10 (JPEG re-encoding)" 2>&1 | tail -3
    fi
}

timed() {  # timed SECONDS LOGFILE COMMAND...: run under timeout (SIGTERM, then KILL 30 s later)
    local seconds=$1 log=$2
    shift 2
    local start=$SECONDS
    timeout --kill-after=30 "$seconds" "$@" > "$log.full" 2>&1
    local status=$?
    tail -80 "$log.full" > "$log"
    echo "exit $status, wall $((SECONDS - start)) s (limit $seconds s): $*" >> "$log"
    rm -f "$log.full"
    return $status
}

resume_flag() {  # --resume when RUN_DIR holds a run to continue
    [ -f "$1/config.json" ] || [ -f "$1/checkpoint.h5" ] && echo --resume
}

case $part in
bench)
    timed "$limit" "$out/bench.txt" "$python" -m bench --device gpu --only training,memory,stack,lif --out "$out"
    ;;
bench-cmaes)
    timed "$limit" "$out/bench-cmaes.txt" "$python" -m bench --device gpu --only cmaes --out "$out"
    ;;
bench-population)
    timed "$limit" "$out/bench-population.txt" "$python" -m bench --device gpu --only population --out "$out"
    ;;
cifar-genetic | cifar-dense)
    prepare_cifar
    kind=${part#cifar-}
    run=runs/cifar-$kind
    args=(--arch resnet19 --data "$cifar_h5" --device gpu --epochs "${EPOCHS:-200}" --batch-size 64
          --out "$run" --no-progress "${tf32[@]}")
    [ -n "${STEPS:-}" ] && args+=(--steps-per-epoch "$STEPS")
    if [ "$kind" = dense ]; then args+=(--dense); else args+=(--genes 100); fi
    timed "$limit" "$out/train-$kind.txt" "$python" -m gee_ref.train "${args[@]}" $(resume_flag "$run")
    cp "$run/log.jsonl" "$out/log-$kind.jsonl" 2>/dev/null
    cp "$run/report.json" "$out/report-$kind.json" 2>/dev/null
    [ "${CHECKPOINT_OUT:-0}" = 1 ] && cp "$run/checkpoint.h5" "$out/checkpoint-$kind.h5" 2>/dev/null
    ;;
evolve-time)
    prepare_cifar
    for fused in 0 1; do
        rm -rf "runs/evolve-time-$fused"
        GEE_REF_FUSED_KERNELS=$fused timed $((limit / 2)) "$out/evolve-time-fused$fused.txt" \
            "$python" -m gee_ref.evolve --arch resnet19 --genes 100 --data "$cifar_h5" --device gpu \
            --generations 1 --popsize 4 --eval-steps 20 --final-epochs 1 --final-steps-per-epoch 1 \
            --out "runs/evolve-time-$fused" --no-progress "${tf32[@]}"
        cp "runs/evolve-time-$fused/log.jsonl" "$out/evolve-time-fused$fused.jsonl" 2>/dev/null
    done
    ;;
evolve-short)
    prepare_cifar
    variant=${VARIANT:-ste}
    run=runs/evolve-short-$variant
    timed "$limit" "$out/evolve-$variant.txt" "$python" -m gee_ref.evolve --arch resnet19 --genes 100 \
        --data "$cifar_h5" --device gpu --variant "$variant" --generations "${GENERATIONS:-3}" \
        --popsize "${POPSIZE:-6}" --eval-steps "${EVAL_STEPS:-60}" --final-epochs "${FINAL_EPOCHS:-2}" \
        --out "$run" --no-progress $(resume_flag "$run") "${tf32[@]}"
    cp "$run/log.jsonl" "$out/evolve-$variant.jsonl" 2>/dev/null
    cp "$run/final/report.json" "$out/evolve-$variant-report.json" 2>/dev/null
    ;;
*)
    echo "error: unknown part $part ($usage)" >&2
    exit 2
    ;;
esac
