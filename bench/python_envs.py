"""Steps per second of the locomotion tasks from Python: spikerl's vector env (the rapier ports
on Rust threads) against EnvPool (MuJoCo in C++ threads) and Gymnasium's SyncVectorEnv of its
own MuJoCo tasks, measured in the same run, interleaved, on 1 and 2 threads and 1/16/64 envs.

    make python-bench        (or: .venv-bench/bin/python bench/python_envs.py [--quick])

A peer that is not installed is reported as skipped. Writes bench/results/DATE-python-envs.{json,md}.
Actions are uniform random, drawn before timing; every env autoresets as its library does.
"""

import argparse
import datetime
import json
import os
import pathlib
import platform
import statistics
import subprocess
import time

import warnings

import numpy as np

# Gymnasium calls its v4 tasks out of date; they are the ones the ports follow.
warnings.filterwarnings("ignore", message=".*out of date.*")

TASKS = ["Hopper-v4", "HalfCheetah-v4", "Ant-v4"]
ROOT = pathlib.Path(__file__).resolve().parents[1]


def spikerl_maker(task, n, threads):
    import gymnasium as gym
    import spikerl  # noqa: F401

    return gym.make_vec(f"spikerl/{task}", num_envs=n, threads=threads)


def envpool_maker(task, n, threads):
    import envpool

    return envpool.make_gymnasium(task, num_envs=n, batch_size=n, num_threads=threads)


def gymnasium_maker(task, n, threads):
    if threads != 1:
        return None  # SyncVectorEnv steps on the calling thread only
    import gymnasium as gym

    return gym.vector.SyncVectorEnv([lambda: gym.make(task) for _ in range(n)])


PEERS = {"spikerl": spikerl_maker, "EnvPool": envpool_maker, "Gymnasium+MuJoCo": gymnasium_maker}


def available(peer):
    module = {"spikerl": "spikerl", "EnvPool": "envpool", "Gymnasium+MuJoCo": "mujoco"}[peer]
    try:
        __import__(module)
        return True
    except ImportError:
        return False


def steps_per_second(env, n, seconds, rng):
    """Env steps per second over about `seconds` of stepping with random actions."""
    space = getattr(env, "single_action_space", env.action_space)  # EnvPool's is the single one
    actions = [rng.uniform(space.low, space.high, (n, *space.shape)).astype(space.dtype) for _ in range(64)]
    env.reset()
    for a in actions[:8]:  # warm up
        env.step(a)
    calls, start = 0, time.perf_counter()
    while True:
        for a in actions:
            env.step(a)
        calls += len(actions)
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return calls * n / elapsed


def commit():
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
        return rev + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def cpu_model():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="one round of 0.3 s per measurement (a smoke run; the figures are rough)")
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds per configuration; the median is reported (default 3)")
    p.add_argument("--seconds", type=float, default=1.0, help="stepping time per measurement (default 1 s)")
    p.add_argument("--tasks", default=",".join(TASKS), help="comma-separated Gymnasium ids (default: %(default)s)")
    p.add_argument("--envs", default="1,16,64", help="comma-separated env counts (default: %(default)s)")
    p.add_argument("--threads", default="1,2", help="comma-separated thread counts (default: %(default)s)")
    p.add_argument("--out", default=str(ROOT / "bench" / "results"), help="directory for the JSON and Markdown results")
    a = p.parse_args()
    rounds, seconds = (1, 0.3) if a.quick else (a.rounds, a.seconds)
    tasks = [t for t in a.tasks.split(",") if t]
    counts = [int(x) for x in a.envs.split(",")]
    threads = [int(x) for x in a.threads.split(",")]
    if rounds < 1 or seconds <= 0 or not tasks or min(counts) < 1 or min(threads) < 1:
        p.error("--rounds, --seconds, --envs and --threads must be positive, --tasks non-empty")

    skipped = {peer: f"{peer} is not installed" for peer in PEERS if not available(peer)}
    if "spikerl" in skipped:
        p.error("the spikerl package is not installed (make setup installs it into .venv)")
    for peer, why in skipped.items():
        print(f"skipped: {why}")
    rng = np.random.default_rng(0)
    rows = []
    for task in tasks:
        for t in threads:
            for n in counts:
                envs = {peer: make(task, n, t) for peer, make in PEERS.items() if peer not in skipped}
                envs = {peer: env for peer, env in envs.items() if env is not None}
                samples = {peer: [] for peer in envs}
                for _ in range(rounds):
                    for peer, env in envs.items():
                        samples[peer].append(steps_per_second(env, n, seconds, rng))
                for env in envs.values():
                    env.close()
                rate = {peer: statistics.median(s) for peer, s in samples.items()}
                row = {"task": task, "threads": t, "envs": n, "steps_per_s": rate}
                for peer in ("EnvPool", "Gymnasium+MuJoCo"):
                    if peer in rate:
                        row[f"spikerl/{peer}"] = rate["spikerl"] / rate[peer]
                rows.append(row)
                ratios = "  ".join(f"×{row[k]:.2f} vs {k.split('/')[1]}" for k in row if k.startswith("spikerl/"))
                print(f"{task:15s} threads {t}  envs {n:3d}  " + "  ".join(f"{peer} {r:10.0f}" for peer, r in rate.items()) + f"  {ratios}", flush=True)

    when = datetime.datetime.now(datetime.timezone.utc)
    meta = {
        "date": when.strftime("%Y-%m-%d %H:%M UTC"),
        "commit": commit(),
        "cpu": cpu_model(),
        "logical_cpus": os.cpu_count(),
        "python": platform.python_version(),
        "rounds": rounds,
        "seconds_per_measurement": seconds,
        "skipped": skipped,
    }
    out = pathlib.Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = out / f"{when:%Y-%m-%d}-python-envs{'-quick' if a.quick else ''}"
    stem.with_suffix(".json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    peers = [peer for peer in PEERS if peer not in skipped]
    lines = [
        f"# Python env steps/s: spikerl vs EnvPool vs Gymnasium+MuJoCo",
        "",
        f"{meta['date']}, commit {meta['commit']}, {meta['cpu']} ({meta['logical_cpus']} logical CPUs), Python {meta['python']};"
        f" median of {rounds} interleaved round(s) of {seconds} s; uniform random actions. Command: `{' '.join(['bench/python_envs.py'] + (['--quick'] if a.quick else []))}`.",
        "",
        "| task | threads | envs | " + " | ".join(f"{peer} steps/s" for peer in peers) + " | spikerl ÷ EnvPool | spikerl ÷ Gymnasium |",
        "|---|---:|---:|" + "---:|" * len(peers) + "---:|---:|",
    ]
    for r in rows:
        cells = [f"{r['steps_per_s'][peer]:,.0f}" if peer in r["steps_per_s"] else "—" for peer in peers]
        ratio = lambda k: f"{r[k]:.2f}×" if k in r else "—"  # noqa: E731
        lines.append(f"| {r['task']} | {r['threads']} | {r['envs']} | " + " | ".join(cells) + f" | {ratio('spikerl/EnvPool')} | {ratio('spikerl/Gymnasium+MuJoCo')} |")
    if skipped:
        lines += ["", "Skipped: " + "; ".join(skipped.values()) + "."]
    lines += ["", "Gymnasium's SyncVectorEnv steps on one thread: its 2-thread cells are empty."]
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print(f"results: {stem.with_suffix('.json')}, {stem.with_suffix('.md')}")


if __name__ == "__main__":
    main()
