//! Operation counts and the energy estimates SNN papers use.
//!
//! Conventions (Horowitz 2014, 45 nm; Davies et al. 2018 for Loihi): a 32-bit float
//! multiply–accumulate costs 4.6 pJ, an accumulate 0.9 pJ. A synaptic operation (SOP) is one
//! spike delivered along one synapse — an accumulate. The spiking network's energy is
//! `SOPs·0.9 pJ + (encoder and decoder MACs)·4.6 pJ`; on Loihi, `SOPs·23.6 pJ + neuron
//! updates·81 pJ`; the dense ANN actor of the same shape costs `MACs·4.6 pJ`.

use crate::PopSanSpec;

pub const E_MAC_PJ: f64 = 4.6;
pub const E_AC_PJ: f64 = 0.9;
pub const LOIHI_SOP_PJ: f64 = 23.6;
pub const LOIHI_NEURON_UPDATE_PJ: f64 = 81.0;

/// What a PopSAN did: over one inference ([`crate::PopSan::last_counts`]) or many.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OpCounts {
    /// Neurons per spiking layer: encoder, hidden…, output population.
    pub layer_neurons: Vec<usize>,
    /// Spikes per spiking layer, summed over timesteps.
    pub spikes: Vec<u64>,
    /// Synaptic operations between spiking layers.
    pub sops: u64,
    /// Float multiply–accumulates of the encoder (3 per encoder neuron: shift-scale, square,
    /// exponent) and the decoder (one per output neuron).
    pub encoder_macs: u64,
    pub decoder_macs: u64,
    /// Neuron state updates (every spiking neuron, every timestep).
    pub neuron_updates: u64,
    /// Multiply–accumulates of a dense actor's layers (0 for a spiking one).
    pub dense_macs: u64,
    pub inferences: u64,
}

impl OpCounts {
    pub fn new(layers: usize) -> Self {
        Self { spikes: vec![0; layers], ..Self::default() }
    }

    pub fn clear(&mut self) {
        self.spikes.fill(0);
        self.sops = 0;
        self.encoder_macs = 0;
        self.decoder_macs = 0;
        self.neuron_updates = 0;
        self.dense_macs = 0;
        self.inferences = 0;
    }

    pub fn add(&mut self, other: &OpCounts) {
        for (a, b) in self.spikes.iter_mut().zip(&other.spikes) {
            *a += b;
        }
        self.sops += other.sops;
        self.encoder_macs += other.encoder_macs;
        self.decoder_macs += other.decoder_macs;
        self.neuron_updates += other.neuron_updates;
        self.dense_macs += other.dense_macs;
        self.inferences += other.inferences;
    }

    /// Mean firing rate of each layer: spikes per neuron per timestep.
    pub fn firing_rates(&self, timesteps: usize) -> Vec<f64> {
        let per = (self.inferences.max(1) * timesteps as u64) as f64;
        self.spikes.iter().zip(&self.layer_neurons).map(|(&s, &n)| s as f64 / (per * n as f64)).collect()
    }
}

/// Energy of one inference, in picojoules.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EnergyEstimate {
    pub sops: f64,
    pub macs: f64,
    pub neuron_updates: f64,
    /// `SOPs·E_AC + MACs·E_MAC`.
    pub snn_pj: f64,
    /// `SOPs·23.6 + neuron updates·81`.
    pub loihi_pj: f64,
    /// The dense ANN actor `obs → hidden… → act`.
    pub ann_macs: f64,
    pub ann_pj: f64,
}

/// MACs of the dense ANN actor with the same hidden layers.
pub fn ann_macs(spec: &PopSanSpec) -> u64 {
    let mut sizes = vec![spec.obs_dim];
    sizes.extend(&spec.hidden);
    sizes.push(spec.act_dim);
    sizes.windows(2).map(|w| (w[0] * w[1]) as u64).sum()
}

/// Mean energy per inference over the inferences `counts` covers.
pub fn energy_per_inference(spec: &PopSanSpec, counts: &OpCounts) -> EnergyEstimate {
    let n = counts.inferences.max(1) as f64;
    let sops = counts.sops as f64 / n;
    let macs = (counts.encoder_macs + counts.decoder_macs) as f64 / n;
    let neuron_updates = counts.neuron_updates as f64 / n;
    let ann = ann_macs(spec) as f64;
    EnergyEstimate {
        sops,
        macs,
        neuron_updates,
        snn_pj: sops * E_AC_PJ + macs * E_MAC_PJ,
        loihi_pj: sops * LOIHI_SOP_PJ + neuron_updates * LOIHI_NEURON_UPDATE_PJ,
        ann_macs: ann,
        ann_pj: ann * E_MAC_PJ,
    }
}
