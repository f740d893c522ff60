#!/usr/bin/env bash
# The first thing to run on a GPU machine: one command, at most 9 minutes on an H100, that answers
# the GPU questions of issue 13 in order of importance. Every step runs under `timeout`, capped by
# what is left of one overall deadline; a step cut short or failed does not stop the next one.
#
#   0  environment: CuPy must really compute on the GPU, else stop with exit status 3; the device,
#      versions (CUDA runtime and driver, NVRTC, CuPy, NumPy, PyTorch and its effective TF32
#      setting), every fused kernel built through CuPy with its registers and local memory
#   1  every GPU test on the plain path (GEE_REF_REQUIRE_GPU=1: a missing GPU fails them);
#      the fused-kernel tests in a process of their own (a faulting kernel poisons the CUDA
#      context); the GPU tests again with the fused kernels on (GEE_REF_FUSED_KERNELS=1)
#   2  bench: the genetic ResNet-19 training step (batch 64, T = 4, g = 100) beside PyTorch, strict
#      float32, TF32 and with the fused kernels; peak memory; the LIF and conv-BN-LIF rows, plain
#      and fused (python -m bench, training,memory,lif,stack, fewer repeats)
#   3  CIFAR-10: convert data/cifar10-jpeg.tar.gz, train the genetic ResNet-19 for 100 steps,
#      evaluate it with the full report
#   4  an evolution smoke run with the batched executor (embedded digits)
#
#     bash bench/gpu_first.sh [--dry-run] [OUT]
#
# OUT (default $OUT, else runs/gpu-first) receives at most 7 files: summary.md (each step's exit
# status, seconds and last line), environment.json, tests.log, run.log, bench.json, bench.md and
# cifar-report.json. Working files (converted data, runs, the bench's own files) go to
# $GPU_FIRST_WORK (default runs/gpu-first-work, git-ignored). The archive is
# data/cifar10-jpeg.tar.gz beside the checkout (or $CIFAR_ARCHIVE).
#
# --dry-run: the same steps with no GPU, on the strict CuPy stand-in (tests/gpu_emulation/
# cupy_standin): three hypothesis examples per property, the bench at --smoke size, a tiny random
# image archive and the small cifarnet instead of CIFAR-10 and ResNet-19, a 5-minute deadline.
# CI runs it (tests/test_gpu_first_dry_run.py). It checks the script and every code path it
# drives, not the GPU: rounding, speed, memory and races need the real run.
#
# Exit status: 0 every step passed; 1 a step failed, timed out or was skipped; 2 bad usage;
# 3 no usable GPU (CuPy's reason in summary.md).
set -u

usage="usage: bash bench/gpu_first.sh [--dry-run] [OUT]"
dry_run=0
case ${1:-} in
--dry-run) dry_run=1; shift ;;
-h | --help) sed -n '2,/^set -u/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
-*) echo "error: unknown option $1 ($usage)" >&2; exit 2 ;;
esac
[ $# -le 1 ] || { echo "error: too many arguments ($usage)" >&2; exit 2; }
out=$(realpath -m "${1:-${OUT:-runs/gpu-first}}")
cd "$(dirname "$0")/.." || exit 2
work=$(realpath -m "${GPU_FIRST_WORK:-runs/gpu-first-work}")
archive=$(realpath -m "${CIFAR_ARCHIVE:-data/cifar10-jpeg.tar.gz}")
python=${PYTHON:-$(command -v python3 || command -v python)}
mkdir -p "$out" "$work" || { echo "error: cannot create $out or $work" >&2; exit 2; }
rm -f "$out"/{summary.md,environment.json,tests.log,run.log,bench.json,bench.md,cifar-report.json}
rm -rf "$work"/{bench,cifar,evolve}

export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
export CUPY_CACHE_DIR=${CUPY_CACHE_DIR:-$PWD/.cupy-cache}  # kernels compiled once per machine
export GEE_REF_REQUIRE_GPU=1                                # a GPU test without a GPU fails
unset GEE_REF_FUSED_KERNELS

if [ $dry_run = 1 ]; then
    deadline_seconds=${GPU_FIRST_SECONDS:-300}
    export GEE_REF_CUPY_STANDIN=1 HYPOTHESIS_PROFILE=smoke
    run=("$python" tests/gpu_emulation/cupy_standin/run.py)   # a command with the stand-in as cupy
    kernel_tests=(-k "not beyond_one_grid")  # 10**7 emulated threads; CI runs them in full elsewhere
    bench_size=(--smoke --warmup 0 --repeats 1)
    train_size=(--arch cifarnet --genes 16 --time-steps 1 --batch-size 4 --steps-per-epoch 2 --report-batches all)
    evolve_size=(--generations 1 --popsize 2 --eval-steps 1 --final-epochs 1 --final-steps-per-epoch 1)
    mode="dry run on the CuPy stand-in (no GPU)"
else
    deadline_seconds=${GPU_FIRST_SECONDS:-540}
    unset GEE_REF_CUPY_STANDIN
    export HYPOTHESIS_PROFILE=ci
    run=("$python")
    kernel_tests=()
    bench_size=(--warmup 1 --repeats 5)
    train_size=(--arch resnet19 --genes 100 --steps-per-epoch 100 --report-batches all)
    evolve_size=(--generations 2 --popsize 4 --eval-steps 3 --final-epochs 1 --final-steps-per-epoch 3)
    mode="GPU run"
fi
deadline=$((SECONDS + deadline_seconds))
reserve=10     # seconds kept for the summary at the end
least=20       # a step with less time left than this is skipped
started=$(date -u +%Y-%m-%dT%H:%M:%SZ)
commit=$(git rev-parse --short HEAD 2>/dev/null || echo "unknown")
rows=()
failures=0

write_summary() {  # summary.md, rewritten after every step (a killed run keeps what it did)
    local device
    device=$("$python" -c 'import json,sys; d=json.load(open(sys.argv[1]))["device"]; print(d["name"], "cc", d["compute_capability"])' \
             "$out/environment.json" 2>/dev/null || echo "unknown")
    {
        echo "# bench/gpu_first.sh: $mode"
        echo
        echo "Started $started, commit $commit, device: $device; deadline $deadline_seconds s, $SECONDS s used."
        echo
        echo "| step | exit | seconds | result | last line of its output |"
        echo "|---|---|---|---|---|"
        printf '%s\n' "${rows[@]}"
        echo
        echo "${1:-running}"
    } > "$out/summary.md.part" && mv "$out/summary.md.part" "$out/summary.md"
}

step() {  # step NAME CAP LOG COMMAND...: run it under min(CAP, time left), log it, add a summary row
    local name=$1 cap=$2 log=$3
    shift 3
    local left=$((deadline - SECONDS - reserve))
    if [ $left -lt $least ]; then
        skip "$name" deadline
        return 125
    fi
    [ "$cap" -gt $left ] && cap=$left
    printf '\n=== %s (limit %d s): %s\n' "$name" "$cap" "$*" >> "$log"
    local start=$SECONDS status result last
    timeout --kill-after=10 "$cap" "$@" > "$work/step.out" 2>&1
    status=$?
    cat "$work/step.out" >> "$log"
    case $status in
    0) result=passed ;;
    124 | 137) result="timed out after $cap s" ;;
    *) result=failed ;;
    esac
    [ $status = 0 ] || failures=$((failures + 1))
    last=$(grep -v '^[[:space:]]*$' "$work/step.out" | tail -1 | cut -c1-200 | tr '|' '/')
    printf '=== %s: exit %d after %d s\n' "$name" $status $((SECONDS - start)) >> "$log"
    rows+=("| $name | $status | $((SECONDS - start)) | $result | $last |")
    write_summary
    return $status
}

