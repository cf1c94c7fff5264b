//! Disk faults for tests: a small tmpfs, an `LD_PRELOAD` shim that fails fsync/write.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A tmpfs of `size` (e.g. `"32m"`) mounted on a directory of its own; unmounted when
/// dropped. `None` when it cannot be mounted (not root, no mount(8)) and `CI` is unset: the
/// caller skips; under `CI` it panics instead, so CI never passes a test that did not run.
pub struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    pub fn mount(size: &str) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().unwrap();
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output();
        match mounted {
            Ok(out) if out.status.success() => Some(Tmpfs { dir }),
            other => {
                let why = format!("cannot mount a tmpfs: {other:?}");
                assert!(std::env::var_os("CI").is_none(), "{why}");
                eprintln!("skipped: {why}");
                None
            }
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// Builds `c/fault_shim.c` with gcc into `out` and returns the library for `LD_PRELOAD`.
/// While the file named by `SLUICE_FAULT_CONTROL` exists, the shim fails with EIO the calls
/// it names (`fsync`: fsync/fdatasync; `write`: write/pwrite/writev; both when it names
/// both) on files under `SLUICE_FAULT_DIR`.
pub fn build_fault_shim(out: &Path) -> PathBuf {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("c/fault_shim.c");
    let lib = out.join("fault_shim.so");
    let built = Command::new("gcc")
        .args(["-shared", "-fPIC", "-O2", "-Wall", "-Werror", "-o"])
        .arg(&lib)
        .arg(&source)
        .arg("-ldl")
        .output()
        .expect("gcc runs");
    assert!(built.status.success(), "gcc: {built:?}");
    lib
}
