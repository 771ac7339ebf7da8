//! Replays every seed of `corpus/` and every crash of `regressions/`
//! through its fuzz target, so that `cargo test` checks what fuzzing found
//! without libFuzzer.

use std::path::{Path, PathBuf};

use s3logd_fuzz::TARGETS;

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|entry| entry.expect("a readable directory entry").path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    files
}

fn replay(dir: &Path, run: fn(&[u8])) -> usize {
    let files = files_in(dir);
    for file in &files {
        let data = std::fs::read(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        // A panic names the file that caused it.
        eprintln!("replaying {}", file.display());
        run(&data);
    }
    files.len()
}

#[test]
fn every_target_has_a_seed_corpus_and_passes_it() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for (name, run) in TARGETS {
        let seeds = replay(&root.join("corpus").join(name), *run);
        assert!(seeds > 0, "fuzz/corpus/{name} holds no seeds");
    }
}

#[test]
fn every_regression_passes() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for (name, run) in TARGETS {
        replay(&root.join("regressions").join(name), *run);
    }
}

#[test]
fn every_target_has_a_libfuzzer_entry_point() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut entry_points: Vec<String> = files_in(&root.join("fuzz_targets"))
        .iter()
        .map(|path| path.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    entry_points.sort();
    let mut targets: Vec<&str> = TARGETS.iter().map(|(name, _)| *name).collect();
    targets.sort();
    assert_eq!(entry_points, targets);
}
