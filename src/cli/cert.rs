//! `spikerl cert`: the certificates and token of a distributed run.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

#[derive(Args)]
pub struct CertArgs {
    /// Directory of the run's certificates; the CA is made there once.
    #[arg(long, default_value = "certs")]
    pub dir: PathBuf,
    /// Name of the node certificate to make (NAME.pem, NAME.key).
    #[arg(long)]
    pub name: String,
    /// Host names or IP addresses the node is reached at (learners; repeatable) [default: none,
    /// for an actor].
    #[arg(long = "host")]
    pub hosts: Vec<String>,
}

pub fn cert(args: CertArgs) -> Result<()> {
    use spikerl_net::quic::{ensure_ca, ensure_token, make_node};
    if ensure_ca(&args.dir)? {
        println!("made the run CA: {}/ca.pem (keep ca.key on this machine)", args.dir.display());
    }
    ensure_token(&args.dir)?;
    let files = make_node(&args.dir, &args.name, &args.hosts)?;
    println!("made {} and {}", files.cert.display(), files.key.display());
    println!("a node needs ca.pem, its NAME.pem and NAME.key, and the token file ({}/token)", args.dir.display());
    Ok(())
}
