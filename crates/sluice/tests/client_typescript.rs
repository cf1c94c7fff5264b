//! The TypeScript client (`clients/typescript`, npm `@sluice/client`) against this build's
//! binary: compiles the package (`npm run build`, so the suite always runs the current
//! source) and runs its `node --test` suite (`npm test`) with `SLUICE_BIN` set to this
//! crate's `sluice`. The suite starts its own Sluice (capture provider, a sandboxed
//! account) and checks the retry schedule with an injected clock, a retry after a dropped
//! answer that sends once, every error class and the workflow executor's output shapes.
//!
//! Needs Node 20 and `npm ci --prefix clients/typescript` (`tests/run.sh` runs it).

use std::path::Path;
use std::process::{Command, Output};

fn npm(dir: &Path, args: &[&str]) -> Output {
    Command::new("npm")
        .args(args)
        .current_dir(dir)
        .env("SLUICE_BIN", env!("CARGO_BIN_EXE_sluice"))
        // The suite would use a running server named by these instead of this build's.
        .env_remove("SLUICE_URL")
        .env_remove("SLUICE_API_KEY")
        .output()
        .unwrap_or_else(|error| {
            panic!("npm {args:?} did not start (is Node 20 installed?): {error}")
        })
}

fn assert_success(what: &str, output: &Output) {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{what} failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
}

#[test]
fn the_typescript_client_passes_its_suite_against_this_build() {
    let package = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../clients/typescript");
    assert!(
        package.join("node_modules/typescript").exists(),
        "the TypeScript client's dev dependencies are missing: run `npm ci --prefix clients/typescript`"
    );
    assert_success("npm run build", &npm(&package, &["run", "build"]));
    let tested = npm(&package, &["test"]);
    assert_success("npm test", &tested);
    let report = String::from_utf8_lossy(&tested.stdout);
    let passed = report
        .lines()
        .find_map(|line| line.strip_prefix("# pass "))
        .and_then(|count| count.trim().parse::<u32>().ok())
        .unwrap_or(0);
    assert!(passed > 0, "npm test ran no test:\n{report}");
    for line in report.lines().filter(|line| line.starts_with("# ")) {
        println!("{line}");
    }
}
