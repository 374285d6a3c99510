//! Matrix products on plain row-major slices: the BLAS inside libtorch (MKL's `sgemm_` on
//! x86-64 Linux), found at run time.
//!
//! A tensor op costs a few microseconds of dispatch, allocation and shape checks before any
//! arithmetic; the critics' layers at TD3's batch are small enough for that to be a third of
//! their time. Where libtorch exports no `sgemm_` (other platforms) [`gemm`] wraps the slices
//! in tensors and lets libtorch multiply them.

use std::ffi::{c_char, c_int, c_void};
use std::sync::OnceLock;

use tch::{Device, Kind, Tensor};

use crate::Precision;
use crate::kernels::CPU_BF16_MIN_MACS;

type SgemmFn = unsafe extern "C" fn(
    transa: *const c_char,
    transb: *const c_char,
    m: *const c_int,
    n: *const c_int,
    k: *const c_int,
    alpha: *const f32,
    a: *const f32,
    lda: *const c_int,
    b: *const f32,
    ldb: *const c_int,
    beta: *const f32,
    c: *mut f32,
    ldc: *const c_int,
);
type SetThreadsFn = unsafe extern "C" fn(n: c_int) -> c_int;

struct Blas {
    sgemm: SgemmFn,
    set_local_threads: Option<SetThreadsFn>,
}

fn blas() -> Option<&'static Blas> {
    static BLAS: OnceLock<Option<Blas>> = OnceLock::new();
    BLAS.get_or_init(|| {
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        {
            unsafe extern "C" {
                fn dlsym(handle: *mut c_void, symbol: *const c_char) -> *mut c_void;
            }
            // Make sure libtorch is loaded (it is linked, but nothing may have touched it yet).
            let _ = tch::Tensor::zeros([1], (tch::Kind::Float, tch::Device::Cpu));
            // SAFETY: dlsym with RTLD_DEFAULT (null) only looks a name up in the loaded objects;
            // the symbols, when present, are BLAS's `sgemm_` and MKL's
            // `mkl_set_num_threads_local`, whose signatures are the ones declared above.
            unsafe {
                let sgemm = dlsym(std::ptr::null_mut(), c"sgemm_".as_ptr());
                let local = dlsym(std::ptr::null_mut(), c"MKL_Set_Num_Threads_Local".as_ptr());
                if sgemm.is_null() {
                    return None;
                }
                return Some(Blas {
                    sgemm: std::mem::transmute::<*mut c_void, SgemmFn>(sgemm),
                    set_local_threads: (!local.is_null()).then(|| std::mem::transmute::<*mut c_void, SetThreadsFn>(local)),
                });
            }
        }
        #[allow(unreachable_code)]
        None
    })
    .as_ref()
}

/// A row-major matrix operand: values, shape `[rows, cols]` as stored, and whether the
/// product uses its transpose.
#[derive(Clone, Copy)]
pub struct Mat<'a> {
    pub values: &'a [f32],
    pub rows: usize,
    pub cols: usize,
    pub transposed: bool,
}

impl<'a> Mat<'a> {
    pub fn new(values: &'a [f32], rows: usize, cols: usize) -> Self {
        assert_eq!(values.len(), rows * cols, "matrix shape");
        Self { values, rows, cols, transposed: false }
    }

    pub fn t(self) -> Self {
        Self { transposed: !self.transposed, ..self }
    }

    /// Shape as the product sees it.
    fn shape(&self) -> (usize, usize) {
        if self.transposed { (self.cols, self.rows) } else { (self.rows, self.cols) }
    }
}

/// `c = a·b + beta·c` for row-major `c` (`[m, n]`) with the BLAS `lib`. Panics if the shapes
/// do not fit.
fn sgemm(lib: &Blas, a: Mat, b: Mat, beta: f32, c: &mut [f32]) {
    let ((m, k), (k2, n)) = (a.shape(), b.shape());
    assert!(k == k2 && c.len() == m * n, "sgemm shapes [{m}, {k}]·[{k2}, {n}] into {}", c.len());
    if m == 0 || n == 0 {
        return;
    }
    thread_local! {
        static ONE_THREAD: () = {
            // Our threads already split the work; MKL must not spawn its own on top.
            if let Some(set) = blas().and_then(|b| b.set_local_threads) {
                // SAFETY: mkl_set_num_threads_local only sets this thread's MKL thread count.
                unsafe { set(1) };
            }
        };
    }
    ONE_THREAD.with(|_| ());
    // Row-major C = A·B is column-major Cᵀ = Bᵀ·Aᵀ: swap the operands; a row-major matrix read
    // column-major is its transpose, so each operand's transpose flag stays as it is.
    let flag = |m: &Mat| if m.transposed { b'T' as c_char } else { b'N' as c_char };
    let (ta, tb) = (flag(&b), flag(&a));
    let (mi, ni, ki) = (n as c_int, m as c_int, k as c_int);
    let (lda, ldb, ldc) = (b.cols.max(1) as c_int, a.cols.max(1) as c_int, n as c_int);
    let (alpha, beta) = (1.0f32, beta);
    if k == 0 {
        c.iter_mut().for_each(|x| *x *= beta);
        return;
    }
    // SAFETY: the shapes were checked above: b (as A) is [k, n] or [n, k] with leading
    // dimension b.cols, a (as B) likewise, c holds m·n values with leading dimension n.
    unsafe { (lib.sgemm)(&ta, &tb, &mi, &ni, &ki, &alpha, b.values.as_ptr(), &lda, a.values.as_ptr(), &ldb, &beta, c.as_mut_ptr(), &ldc) };
}

