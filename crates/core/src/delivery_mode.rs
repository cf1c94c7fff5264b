//! When a client hears its answer: `delivery.mode` in the config file, or an admin's
//! run-time override (`delivery_mode` in the settings), the same two names in both.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryMode {
    /// 250 once committed; workers deliver later.
    Async,
    /// The upstream's verdict is the client's.
    Sync,
}

impl DeliveryMode {
    pub const ALL: [DeliveryMode; 2] = [DeliveryMode::Async, DeliveryMode::Sync];

    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryMode::Async => "async",
            DeliveryMode::Sync => "sync",
        }
    }
}

crate::text_kind!(DeliveryMode, "delivery mode");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_round_trip_and_unknown_text_is_an_error() {
        for mode in DeliveryMode::ALL {
            assert_eq!(mode.as_str().parse::<DeliveryMode>(), Ok(mode));
            assert_eq!(
                serde_json::to_value(mode).unwrap(),
                serde_json::Value::String(mode.as_str().into())
            );
        }
        assert!("Sync".parse::<DeliveryMode>().is_err());
        assert!("".parse::<DeliveryMode>().is_err());
    }
}
