"""The peer `spikerl bench all` measures beside itself: a PopSAN actor, a dense MLP actor and TD3
updates with each, written with PyTorch alone, at PopSAN's published constants and TD3's
hyperparameters (Hopper-v4's dimensions by default).

    python bench/peers/torch_popsan.py --threads 2 --batches 1,8,64,256 --updates 200

Prints one JSON object: each actor's forward time per batch size, and TD3 updates per second
with each.
"""
import argparse
import json
import time

import torch
import torch.nn as nn


class Spike(torch.autograd.Function):
    """Heaviside at the threshold; the rectangular surrogate |v - threshold| < 0.5 backwards."""

    @staticmethod
    def forward(ctx, v, threshold):
        ctx.save_for_backward(v)
        ctx.threshold = threshold
        return (v > threshold).float()

    @staticmethod
    def backward(ctx, grad):
        (v,) = ctx.saved_tensors
        return grad * ((v - ctx.threshold).abs() < 0.5).float(), None


class StraightThrough(torch.autograd.Function):
    """The deterministic encoder's spikes pass their gradient to the activation unchanged."""

    @staticmethod
    def forward(ctx, v, threshold):
        return (v > threshold).float()

    @staticmethod
    def backward(ctx, grad):
        return grad, None


class PopSan(nn.Module):
    def __init__(self, obs_dim, act_dim, act_limit=1.0, hidden=(256, 256), enc_pop=10, dec_pop=10, timesteps=5):
        super().__init__()
        self.obs_dim, self.act_dim, self.act_limit, self.t = obs_dim, act_dim, act_limit, timesteps
        self.enc_pop, self.dec_pop = enc_pop, dec_pop
        means = torch.linspace(-3.0, 3.0, enc_pop).repeat(obs_dim, 1)
        self.mean = nn.Parameter(means)
        self.std = nn.Parameter(torch.full((obs_dim, enc_pop), 0.15 ** 0.5))
        sizes = [obs_dim * enc_pop, *hidden, act_dim * dec_pop]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        self.decoder = nn.Conv1d(act_dim, act_dim, dec_pop, groups=act_dim)

    def forward(self, obs):
        b = obs.shape[0]
        act = torch.exp(-0.5 * ((obs.unsqueeze(-1) - self.mean) / self.std) ** 2).view(b, -1)
        enc_v = torch.zeros_like(act)
        c = [torch.zeros(b, l.out_features) for l in self.layers]
        v = [torch.zeros(b, l.out_features) for l in self.layers]
        s = [torch.zeros(b, l.out_features) for l in self.layers]
        out_sum = torch.zeros(b, self.act_dim * self.dec_pop)
        for _ in range(self.t):
            enc_v = enc_v + act
            x = StraightThrough.apply(enc_v, 0.999)
            enc_v = enc_v - x * 0.999
            for i, layer in enumerate(self.layers):
                c[i] = 0.5 * c[i] + layer(x)
                v[i] = 0.75 * v[i] * (1.0 - s[i]) + c[i]
                s[i] = Spike.apply(v[i], 0.5)
                x = s[i]
            out_sum = out_sum + x
        rates = (out_sum / self.t).view(b, self.act_dim, self.dec_pop)
        return self.act_limit * torch.tanh(self.decoder(rates).view(b, self.act_dim))


class Mlp(nn.Module):
    """The dense actor: ReLU MLP, tanh times the action limit (CleanRL's TD3 actor)."""

    def __init__(self, obs_dim, act_dim, act_limit=1.0, hidden=(256, 256)):
        super().__init__()
        sizes = [obs_dim, *hidden]
        self.body = nn.Sequential(*[m for a, b in zip(sizes[:-1], sizes[1:]) for m in (nn.Linear(a, b), nn.ReLU())])
        self.out = nn.Linear(sizes[-1], act_dim)
        self.act_limit = act_limit

    def forward(self, obs):
        return self.act_limit * torch.tanh(self.out(self.body(obs)))


def critic(obs_dim, act_dim):
    return nn.Sequential(nn.Linear(obs_dim + act_dim, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 1))


