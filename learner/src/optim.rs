//! Adam over one flat parameter tensor, step for step as `torch.optim.Adam` (bias-corrected,
//! ε outside the square root), with state a checkpoint can hold.

use tch::Tensor;

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
        tch::no_grad(|| {
            self.steps += 1;
            let bias1 = 1.0 - self.beta1.powi(self.steps as i32);
            let bias2 = 1.0 - self.beta2.powi(self.steps as i32);
            let _ = self.m.lerp_(grad, 1.0 - self.beta1);
            let _ = self.v.g_mul_scalar_(self.beta2);
            let _ = self.v.g_add_(&(grad.square() * (1.0 - self.beta2)));
            let denom = self.v.sqrt() / bias2.sqrt() + self.eps;
            let _ = params.addcdiv_(&(&self.m * (-self.lr / bias1)), &denom);
        });
    }
}
