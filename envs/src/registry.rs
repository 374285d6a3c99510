//! Tasks by Gymnasium id.

use crate::locomotion::{self, LocomotionSpec, ModelSource};
use crate::{Env, EnvError, Pendulum};

/// The ids `make` knows, in Gymnasium's spelling.
pub const ENV_IDS: &[&str] = &["Hopper-v4", "HalfCheetah-v4", "Ant-v4", "Walker2d-v4", "Humanoid-v4", "Pendulum-v1"];

/// Gymnasium's spelling of an id given in any case, with or without `_`/`-` inside the name
/// (`hopper-v4`, `half_cheetah-v4`, `HalfCheetah-v4` all work).
pub fn canonical_id(id: &str) -> Option<&'static str> {
    let squash = |s: &str| s.chars().filter(|c| *c != '_').flat_map(char::to_lowercase).collect::<String>();
    let wanted = squash(id);
    ENV_IDS.iter().copied().find(|known| squash(known) == wanted)
}

/// The port of a built-in locomotion task, by its Gymnasium id.
pub(crate) fn locomotion_spec(id: &str) -> Option<LocomotionSpec> {
    match id {
        "Hopper-v4" => Some(locomotion::hopper()),
        "HalfCheetah-v4" => Some(locomotion::half_cheetah()),
        "Ant-v4" => Some(locomotion::ant()),
        "Walker2d-v4" => Some(locomotion::walker2d()),
        "Humanoid-v4" => Some(locomotion::humanoid()),
        _ => None,
    }
}

/// A locomotion port by id (any case), or a generic task on an MJCF file, as the type itself
/// (its physics can be looked at, e.g. to draw it).
pub fn make_locomotion(id: &str) -> Result<locomotion::LocomotionEnv, EnvError> {
    if id.ends_with(".xml") {
        return locomotion::custom(ModelSource::File(id.into())).build();
    }
    let canonical = canonical_id(id).ok_or_else(|| EnvError::UnknownEnv(id.to_string(), ENV_IDS.join(", ")))?;
    let ports = || ENV_IDS.iter().copied().filter(|k| locomotion_spec(k).is_some()).collect::<Vec<_>>().join(", ");
    locomotion_spec(canonical).ok_or_else(|| EnvError::UnknownEnv(format!("{id} (not a locomotion task)"), ports()))?.build()
}

/// Creates a task by id. A path to an `.xml` MJCF file makes a generic locomotion task on
/// that model (see [`locomotion::custom`]); `gym:ID` runs Gymnasium's own task in a Python
/// process (see [`crate::gym`]).
pub fn make(id: &str) -> Result<Box<dyn Env>, EnvError> {
    if id.starts_with(crate::gym::PREFIX) {
        return Ok(Box::new(crate::gym::GymEnv::new(id)?));
    }
    if id.ends_with(".xml") {
        let spec = locomotion::custom(ModelSource::File(id.into()));
        return Ok(Box::new(spec.build()?));
    }
    let canonical = canonical_id(id).ok_or_else(|| EnvError::UnknownEnv(id.to_string(), ENV_IDS.join(", ")))?;
    match locomotion_spec(canonical) {
        Some(spec) => Ok(Box::new(spec.build()?)),
        None => Ok(Box::new(Pendulum::new())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_resolve_in_any_spelling() {
        assert_eq!(canonical_id("hopper-v4"), Some("Hopper-v4"));
        assert_eq!(canonical_id("half_cheetah-v4"), Some("HalfCheetah-v4"));
        assert_eq!(canonical_id("HALFCHEETAH-V4"), Some("HalfCheetah-v4"));
        assert_eq!(canonical_id("pendulum-v1"), Some("Pendulum-v1"));
        assert_eq!(canonical_id("hopper-v5"), None);
        let err = make("walker-v9").err().expect("unknown id is an error");
        assert!(err.to_string().contains("Hopper-v4"), "{err}");
    }
}
