"""The vector env against Gymnasium's own SyncVectorEnv of the same tasks: observations,
rewards, flags and infos equal under both autoreset modes; threads change nothing."""

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode, SyncVectorEnv

import spikerl  # noqa: F401


def run(envs, steps, seed=11):
    rng = np.random.default_rng(0)
    out = [envs.reset(seed=seed)]
    for _ in range(steps):
        out.append(envs.step(rng.uniform(-1, 1, envs.action_space.shape).astype(np.float32)))
    return out


def assert_same(a, b):
    if isinstance(a, dict):
        assert sorted(a) == sorted(b)  # Gymnasium's key order follows which env reported first
        for k in a:
            assert_same(a[k], b[k])
    elif isinstance(a, (tuple, list)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            assert_same(x, y)
    elif isinstance(a, np.ndarray) and a.dtype == object:
        assert_same(list(a), list(b))
    elif a is None or b is None:
        assert a is None and b is None
    else:
        a, b = np.asarray(a), np.asarray(b)
        assert a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes(), (a, b)


@pytest.mark.parametrize("mode", [AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP])
def test_matches_gymnasiums_sync_vector_env(mode):
    n, steps = 4, 150  # Hopper under random actions falls within tens of steps
    ours = gym.make_vec("spikerl/Hopper-v4", num_envs=n, threads=2, autoreset_mode=mode)
    theirs = SyncVectorEnv([lambda: gym.make("spikerl/Hopper-v4") for _ in range(n)], autoreset_mode=mode)
    assert ours.metadata["autoreset_mode"] == mode
    a, b = run(ours, steps), run(theirs, steps)
    assert sum(int((s[2] | s[3]).sum()) for s in a[1:]) >= n, "episodes ended, so autoreset ran"
    assert_same(a, b)


def test_threads_change_nothing():
    one = run(gym.make_vec("spikerl/Ant-v4", num_envs=5, threads=1), 60)
    three = run(gym.make_vec("spikerl/Ant-v4", num_envs=5, threads=3), 60)
    assert_same(one, three)


def test_bad_input_raises_and_changes_nothing():
    envs = gym.make_vec("spikerl/HalfCheetah-v4", num_envs=3)
    twin = gym.make_vec("spikerl/HalfCheetah-v4", num_envs=3)
    envs.reset(seed=2)
    twin.reset(seed=2)
    with pytest.raises(ValueError, match="shape"):
        envs.step(np.zeros((2, 6), np.float32))
    bad = np.zeros((3, 6), np.float32)
    bad[1, 4] = np.nan
    with pytest.raises(ValueError, match="finite"):
        envs.step(bad)
    good = np.full((3, 6), 0.3, np.float32)
    assert envs.step(good)[0].tobytes() == twin.step(good)[0].tobytes()
    with pytest.raises(ValueError, match="num_envs"):
        spikerl.SpikerlVectorEnv(task="Hopper-v4", num_envs=0)
    with pytest.raises(ValueError, match="time limit"):
        spikerl.SpikerlVectorEnv(task="Hopper-v4", num_envs=2, max_episode_steps=50)
    with pytest.raises(ValueError, match="consecutive"):
        envs.reset(seed=[1, 5, 9])
