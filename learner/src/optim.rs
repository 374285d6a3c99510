//! Adam over one flat parameter tensor, step for step as `torch.optim.Adam` (bias-corrected,
//! ε outside the square root), with state a checkpoint can hold.

use tch::Tensor;

use crate::cpu::{cpu_values, cpu_values_mut, on_cpu_f32, simd};

#[derive(Debug)]
pub struct Adam {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub m: Tensor,
    pub v: Tensor,
    pub steps: i64,
}

impl Adam {
    pub fn new(params: &Tensor, lr: f64) -> Self {
        Self { lr, beta1: 0.9, beta2: 0.999, eps: 1e-8, m: params.zeros_like().detach(), v: params.zeros_like().detach(), steps: 0 }
    }

    /// One step: `params ← params − lr·m̂/(√v̂ + ε)`.
    pub fn step(&mut self, params: &mut Tensor, grad: &Tensor) {
        self.steps += 1;
        let bias1 = 1.0 - self.beta1.powi(self.steps as i32);
        let bias2 = 1.0 - self.beta2.powi(self.steps as i32);
        let grad = grad.contiguous();
        if [&*params, &grad, &self.m, &self.v].iter().all(|t| on_cpu_f32(t)) {
            return self.step_cpu(params, &grad, bias1, bias2);
        }
        tch::no_grad(|| {
            let _ = self.m.lerp_(&grad, 1.0 - self.beta1);
            let _ = self.v.g_mul_scalar_(self.beta2);
            let _ = self.v.g_add_(&(grad.square() * (1.0 - self.beta2)));
            let denom = self.v.sqrt() / bias2.sqrt() + self.eps;
            let _ = params.addcdiv_(&(&self.m * (-self.lr / bias1)), &denom);
        });
    }

    /// The same step as one pass over the four vectors.
    fn step_cpu(&mut self, params: &mut Tensor, grad: &Tensor, bias1: f64, bias2: f64) {
        let (b1, b2, eps) = (self.beta1 as f32, self.beta2 as f32, self.eps as f32);
        let (step, bias2_sqrt) = ((-self.lr / bias1) as f32, bias2.sqrt() as f32);
        let g = cpu_values(grad);
        let p = cpu_values_mut(params);
        let m = cpu_values_mut(&mut self.m);
        let v = cpu_values_mut(&mut self.v);
        simd::dispatch(#[inline(always)] || {
            for (((p, m), v), &g) in p.iter_mut().zip(m.iter_mut()).zip(v.iter_mut()).zip(g) {
                *m += (1.0 - b1) * (g - *m);
                *v = *v * b2 + g * g * (1.0 - b2);
                *p += *m * step / (v.sqrt() / bias2_sqrt + eps);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    #[test]
    fn fused_cpu_step_equals_the_tensor_ops() {
        tch::manual_seed(5);
        let init = Tensor::randn([1000], (Kind::Float, Device::Cpu));
        let (mut fused, mut ops) = (init.copy(), init.copy());
        let (mut adam_fused, mut adam_ops) = (Adam::new(&init, 3e-3), Adam::new(&init, 3e-3));
        for _ in 0..20 {
            let grad = Tensor::randn([1000], (Kind::Float, Device::Cpu));
            adam_fused.step(&mut fused, &grad);
            crate::cpu::FORCE_TENSOR_OPS.store(true, std::sync::atomic::Ordering::Relaxed);
            adam_ops.step(&mut ops, &grad);
            crate::cpu::FORCE_TENSOR_OPS.store(false, std::sync::atomic::Ordering::Relaxed);
        }
        assert!(fused.allclose(&ops, 1e-5, 1e-6, false), "max diff {}", (&fused - &ops).abs().max().double_value(&[]));
        assert!((&fused - &init).abs().min().double_value(&[]) > 0.0, "every parameter moved");
    }
}