def forward_times(actor, obs_dim, batches, reps):
    out = []
    with torch.no_grad():
        for b in batches:
            obs = torch.randn(b, obs_dim)
            for _ in range(5):
                actor(obs)
            n = max(3, reps // b)
            start = time.perf_counter()
            for _ in range(n):
                actor(obs)
            dt = (time.perf_counter() - start) / n
            out.append({"batch": b, "us_per_batch": dt * 1e6, "us_per_observation": dt * 1e6 / b})
    return out


def updates_per_s(make_actor, obs_dim, act_dim, batch, updates):
    actor, q1, q2 = make_actor(), critic(obs_dim, act_dim), critic(obs_dim, act_dim)
    actor_t, q1_t, q2_t = make_actor(), critic(obs_dim, act_dim), critic(obs_dim, act_dim)
    for t, s in ((actor_t, actor), (q1_t, q1), (q2_t, q2)):
        t.load_state_dict(s.state_dict())
    pi_opt = torch.optim.Adam(actor.parameters(), lr=1e-4)
    q_opt = torch.optim.Adam(list(q1.parameters()) + list(q2.parameters()), lr=1e-3)
    n = 10_000
    o, a, r, o2, d = torch.randn(n, obs_dim), torch.rand(n, act_dim) * 2 - 1, torch.randn(n), torch.randn(n, obs_dim), torch.zeros(n)

    def update(k):
        i = torch.randint(0, n, (batch,))
        obs, act, rew, obs2, done = o[i], a[i], r[i], o2[i], d[i]
        with torch.no_grad():
            eps = (torch.randn(batch, act_dim) * 0.2).clamp(-0.5, 0.5)
            a2 = (actor_t(obs2) + eps).clamp(-1.0, 1.0)
            sa2 = torch.cat([obs2, a2], 1)
            y = rew + 0.99 * (1 - done) * torch.min(q1_t(sa2), q2_t(sa2)).squeeze(1)
        sa = torch.cat([obs, act], 1)
        q_loss = ((q1(sa).squeeze(1) - y) ** 2).mean() + ((q2(sa).squeeze(1) - y) ** 2).mean()
        q_opt.zero_grad()
        q_loss.backward()
        q_opt.step()
        if k % 2 == 0:
            pi_loss = -q1(torch.cat([obs, actor(obs)], 1)).mean()
            pi_opt.zero_grad()
            pi_loss.backward()
            pi_opt.step()
            with torch.no_grad():
                for t, s in ((actor_t, actor), (q1_t, q1), (q2_t, q2)):
                    for pt, ps in zip(t.parameters(), s.parameters()):
                        pt.mul_(0.995).add_(ps, alpha=0.005)

    for k in range(10):
        update(k)
    start = time.perf_counter()
    for k in range(updates):
        update(k)
    return updates / (time.perf_counter() - start)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--obs-dim", type=int, default=11)
    p.add_argument("--act-dim", type=int, default=3)
    p.add_argument("--threads", type=int, default=1, help="torch's intra-op threads")
    p.add_argument("--batches", default="1,8,64,256", help="forward batch sizes, comma-separated")
    p.add_argument("--reps", type=int, default=2000, help="observations per forward measurement")
    p.add_argument("--batch", type=int, default=100, help="TD3 minibatch")
    p.add_argument("--updates", type=int, default=200, help="timed TD3 updates")
    args = p.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    batches = [int(b) for b in args.batches.split(",")]
    spiking = lambda: PopSan(args.obs_dim, args.act_dim)
    dense = lambda: Mlp(args.obs_dim, args.act_dim)
    result = {
        "peer": f"PyTorch {torch.__version__} (CPU, {args.threads} threads)",
        "forward": forward_times(spiking(), args.obs_dim, batches, args.reps),
        "forward_dense": forward_times(dense(), args.obs_dim, batches, args.reps),
        "update": {"batch": args.batch, "updates_per_s": updates_per_s(spiking, args.obs_dim, args.act_dim, args.batch, args.updates)},
        "update_dense": {"batch": args.batch, "updates_per_s": updates_per_s(dense, args.obs_dim, args.act_dim, args.batch, args.updates)},
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
