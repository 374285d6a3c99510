"""Python RL code learns on the package's tasks: CleanRL's TD3 (scripts/td3_mlp.py, PyTorch,
small networks to keep it short) on spikerl/Pendulum-v1 swings the pendulum up, far above the
random policy that collected its first data.

Pendulum rather than a locomotion task: 20 k steps of TD3 on HalfCheetah-v4 end anywhere from
random-level to +500 above it depending on the machine's floating-point path (PyTorch kernels
differ between CPUs), so no threshold there is both meaningful and reliable; 15 k steps on
Pendulum reach -70 to -470 on every seed tried (random: about -1200)."""

import json
import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest
import spikerl  # noqa: F401  (registers spikerl/TASK with Gymnasium)

from conftest import REPO


def random_policy_return(episodes=5):
    env = gym.make("spikerl/Pendulum-v1")
    env.action_space.seed(0)
    returns = []
    for episode in range(episodes):
        env.reset(seed=episode)
        ret, done = 0.0, False
        while not done:
            _, reward, terminated, truncated, _ = env.step(env.action_space.sample())
            ret, done = ret + reward, terminated or truncated
        returns.append(ret)
    return float(np.mean(returns))


def test_td3_swings_the_pendulum_up():
    pytest.importorskip("torch")
    cmd = [sys.executable, str(REPO / "scripts" / "td3_mlp.py"), "--env", "Pendulum-v1", "--backend", "spikerl", "--steps", "15000",
           "--start-steps", "1000", "--eval-every", "5000", "--hidden", "64", "--batch", "100", "--seed", "0"]
    evals = [json.loads(line) for line in subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.splitlines()]
    assert [e["step"] for e in evals] == [5000, 10000, 15000]
    final, random = evals[-1]["return"], random_policy_return()
    assert random < -900, f"random policy on Pendulum-v1: {random}"
    # A policy that swings up and balances scores above -200 per 200-step episode; one that
    # only pumps energy into the swing stays near the random policy.
    assert final > random + 500, f"TD3 after 15 k steps: {final}; random policy: {random}; evaluations: {evals}"
