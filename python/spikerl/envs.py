"""One task as a ``gymnasium.Env``."""

import numpy as np
import gymnasium
from gymnasium import spaces

from ._spikerl import Task


def _task_name(task, xml_file):
    if (task is None) == (xml_file is None):
        raise ValueError("give exactly one of task (e.g. 'Hopper-v4') and xml_file (an MJCF file)")
    return task if xml_file is None else str(xml_file)


def _spaces(description):
    observation = spaces.Box(description["observation_low"], description["observation_high"], dtype=np.float32)
    action = spaces.Box(description["action_low"], description["action_high"], dtype=np.float32)
    return observation, action


def _reset_seed(env, seed):
    """The seed to reset the Rust task with: `seed`, or for a first reset given none, one drawn
    from `env.np_random` (Gymnasium seeds that from entropy, so two fresh environments differ);
    later unseeded resets continue the task's own stream."""
    if seed is None and not env._started:
        seed = int(env.np_random.integers(0, 2**63 - 1))
    env._started = True
    return seed


class SpikerlEnv(gymnasium.Env):
    """A spikerl task: observations and actions are float32 arrays; ``info`` has the keys of
    Gymnasium's own v4 task (``x_position``, ``x_velocity``, and the reward terms where it
    reports them). ``render_mode="rgb_array"`` draws the locomotion tasks (``width`` ×
    ``height``, 480 × 480 by default, as Gymnasium's MuJoCo tasks). The task truncates at its time limit itself (``truncated``), as Gymnasium's
    ``TimeLimit`` does. Wrong action shapes and non-finite actions raise ``ValueError`` and
    change nothing."""

    metadata = {"render_modes": ["rgb_array"]}

    def __init__(self, task=None, xml_file=None, render_mode=None, width=480, height=480):
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode {render_mode!r}: the spikerl tasks render as 'rgb_array' (or None)")
        self._task = Task(_task_name(task, xml_file))
        description = self._task.describe()
        self.task_id = description["id"]
        self.observation_space, self.action_space = _spaces(description)
        self.dt = description["dt"]
        self.max_episode_steps = description["max_episode_steps"]
        self.metadata = {"render_modes": ["rgb_array"], "render_fps": int(round(1.0 / self.dt))}
        self.render_mode = render_mode
        self.width, self.height = int(width), int(height)
        if render_mode is not None:
            self._task.render(self.width, self.height)  # refuses a task that is not drawn, or a bad size, now
        self._started = False

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return self._task.reset(_reset_seed(self, seed)), {}

    def step(self, action):
        action = np.ascontiguousarray(action, dtype=np.float32)
        if action.shape != self.action_space.shape:
            raise ValueError(f"action has shape {action.shape}, {self.task_id} expects {self.action_space.shape}")
        return self._task.step(action)

    def render(self):
        """With ``render_mode="rgb_array"``: the current state, ray-traced on the CPU from a
        camera that follows the robot, as a ``height × width × 3`` uint8 array."""
        if self.render_mode is None:
            gymnasium.logger.warn("render() without a render_mode: make the env with render_mode='rgb_array'")
            return None
        return self._task.render(self.width, self.height)
