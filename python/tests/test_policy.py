"""spikerl.Policy: the actions of `spikerl eval`, batched or not, op counts and bad input."""

import json
import subprocess

import gymnasium as gym
import numpy as np
import pytest

import spikerl


@pytest.mark.parametrize("kind", ["spiking", "mlp"])
def test_act_takes_spikerl_evals_actions(kind, trained_policies, spikerl_bin):
    path = trained_policies[kind]
    cli = json.loads(subprocess.run([spikerl_bin, "eval", "--checkpoint", path, "--env", "Pendulum-v1", "--episodes", "2", "--seed", "4", "--json"], check=True, capture_output=True, text=True).stdout)
    policy = spikerl.Policy.load(path)
    assert policy.kind == {"spiking": "spiking", "mlp": "dense"}[kind]
    env = gym.make("spikerl/Pendulum-v1")
    returns = []
    for episode in range(2):
        obs, _ = env.reset(seed=4 + episode)
        ret, done = 0.0, False
        while not done:
            obs, reward, terminated, truncated, _ = env.step(policy.act(obs))
            ret, done = ret + reward, terminated or truncated
        returns.append(ret)
    assert returns == cli["returns"], "the same actions, so bitwise the same returns"
    counts = policy.counts()
    assert counts["inferences"] == 400
    energy = counts["energy_per_action"]
    assert all(v > 0 for v in energy.values()), energy
    if kind == "spiking":
        assert counts["sops"] > 0 and len(counts["spikes_per_layer"]) >= 3
    else:
        assert counts["dense_macs"] > 0


def test_a_batch_is_acted_row_by_row(trained_policies):
    policy, single = spikerl.Policy.load(trained_policies["spiking"]), spikerl.Policy.load(trained_policies["spiking"])
    obs = np.random.default_rng(1).normal(size=(6, 3)).astype(np.float32)
    batch = policy.act(obs)
    assert batch.shape == (6, 1) and batch.dtype == np.float32
    for row, action in zip(obs, batch):
        assert single.act(row).tobytes() == action.tobytes()


def test_bad_input_raises(trained_policies, tmp_path):
    policy = spikerl.Policy.load(trained_policies["mlp"])
    with pytest.raises(ValueError, match="shape"):
        policy.act(np.zeros(4, np.float32))
    with pytest.raises(ValueError, match="finite"):
        policy.act(np.array([0.0, np.nan, 1.0], np.float32))
    junk = tmp_path / "junk.paramset"
    junk.write_bytes(b"not a policy")
    with pytest.raises(ValueError, match="not a policy"):
        spikerl.Policy.load(junk)
    with pytest.raises(ValueError, match="cannot read"):
        spikerl.Policy.load(tmp_path / "missing.paramset")
