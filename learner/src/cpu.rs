//! Plain loops over CPU tensors' memory, where one pass beats a chain of tensor ops.

use tch::{Device, Kind, Tensor};

/// Turns the CPU kernels off, so that the CPU runs the tensor-op path every other device
/// runs (for tests that compare the two).
#[doc(hidden)]
pub static FORCE_TENSOR_OPS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

pub fn on_cpu_f32(t: &Tensor) -> bool {
    !FORCE_TENSOR_OPS.load(std::sync::atomic::Ordering::Relaxed)
        && t.device() == Device::Cpu && t.kind() == Kind::Float && t.is_contiguous()
}

/// The values of a contiguous fp32 CPU tensor.
pub fn cpu_values(t: &Tensor) -> &[f32] {
    assert!(on_cpu_f32(t), "contiguous fp32 CPU tensor expected");
    // SAFETY: the tensor is contiguous fp32 on the CPU, so its storage holds numel() f32s from
    // data_ptr(), alive while `t` is borrowed; nothing writes to it meanwhile.
    unsafe { std::slice::from_raw_parts(t.data_ptr() as *const f32, t.numel()) }
}

/// The values of a fresh contiguous fp32 CPU tensor, for writing.
pub fn cpu_values_mut(t: &mut Tensor) -> &mut [f32] {
    assert!(on_cpu_f32(t), "contiguous fp32 CPU tensor expected");
    // SAFETY: as above; `t` is borrowed mutably and was created by the caller, so no other
    // tensor aliases its storage.
    unsafe { std::slice::from_raw_parts_mut(t.data_ptr() as *mut f32, t.numel()) }
}

/// Runs a loop compiled for the widest vectors this CPU has (the crate is built for baseline
/// x86-64, which has only 4-wide SSE).
pub mod simd {
    #[inline(always)]
    pub fn dispatch<R>(f: impl FnOnce() -> R) -> R {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f") {
                // SAFETY: the CPU supports AVX-512F, checked just above.
                return unsafe { avx512(f) };
            }
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU supports AVX2, checked just above.
                return unsafe { avx2(f) };
            }
        }
        f()
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    unsafe fn avx512<R>(f: impl FnOnce() -> R) -> R {
        f()
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn avx2<R>(f: impl FnOnce() -> R) -> R {
        f()
    }
}
