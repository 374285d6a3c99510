//! Replay buffer: preallocated, contiguous rows, uniform sampling.

use spikerl_snn::rng::SplitMix;

/// One sampled minibatch, row-major.
#[derive(Debug, Clone, Default)]
pub struct Minibatch {
    pub obs: Vec<f32>,
    pub act: Vec<f32>,
    pub rew: Vec<f32>,
    pub next_obs: Vec<f32>,
    /// 1.0 where the episode terminated (not where it was truncated).
    pub done: Vec<f32>,
}

/// A ring of `capacity` transitions.
#[derive(Debug, Clone)]
pub struct ReplayBuffer {
    obs_dim: usize,
    act_dim: usize,
    capacity: usize,
    len: usize,
    next: usize,
    obs: Vec<f32>,
    act: Vec<f32>,
    rew: Vec<f32>,
    next_obs: Vec<f32>,
    done: Vec<f32>,
}

impl ReplayBuffer {
    /// A buffer that fits in memory (tests and benchmarks); see [`ReplayBuffer::try_new`].
    pub fn new(obs_dim: usize, act_dim: usize, capacity: usize) -> Self {
        Self::try_new(obs_dim, act_dim, capacity).expect("a replay buffer that fits in memory")
    }

    /// A full buffer of `capacity` random transitions (standard-normal observations and
    /// rewards, uniform actions in ±1, never done), drawn from `rng`: for benchmarks and
    /// tests of the update.
    pub fn random(obs_dim: usize, act_dim: usize, capacity: usize, rng: &mut SplitMix) -> Self {
        let mut rb = Self::new(obs_dim, act_dim, capacity);
        for _ in 0..capacity {
            let o: Vec<f32> = (0..obs_dim).map(|_| rng.normal()).collect();
            let a: Vec<f32> = (0..act_dim).map(|_| rng.uniform(1.0)).collect();
            let o2: Vec<f32> = (0..obs_dim).map(|_| rng.normal()).collect();
            rb.push(&o, &a, rng.normal(), &o2, false);
        }
        rb
    }

    /// A buffer of `capacity` transitions, or why it cannot be had (zero capacity, or memory
    /// the allocator refuses) — never an abort.
    pub fn try_new(obs_dim: usize, act_dim: usize, capacity: usize) -> Result<Self, String> {
        if capacity == 0 {
            return Err("replay capacity must be positive".into());
        }
        let zeros = |per_row: usize| -> Result<Vec<f32>, String> {
            let n = capacity.checked_mul(per_row).ok_or("replay size overflows")?;
            let mut v = Vec::new();
            v.try_reserve_exact(n).map_err(|_| format!("cannot allocate a replay buffer of {capacity} transitions ({:.1} GB)", Self::bytes(obs_dim, act_dim, capacity) as f64 / 1e9))?;
            v.resize(n, 0.0);
            Ok(v)
        };
        Ok(Self { obs_dim, act_dim, capacity, len: 0, next: 0, obs: zeros(obs_dim)?, act: zeros(act_dim)?, rew: zeros(1)?, next_obs: zeros(obs_dim)?, done: zeros(1)? })
    }

    /// Bytes a buffer of `capacity` transitions of these dimensions holds.
    pub fn bytes(obs_dim: usize, act_dim: usize, capacity: usize) -> u128 {
        capacity as u128 * (2 * obs_dim + act_dim + 2) as u128 * 4
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    pub fn dims(&self) -> (usize, usize) {
        (self.obs_dim, self.act_dim)
    }

    /// Adds one transition, overwriting the oldest when full. Slices must have the buffer's
    /// dimensions (checked by whoever decodes them).
    pub fn push(&mut self, obs: &[f32], act: &[f32], rew: f32, next_obs: &[f32], done: bool) {
        let (od, ad, i) = (self.obs_dim, self.act_dim, self.next);
        self.obs[i * od..(i + 1) * od].copy_from_slice(obs);
        self.act[i * ad..(i + 1) * ad].copy_from_slice(act);
        self.rew[i] = rew;
        self.next_obs[i * od..(i + 1) * od].copy_from_slice(next_obs);
        self.done[i] = if done { 1.0 } else { 0.0 };
        self.next = (i + 1) % self.capacity;
        self.len = (self.len + 1).min(self.capacity);
    }

    /// `batch` transitions drawn uniformly with replacement into `out`.
    pub fn sample_into(&self, batch: usize, rng: &mut SplitMix, out: &mut Minibatch) {
        assert!(self.len > 0, "sampling an empty replay buffer");
        let (od, ad) = (self.obs_dim, self.act_dim);
        out.obs.clear();
        out.act.clear();
        out.rew.clear();
        out.next_obs.clear();
        out.done.clear();
        for _ in 0..batch {
            let i = rng.below(self.len);
            out.obs.extend_from_slice(&self.obs[i * od..(i + 1) * od]);
            out.act.extend_from_slice(&self.act[i * ad..(i + 1) * ad]);
            out.rew.push(self.rew[i]);
            out.next_obs.extend_from_slice(&self.next_obs[i * od..(i + 1) * od]);
            out.done.push(self.done[i]);
        }
    }

    /// Contents for a checkpoint: `(len, next, [obs, act, rew, next_obs, done])`.
    pub fn to_parts(&self) -> (usize, usize, [&[f32]; 5]) {
        (self.len, self.next, [&self.obs, &self.act, &self.rew, &self.next_obs, &self.done])
    }

    /// Restores [`ReplayBuffer::to_parts`]; every length is checked.
    pub fn from_parts(obs_dim: usize, act_dim: usize, capacity: usize, len: usize, next: usize, parts: [Vec<f32>; 5]) -> Result<Self, String> {
        let [obs, act, rew, next_obs, done] = parts;
        let rows = |per_row: usize| capacity as u128 * per_row as u128;
        let ok = capacity > 0
            && len <= capacity
            && next < capacity
            && obs.len() as u128 == rows(obs_dim)
            && act.len() as u128 == rows(act_dim)
            && rew.len() == capacity
            && next_obs.len() as u128 == rows(obs_dim)
            && done.len() == capacity;
        if !ok {
            return Err(format!("replay buffer sizes do not match capacity {capacity} × ({obs_dim}, {act_dim})"));
        }
        Ok(Self { obs_dim, act_dim, capacity, len, next, obs, act, rew, next_obs, done })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_overwrites_oldest_and_samples_only_stored_rows() {
        let mut rb = ReplayBuffer::new(2, 1, 3);
        for k in 0..5 {
            let v = k as f32;
            rb.push(&[v, v], &[v], v, &[v + 1.0, v + 1.0], k == 4);
        }
        assert_eq!(rb.len(), 3);
        let mut rng = SplitMix::new(1);
        let mut mb = Minibatch::default();
        rb.sample_into(200, &mut rng, &mut mb);
        let seen: std::collections::BTreeSet<i32> = mb.rew.iter().map(|r| *r as i32).collect();
        assert_eq!(seen.into_iter().collect::<Vec<_>>(), vec![2, 3, 4], "rows 0 and 1 were overwritten");
        for (i, r) in mb.rew.iter().enumerate() {
            assert_eq!(mb.obs[2 * i], *r);
            assert_eq!(mb.next_obs[2 * i], r + 1.0);
            assert_eq!(mb.done[i], if *r == 4.0 { 1.0 } else { 0.0 });
        }
    }
}
