#!/usr/bin/env bash
# GPU checks, run on a GPU machine from the repo root with the binaries carried in target/gpu:
#   (here) cargo build --release --workspace --all-targets; mkdir -p target/gpu
#          strip -o target/gpu/spikerl target/release/spikerl
#          strip -o target/gpu/td3_bench target/release/examples/td3_bench
#          strip -o target/gpu/kernels target/release/deps/kernels-*   (the learner's kernels test)
#          strip -o target/gpu/collective target/release/deps/spikerl_collective-*   (its unit tests)
# OUT (a folder for the Pendulum run) defaults to ./gpu-out.
# What it checks: the tensor backend on CUDA computes what autograd and the CPU kernels compute,
# and TD3 updates through NCCL's device all-reduce (a world of one) equal the learner alone's
# (learner/tests/kernels.rs); NCCL's all-reduce, sum, broadcast and barrier give the CPU result
# (collective/src/nccl.rs); td3_bench rates, NCCL on and off; a short Pendulum run on CUDA and
# the GPU energy NVML measured for it (energy.json: a measured gpu:0 part).
set -u
OUT=${OUT:-gpu-out}
TORCH=$(python3 -c 'import os, torch; print(os.path.dirname(torch.__file__))')
LIBS="$TORCH/lib"
for d in $(ls -d "$(dirname "$TORCH")"/nvidia/*/lib "$(dirname "$TORCH")"/nvidia/cu13/lib 2>/dev/null); do LIBS="$LIBS:$d"; done
export LD_LIBRARY_PATH="$LIBS:${LD_LIBRARY_PATH:-}"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
echo "== kernels test (CUDA tensor backend = autograd = CPU kernels)"
timeout 120 target/gpu/kernels --nocapture 2>&1 | grep -E "NCCL|skipped|test result|panicked"
echo "== NCCL, a world of one rank (libnccl.so.2 from the torch wheel)"
timeout 60 target/gpu/collective --nocapture nccl 2>&1 | grep -E "NCCL|test result"
echo "== td3_bench (CPU rows are this host's CPU; the last row: NCCL on vs off)"
timeout 240 target/gpu/td3_bench --updates 300 --threads 1 2>&1 | tail -6
echo "== Pendulum on CUDA"
timeout 200 target/gpu/spikerl train --env pendulum-v1 --device cuda --steps 10000 --target-return -300 --quiet --out "$OUT/pendulum-cuda" 2>&1 | tail -3
grep '"eval"' "$OUT/pendulum-cuda/metrics.jsonl" | cut -c1-160
echo "== NVML energy of that run (energy.json)"
python3 -c 'import json, sys; e = json.load(open(sys.argv[1])); [print(c["component"], c["source"], round(c["joules"], 1), "J:", c["method"]) for c in e["components"]]; print("notes:", e["notes"])' "$OUT/pendulum-cuda/energy.json"
