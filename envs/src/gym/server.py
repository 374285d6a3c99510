# The other side of `spikerl envserve`'s protocol: a Gymnasium task in this Python process,
# driven by spikerl over stdin/stdout. Run by spikerl_envs::gym with the task id as argv[1].
import json
import struct
import sys

import numpy as np

out, inp = sys.stdout.buffer, sys.stdin.buffer


def reply_error(message):
    data = message.encode()
    out.write(b"\x01" + struct.pack("<I", len(data)) + data)


try:
    import gymnasium as gym
    env = gym.make(sys.argv[1])
    obs_dim, act_dim = env.observation_space.shape[0], env.action_space.shape[0]
except Exception as e:  # the header line carries the error instead
    out.write(json.dumps({"error": f"{type(e).__name__}: {e}"}).encode() + b"\n")
    out.flush()
    sys.exit(1)

header = {
    "id": sys.argv[1],
    "obs_dim": int(obs_dim),
    "act_dim": int(act_dim),
    "low": [float(x) for x in env.action_space.low],
    "high": [float(x) for x in env.action_space.high],
    "max_episode_steps": int(env.spec.max_episode_steps or 0),
    "dt": float(getattr(env.unwrapped, "dt", 0.0)),
}
out.write(json.dumps(header).encode() + b"\n")
out.flush()

while True:
    op = inp.read(1)
    if not op:
        break
    try:
        if op == b"R":
            (seed,) = struct.unpack("<Q", inp.read(8))
            obs, _ = env.reset(seed=None if seed == 2**64 - 1 else seed)
            out.write(b"\x00" + np.asarray(obs, dtype="<f4").tobytes())
        elif op == b"S":
            action = np.frombuffer(inp.read(4 * act_dim), dtype="<f4").astype(np.float64)
            obs, reward, terminated, truncated, _ = env.step(action)
            out.write(b"\x00" + np.asarray(obs, dtype="<f4").tobytes()
                      + struct.pack("<dBB", float(reward), bool(terminated), bool(truncated)))
        else:
            sys.exit(f"unknown request byte {op!r}")
    except Exception as e:
        reply_error(f"{type(e).__name__}: {e}")
    out.flush()
