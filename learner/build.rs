//! Binaries and tests of this crate find libtorch and the MPI library at run time (rpath), and
//! keep libtorch_cuda as a dependency: nothing references its symbols directly, so the
//! linker's `--as-needed` would drop it and CUDA would look absent on a GPU machine.
fn main() {
    println!("cargo:rerun-if-env-changed=MPICC");
    // The MPI the build found (rsmpi asks `$MPICC -show`): its library folders, as mpicc links.
    if let Some(show) = std::env::var("MPICC").ok().and_then(|cc| std::process::Command::new(cc).arg("-show").output().ok()) {
        for dir in String::from_utf8_lossy(&show.stdout).split_whitespace().filter_map(|a| a.strip_prefix("-L")) {
            println!("cargo:rustc-link-arg=-Wl,-rpath={dir}");
        }
    }
    let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") else { return };
    println!("cargo:rustc-link-arg=-Wl,-rpath={lib}");
    if std::path::Path::new(&lib).join("libtorch_cuda.so").exists() {
        println!("cargo:rustc-link-arg=-L{lib}");
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
        println!("cargo:rustc-link-arg=-ltorch_cuda");
        println!("cargo:rustc-link-arg=-Wl,--as-needed");
    }
}
