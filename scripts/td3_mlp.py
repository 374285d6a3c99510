"""Plain TD3 with an MLP actor (CleanRL's recipe), on our rapier port or on Gymnasium/MuJoCo.

A diagnostic, not part of spikerl: if this learns a task on the port as it does on MuJoCo,
the port is not what holds a spiking actor back on it. The port comes from the `spikerl`
Python package (python/), MuJoCo from Gymnasium.

    python scripts/td3_mlp.py --env Hopper-v4 --backend spikerl --steps 100000
    python scripts/td3_mlp.py --env Hopper-v4 --backend mujoco  --steps 100000
Prints one JSON line per evaluation (5 deterministic episodes).
"""
import argparse
import json
import random
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def make_env(env_id, backend):
    import gymnasium as gym
    if backend == "spikerl":
        import spikerl  # noqa: F401  (registers spikerl/TASK)
        env_id = f"spikerl/{env_id}"
    env = gym.make(env_id)
    return env, env.observation_space.shape[0], env.action_space.shape[0], float(env.action_space.high[0])


def mlp(n_in, n_out, hidden=256):
    return nn.Sequential(nn.Linear(n_in, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, n_out))


def evaluate(env, actor, act_limit, episodes, seed):
    returns, lengths = [], []
    for ep in range(episodes):
        obs, _ = env.reset(seed=seed + ep)
        ret, length, done = 0.0, 0, False
        while not done:
            with torch.no_grad():
                a = act_limit * torch.tanh(actor(torch.as_tensor(obs, dtype=torch.float32))).numpy()
            obs, r, term, trunc, _ = env.step(a)
            ret, length, done = ret + r, length + 1, term or trunc
        returns.append(ret)
        lengths.append(length)
    return float(np.mean(returns)), float(np.mean(lengths))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--env", default="Hopper-v4")
    p.add_argument("--backend", choices=["spikerl", "mujoco"], default="spikerl")
    p.add_argument("--steps", type=int, default=100_000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--start-steps", type=int, default=10_000)
    p.add_argument("--eval-every", type=int, default=5_000)
    p.add_argument("--lr", type=float, default=3e-4)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--hidden", type=int, default=256, help="units in each of the two hidden layers")
    a = p.parse_args()
    torch.set_num_threads(1)
    random.seed(a.seed)
    np.random.seed(a.seed)
    torch.manual_seed(a.seed)

    env, obs_dim, act_dim, act_limit = make_env(a.env, a.backend)
    eval_env, *_ = make_env(a.env, a.backend)
    h = a.hidden
    actor, q1, q2 = mlp(obs_dim, act_dim, h), mlp(obs_dim + act_dim, 1, h), mlp(obs_dim + act_dim, 1, h)
    actor_t, q1_t, q2_t = mlp(obs_dim, act_dim, h), mlp(obs_dim + act_dim, 1, h), mlp(obs_dim + act_dim, 1, h)
    for t, s in ((actor_t, actor), (q1_t, q1), (q2_t, q2)):
        t.load_state_dict(s.state_dict())
    actor_opt = torch.optim.Adam(actor.parameters(), lr=a.lr)
    q_opt = torch.optim.Adam(list(q1.parameters()) + list(q2.parameters()), lr=a.lr)
    gamma, tau, policy_noise, noise_clip, expl_noise = 0.99, 0.005, 0.2, 0.5, 0.1

    n = a.steps
    obs_buf = np.zeros((n, obs_dim), np.float32)
    next_buf = np.zeros((n, obs_dim), np.float32)
    act_buf = np.zeros((n, act_dim), np.float32)
    rew_buf = np.zeros(n, np.float32)
    term_buf = np.zeros(n, np.float32)

    obs, _ = env.reset(seed=a.seed)
    started = time.time()
    for step in range(n):
        if step < a.start_steps:
            act = np.random.uniform(-act_limit, act_limit, act_dim).astype(np.float32)
        else:
            with torch.no_grad():
                act = act_limit * torch.tanh(actor(torch.as_tensor(obs, dtype=torch.float32))).numpy()
            act = np.clip(act + np.random.normal(0, expl_noise * act_limit, act_dim), -act_limit, act_limit)
        next_obs, r, term, trunc, _ = env.step(act)
        obs_buf[step], next_buf[step], act_buf[step], rew_buf[step], term_buf[step] = obs, next_obs, act, r, term
        obs = next_obs
        if term or trunc:
            obs, _ = env.reset()

        if step >= a.start_steps:
            idx = np.random.randint(0, step + 1, a.batch)
            o, o2, ac = map(torch.as_tensor, (obs_buf[idx], next_buf[idx], act_buf[idx]))
            rew, done = torch.as_tensor(rew_buf[idx]), torch.as_tensor(term_buf[idx])
            with torch.no_grad():
                noise = (torch.randn_like(ac) * policy_noise).clamp(-noise_clip, noise_clip) * act_limit
                a2 = (act_limit * torch.tanh(actor_t(o2)) + noise).clamp(-act_limit, act_limit)
                x2 = torch.cat([o2, a2], 1)
                target = rew + gamma * (1 - done) * torch.min(q1_t(x2), q2_t(x2)).view(-1)
            x = torch.cat([o, ac], 1)
            q_loss = F.mse_loss(q1(x).view(-1), target) + F.mse_loss(q2(x).view(-1), target)
            q_opt.zero_grad()
            q_loss.backward()
            q_opt.step()
            if step % 2 == 0:
                actor_loss = -q1(torch.cat([o, act_limit * torch.tanh(actor(o))], 1)).mean()
                actor_opt.zero_grad()
                actor_loss.backward()
                actor_opt.step()
                with torch.no_grad():
                    for t, s in ((actor_t, actor), (q1_t, q1), (q2_t, q2)):
                        for pt, ps in zip(t.parameters(), s.parameters()):
                            pt.mul_(1 - tau).add_(tau * ps)

        if (step + 1) % a.eval_every == 0:
            ret, length = evaluate(eval_env, actor, act_limit, 5, 10_000 + step)
            print(json.dumps({"backend": a.backend, "env": a.env, "step": step + 1, "return": round(ret, 1),
                              "length": length, "elapsed_s": round(time.time() - started)}), flush=True)


if __name__ == "__main__":
    main()
