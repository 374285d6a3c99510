"""Python RL code learns on the package's tasks: CleanRL's TD3 (scripts/td3_mlp.py, PyTorch,
small networks to keep it short) on spikerl/HalfCheetah-v4 beats the random policy that
collected its first data."""

import json
import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest

from conftest import REPO


def random_policy_return(episodes=5):
    env = gym.make("spikerl/HalfCheetah-v4")
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


def test_td3_improves_on_halfcheetah():
    pytest.importorskip("torch")
    cmd = [sys.executable, str(REPO / "scripts" / "td3_mlp.py"), "--env", "HalfCheetah-v4", "--backend", "spikerl", "--steps", "20000",
           "--start-steps", "1000", "--eval-every", "5000", "--hidden", "64", "--batch", "100", "--seed", "0"]
    evals = [json.loads(line) for line in subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.splitlines()]
    assert [e["step"] for e in evals] == [5000, 10000, 15000, 20000]
    final, random = evals[-1]["return"], random_policy_return()
    # Uniform random actions lose about 300 per episode to the control cost and stumbling;
    # 20 k steps of TD3 run forward (about +250 to +500 over the seeds tried).
    assert final > random + 250, f"TD3 after 20 k steps: {final}; random policy: {random}; evaluations: {evals}"
