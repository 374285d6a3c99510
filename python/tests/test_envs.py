"""The tasks as gymnasium.Env: Gymnasium's checker, its info keys and spaces, seeding, bad
input, and trajectories bitwise equal to the spikerl binary's."""

import importlib.util

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import spikerl

TASKS = [f"spikerl/{t}" for t in spikerl.TASKS]
HAS_MUJOCO = importlib.util.find_spec("mujoco") is not None


@pytest.mark.parametrize("env_id", TASKS)
def test_gymnasium_env_checker_passes(env_id):
    env = gym.make(env_id)
    check_env(env.unwrapped, skip_render_check=True)
    assert env.spec.max_episode_steps == env.unwrapped.max_episode_steps


def test_an_mjcf_file_is_a_task():
    xml = spikerl_assets() / "hopper.xml"
    env = gym.make("spikerl/MJCF-v0", xml_file=str(xml))
    check_env(env.unwrapped, skip_render_check=True)
    obs, _ = env.reset(seed=0)
    _, _, _, _, info = env.step(env.action_space.sample())
    assert {"x_position", "x_velocity"} <= info.keys()
    with pytest.raises(ValueError, match="exactly one"):
        spikerl.SpikerlEnv(task="Hopper-v4", xml_file=str(xml))


def spikerl_assets():
    from conftest import REPO
    return REPO / "envs" / "assets"


@pytest.mark.skipif(not HAS_MUJOCO, reason="Gymnasium's MuJoCo tasks need the mujoco package")
@pytest.mark.parametrize("task", spikerl.TASKS)
def test_info_keys_and_spaces_are_gymnasiums(task):
    ours, theirs = gym.make(f"spikerl/{task}"), gym.make(task)
    assert ours.observation_space.shape == theirs.observation_space.shape
    assert np.array_equal(ours.action_space.low, theirs.action_space.low)
    assert np.array_equal(ours.action_space.high, theirs.action_space.high)
    assert ours.spec.max_episode_steps == theirs.spec.max_episode_steps
    ours.reset(seed=0)
    theirs.reset(seed=0)
    action = np.zeros(ours.action_space.shape, np.float32)
    info, their_info = ours.step(action)[4], theirs.step(action)[4]
    assert list(info) == list(their_info)
    for key, value in info.items():
        assert np.isfinite(value), key


def test_ant_info_positions_are_consistent():
    env = gym.make("spikerl/Ant-v4")
    env.reset(seed=3)
    rng = np.random.default_rng(0)
    before = None
    for _ in range(20):
        *_, info = env.step(rng.uniform(-1, 1, 8).astype(np.float32))
        assert info["distance_from_origin"] == pytest.approx(np.hypot(info["x_position"], info["y_position"]))
        assert info["forward_reward"] == info["reward_forward"]
        if before is not None:
            assert info["y_velocity"] == pytest.approx((info["y_position"] - before["y_position"]) / env.unwrapped.dt)
        before = info


@pytest.mark.parametrize("task", ["Hopper-v4", "HalfCheetah-v4", "Ant-v4", "Pendulum-v1"])
def test_trajectories_equal_the_binarys_bit_for_bit(task, envserve):
    env, rust = gym.make(f"spikerl/{task}").unwrapped, envserve(task)
    rng = np.random.default_rng(7)
    ends = 0
    for episode in range(3):
        obs = env.reset(seed=100 + episode)[0]
        assert obs.tobytes() == rust.reset(100 + episode).tobytes()
        for _ in range(1000):
            action = rng.uniform(env.action_space.low, env.action_space.high).astype(np.float32)
            obs, reward, terminated, truncated, _ = env.step(action)
            r_obs, r_reward, r_terminated, r_truncated = rust.step(action)
            assert obs.tobytes() == r_obs.tobytes()
            assert (reward, terminated, truncated) == (r_reward, r_terminated, r_truncated)
            if terminated or truncated:
                ends += 1
                break
    assert ends == 3


def test_seeding_follows_gymnasium():
    a, b = gym.make("spikerl/Hopper-v4"), gym.make("spikerl/Hopper-v4")
    assert np.array_equal(a.reset(seed=5)[0], b.reset(seed=5)[0])
    assert not np.array_equal(a.reset(seed=5)[0], a.reset(seed=6)[0])
    assert not np.array_equal(a.reset()[0], a.reset()[0]), "an unseeded reset continues the stream"
    fresh = [gym.make("spikerl/Hopper-v4").reset()[0] for _ in range(2)]
    assert not np.array_equal(*fresh), "a first reset without a seed starts from entropy, as Gymnasium's"


def test_bad_actions_raise_and_change_nothing():
    env, twin = gym.make("spikerl/Hopper-v4").unwrapped, gym.make("spikerl/Hopper-v4").unwrapped
    env.reset(seed=1)
    twin.reset(seed=1)
    with pytest.raises(ValueError, match="shape"):
        env.step(np.zeros(4, np.float32))
    with pytest.raises(ValueError, match="finite"):
        env.step(np.array([0.0, np.nan, 0.0], np.float32))
    with pytest.raises(ValueError, match="finite"):
        env.step(np.array([0.0, np.inf, 0.0]))
    good = np.array([0.1, -0.2, 0.3], np.float32)
    assert env.step(good)[0].tobytes() == twin.step(good)[0].tobytes()


def test_bad_tasks_raise():
    with pytest.raises(ValueError, match="unknown environment"):
        spikerl.SpikerlEnv(task="Hopper-v9")
    with pytest.raises(ValueError, match="gymnasium.make"):
        spikerl.SpikerlEnv(task="gym:Hopper-v4")
    with pytest.raises(ValueError):
        spikerl.SpikerlEnv(xml_file="/nonexistent/model.xml")
    with pytest.raises(ValueError, match="render"):
        spikerl.SpikerlEnv(task="Hopper-v4", render_mode="human")
    with pytest.raises(ValueError, match="only the locomotion tasks"):
        spikerl.SpikerlEnv(task="Pendulum-v1", render_mode="rgb_array")
    with pytest.raises(ValueError, match="from 16 to 4096"):
        spikerl.SpikerlEnv(task="Hopper-v4", render_mode="rgb_array", width=8)


@pytest.mark.parametrize("task", ["Hopper-v4", "Ant-v4"])
def test_rgb_array_frames_show_the_robot_move(task):
    env = gym.make(f"spikerl/{task}", render_mode="rgb_array", width=96, height=64)
    check_env(env.unwrapped)
    env.reset(seed=0)
    first = env.render()
    assert first.shape == (64, 96, 3) and first.dtype == np.uint8
    assert first.std() > 10, "a picture, not a blank"
    for _ in range(15):
        env.step(env.action_space.sample())
    assert np.abs(env.render().astype(int) - first).mean() > 0.5, "the robot moved"
