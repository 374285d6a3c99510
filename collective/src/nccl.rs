//! NCCL between GPU learners, one CUDA device per rank, loaded at run time.
//!
//! NCCL and the CUDA runtime are opened with `dlopen` when a run asks for them, so a build
//! without CUDA has this backend too, and a machine without them gets an error naming what is
//! missing. The libraries are those the PyTorch wheel ships (`nvidia/nccl/lib/libnccl.so.2`,
//! `nvidia/cu13/lib/libcudart.so.13`, already loaded with libtorch's CUDA part) or the system's.
//! (cudarc's loader looks for other file names — not `libnccl.so.2` — and panics when none is
//! found, so the few entry points needed are bound here.)
//!
//! The ranks agree on NCCL's unique id through a small rendezvous: rank 0 creates it and hands
//! it to every other rank over TCP at `MASTER_ADDR:MASTER_PORT + 1` (torchrun's own store holds
//! `MASTER_PORT`).

use std::ffi::{CStr, c_char, c_int, c_void};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use libloading::{Library, Symbol};

use crate::{Collective, CollectiveError, Launch};

const ID_BYTES: usize = 128;
const MAGIC: &[u8; 8] = b"spkNCCL1";

#[repr(C)]
#[derive(Clone, Copy)]
struct UniqueId([u8; ID_BYTES]);

type Comm = *mut c_void;
type Stream = *mut c_void;

// ncclDataType_t and ncclRedOp_t values (nccl.h, stable since NCCL 2.0; ncclAvg since 2.10).
const NCCL_UINT8: c_int = 1;
const NCCL_FLOAT32: c_int = 7;
const NCCL_FLOAT64: c_int = 8;
const NCCL_SUM: c_int = 0;
const NCCL_AVG: c_int = 4;
// cudaMemcpyKind.
const HOST_TO_DEVICE: c_int = 1;
const DEVICE_TO_HOST: c_int = 2;

pub struct Nccl {
    nccl: Library,
    cudart: Library,
    comm: Comm,
    rank: usize,
    world: usize,
}

// SAFETY: an NCCL communicator may be used from any thread, one call at a time; the learner
// makes its calls from one thread.
unsafe impl Send for Nccl {}
unsafe impl Sync for Nccl {}

fn unavailable(reason: impl Into<String>) -> CollectiveError {
    CollectiveError::Unavailable { backend: "nccl", reason: reason.into() }
}

fn failed(what: impl Into<String>) -> CollectiveError {
    CollectiveError::Failed { backend: "nccl", what: what.into() }
}

/// The first of `names` that loads (`env`, a path, first when set).
fn open(env: &str, names: &[&str]) -> Result<Library, CollectiveError> {
    let mut tried = Vec::new();
    let from_env = std::env::var(env).ok();
    for name in from_env.iter().map(String::as_str).chain(names.iter().copied()) {
        // SAFETY: loading NCCL or the CUDA runtime runs their initialisers, which have no
        // preconditions.
        match unsafe { Library::new(name) } {
            Ok(lib) => return Ok(lib),
            Err(e) => tried.push(format!("{name}: {e}")),
        }
    }
    Err(unavailable(format!("cannot load it ({}); set {env} to its path, or LD_LIBRARY_PATH to its folder (the PyTorch wheel ships it under site-packages/nvidia/)", tried.join("; "))))
}

impl Nccl {
    /// Joins the ranks `launch` describes, on CUDA device `launch.local_rank`.
    pub fn connect(launch: &Launch, timeout: Duration) -> Result<Self, CollectiveError> {
        let nccl = open("SPIKERL_NCCL", &["libnccl.so.2", "libnccl.so"])?;
        let cudart = open("SPIKERL_CUDART", &["libcudart.so.13", "libcudart.so.12", "libcudart.so"])?;
        let rendezvous = match &launch.master {
            Some((master, port)) => Some((master.as_str(), port.checked_add(1).ok_or_else(|| unavailable("MASTER_PORT 65535 leaves no port for the rendezvous"))?)),
            None if launch.world == 1 => None,
            None => return Err(unavailable("MASTER_ADDR and MASTER_PORT are not set")),
        };
        // SAFETY (all calls below): the symbols have the signatures of nccl.h and
        // cuda_runtime_api.h; pointers passed point to live buffers of the stated sizes.
        unsafe {
            let set_device: Symbol<unsafe extern "C" fn(c_int) -> c_int> = sym(&cudart, b"cudaSetDevice\0")?;
            let e = set_device(launch.local_rank as c_int);
            if e != 0 {
                return Err(unavailable(format!("no CUDA device {} (LOCAL_RANK) for this rank: cudaSetDevice returned {e}", launch.local_rank)));
            }
            let id = if launch.rank == 0 {
                let get_id: Symbol<unsafe extern "C" fn(*mut UniqueId) -> c_int> = sym(&nccl, b"ncclGetUniqueId\0")?;
                let mut id = UniqueId([0; ID_BYTES]);
                check(&nccl, get_id(&mut id), "ncclGetUniqueId")?;
                if let Some(at) = rendezvous {
                    serve_id(at, &id, launch.world - 1, timeout)?;
                }
                id
            } else {
                let Some(at) = rendezvous else { return Err(unavailable(format!("rank {} of a world of one", launch.rank))) };
                fetch_id(at, launch.rank, timeout)?
            };
            let init: Symbol<unsafe extern "C" fn(*mut Comm, c_int, UniqueId, c_int) -> c_int> = sym(&nccl, b"ncclCommInitRank\0")?;
            let mut comm: Comm = std::ptr::null_mut();
            check(&nccl, init(&mut comm, launch.world as c_int, id, launch.rank as c_int), "ncclCommInitRank")?;
            Ok(Self { nccl, cudart, comm, rank: launch.rank, world: launch.world })
        }
    }

