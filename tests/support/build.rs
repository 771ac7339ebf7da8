//! Builds the test components (the deliberately broken parsers under
//! `tests/fixtures/` and the example custom parser) and generates
//! `components.rs`: one `pub const` per component holding its path, so
//! tests load them the way users load custom parsers, from a file.

use std::path::PathBuf;

/// (constant in `components`, package), one per component.
const COMPONENTS: &[(&str, &str)] = &[
    ("TRAP_PARSER", "trap-parser"),
    ("SPIN_PARSER", "spin-parser"),
    ("MEMORY_BOMB_PARSER", "memory-bomb-parser"),
    ("FILESYSTEM_PARSER", "filesystem-parser"),
    ("FUTURE_CONTRACT_PARSER", "future-contract-parser"),
    ("GARBAGE_PARSER", "garbage-parser"),
    ("WRONG_TYPE_PARSER", "wrong-type-parser"),
    ("AMPLIFYING_PARSER", "amplifying-parser"),
    ("EXAMPLE_LOGFMT_PARSER", "s3logd-example-logfmt"),
];

fn main() {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let root = s3logd_guest_builder::workspace_root(&manifest_dir);
    s3logd_guest_builder::rerun_if_guests_change(&root);
    println!(
        "cargo:rerun-if-changed={}",
        root.join("tests/fixtures").display()
    );

    let packages: Vec<String> = COMPONENTS
        .iter()
        .map(|(_, package)| package.to_string())
        .collect();
    let wasm = s3logd_guest_builder::build(
        &root,
        &packages,
        &s3logd_guest_builder::guest_target_dir(&root),
    );

    let mut code = String::new();
    for ((constant, package), path) in COMPONENTS.iter().zip(&wasm) {
        code.push_str(&format!(
            "/// The `{package}` component (a `.wasm` file).\npub const {constant}: &str = {:?};\n",
            path.display().to_string()
        ));
    }
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("components.rs");
    std::fs::write(out, code).unwrap();
}
