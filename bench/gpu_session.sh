#!/usr/bin/env bash
# The checks that need a GPU (issues #2-#5), one part per call of the device tool, each part
# under its 10-minute limit. Run from the repository root on the GPU machine:
#
#     bash bench/gpu_session.sh PART [OUT]        (OUT defaults to $OUT, the folder that comes back)
#
# PART
#   tests          the whole suite on CuPy (every GPU test), then the kernel and op tests again with
#                  the fused kernels switched on (GEE_REF_FUSED_KERNELS=1), then a tiny evolution on
#                  the GPU with the batched executor
#   bench          python -m bench --device gpu (every benchmark, strict float32 and TF32)
#   cifar-genetic  convert CIFAR-10, train genetic resnet19 (g = 100, T = 4) for EPOCHS epochs
#   cifar-dense    the same schedule for the dense twin
#   evolve-time    seconds per generation of `python -m gee_ref.evolve --arch resnet19 --device gpu`,
#                  fused kernels off and on
#   evolve-short   a short CIFAR-10 evolution, VARIANT=random or ste (equal budgets), best genotype trained
#
# The cifar and evolve parts read data/cifar10-jpeg.tar.gz: copy ../shared/data/cifar10-jpeg.tar.gz
# into the git-ignored data/ folder first and name `data` in the device tool's `carry`.
# Settings by environment: EPOCHS (cifar, default 4), STEPS (batches per epoch, default all),
# VARIANT, GENERATIONS, POPSIZE, EVAL_STEPS, FINAL_EPOCHS (evolve-short), TF32=1 (adds --tf32).
set -u
part=${1:?usage: bash bench/gpu_session.sh tests|bench|cifar-genetic|cifar-dense|evolve-time|evolve-short [OUT]}
out=${2:-${OUT:-/tmp/gpu-session}}
export PYTHONPATH=.${PYTHONPATH:+:$PYTHONPATH}
export CUPY_CACHE_DIR=${CUPY_CACHE_DIR:-$PWD/.cupy-cache}  # compiled kernels kept while the machine stays
mkdir -p "$out" data
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$out/gpu.txt" 2>&1
tf32=()
[ "${TF32:-0}" = 1 ] && tf32=(--tf32)

cifar_h5=data/cifar10.h5
prepare_cifar() {
    if [ ! -f "$cifar_h5" ]; then
        python -m data_tools.folder_tree data/cifar10-jpeg.tar.gz "$cifar_h5" \
            --source "CIFAR-10 (JPEG re-encoding)" 2>&1 | tail -3
    fi
}

timed() {  # timed LOGFILE COMMAND...: run, keep the last lines, record the wall time
    local log=$1; shift
    local start=$SECONDS
    "$@" > "$log.full" 2>&1
    local status=$?
    tail -80 "$log.full" > "$log"
    echo "exit $status, wall $((SECONDS - start)) s: $*" >> "$log"
    rm -f "$log.full"
    return $status
}

case $part in
tests)
    timed "$out/tests.txt" python -m pytest -q -rs -p no:cacheprovider tests
    GEE_REF_FUSED_KERNELS=1 timed "$out/tests-fused.txt" python -m pytest -q -rs -p no:cacheprovider \
        tests/test_lif.py tests/test_ops_conv.py tests/test_genetic.py tests/test_composite.py \
        $(ls tests/test_kernels*.py 2>/dev/null)
    timed "$out/evolve-smoke.txt" python -m gee_ref.evolve --device gpu --generations 2 --popsize 4 \
        --eval-steps 3 --final-epochs 1 --final-steps-per-epoch 3 --executor batched --out runs/gpu-smoke \
        --no-progress
    ;;
bench)
    timed "$out/bench.txt" python -m bench --device gpu --out "$out"
    ;;
cifar-genetic | cifar-dense)
    prepare_cifar
    kind=${part#cifar-}
    args=(--arch resnet19 --data "$cifar_h5" --device gpu --epochs "${EPOCHS:-4}" --batch-size 64
          --out "runs/cifar-$kind" --no-progress "${tf32[@]}")
    [ -n "${STEPS:-}" ] && args+=(--steps-per-epoch "$STEPS")
    if [ "$kind" = dense ]; then args+=(--dense); else args+=(--genes 100); fi
    timed "$out/train-$kind.txt" python -m gee_ref.train "${args[@]}"
    cp "runs/cifar-$kind/report.json" "$out/report-$kind.json" 2>/dev/null
    cp "runs/cifar-$kind/log.jsonl" "$out/log-$kind.jsonl" 2>/dev/null
    ;;
evolve-time)
    prepare_cifar
    for fused in 0 1; do
        GEE_REF_FUSED_KERNELS=$fused timed "$out/evolve-time-fused$fused.txt" python -m gee_ref.evolve \
            --arch resnet19 --genes 100 --data "$cifar_h5" --device gpu --generations 1 --popsize 4 \
            --eval-steps 20 --final-epochs 1 --final-steps-per-epoch 1 --out "runs/evolve-time-$fused" \
            --no-progress "${tf32[@]}"
        cp "runs/evolve-time-$fused/log.jsonl" "$out/evolve-time-fused$fused.jsonl" 2>/dev/null
    done
    ;;
evolve-short)
    prepare_cifar
    variant=${VARIANT:-ste}
    run=runs/evolve-short-$variant
    resume=()
    [ -f "$run/config.json" ] && resume=(--resume)
    timed "$out/evolve-$variant.txt" timeout "${LIMIT:-560}" python -m gee_ref.evolve --arch resnet19 --genes 100 \
        --data "$cifar_h5" --device gpu --variant "$variant" --generations "${GENERATIONS:-3}" \
        --popsize "${POPSIZE:-6}" --eval-steps "${EVAL_STEPS:-60}" --final-epochs "${FINAL_EPOCHS:-2}" \
        --out "$run" --no-progress "${resume[@]}" "${tf32[@]}"
    cp "$run/log.jsonl" "$out/evolve-$variant.jsonl" 2>/dev/null
    cp "$run/final/report.json" "$out/evolve-$variant-report.json" 2>/dev/null
    ;;
*)
    echo "error: unknown part $part" >&2
    exit 2
    ;;
esac
