use std::collections::HashMap;

use serde_json::Value;

use crate::StoreError;

/// Maps a payload of one schema version to the next version's shape.
pub type UpcastFn = fn(Value) -> Result<Value, String>;

/// The one place stored events are brought to their current shape: a chain of steps keyed by
/// (event type, schema version), each producing version + 1. Stored rows are never rewritten.
#[derive(Default)]
pub struct Upcasters {
    /// By event type, then version (looked up by `&str`: no allocation per event read).
    steps: HashMap<String, HashMap<i32, UpcastFn>>,
}

impl Upcasters {
    /// No upcasters: every event is read as stored.
    pub fn new() -> Self {
        Upcasters::default()
    }

    /// Registers the step from `from_version` to `from_version + 1` for `event_type`.
    pub fn register(mut self, event_type: &str, from_version: i32, step: UpcastFn) -> Self {
        self.steps
            .entry(event_type.to_owned())
            .or_default()
            .insert(from_version, step);
        self
    }

    /// Whether a payload of `event_type` stored at `schema_version` has a step to take: read
    /// as stored otherwise.
    pub fn has_step(&self, event_type: &str, schema_version: i32) -> bool {
        self.steps
            .get(event_type)
            .is_some_and(|steps| steps.contains_key(&schema_version))
    }

    /// Applies every step from `schema_version` on.
    ///
    /// # Errors
    /// [`StoreError::Upcast`] when a step refuses the payload.
    pub fn upcast(
        &self,
        event_type: &str,
        schema_version: i32,
        payload: Value,
    ) -> Result<(i32, Value), StoreError> {
        let Some(steps) = self.steps.get(event_type) else {
            return Ok((schema_version, payload));
        };
        let mut version = schema_version;
        let mut payload = payload;
        while let Some(step) = steps.get(&version) {
            payload = step(payload).map_err(|reason| StoreError::Upcast {
                event_type: event_type.to_owned(),
                schema_version: version,
                reason,
            })?;
            version += 1;
        }
        Ok((version, payload))
    }
}

#[cfg(test)]
mod tests {
    use super::Upcasters;

    #[test]
    fn a_step_is_found_for_its_type_and_version_only() {
        let upcasters = Upcasters::new().register("Renamed", 1, Ok);
        assert!(upcasters.has_step("Renamed", 1));
        assert!(!upcasters.has_step("Renamed", 2));
        assert!(!upcasters.has_step("Other", 1));
        assert!(!Upcasters::new().has_step("Renamed", 1));
    }
}
