#!/usr/bin/env bash
# The dense actor (`--actor mlp`) beside the spiking one, trained by the same system.
#
#   scripts/dense_comparison.sh cleanrl    HalfCheetah-v4 (the port), 100 k env steps, seeds 0-2:
#                                          spikerl's dense actor with CleanRL's TD3 hyperparameters,
#                                          and scripts/td3_mlp.py (CleanRL's TD3 in PyTorch) on the port
#   scripts/dense_comparison.sh [TASK...]  the spikerl recipe with --actor mlp, 300 k env steps,
#                                          seeds 0-4, into docs/results/learning/dense-TASK (the spiking
#                                          runs are scripts/learning_results.sh's, beside them)
#                                          (default: Hopper-v4 HalfCheetah-v4)
#
# Resumable: rerunning it finishes what is unfinished (checkpoints every 10 k steps).
# Environment: SEEDS, STEPS, SIDE_BY_SIDE (2), SPIKERL, TORCH_PYTHON (.venv/bin/python).
set -eu
spikerl=${SPIKERL:-target/release/spikerl}
side=${SIDE_BY_SIDE:-2}

run_seeds() { # DIR then `spikerl train` flags for a new run
    local dir=$1
    shift
    if [ -f "$dir/seeds.toml" ]; then
        "$spikerl" train --resume "$dir" --side-by-side "$side" --quiet
    else
        "$spikerl" train "$@" --checkpoint-every 10000 --save-replay --side-by-side "$side" --quiet --out "$dir"
    fi
}

if [ "${1:-}" = cleanrl ]; then
    seeds=${SEEDS:-0-2}
    steps=${STEPS:-100000}
    # CleanRL's td3_continuous_action: lr 3e-4 (both), batch 256, 25 k random steps first.
    run_seeds docs/results/learning/cleanrl-check-HalfCheetah-v4 --env HalfCheetah-v4 --actor mlp --seeds "$seeds" --steps "$steps" \
        --actor-lr 3e-4 --critic-lr 3e-4 --batch-size 256 --start-steps 25000 --update-after 25000 --eval-every 5000
    py=${TORCH_PYTHON:-.venv/bin/python}
    mkdir -p docs/results/learning/cleanrl-check-HalfCheetah-v4/pytorch
    for seed in $(python3 -c "import sys; a,b=sys.argv[1].split('-'); print(*range(int(a),int(b)+1))" "$seeds"); do
        out=docs/results/learning/cleanrl-check-HalfCheetah-v4/pytorch/seed-$seed.jsonl
        # A finished log ends with the evaluation at the last step.
        if ! tail -n 1 "$out" 2>/dev/null | grep -q "\"step\": $steps"; then
            PYTHONPATH=scripts "$py" scripts/td3_mlp.py --env HalfCheetah-v4 --backend spikerl --steps "$steps" --seed "$seed" --start-steps 25000 > "$out"
        fi
    done
    exit 0
fi

tasks=("$@")
[ ${#tasks[@]} -gt 0 ] || tasks=(Hopper-v4 HalfCheetah-v4)
for env in "${tasks[@]}"; do
    run_seeds "docs/results/learning/dense-$env" --env "$env" --actor mlp --seeds "${SEEDS:-0-4}" --steps "${STEPS:-300000}"
done