    /// A world of one rank on CUDA device `device`: every collective runs through NCCL and
    /// changes nothing — what a GPU check compares against the CPU result, and what measures
    /// NCCL's own cost on one GPU.
    pub fn alone(device: usize) -> Result<Self, CollectiveError> {
        let launch = Launch { rank: 0, world: 1, local_rank: device, launcher: "a single rank", master: None };
        Self::connect(&launch, Duration::from_secs(10))
    }

    /// An all-reduce of `count` elements of `dtype` in place in device memory, on CUDA's legacy
    /// default stream (the one libtorch's kernels run on unless told otherwise), waited for.
    unsafe fn all_reduce_device(&self, ptr: *mut c_void, count: usize, dtype: c_int, op: c_int) -> Result<(), CollectiveError> {
        unsafe {
            let f: Symbol<unsafe extern "C" fn(*const c_void, *mut c_void, usize, c_int, c_int, Comm, Stream) -> c_int> = sym(&self.nccl, b"ncclAllReduce\0")?;
            check(&self.nccl, f(ptr, ptr, count, dtype, op, self.comm, std::ptr::null_mut()), "ncclAllReduce")?;
            self.synchronize()
        }
    }

    unsafe fn synchronize(&self) -> Result<(), CollectiveError> {
        unsafe {
            let f: Symbol<unsafe extern "C" fn(Stream) -> c_int> = sym(&self.cudart, b"cudaStreamSynchronize\0")?;
            cuda(f(std::ptr::null_mut()), "cudaStreamSynchronize")
        }
    }

    /// Runs `f` on a device copy of `host` (`bytes` long), then copies it back.
    fn through_device(&self, host: *mut c_void, bytes: usize, f: impl FnOnce(*mut c_void) -> Result<(), CollectiveError>) -> Result<(), CollectiveError> {
        // SAFETY: `host` points to `bytes` bytes (the callers' slices); the device buffer is
        // freed on every path.
        unsafe {
            let malloc: Symbol<unsafe extern "C" fn(*mut *mut c_void, usize) -> c_int> = sym(&self.cudart, b"cudaMalloc\0")?;
            let free: Symbol<unsafe extern "C" fn(*mut c_void) -> c_int> = sym(&self.cudart, b"cudaFree\0")?;
            let memcpy: Symbol<unsafe extern "C" fn(*mut c_void, *const c_void, usize, c_int) -> c_int> = sym(&self.cudart, b"cudaMemcpy\0")?;
            let mut device: *mut c_void = std::ptr::null_mut();
            cuda(malloc(&mut device, bytes.max(1)), "cudaMalloc")?;
            let r = cuda(memcpy(device, host, bytes, HOST_TO_DEVICE), "cudaMemcpy").and_then(|()| f(device)).and_then(|()| cuda(memcpy(host, device, bytes, DEVICE_TO_HOST), "cudaMemcpy"));
            free(device);
            r
        }
    }
}

unsafe fn sym<'l, T>(lib: &'l Library, name: &[u8]) -> Result<Symbol<'l, T>, CollectiveError> {
    // SAFETY: the caller names the symbol's true type.
    unsafe { lib.get(name) }.map_err(|e| unavailable(format!("{}: {e}", String::from_utf8_lossy(&name[..name.len() - 1]))))
}

