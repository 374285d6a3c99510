#!/usr/bin/env bash
# The stall screen on Hopper-v4: each remedy over seeds 10-14 (seeds that the reported results
# do not use) for 30 k env steps, then all of them side by side. Every run is a multi-seed run
# and resumable: rerunning this script finishes what is unfinished.
#
#   scripts/screen_stall.sh [SEEDS] [STEPS]
set -eu
seeds=${1:-10-14}
steps=${2:-30000}
spikerl=${SPIKERL:-target/release/spikerl}
run() {
    local name=$1; shift
    local dir=runs/screen-hopper-$name
    if [ -f "$dir/seeds.toml" ]; then
        "$spikerl" train --resume "$dir" --quiet
    else
        "$spikerl" train --env Hopper-v4 --seeds "$seeds" --steps "$steps" --eval-every 5000 --checkpoint-every 10000 --quiet --out "$dir" "$@"
    fi
}
run rectangle --surrogate rectangle
run arctan --surrogate arctan
run fast-sigmoid --surrogate fast-sigmoid
run proxy --target-actor proxy --proxy-steps 1 --proxy-lr 3e-3
"$spikerl" compare runs/screen-hopper-rectangle runs/screen-hopper-arctan runs/screen-hopper-fast-sigmoid runs/screen-hopper-proxy --out runs/screen-hopper-compare
