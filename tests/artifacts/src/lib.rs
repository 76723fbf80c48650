//! Paths of the guest components the end-to-end tests use, built by this
//! crate's build script (see `tests/guests/README.md`).

use std::path::PathBuf;

/// Directory with the compiled test guests (`hostile_*.wasm`).
pub const TEST_GUESTS_DIR: &str = env!("SYNCPLANE_TEST_GUESTS_WASM");
/// Directory with the compiled hello-world components.
pub const HELLO_WORLD_DIR: &str = env!("SYNCPLANE_HELLO_WORLD_WASM");
/// Directory with the compiled PowerDNS service components
/// (`guests/powerdns`).
pub const POWERDNS_DIR: &str = env!("SYNCPLANE_POWERDNS_WASM");

/// The test guest components, by name.
pub const TEST_GUESTS: &[&str] = &[
    "hostile_trap",
    "hostile_infinite_loop",
    "hostile_memory_bomb",
    "hostile_undeclared_access",
    "chain_step",
    "event_regions",
    "event_snoop",
    "pull_regions",
    "zone_policy",
    "legacy_v01_step",
    "cap_unlisted_host",
    "cap_secret_snoop",
    "cap_write_ungranted",
    "cap_user_read",
    "cap_sleep_forever",
    "cap_endless_body",
    "cap_log_flood",
    "cap_call_flood",
    "cap_huge_error",
    "cap_http_ok",
    "cap_chain_policy",
    "cap_chain_step",
    "slow_step",
    "validated_feedback",
    "counting_step",
];

/// The path of a compiled test guest.
pub fn test_guest(name: &str) -> PathBuf {
    PathBuf::from(TEST_GUESTS_DIR).join(format!("{name}.wasm"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_test_guest_source_was_built() {
        let sources = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../guests/src/bin"))
            .expect("sources");
        for entry in sources {
            let name = entry
                .expect("entry")
                .path()
                .file_stem()
                .expect("stem")
                .to_string_lossy()
                .into_owned();
            assert!(
                super::TEST_GUESTS.contains(&name.as_str()),
                "{name} has no entry in TEST_GUESTS"
            );
            assert!(
                super::test_guest(&name).is_file(),
                "{name}.wasm was not built"
            );
        }
    }
}