/// `c = a·b` in `precision`: bf16 products (through libtorch's bf16 matmul, oneDNN on the CPU)
/// where [`CPU_BF16_MIN_MACS`] says they pay, fp32 otherwise — the same rule as
/// the tensor backend's products.
pub fn gemm(precision: Precision, a: Mat, b: Mat, c: &mut [f32]) {
    gemm_with(blas(), precision, a, b, c)
}

fn gemm_with(lib: Option<&Blas>, precision: Precision, a: Mat, b: Mat, c: &mut [f32]) {
    let ((m, k), (k2, n)) = (a.shape(), b.shape());
    assert!(k == k2 && c.len() == m * n, "gemm shapes [{m}, {k}]·[{k2}, {n}] into {}", c.len());
    let bf16 = precision == Precision::Bf16 && m * k * n >= CPU_BF16_MIN_MACS;
    match lib {
        Some(lib) if !bf16 => sgemm(lib, a, b, 0.0, c),
        _ => {
            let kind = if bf16 { Kind::BFloat16 } else { Kind::Float };
            let tensor = |x: &Mat| {
                // SAFETY: the view covers exactly the slice's rows·cols f32s, which outlive it:
                // it is converted or multiplied at once and dropped before this function returns.
                let t = unsafe { Tensor::from_blob(x.values.as_ptr() as *const u8, &[x.rows as i64, x.cols as i64], &[x.cols as i64, 1], Kind::Float, Device::Cpu) };
                let t = t.to_kind(kind);
                if x.transposed { t.tr() } else { t }
            };
            let product = tensor(&a).mm(&tensor(&b)).to_kind(Kind::Float).contiguous();
            c.copy_from_slice(&Vec::<f32>::try_from(&product.view([-1])).expect("an fp32 product"));
        }
    }
}

/// `x` rounded to the nearest bfloat16 (ties to even), kept in an f32: what a bf16 product
/// sees of an fp32 operand.
pub fn round_bf16(x: f32) -> f32 {
    let bits = x.to_bits();
    if x.is_nan() {
        return x;
    }
    f32::from_bits((bits + 0x7fff + ((bits >> 16) & 1)) & 0xffff_0000)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// With libtorch's BLAS and without it (the tensor fallback), in fp32 and bf16.
    #[test]
    fn products_equal_tensor_products() {
        tch::manual_seed(2);
        let values = |t: &Tensor| Vec::<f32>::try_from(&t.contiguous().view([-1])).unwrap();
        for (m, k, n) in [(5usize, 3usize, 4usize), (50, 256, 256), (7, 1, 9), (1, 6, 1)] {
            let (a, b) = (Tensor::randn([m as i64, k as i64], (Kind::Float, Device::Cpu)), Tensor::randn([k as i64, n as i64], (Kind::Float, Device::Cpu)));
            let want = values(&a.mm(&b));
            let (av, bv, atv, btv) = (values(&a), values(&b), values(&a.tr()), values(&b.tr()));
            let close = |c: &[f32]| c.iter().zip(&want).all(|(x, y)| (x - y).abs() <= 1e-4 * (1.0 + y.abs()));
            for (ma, mb) in [
                (Mat::new(&av, m, k), Mat::new(&bv, k, n)),
                (Mat::new(&atv, k, m).t(), Mat::new(&bv, k, n)),
                (Mat::new(&av, m, k), Mat::new(&btv, n, k).t()),
                (Mat::new(&atv, k, m).t(), Mat::new(&btv, n, k).t()),
            ] {
                let mut c = vec![f32::NAN; m * n];
                gemm_with(None, Precision::F32, ma, mb, &mut c);
                assert!(close(&c), "fallback {m}×{k}×{n} transposes {} {}", ma.transposed, mb.transposed);
                if let Some(lib) = blas() {
                    let mut c = vec![f32::NAN; m * n];
                    sgemm(lib, ma, mb, 0.0, &mut c);
                    assert!(close(&c), "sgemm {m}×{k}×{n} transposes {} {}", ma.transposed, mb.transposed);
                    // beta = 1 accumulates.
                    sgemm(lib, ma, mb, 1.0, &mut c);
                    assert!(c.iter().zip(&want).all(|(x, y)| (x - 2.0 * y).abs() <= 1e-4 * (1.0 + y.abs())));
                } else {
                    eprintln!("no BLAS exported by libtorch here: only the fallback tested");
                }
                // bf16 at a size where it runs (the large one): the product of the rounded operands.
                let mut c16 = vec![f32::NAN; m * n];
                gemm(Precision::Bf16, ma, mb, &mut c16);
                if m * k * n >= CPU_BF16_MIN_MACS {
                    let round = |v: &[f32]| v.iter().map(|&x| round_bf16(x)).collect::<Vec<f32>>();
                    let (ra, rb) = (Tensor::from_slice(&round(&av)).view([m as i64, k as i64]), Tensor::from_slice(&round(&bv)).view([k as i64, n as i64]));
                    let want16 = values(&ra.mm(&rb));
                    // The result comes back through a bf16 tensor: rounded once more (2⁻⁸ relative).
                    assert!(c16.iter().zip(&want16).all(|(x, y)| (x - y).abs() <= 1e-3 + y.abs() / 256.0), "bf16 product of rounded operands");
                    assert!(c16.iter().zip(&want).any(|(x, y)| x != y), "bf16 rounding shows");
                } else {
                    assert!(close(&c16), "small products stay fp32");
                }
            }
        }
        assert_eq!(round_bf16(1.0 + 1.0 / 256.0), 1.0, "ties to even");
        assert_eq!(round_bf16(1.0 + 3.0 / 256.0), 1.0 + 4.0 / 256.0);
        assert_eq!(round_bf16(-0.5), -0.5);
    }
}
