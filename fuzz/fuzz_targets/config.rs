//! The config loader on arbitrary TOML (`config::load_str`, the file step of `load`):
//! no panic; a config that loads validates, and survives a round trip through TOML.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_config::{Config, load_str};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(config) = load_str(Config::default(), text) else {
        return;
    };
    config.validate().expect("a loaded config is valid");
    let again = toml::to_string(&config).expect("a config serialises");
    let reloaded = load_str(Config::default(), &again).expect("a serialised config loads");
    assert_eq!(
        toml::to_string(&reloaded).unwrap(),
        again,
        "the round trip changed the config"
    );
});
