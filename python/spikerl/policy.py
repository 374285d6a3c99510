"""A trained actor from Python: the event-driven engine, no torch."""

import numpy as np

from . import _spikerl


class Policy:
    """A ``.paramset`` that ``spikerl train`` wrote (``policy.paramset``,
    ``best_policy.paramset``): spiking (PopSAN) or dense. ``act`` gives the deterministic
    action ``spikerl eval`` takes for the same observation."""

    def __init__(self, core):
        self._core = core

    @classmethod
    def load(cls, path):
        return cls(_spikerl.Policy.load(str(path)))

    @property
    def kind(self):
        """``"spiking"`` or ``"dense"``."""
        return self._core.kind

    @property
    def obs_dim(self):
        return self._core.obs_dim

    @property
    def act_dim(self):
        return self._core.act_dim

    def act(self, obs):
        """The action for one observation (``obs_dim``) or each row of a batch (``n × obs_dim``)."""
        return self._core.act(np.ascontiguousarray(obs, dtype=np.float32))

    def seed(self, seed):
        """Seeds a Poisson encoder's draws (the default encoding draws nothing)."""
        self._core.seed(int(seed))

    def counts(self):
        """What the actor computed over every action so far (synaptic operations, MACs, spikes
        per layer) and the energy per action that implies, in picojoules (docs/energy.md)."""
        return self._core.counts()