skip() {  # skip NAME REASON
    rows+=("| $1 | - | 0 | skipped: $2 | |")
    failures=$((failures + 1))
    write_summary
}

tests_log=$out/tests.log
run_log=$out/run.log
pytest=("$python" -m pytest -q -rs -p no:cacheprovider -o addopts=)

# 0. the environment, and a hard stop unless CuPy computes on the GPU
step "0 environment" 60 "$run_log" "${run[@]}" -m bench.gpu_environment "$out/environment.json"
if [ $? = 3 ]; then  # other failures (a kernel that does not build) leave the tests to tell more
    write_summary "Stopped: no usable GPU (exit 3). $(grep '^error:' "$work/step.out" | tail -1)"
    exit 3
fi

# 1. the GPU tests: plain, the fused kernels on their own, then everything with the kernels on
step "1a GPU tests, plain" 150 "$tests_log" "${pytest[@]}" -m gpu --ignore=tests/test_kernels_gpu.py tests
step "1b fused-kernel tests" 60 "$tests_log" "${pytest[@]}" "${kernel_tests[@]}" tests/test_kernels_gpu.py
step "1c GPU tests, kernels on" 100 "$tests_log" env GEE_REF_FUSED_KERNELS=1 \
    "${pytest[@]}" -m gpu --ignore=tests/test_kernels_gpu.py tests

# 2. the speed bench, sized down
if step "2 bench" 120 "$run_log" "${run[@]}" -m bench --device gpu --only training,memory,lif,stack \
        "${bench_size[@]}" --out "$work/bench"; then :; fi
newest=$(ls -t "$work"/bench/gpu-*.json 2>/dev/null | head -1)
if [ -n "$newest" ]; then
    cp "$newest" "$out/bench.json"
    cp "${newest%.json}.md" "$out/bench.md"
fi

# 3. CIFAR-10: convert, about 100 training steps, the evaluation with the full report
source="CIFAR-10 (JPEG re-encoding)"
if [ $dry_run = 1 ]; then
    archive=$work/tiny-cifar.tar.gz
    source="random 32x32 JPEGs (bench/tiny_image_archive.py, dry run)"
    "$python" -m bench.tiny_image_archive "$archive" >> "$run_log" 2>&1
fi
if [ -f "$archive" ]; then
    step "3a CIFAR-10 convert" 60 "$run_log" "$python" -m data_tools.folder_tree "$archive" \
        "$work/cifar10.h5" --source "$source"
    case $? in
    0)
        step "3b CIFAR-10 train and report" 180 "$run_log" "${run[@]}" -m gee_ref.train "${train_size[@]}" \
            --data "$work/cifar10.h5" --epochs 1 --device gpu --out "$work/cifar" --no-progress
        cp "$work/cifar/report.json" "$out/cifar-report.json" 2>/dev/null
        ;;
    125) skip "3b CIFAR-10 train and report" deadline ;;
    *) skip "3b CIFAR-10 train and report" "the conversion did not pass" ;;
    esac
else
    skip "3 CIFAR-10" "$archive not found"
fi

# 4. an evolution smoke run, the whole generation batched on the GPU
step "4 evolution smoke (batched)" 60 "$run_log" "${run[@]}" -m gee_ref.evolve --device gpu --executor batched \
    "${evolve_size[@]}" --out "$work/evolve" --no-progress

status=$((failures == 0 ? 0 : 1))
write_summary "Finished: exit $status ($failures step(s) not passed) after $SECONDS s."
rm -f "$work/step.out"
exit $status
