//! Builds the bundled parser components (every crate under `guest-parsers/`
//! marked `[package.metadata.s3logd] bundled = true`) and generates
//! `bundled.rs`, which embeds them in the binary.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::PathBuf;

fn main() {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let root = s3logd_guest_builder::workspace_root(&manifest_dir);
    s3logd_guest_builder::rerun_if_guests_change(&root);

    let parsers = s3logd_guest_builder::bundled_parsers(&root);
    let packages: Vec<String> = parsers.iter().map(|(name, _)| name.clone()).collect();
    let wasm = s3logd_guest_builder::build(
        &root,
        &packages,
        &s3logd_guest_builder::guest_target_dir(&root),
    );

    let mut code = String::from(
        "/// Bundled parser components: (package, component bytes, digest of the bytes).\n\
         pub const BUNDLED: &[(&str, &[u8], u64)] = &[\n",
    );
    for (package, path) in packages.iter().zip(&wasm) {
        // Names the bytes in the compile cache, so that start-up finds a
        // cached component without reading (and paging in) its bytes.
        let mut hasher = DefaultHasher::new();
        std::fs::read(path).unwrap().hash(&mut hasher);
        code.push_str(&format!(
            "    ({package:?}, include_bytes!({:?}), {:#x}),\n",
            path.display().to_string(),
            hasher.finish()
        ));
    }
    code.push_str("];\n");
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("bundled.rs");
    std::fs::write(out, code).unwrap();
}
