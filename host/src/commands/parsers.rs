//! `s3logd parsers`: what each parser reads and emits.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use s3logd::parse::{CONTRACT, Profiling};

pub fn run(custom: &[PathBuf]) -> Result<ExitCode> {
    let parsers = super::load_parsers(custom, Profiling::Off)?;
    let mut out = format!("parser contract: {CONTRACT}\n");
    for parser in parsers.iter() {
        let info = &parser.info;
        let _ = writeln!(out, "\n{} {} ({})", info.name, info.version, parser.origin);
        let _ = writeln!(out, "  {}", info.description);
        let lists = [
            ("formats", &info.formats),
            ("key patterns", &info.key_patterns),
            ("first-line patterns", &info.first_line_patterns),
        ];
        for (label, items) in lists {
            if !items.is_empty() {
                let _ = writeln!(out, "  {label}: {}", items.join("  "));
            }
        }
        if !info.time_source.is_empty() {
            let _ = writeln!(out, "  _time from: {}", info.time_source);
        }
        for option in &info.options {
            let default = option
                .default_value
                .as_deref()
                .map(|d| format!(" (default {d})"))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "  option {}{default}: {}",
                option.name, option.description
            );
        }
        let _ = writeln!(out, "  fields:");
        for field in &info.fields {
            let _ = writeln!(
                out,
                "    {:<28} {:<12} {}",
                field.name,
                field.ty.name(),
                field.description
            );
        }
    }
    print!("{out}");
    Ok(ExitCode::SUCCESS)
}
