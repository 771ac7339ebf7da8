//! Writes deterministic ALB access log lines to stdout, for benchmarks and
//! for trying s3logd by hand: `gen-alb --lines N [--seed S] [--gzip] > file`.

use std::io::{self, BufWriter, Write};
use std::process::ExitCode;

use flate2::Compression;
use flate2::write::GzEncoder;
use s3logd_test_support::alb;

const USAGE: &str = "usage: gen-alb --lines N [--seed S] [--gzip] > file";

struct Args {
    lines: usize,
    seed: u64,
    gzip: bool,
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut lines = None;
    let mut seed = 42;
    let mut gzip = false;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--lines" => lines = Some(number(&arg, args.next())?),
            "--seed" => seed = number(&arg, args.next())?,
            "--gzip" => gzip = true,
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    Ok(Args {
        lines: lines.ok_or("--lines is required")?,
        seed,
        gzip,
    })
}

fn number<T: std::str::FromStr>(flag: &str, value: Option<String>) -> Result<T, String> {
    let value = value.ok_or_else(|| format!("{flag} needs a value"))?;
    value
        .parse()
        .map_err(|_| format!("{flag} `{value}` is not a non-negative integer"))
}

fn generate(args: &Args) -> io::Result<()> {
    let stdout = BufWriter::with_capacity(1 << 20, io::stdout().lock());
    if args.gzip {
        let mut gz = GzEncoder::new(stdout, Compression::default());
        alb::write_lines(args.seed, args.lines, &mut gz)?;
        gz.finish()?.flush()
    } else {
        let mut stdout = stdout;
        alb::write_lines(args.seed, args.lines, &mut stdout)?;
        stdout.flush()
    }
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(problem) => {
            eprintln!("gen-alb: {problem}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match generate(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("gen-alb: {error}");
            ExitCode::FAILURE
        }
    }
}
