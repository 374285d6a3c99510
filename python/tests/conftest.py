"""Shared fixtures: the spikerl binary (the Rust reference), and small trained policies."""

import json
import os
import pathlib
import struct
import subprocess

import numpy as np
import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def spikerl_bin():
    path = pathlib.Path(os.environ.get("SPIKERL", REPO / "target" / "release" / "spikerl"))
    if not path.is_file():
        pytest.fail(f"{path} is missing: build it with `cargo build --release` (make setup does)")
    return path


class EnvServe:
    """`spikerl envserve`: the task stepped by the spikerl binary itself, over a pipe."""

    def __init__(self, binary, task):
        self.proc = subprocess.Popen([binary, "envserve", "--env", task], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        spec = json.loads(self.proc.stdout.readline())
        self.obs_dim = spec["obs_dim"]
        self._reply = struct.Struct(f"<{self.obs_dim}fdBB")

    def _read(self, n):
        data = self.proc.stdout.read(n)
        assert len(data) == n, "spikerl envserve ended"
        return data

    def _call(self, message):
        self.proc.stdin.write(message)
        self.proc.stdin.flush()
        assert self._read(1) == b"\x00", "envserve refused a call"

    def reset(self, seed):
        self._call(b"R" + struct.pack("<Q", seed))
        return np.frombuffer(self._read(4 * self.obs_dim), dtype="<f4").copy()

    def step(self, action):
        self._call(b"S" + np.asarray(action, dtype="<f4").tobytes())
        *obs, reward, terminated, truncated = self._reply.unpack(self._read(self._reply.size))
        return np.array(obs, dtype=np.float32), reward, bool(terminated), bool(truncated)

    def close(self):
        self.proc.stdin.close()
        self.proc.wait()


@pytest.fixture
def envserve(spikerl_bin):
    servers = []

    def start(task):
        servers.append(EnvServe(spikerl_bin, task))
        return servers[-1]

    yield start
    for s in servers:
        s.close()


@pytest.fixture(scope="session")
def trained_policies(spikerl_bin, tmp_path_factory):
    """A spiking and a dense actor, each trained briefly on Pendulum-v1 by `spikerl train`."""
    out = {}
    for kind in ("spiking", "mlp"):
        run = tmp_path_factory.mktemp(f"pendulum-{kind}")
        subprocess.run([spikerl_bin, "train", "--env", "pendulum-v1", "--actor", kind, "--steps", "1200", "--quiet", "--out", run], check=True, capture_output=True)
        out[kind] = run / "policy.paramset"
    return out
