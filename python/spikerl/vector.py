"""Many copies of a task as a ``gymnasium.vector.VectorEnv``, stepped on Rust threads."""

import numpy as np
import gymnasium
from gymnasium.vector import AutoresetMode
from gymnasium.vector.utils import batch_space

from ._spikerl import VecTask
from .envs import _reset_seed, _spaces, _task_name


class SpikerlVectorEnv(gymnasium.vector.VectorEnv):
    """``num_envs`` copies of a task stepped on ``threads`` Rust threads with the GIL released.

    Autoreset follows Gymnasium 1.x: ``AutoresetMode.NEXT_STEP`` (the default; the step after
    an episode ends resets that env, ignoring its action) or ``SAME_STEP`` (the ending step
    resets it and puts the last observation in ``info["final_obs"]``, the step's info in
    ``info["final_info"]``). ``info`` holds, per key of the single task's info, a float64 array
    and its ``_key`` mask. ``reset(seed=s)`` seeds env i with ``s + i``."""

    def __init__(self, task=None, num_envs=1, threads=1, autoreset_mode=AutoresetMode.NEXT_STEP, xml_file=None, max_episode_steps=None, render_mode=None):
        if render_mode is not None:
            raise ValueError(f"render_mode {render_mode!r}: the spikerl tasks render with `spikerl render` (a GIF), not from Python yet")
        self.autoreset_mode = AutoresetMode(autoreset_mode)
        if self.autoreset_mode == AutoresetMode.DISABLED:
            raise ValueError("autoreset_mode DISABLED is not supported: use NEXT_STEP or SAME_STEP")
        mode = "next_step" if self.autoreset_mode == AutoresetMode.NEXT_STEP else "same_step"
        self._core = VecTask(_task_name(task, xml_file), int(num_envs), int(threads), mode)
        description = self._core.describe()
        if max_episode_steps is not None and max_episode_steps != description["max_episode_steps"]:
            raise ValueError(f"max_episode_steps={max_episode_steps}: {description['id']}'s time limit is {description['max_episode_steps']} steps")
        self.task_id = description["id"]
        self.num_envs = int(num_envs)
        self.threads = int(threads)
        self.single_observation_space, self.single_action_space = _spaces(description)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self.metadata = {"autoreset_mode": self.autoreset_mode, "render_modes": []}
        self.render_mode = None
        self._info_keys = list(description["info_keys"])
        self._started = False

    def reset(self, *, seed=None, options=None):
        if isinstance(seed, (list, tuple)):
            if any(s != seed[0] + i for i, s in enumerate(seed)):
                raise ValueError("a list of seeds must be consecutive (env i gets seed + i)")
            seed = seed[0] if seed else None
        super().reset(seed=seed)
        return self._core.reset(_reset_seed(self, seed)), {}

    def step(self, actions):
        actions = np.ascontiguousarray(actions, dtype=np.float32)
        if actions.shape != self.action_space.shape:
            raise ValueError(f"actions have shape {actions.shape}, the vector env expects {self.action_space.shape}")
        obs, rewards, terminated, truncated, reset, values, final_obs = self._core.step(actions)
        infos = {}
        done = terminated | truncated
        if self.autoreset_mode == AutoresetMode.NEXT_STEP:
            # An env reset in this step reports the reset's info, which is empty.
            self._put(infos, values, ~reset)
        else:
            # An env whose episode ended reports that step's info under final_info, and its
            # reset's (empty) info at the top.
            self._put(infos, values, ~done)
            if done.any():
                final = np.full(self.num_envs, None, dtype=object)
                for i in np.flatnonzero(done):
                    final[i] = final_obs[i]
                infos["final_obs"], infos["_final_obs"] = final, done.copy()
                infos["final_info"] = self._put({}, values, done)
                infos["_final_info"] = done.copy()
        return obs, rewards, terminated, truncated, infos

    def _put(self, infos, values, has):
        if self._info_keys and has.any():
            for j, key in enumerate(self._info_keys):
                column = np.where(has, values[:, j], 0.0)
                infos[key], infos[f"_{key}"] = column, has.copy()
        return infos

    def close_extras(self, **kwargs):
        self._core = None
