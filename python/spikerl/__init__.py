"""Gymnasium's MuJoCo locomotion tasks without MuJoCo, and spiking policies, from spikerl.

The tasks are spikerl's rapier3d ports of Hopper, HalfCheetah, Ant, Walker2d and Humanoid (v4),
and Pendulum-v1, stepped in Rust. Importing the package registers them with Gymnasium::

    import gymnasium as gym
    import spikerl

    env = gym.make("spikerl/Hopper-v4")                                 # a gymnasium.Env
    envs = gym.make_vec("spikerl/HalfCheetah-v4", num_envs=64, threads=2)  # Rust threads, no GIL
    policy = spikerl.Policy.load("runs/Hopper-v4-seed0/policy.paramset")
    action = policy.act(env.reset(seed=0)[0])

``spikerl/MJCF-v0`` takes an MJCF file: ``gym.make("spikerl/MJCF-v0", xml_file="walker.xml")``.
"""

import gymnasium

from ._spikerl import TASKS
from .envs import SpikerlEnv
from .policy import Policy
from .vector import SpikerlVectorEnv

__all__ = ["TASKS", "Policy", "SpikerlEnv", "SpikerlVectorEnv", "env_ids"]

# Gymnasium's TimeLimit for each task (the ports truncate there themselves as well).
_MAX_EPISODE_STEPS = {"Pendulum-v1": 200}


def env_ids():
    """The Gymnasium ids this package registers."""
    return [f"spikerl/{task}" for task in TASKS] + ["spikerl/MJCF-v0"]


def _register():
    for task in TASKS:
        gymnasium.register(
            id=f"spikerl/{task}",
            entry_point="spikerl.envs:SpikerlEnv",
            vector_entry_point="spikerl.vector:SpikerlVectorEnv",
            kwargs={"task": task},
            max_episode_steps=_MAX_EPISODE_STEPS.get(task, 1000),
        )
    gymnasium.register(
        id="spikerl/MJCF-v0",
        entry_point="spikerl.envs:SpikerlEnv",
        vector_entry_point="spikerl.vector:SpikerlVectorEnv",
        max_episode_steps=1000,
    )


_register()