fn check(nccl: &Library, code: c_int, call: &str) -> Result<(), CollectiveError> {
    if code == 0 {
        return Ok(());
    }
    // SAFETY: ncclGetErrorString returns a static C string for any code.
    let text = unsafe { sym::<unsafe extern "C" fn(c_int) -> *const c_char>(nccl, b"ncclGetErrorString\0").map(|f| CStr::from_ptr(f(code)).to_string_lossy().into_owned()) };
    Err(failed(format!("{call} failed: {} (code {code})", text.unwrap_or_default())))
}

fn cuda(code: c_int, call: &str) -> Result<(), CollectiveError> {
    if code == 0 { Ok(()) } else { Err(failed(format!("{call} returned CUDA error {code}"))) }
}

/// Rank 0: hands `id` to `peers` ranks, each of which connects once.
fn serve_id(at: (&str, u16), id: &UniqueId, peers: usize, timeout: Duration) -> Result<(), CollectiveError> {
    let listener = TcpListener::bind(at).map_err(|e| unavailable(format!("rank 0 cannot listen on {}:{} for the rendezvous: {e}", at.0, at.1)))?;
    listener.set_nonblocking(true).map_err(|e| failed(e.to_string()))?;
    let deadline = Instant::now() + timeout;
    let mut served = 0;
    while served < peers {
        match listener.accept() {
            Ok((mut s, _)) => {
                s.set_nonblocking(false).and_then(|()| s.set_read_timeout(Some(Duration::from_secs(10)))).map_err(|e| failed(e.to_string()))?;
                let mut hello = [0u8; 12];
                // A stranger on the port is ignored; only a peer's greeting gets the id.
                if s.read_exact(&mut hello).is_ok() && &hello[..8] == MAGIC && s.write_all(&id.0).is_ok() {
                    served += 1;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if Instant::now() > deadline {
                    return Err(failed(format!("{served} of {peers} ranks came to the rendezvous within {:.0} s", timeout.as_secs_f64())));
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => return Err(failed(format!("rendezvous: {e}"))),
        }
    }
    Ok(())
}

/// Other ranks: ask rank 0 for the id, retrying until it listens.
fn fetch_id(at: (&str, u16), rank: usize, timeout: Duration) -> Result<UniqueId, CollectiveError> {
    let deadline = Instant::now() + timeout;
    loop {
        let attempt = (|| -> std::io::Result<UniqueId> {
            let addr = at.to_socket_addrs()?.next().ok_or_else(|| std::io::Error::other("no address"))?;
            let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
            s.set_read_timeout(Some(Duration::from_secs(10)))?;
            let mut hello = [0u8; 12];
            hello[..8].copy_from_slice(MAGIC);
            hello[8..].copy_from_slice(&(rank as u32).to_le_bytes());
            s.write_all(&hello)?;
            let mut id = UniqueId([0; ID_BYTES]);
            s.read_exact(&mut id.0)?;
            Ok(id)
        })();
        match attempt {
            Ok(id) => return Ok(id),
            Err(e) if Instant::now() > deadline => return Err(failed(format!("rank {rank} got no NCCL id from {}:{} within {:.0} s: {e}", at.0, at.1, timeout.as_secs_f64()))),
            Err(_) => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

impl Collective for Nccl {
    fn backend(&self) -> &'static str {
        "nccl"
    }

    fn rank(&self) -> usize {
        self.rank
    }

    fn world_size(&self) -> usize {
        self.world
    }

    // NCCL's ring all-reduce reduces each chunk once and passes the result on, so every rank
    // ends with the same bits.
    fn all_reduce_mean(&self, buf: &mut [f32]) -> Result<(), CollectiveError> {
        let (ptr, len) = (buf.as_mut_ptr().cast(), buf.len());
        // SAFETY: the device copy holds `len` f32.
        self.through_device(ptr, len * 4, |d| unsafe { self.all_reduce_device(d, len, NCCL_FLOAT32, NCCL_AVG) })
    }

    fn all_reduce_sum(&self, buf: &mut [f64]) -> Result<(), CollectiveError> {
        let (ptr, len) = (buf.as_mut_ptr().cast(), buf.len());
        // SAFETY: the device copy holds `len` f64.
        self.through_device(ptr, len * 8, |d| unsafe { self.all_reduce_device(d, len, NCCL_FLOAT64, NCCL_SUM) })
    }

    fn broadcast(&self, bytes: &mut Vec<u8>, root: usize) -> Result<(), CollectiveError> {
        if root >= self.world {
            return Err(failed(format!("broadcast from rank {root} in a world of {}", self.world)));
        }
        // The length first (as a sum in which only the root's counts), then the bytes.
        let mut len = [if self.rank == root { bytes.len() as f64 } else { 0.0 }];
        self.all_reduce_sum(&mut len)?;
        bytes.resize(len[0] as usize, 0);
        let n = bytes.len();
        let f = |d: *mut c_void| -> Result<(), CollectiveError> {
            // SAFETY: `d` holds `n` bytes on the device.
            unsafe {
                let bcast: Symbol<unsafe extern "C" fn(*const c_void, *mut c_void, usize, c_int, c_int, Comm, Stream) -> c_int> = sym(&self.nccl, b"ncclBroadcast\0")?;
                check(&self.nccl, bcast(d, d, n, NCCL_UINT8, root as c_int, self.comm, std::ptr::null_mut()), "ncclBroadcast")?;
                self.synchronize()
            }
        };
        self.through_device(bytes.as_mut_ptr().cast(), n, f)
    }

    fn barrier(&self) -> Result<(), CollectiveError> {
        self.all_reduce_sum(&mut [0.0])
    }

    unsafe fn all_reduce_mean_device(&self, ptr: *mut f32, len: usize) -> Option<Result<(), CollectiveError>> {
        // SAFETY: the caller's promise: `len` f32 of this rank's device memory.
        Some(unsafe { self.all_reduce_device(ptr.cast(), len, NCCL_FLOAT32, NCCL_AVG) })
    }

    fn abort(&self, code: i32) -> ! {
        // SAFETY: ncclCommAbort frees the communicator without waiting for the other ranks.
        unsafe {
            if let Ok(f) = sym::<unsafe extern "C" fn(Comm) -> c_int>(&self.nccl, b"ncclCommAbort\0") {
                f(self.comm);
            }
        }
        std::process::exit(code)
    }
}

impl Drop for Nccl {
    fn drop(&mut self) {
        // SAFETY: the communicator is ours and no call is in flight (we hold it exclusively).
        unsafe {
            if let Ok(f) = sym::<unsafe extern "C" fn(Comm) -> c_int>(&self.nccl, b"ncclCommDestroy\0") {
                f(self.comm);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Where NCCL or CUDA is missing, asking for the backend is an error naming what is
    /// missing, not a panic. (On a GPU machine this test says what it found instead.)
    #[test]
    fn a_missing_nccl_is_a_clear_error() {
        let launch = Launch { rank: 0, world: 2, local_rank: 0, launcher: "torchrun", master: Some(("127.0.0.1".into(), 0)) };
        match Nccl::connect(&launch, Duration::from_millis(300)) {
            Err(CollectiveError::Unavailable { backend: "nccl", reason }) => {
                assert!(reason.contains("libnccl") || reason.contains("libcudart") || reason.contains("CUDA device") || reason.contains("rendezvous"), "{reason}");
                eprintln!("skipped the NCCL run (no GPU here): {reason}");
            }
            Err(e) => eprintln!("NCCL present, rendezvous without peers ended: {e}"),
            Ok(_) => panic!("a world of two cannot form with one rank"),
        }
    }

    /// On a GPU: a world of one rank runs every collective through NCCL and the device, and
    /// must hand back exactly what the CPU's single learner has. Elsewhere: says it skipped.
    #[test]
    fn a_world_of_one_on_a_gpu_gives_the_cpu_result() {
        let nccl = match Nccl::alone(0) {
            Ok(n) => n,
            Err(CollectiveError::Unavailable { reason, .. }) => return eprintln!("skipped the NCCL world of one (no GPU or NCCL here): {reason}"),
            Err(e) => panic!("NCCL is here but failed: {e}"),
        };
        let v: Vec<f32> = (0..100_003).map(|i| (i as f32 * 0.37).sin() * 1e3).collect();
        let (mut gpu, mut cpu) = (v.clone(), v.clone());
        nccl.all_reduce_mean(&mut gpu).unwrap();
        crate::Single.all_reduce_mean(&mut cpu).unwrap();
        assert!(gpu.iter().zip(&cpu).all(|(a, b)| a.to_bits() == b.to_bits()), "the NCCL mean differs from the CPU's");
        let mut sums = vec![1.5f64, -2.25, 1e300];
        nccl.all_reduce_sum(&mut sums).unwrap();
        assert_eq!(sums, [1.5, -2.25, 1e300]);
        let mut bytes = b"rank 0's state".to_vec();
        nccl.broadcast(&mut bytes, 0).unwrap();
        assert_eq!(bytes, b"rank 0's state");
        nccl.barrier().unwrap();
        eprintln!("NCCL world of one on CUDA device 0: all-reduce, sum, broadcast and barrier agree with the CPU");
    }
}
