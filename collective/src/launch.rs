//! Who started this process, as which rank: the variables cluster launchers set.

use std::fmt;
use std::str::FromStr;

/// Which collective a run uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Backend {
    /// NCCL under a torchrun-style launch, MPI under `mpirun`/`srun`, else a single learner.
    #[default]
    Auto,
    Single,
    Mpi,
    Nccl,
}

impl FromStr for Backend {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "auto" => Ok(Self::Auto),
            "single" => Ok(Self::Single),
            "mpi" => Ok(Self::Mpi),
            "nccl" => Ok(Self::Nccl),
            _ => Err(format!("unknown collective '{s}' (auto, single, mpi, nccl)")),
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Auto => "auto",
            Self::Single => "single",
            Self::Mpi => "mpi",
            Self::Nccl => "nccl",
        })
    }
}

/// This process's place in a launched job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launch {
    pub rank: usize,
    pub world: usize,
    /// The rank among those on this machine (a GPU learner uses CUDA device `local_rank`).
    pub local_rank: usize,
    /// `mpirun (Open MPI)`, `mpiexec (MPICH)`, `srun` or `torchrun`.
    pub launcher: &'static str,
    /// torchrun's `MASTER_ADDR`/`MASTER_PORT`: where rank 0 hands out NCCL's unique id.
    pub master: Option<(String, u16)>,
}

impl Launch {
    /// The launch this process's environment describes, if any (a world of one is none).
    pub fn from_env() -> Option<Self> {
        Self::from_vars(|k| std::env::var(k).ok())
    }

    /// As [`Launch::from_env`], reading variables through `var`. torchrun's come first (a
    /// torchrun job inside a Slurm allocation has both), then Open MPI's, MPICH's, Slurm's.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Option<Self> {
        let num = |k: &str| var(k).and_then(|v| v.trim().parse::<usize>().ok());
        let master = var("MASTER_ADDR").zip(var("MASTER_PORT").and_then(|p| p.trim().parse::<u16>().ok()));
        let schemes: [(&'static str, &str, &str, &str); 4] = [
            ("torchrun", "RANK", "WORLD_SIZE", "LOCAL_RANK"),
            ("mpirun (Open MPI)", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_RANK"),
            ("mpiexec (MPICH)", "PMI_RANK", "PMI_SIZE", "MPI_LOCALRANKID"),
            ("srun", "SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID"),
        ];
        schemes.into_iter().find_map(|(launcher, rank, world, local)| {
            let (rank, world) = (num(rank)?, num(world)?);
            (world > 1 && rank < world).then(|| Launch { rank, world, local_rank: num(local).unwrap_or(0), launcher, master: if launcher == "torchrun" { master.clone() } else { None } })
        })
    }

    /// NCCL for torchrun-style launches, MPI for the others.
    pub fn default_backend(&self) -> Backend {
        if self.master.is_some() { Backend::Nccl } else { Backend::Mpi }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn launch(vars: &[(&str, &str)]) -> Option<Launch> {
        Launch::from_vars(|k| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string()))
    }

    #[test]
    fn launchers_are_recognised_by_their_variables() {
        let l = launch(&[("OMPI_COMM_WORLD_RANK", "1"), ("OMPI_COMM_WORLD_SIZE", "2"), ("OMPI_COMM_WORLD_LOCAL_RANK", "1")]).unwrap();
        assert_eq!((l.rank, l.world, l.local_rank, l.default_backend()), (1, 2, 1, Backend::Mpi));
        let l = launch(&[("RANK", "3"), ("WORLD_SIZE", "4"), ("LOCAL_RANK", "1"), ("MASTER_ADDR", "10.0.0.1"), ("MASTER_PORT", "29500"), ("SLURM_PROCID", "0"), ("SLURM_NTASKS", "4")]).unwrap();
        assert_eq!((l.rank, l.launcher, l.master.clone(), l.default_backend()), (3, "torchrun", Some(("10.0.0.1".into(), 29500)), Backend::Nccl));
        let l = launch(&[("SLURM_PROCID", "5"), ("SLURM_NTASKS", "8"), ("SLURM_LOCALID", "1")]).unwrap();
        assert_eq!((l.rank, l.world, l.launcher), (5, 8, "srun"));
        // A world of one, a rank outside its world and garbage are no launch.
        assert_eq!(launch(&[("PMI_RANK", "0"), ("PMI_SIZE", "1")]), None);
        assert_eq!(launch(&[("PMI_RANK", "2"), ("PMI_SIZE", "2")]), None);
        assert_eq!(launch(&[("RANK", "x"), ("WORLD_SIZE", "2")]), None);
        assert_eq!("MPI".parse::<Backend>(), Ok(Backend::Mpi));
        assert!("gloo".parse::<Backend>().unwrap_err().contains("auto, single, mpi, nccl"));
    }
}
