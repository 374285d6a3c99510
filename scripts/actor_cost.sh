#!/usr/bin/env bash
# What the spiking and the dense actor cost to train on this machine: short `spikerl train`
# runs of each, taken in turn (ROUNDS times, so that the machine's drift hits both), each alone
# on the machine; prints env steps/s and the estimated (or measured) energy per million env
# steps from each run's energy.json, and the dense ÷ spiking ratios.
#
#   scripts/actor_cost.sh [TASK]        (default Hopper-v4)
# Environment: STEPS (30000), ROUNDS (2), SEED (100), SPIKERL (target/release/spikerl).
set -eu
spikerl=${SPIKERL:-target/release/spikerl}
env=${1:-Hopper-v4}
steps=${STEPS:-30000}
rounds=${ROUNDS:-2}
seed=${SEED:-100}
out=$(mktemp -d "${TMPDIR:-/tmp}/actor-cost.XXXX")
trap 'rm -rf "$out"' EXIT

for round in $(seq 1 "$rounds"); do
    for actor in spiking mlp; do
        "$spikerl" train --env "$env" --actor "$actor" --steps "$steps" --seed "$seed" --quiet --out "$out/$actor-$round" > /dev/null
    done
done

python3 - "$out" "$env" "$steps" "$rounds" <<'PY'
import json, pathlib, sys
out, env, steps, rounds = pathlib.Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
def figures(run):
    e = json.loads((run / "energy.json").read_text())
    return e["env_steps"] / e["duration_s"], e["kwh_per_million_env_steps"], e["estimated_share"] > 0
rows = {a: [figures(out / f"{a}-{r}") for r in range(1, rounds + 1)] for a in ("spiking", "mlp")}
label = " (estimated)" if any(est for a in rows.values() for _, _, est in a) else ""
print(f"{env}, {steps} env steps per run, {rounds} round(s), actors in turn\n")
print(f"| actor | env steps/s per round | kWh per million env steps{label}, per round |")
print("|---|---:|---:|")
for a, rs in rows.items():
    print(f"| {a} | {', '.join(f'{s:.0f}' for s, _, _ in rs)} | {', '.join(f'{k:.4f}' for _, k, _ in rs)} |")
mean = lambda xs: sum(xs) / len(xs)
speed = mean([s for s, _, _ in rows["mlp"]]) / mean([s for s, _, _ in rows["spiking"]])
energy = mean([k for _, k, _ in rows["spiking"]]) / mean([k for _, k, _ in rows["mlp"]])
print(f"\ndense ÷ spiking env steps/s: {speed:.2f}×; spiking ÷ dense energy per env step: {energy:.2f}×")
PY
