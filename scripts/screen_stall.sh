#!/usr/bin/env bash
# The stall screen on Hopper-v4: each remedy over seeds 10-19 (seeds that the reported results
# do not use) for 30 k env steps, two seeds side by side, then all of them in one comparison.
# Every run is a multi-seed run and resumable: rerunning this script finishes what is
# unfinished, and a run made with fewer seeds gains the missing ones.
#
#   scripts/screen_stall.sh [SEEDS] [STEPS] [REMEDY...]     (REMEDY: a name below; default all)
set -eu
seeds=${1:-10-19}
steps=${2:-30000}
shift $(( $# < 2 ? $# : 2 ))
spikerl=${SPIKERL:-target/release/spikerl}
declare -A remedies=(
    [rectangle]="--surrogate rectangle"
    [arctan]="--surrogate arctan"
    [fast-sigmoid]="--surrogate fast-sigmoid"
    [fast-sigmoid-delay4]="--surrogate fast-sigmoid --policy-delay 4"
    [fast-sigmoid-membrane]="--surrogate fast-sigmoid --membrane-reg 10"
    [rectangle-membrane]="--surrogate rectangle --membrane-reg 10"
    [fast-sigmoid-proxy]="--surrogate fast-sigmoid --target-actor proxy --proxy-steps 3 --proxy-lr 1e-3"
    [proxy]="--surrogate rectangle --target-actor proxy --proxy-steps 1 --proxy-lr 3e-3"
    [popsan]="--recipe popsan"
)
order=(rectangle arctan fast-sigmoid fast-sigmoid-delay4 fast-sigmoid-membrane rectangle-membrane fast-sigmoid-proxy proxy popsan)
chosen=("$@")
[ ${#chosen[@]} -gt 0 ] || chosen=("${order[@]}")
for name in "${chosen[@]}"; do
    [ -n "${remedies[$name]+x}" ] || { echo "unknown remedy '$name' (${order[*]})" >&2; exit 2; }
    dir=runs/screen-hopper-$name
    if [ -f "$dir/seeds.toml" ]; then
        "$spikerl" train --resume "$dir" --seeds "$seeds" --side-by-side 2 --quiet
    else
        # shellcheck disable=SC2086
        "$spikerl" train --env Hopper-v4 --seeds "$seeds" --steps "$steps" --eval-every 5000 --checkpoint-every 10000 --side-by-side 2 --quiet --out "$dir" ${remedies[$name]}
    fi
done
runs=()
for name in "${order[@]}"; do [ -f "runs/screen-hopper-$name/summary.json" ] && runs+=("runs/screen-hopper-$name"); done
"$spikerl" compare "${runs[@]}" --out runs/screen-hopper-compare
