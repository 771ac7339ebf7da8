//! Builds guest parser crates into WebAssembly components, for build scripts.
//!
//! `host/build.rs` uses it to embed the bundled parsers; the test support
//! crate uses it for the deliberately broken fixtures and the example custom
//! parser. It installs the `wasm32-wasip2` target through rustup when it is
//! missing, so a fresh machine needs nothing by hand.

use std::path::{Path, PathBuf};
use std::process::Command;

pub const TARGET: &str = "wasm32-wasip2";

/// The workspace root, two levels above a crate in `host/` or `tests/support/`.
pub fn workspace_root(manifest_dir: &Path) -> PathBuf {
    manifest_dir
        .ancestors()
        .find(|dir| dir.join("wit").is_dir() && dir.join("guest-parsers").is_dir())
        .expect("the workspace root (holding wit/ and guest-parsers/) is above this crate")
        .to_path_buf()
}

/// Crates under `guest-parsers/` whose manifest says
/// `[package.metadata.s3logd] bundled = true`, as (package name, crate dir),
/// sorted by name.
pub fn bundled_parsers(workspace_root: &Path) -> Vec<(String, PathBuf)> {
    let mut found = Vec::new();
    let dir = workspace_root.join("guest-parsers");
    for entry in std::fs::read_dir(&dir).expect("guest-parsers/ is readable") {
        let crate_dir = entry.expect("guest-parsers/ entry").path();
        let Ok(manifest) = std::fs::read_to_string(crate_dir.join("Cargo.toml")) else {
            continue;
        };
        if is_bundled(&manifest) {
            let name = package_name(&manifest).expect("a [package] name");
            found.push((name, crate_dir));
        }
    }
    found.sort();
    found
}

fn is_bundled(manifest: &str) -> bool {
    let mut in_table = false;
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            in_table = line == "[package.metadata.s3logd]";
        } else if in_table && line.replace(' ', "") == "bundled=true" {
            return true;
        }
    }
    false
}

fn package_name(manifest: &str) -> Option<String> {
    manifest.lines().map(str::trim).find_map(|line| {
        let value = line.strip_prefix("name")?.trim_start().strip_prefix('=')?;
        Some(value.trim().trim_matches('"').to_string())
    })
}

/// Builds `packages` for `wasm32-wasip2` in release mode into
/// `target_dir` and returns each component's path, in the same order.
///
/// Panics with the cargo output when the build fails: this runs inside a
/// build script, where a panic is the way to report.
pub fn build(workspace_root: &Path, packages: &[String], target_dir: &Path) -> Vec<PathBuf> {
    ensure_target_installed();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace_root)
        .args(["build", "--release", "--target", TARGET, "--target-dir"])
        .arg(target_dir)
        // Debug line tables would make every component ten times larger
        // and a parser's panic message already names its source line.
        .args(["--config", "profile.release.debug=false"])
        .args(["--config", "profile.release.strip=true"]);
    for package in packages {
        cmd.args(["-p", package]);
    }
    // The outer build's flags are for the host; the guests take theirs from
    // .cargo/config.toml (+simd128).
    for var in [
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTFLAGS",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
    ] {
        cmd.env_remove(var);
    }
    let status = cmd.status().expect("cargo can be run from a build script");
    assert!(
        status.success(),
        "building guest components {packages:?} failed"
    );
    packages
        .iter()
        .map(|package| {
            target_dir
                .join(TARGET)
                .join("release")
                .join(format!("{}.wasm", package.replace('-', "_")))
        })
        .collect()
}

/// Where guests are built: always inside the checkout, even when
/// `CARGO_TARGET_DIR` points elsewhere, so two checkouts sharing a target
/// directory never embed each other's components.
pub fn guest_target_dir(workspace_root: &Path) -> PathBuf {
    workspace_root.join("target").join("guests")
}

/// Tells cargo to rebuild when guest sources, the contract or the lock file change.
pub fn rerun_if_guests_change(workspace_root: &Path) {
    for path in ["guest-parsers", "wit", "Cargo.lock", ".cargo/config.toml"] {
        println!(
            "cargo:rerun-if-changed={}",
            workspace_root.join(path).display()
        );
    }
}

fn ensure_target_installed() {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .map(|out| {
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .any(|l| l.trim() == TARGET)
        })
        .unwrap_or(false);
    if installed {
        return;
    }
    let added = Command::new("rustup")
        .args(["target", "add", TARGET])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(
        added,
        "the {TARGET} target is missing and `rustup target add {TARGET}` failed; run it by hand"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_bundled_marker_and_package_name() {
        let manifest =
            "[package]\nname = \"s3logd-parser-x\"\n\n[package.metadata.s3logd]\nbundled = true\n";
        assert!(is_bundled(manifest));
        assert_eq!(package_name(manifest).as_deref(), Some("s3logd-parser-x"));
        assert!(!is_bundled(
            "[package]\nname = \"y\"\n[features]\nbundled = true\n"
        ));
    }
}
