#!/usr/bin/env bash
# The learning results of the default recipe: Hopper-v4, HalfCheetah-v4, Ant-v4 and Walker2d-v4, seeds 0-4
# (none of them used to choose settings), 300 k env steps each, two seeds side by side; then,
# for each task's best seed, its final policy on the port and on Gymnasium's own task
# (MuJoCo). Resumable: rerunning it finishes what is unfinished (checkpoints every 10 k steps).
# The runs live in docs/results/learning/TASK/ so that finished seeds can be kept in the
# repository without their checkpoints (.gitignore leaves those out): a seed whose evaluations
# reached the budget counts as done without one.
#
#   scripts/learning_results.sh [TASK...]      (default: Hopper-v4 HalfCheetah-v4 Ant-v4 Walker2d-v4)
#
# Environment: SEEDS (0-4), STEPS (300000), SIDE_BY_SIDE (2 seeds at once), RECIPE_FLAGS
# (extra `spikerl train` flags for a new run, e.g. "--surrogate fast-sigmoid"), SPIKERL.
set -eu
spikerl=${SPIKERL:-target/release/spikerl}
seeds=${SEEDS:-0-4}
steps=${STEPS:-300000}
tasks=("$@")
[ ${#tasks[@]} -gt 0 ] || tasks=(Hopper-v4 HalfCheetah-v4 Ant-v4 Walker2d-v4)
for env in "${tasks[@]}"; do
    dir=docs/results/learning/$env
    if [ -f "$dir/seeds.toml" ]; then
        "$spikerl" train --resume "$dir" --side-by-side "${SIDE_BY_SIDE:-2}" --quiet
    else
        # --save-replay: a run resumed in a later session keeps learning from the same experience.
        "$spikerl" train --env "$env" --seeds "$seeds" --steps "$steps" --checkpoint-every 10000 --save-replay --side-by-side "${SIDE_BY_SIDE:-2}" --quiet --out "$dir" ${RECIPE_FLAGS:-}
    fi
    # The best seed by its final evaluation, on the port and on MuJoCo (20 episodes each).
    best=$(python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); print(max(s["seeds"], key=lambda x: x["final_return"])["seed"])' "$dir/summary.json")
    {
        echo "best seed $best, final policy, 20 episodes from seed 0:"
        "$spikerl" eval --env "$env" --checkpoint "$dir/seed-$best/policy.paramset" --episodes 20
        "$spikerl" eval --env "gym:$env" --checkpoint "$dir/seed-$best/policy.paramset" --episodes 20
    } | tee "$dir/transfer.txt"
done
