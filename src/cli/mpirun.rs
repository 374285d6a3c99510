//! Starting N ranks of this very command on this machine with mpirun (`--learners N`,
//! `bench collective --ranks N`).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

/// Runs this command line as `n` MPI ranks, with `extra` arguments appended, and waits for them.
pub fn relaunch<'a>(n: usize, extra: impl IntoIterator<Item = &'a str>) -> Result<()> {
    let mpirun = mpirun();
    let version = Command::new(&mpirun).arg("--version").output().with_context(|| format!("cannot run {} to start {n} ranks (set SPIKERL_MPIRUN to an MPI launcher)", mpirun.display()))?;
    let mut cmd = Command::new(&mpirun);
    cmd.args(["-n", &n.to_string()]);
    if String::from_utf8_lossy(&version.stdout).contains("Open MPI") {
        // Threads are placed by the OS, not pinned to a core per rank; more ranks than cores
        // is allowed (a test on a small machine).
        cmd.args(["--bind-to", "none", "--oversubscribe"]);
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } == 0 {
            cmd.arg("--allow-run-as-root");
        }
        if std::env::var_os("OMPI_MCA_mpi_yield_when_idle").is_none() {
            // A rank waiting for the others gives its core to the actors instead of spinning.
            cmd.env("OMPI_MCA_mpi_yield_when_idle", "1");
        }
    }
    cmd.arg(std::env::current_exe().context("cannot find this program's path")?);
    cmd.args(std::env::args_os().skip(1));
    cmd.args(extra);
    // If this process goes (killed, or its terminal closed), mpirun goes too, and takes the
    // ranks with it: no learner is left waiting for actors that will never come.
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::process::CommandExt;
        // SAFETY: prctl is async-signal-safe, as code between fork and exec must be.
        unsafe {
            cmd.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    let status = cmd.status().with_context(|| format!("cannot start {}", mpirun.display()))?;
    if !status.success() {
        bail!("the ranks ended with {status} (see their messages above)");
    }
    Ok(())
}

/// The MPI launcher: $SPIKERL_MPIRUN, else the one beside the MPI this program was built
/// against, else `mpirun` on the PATH.
fn mpirun() -> PathBuf {
    if let Some(p) = std::env::var_os("SPIKERL_MPIRUN") {
        return PathBuf::from(p);
    }
    option_env!("MPICC").map(|cc| Path::new(cc).with_file_name("mpirun")).filter(|p| p.is_file()).unwrap_or_else(|| PathBuf::from("mpirun"))
}
