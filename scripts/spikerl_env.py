"""A Gymnasium-style client of `spikerl envserve`: the rapier ports from Python, no MuJoCo.

    env = SpikerlEnv("Hopper-v4")            # finds target/release/spikerl, or pass binary=
    obs, info = env.reset(seed=0)
    obs, reward, terminated, truncated, info = env.step(action)
"""
import json
import os
import struct
import subprocess

import numpy as np

NO_SEED = 2**64 - 1


class SpikerlEnv:
    def __init__(self, env_id, binary=None):
        if binary is None:
            here = os.path.dirname(os.path.abspath(__file__))
            binary = os.path.join(here, "..", "target", "release", "spikerl")
        self.proc = subprocess.Popen([binary, "envserve", "--env", env_id],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        header = self.proc.stdout.readline()
        if not header:
            raise RuntimeError(f"spikerl envserve --env {env_id} did not start (see its stderr)")
        spec = json.loads(header)
        self.spec = spec
        self.obs_dim, self.act_dim = spec["obs_dim"], spec["act_dim"]
        self.action_low = np.array(spec["low"], dtype=np.float32)
        self.action_high = np.array(spec["high"], dtype=np.float32)
        self._step_reply = struct.Struct(f"<{self.obs_dim}fdBB")

    def _read(self, n):
        data = self.proc.stdout.read(n)
        if len(data) != n:
            raise RuntimeError("spikerl envserve ended unexpectedly")
        return data

    def _status(self):
        if self._read(1)[0] != 0:
            (length,) = struct.unpack("<I", self._read(4))
            raise ValueError(self._read(length).decode())

    def reset(self, seed=None):
        self.proc.stdin.write(b"R" + struct.pack("<Q", NO_SEED if seed is None else seed))
        self.proc.stdin.flush()
        self._status()
        return np.frombuffer(self._read(4 * self.obs_dim), dtype="<f4").copy(), {}

    def step(self, action):
        action = np.asarray(action, dtype="<f4").reshape(self.act_dim)
        self.proc.stdin.write(b"S" + action.tobytes())
        self.proc.stdin.flush()
        self._status()
        *obs, reward, terminated, truncated = self._step_reply.unpack(self._read(self._step_reply.size))
        return np.array(obs, dtype=np.float32), reward, bool(terminated), bool(truncated), {}

    def close(self):
        if self.proc.poll() is None:
            self.proc.stdin.close()
            self.proc.wait()
