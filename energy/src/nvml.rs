//! GPU energy from NVML's total-energy counters (millijoules since the driver loaded; Volta
//! and later), with the driver's `libnvidia-ml` loaded at run time: a machine without it
//! reports that it has none, and nothing links against it.

use std::ffi::{CStr, c_char, c_int, c_uint, c_ulonglong, c_void};

use libloading::Library;

/// The library to load: `$SPIKERL_NVML`, else the driver's.
const NAMES: &[&str] = &["libnvidia-ml.so.1", "libnvidia-ml.so"];

type Handle = *mut c_void;

/// NVML, initialised; shut down on drop.
pub struct Nvml {
    lib: Library,
}

// NVML is thread-safe; the handle is only an opaque pointer.
unsafe impl Send for Nvml {}

impl Nvml {
    /// Loads and initialises NVML, or says why it cannot.
    pub fn open() -> Result<Self, String> {
        match std::env::var("SPIKERL_NVML") {
            Ok(path) if !path.is_empty() => Self::open_from(&[path.as_str()]),
            _ => Self::open_from(NAMES),
        }
    }

    /// Loads and initialises the first of `names` that loads.
    pub fn open_from(names: &[&str]) -> Result<Self, String> {
        let mut errors = Vec::new();
        for name in names {
            match unsafe { Library::new(name) } {
                Ok(lib) => {
                    let nvml = Self { lib };
                    let init = unsafe { nvml.sym::<unsafe extern "C" fn() -> c_int>(b"nvmlInit_v2\0")? };
                    nvml.check(unsafe { init() }, "nvmlInit_v2")?;
                    return Ok(nvml);
                }
                Err(e) => errors.push(format!("{name}: {e}")),
            }
        }
        Err(format!("NVML: no GPU energy counters ({})", errors.join("; ")))
    }

    /// The GPUs NVML sees.
    pub fn device_count(&self) -> Result<u32, String> {
        let f = unsafe { self.sym::<unsafe extern "C" fn(*mut c_uint) -> c_int>(b"nvmlDeviceGetCount_v2\0")? };
        let mut n: c_uint = 0;
        self.check(unsafe { f(&mut n) }, "nvmlDeviceGetCount_v2")?;
        Ok(n)
    }

    /// Device `index`'s energy counter, in millijoules.
    pub fn total_energy_mj(&self, index: u32) -> Result<u64, String> {
        let handle_of = unsafe { self.sym::<unsafe extern "C" fn(c_uint, *mut Handle) -> c_int>(b"nvmlDeviceGetHandleByIndex_v2\0")? };
        let energy_of = unsafe { self.sym::<unsafe extern "C" fn(Handle, *mut c_ulonglong) -> c_int>(b"nvmlDeviceGetTotalEnergyConsumption\0")? };
        let mut handle: Handle = std::ptr::null_mut();
        self.check(unsafe { handle_of(index, &mut handle) }, "nvmlDeviceGetHandleByIndex_v2")?;
        let mut mj: c_ulonglong = 0;
        self.check(unsafe { energy_of(handle, &mut mj) }, "nvmlDeviceGetTotalEnergyConsumption")?;
        Ok(mj)
    }

    unsafe fn sym<T: Copy>(&self, name: &[u8]) -> Result<T, String> {
        unsafe { self.lib.get::<T>(name) }.map(|s| *s).map_err(|e| format!("NVML: {}: {e}", String::from_utf8_lossy(&name[..name.len() - 1])))
    }

    fn check(&self, code: c_int, call: &str) -> Result<(), String> {
        if code == 0 {
            return Ok(());
        }
        let text = unsafe { self.sym::<unsafe extern "C" fn(c_int) -> *const c_char>(b"nvmlErrorString\0") }
            .map(|f| unsafe { CStr::from_ptr(f(code)) }.to_string_lossy().into_owned())
            .unwrap_or_else(|_| format!("error {code}"));
        Err(format!("NVML: {call}: {text}"))
    }
}

impl Drop for Nvml {
    fn drop(&mut self) {
        if let Ok(shutdown) = unsafe { self.sym::<unsafe extern "C" fn() -> c_int>(b"nvmlShutdown\0") } {
            unsafe { shutdown() };
        }
    }
}
