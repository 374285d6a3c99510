//! A cluster on one machine: each "host" a network namespace with its own address, all on one
//! bridge (itself in a namespace of its own, so that nothing outside the cluster changes).
//! Needs root and iproute2 (`ip`).

use std::ffi::OsStr;
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::process::Command;

/// The namespaces of one test's cluster, removed when it is dropped.
pub struct Cluster {
    prefix: String,
    switch: String,
    hosts: Vec<String>,
}

/// One host of a [`Cluster`].
pub struct Host {
    pub ns: String,
    pub addr: Ipv4Addr,
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip").args(args).output().map_err(|e| format!("cannot run `ip` (iproute2): {e}"))?;
    if out.status.success() { Ok(()) } else { Err(format!("`ip {}` failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim())) }
}

impl Cluster {
    /// An empty cluster (its switch only); `Err` says why namespaces cannot be made here.
    pub fn new(tag: &str) -> Result<Self, String> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return Err("network namespaces need root".into());
        }
        remove_abandoned();
        let prefix = format!("spkc-{}-{tag}", std::process::id());
        let switch = format!("{prefix}-sw");
        ip(&["netns", "add", &switch])?;
        let cluster = Self { prefix, switch, hosts: Vec::new() };
        ip(&["-n", &cluster.switch, "link", "add", "br0", "type", "bridge"])?;
        ip(&["-n", &cluster.switch, "link", "set", "br0", "up"])?;
        Ok(cluster)
    }

    /// A host named `name` at `addr`/24, its `eth0` plugged into the switch.
    pub fn host(&mut self, name: &str, addr: Ipv4Addr) -> Result<Host, String> {
        let ns = format!("{}-{name}", self.prefix);
        ip(&["netns", "add", &ns])?;
        self.hosts.push(ns.clone());
        let port = format!("p{}", self.hosts.len());
        let sw = self.switch.as_str();
        ip(&["-n", sw, "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns", &ns])?;
        ip(&["-n", sw, "link", "set", &port, "master", "br0"])?;
        ip(&["-n", sw, "link", "set", &port, "up"])?;
        ip(&["-n", &ns, "addr", "add", &format!("{addr}/24"), "dev", "eth0"])?;
        ip(&["-n", &ns, "link", "set", "eth0", "up"])?;
        ip(&["-n", &ns, "link", "set", "lo", "up"])?;
        Ok(Host { ns, addr })
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for ns in self.hosts.iter().chain([&self.switch]) {
            let _ = ip(&["netns", "del", ns]);
        }
    }
}

/// Namespaces left by a test process that no longer runs (killed before its drop).
fn remove_abandoned() {
    let Ok(out) = Command::new("ip").args(["netns", "list"]).output() else { return };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let name = line.split_whitespace().next().unwrap_or("");
        let Some(pid) = name.strip_prefix("spkc-").and_then(|r| r.split('-').next()) else { continue };
        if !std::path::Path::new("/proc").join(pid).exists() {
            let _ = ip(&["netns", "del", name]);
        }
    }
}

impl Host {
    /// `program` to run on this host.
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.ns]).arg(program);
        c
    }

    /// Runs `f` on a thread inside this host's network: sockets it makes (and threads it
    /// starts) belong to the host.
    pub fn inside<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        let path = format!("/var/run/netns/{}", self.ns);
        std::thread::spawn(move || {
            let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
            // SAFETY: `file` is an open network-namespace file; setns moves only this thread.
            let r = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(r, 0, "setns {path}: {}", std::io::Error::last_os_error());
            f()
        })
        .join()
        .expect("the thread inside the host")
    }
}
