//! The Python client (`clients/python`, pip `sluice-client`) against this build of Sluice:
//! runs its pytest suite, which starts this binary itself (`SLUICE_BIN`) and fails when any
//! of its tests fails. The package and pytest come from `tests/requirements.txt`
//! (`bash tests/run.sh` installs them); this test installs nothing.

use std::path::Path;
use std::process::Command;

#[test]
fn the_python_client_suite_passes_against_this_binary() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let suite = repo.join("clients/python/tests");
    let probe = Command::new("python3")
        .args(["-c", "import pytest, sluice_client"])
        .output()
        .expect("python3 runs");
    assert!(
        probe.status.success(),
        "pytest and the sluice-client package are needed: \
         python3 -m pip install -r tests/requirements.txt (tests/run.sh does)\n{}",
        String::from_utf8_lossy(&probe.stderr)
    );
    let status = Command::new("python3")
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider"])
        .arg(&suite)
        .current_dir(&repo)
        .env("SLUICE_BIN", env!("CARGO_BIN_EXE_sluice"))
        .env_remove("SLUICE_URL")
        .status()
        .expect("python3 -m pytest runs");
    // pytest exits 0 only when tests ran and all passed (5: none collected).
    assert!(
        status.success(),
        "the Python client's tests failed ({status}); see the pytest output above"
    );
}
