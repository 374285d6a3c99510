//! What the end-to-end tests share: running the `spikerl` binary and scratch directories.

#![allow(dead_code)] // each test file uses its part

use std::path::PathBuf;
use std::process::Command;

/// Runs `spikerl args`: whether it succeeded, its stdout and its stderr.
pub fn spikerl(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_spikerl"))
        .args(args)
        .output()
        .expect("run spikerl");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

/// A fresh (removed) path under the temporary directory, named for the test file, this
/// process and `name`.
pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "spikerl-{}-{}-{name}",
        env!("CARGO_CRATE_NAME"),
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}
