#!/usr/bin/env bash
# Confirmation of the stall screen's best remedies: Hopper-v4, seeds 10-14 (not the reported
# ones), 300 k env steps each, two seeds side by side, checkpoints every 10 k steps; then the
# remedies side by side. Resumable: rerunning it finishes what is unfinished.
#
#   scripts/confirm_stall.sh [REMEDY...]    (names as in scripts/screen_stall.sh; default:
#                                            fast-sigmoid fast-sigmoid-membrane)
set -eu
spikerl=${SPIKERL:-target/release/spikerl}
seeds=${SEEDS:-10-14}
steps=${STEPS:-300000}
declare -A remedies=(
    [rectangle]="--surrogate rectangle"
    [fast-sigmoid]="--surrogate fast-sigmoid"
    [fast-sigmoid-membrane]="--surrogate fast-sigmoid --membrane-reg 10"
    [fast-sigmoid-proxy]="--surrogate fast-sigmoid --target-actor proxy --proxy-steps 3 --proxy-lr 1e-3"
    [popsan]="--recipe popsan"
)
chosen=("$@")
[ ${#chosen[@]} -gt 0 ] || chosen=(fast-sigmoid fast-sigmoid-membrane)
runs=()
for name in "${chosen[@]}"; do
    [ -n "${remedies[$name]+x}" ] || { echo "unknown remedy '$name' (${!remedies[*]})" >&2; exit 2; }
    dir=runs/confirm-hopper-$name
    if [ -f "$dir/seeds.toml" ]; then
        "$spikerl" train --resume "$dir" --side-by-side 2 --quiet
    else
        # shellcheck disable=SC2086
        "$spikerl" train --env Hopper-v4 --seeds "$seeds" --steps "$steps" --eval-every 10000 --checkpoint-every 10000 --side-by-side 2 --quiet --out "$dir" ${remedies[$name]}
    fi
    runs+=("$dir")
done
"$spikerl" compare "${runs[@]}" --out runs/confirm-hopper-compare
