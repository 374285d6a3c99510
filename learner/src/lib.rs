//! Learners: the trainable PopSAN in tch (libtorch), TD3, replay, checkpoints.

pub mod actor;
pub mod popsan;
