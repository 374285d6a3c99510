//! Binaries and tests of this crate find libtorch at run time (rpath) and keep
//! libtorch_cuda linked even though no symbol of it is referenced directly.
fn main() {
    if let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        println!("cargo:rustc-link-arg=-Wl,-rpath={lib}");
    }
    println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
}
