#!/usr/bin/env bash
# Speed of two builds, interleaved (this project's VMs move ±10–30 % from run to run, so only
# runs taken turn about compare): td3_bench, Hopper-v4 end to end (steady state), bench env.
#
#   scripts/compare_speed.sh BEFORE_DIR AFTER_DIR [ROUNDS]
#
# Each DIR holds a `spikerl` and a `td3_bench` binary (target/release/spikerl and
# target/release/examples/td3_bench of a build). Prints one line per measurement.
set -u
before=$1 after=$2 rounds=${3:-3}
steady() {
    python3 - "$1" <<'PY'
import json, sys
records = [json.loads(l) for l in open(sys.argv[1]) if '"progress"' in l]
rates = [r["env_steps_per_s"] for r in records if r["env_steps"] >= 3000 and r.get("env_steps_per_s")]
print(f"{sum(rates) / len(rates):.0f}" if rates else "nan")
PY
}
for round in $(seq 1 "$rounds"); do
    for who in before after; do
        bin=$([ "$who" = before ] && echo "$before" || echo "$after")
        echo "== round $round $who td3_bench"
        "$bin/td3_bench" --updates 300 2>&1 | grep CPU
        out=$(mktemp -d)
        "$bin/spikerl" train --env Hopper-v4 --steps 8000 --eval-every 100000 --quiet --out "$out" > /dev/null 2>&1
        echo "== round $round $who Hopper-v4 fp32 steady env steps/s: $(steady "$out/metrics.jsonl")"
        rm -rf "$out"
        for env in hopper-v4 halfcheetah-v4 ant-v4; do
            echo "== round $round $who bench env $env: $("$bin/spikerl" bench env --env "$env" --no-mujoco --steps 50000 --json 2>/dev/null)"
        done
    done
done
