//! Any object text through every bundled parser, run natively as the
//! component runs it (the SDK's `BatchParser`) and read back through the
//! host's `visit_rows`: no panic, output the host accepts whole (a valid
//! encoding, every value of its declared type, within the output
//! allowance), and every line of every batch counted.
//!
//! Input: a byte choosing the parser, one for the lines per batch and one
//! for the parser's key and options ([`Variant`]), then the object's text.

use s3logd::parse::{Field, OutputAllowance, Record, RecordVisitor, visit_rows};
use s3logd_parser_sdk::{BatchParser, Input as ParserInput, Parser};
use s3logd_rows::{Decoder, Entry};

use crate::Input;

/// An object key and options a parser is opened with.
pub struct Variant {
    pub key: &'static str,
    pub options: &'static [(&'static str, &'static str)],
}

/// A bundled parser and the ways it is opened; the first input byte picks
/// one by its place in [`PARSERS`].
pub struct Bundled {
    pub name: &'static str,
    run: fn(&Variant, &str, usize),
    pub variants: &'static [Variant],
}

/// A log file key of no particular service, for parsers that ignore it.
const ANY_KEY: &[Variant] = &[Variant {
    key: "logs/2024/03/01/object.log.gz",
    options: &[],
}];

const NGINX_COMBINED: &str = r#"^(?P<remote_addr>\S+) - (?P<remote_user>\S+) \[(?P<time_local>[^\]]+)\] "(?P<request>[^"]*)" (?P<status>\d{3}) (?P<body_bytes_sent>\S+) "(?P<http_referer>[^"]*)" "(?P<http_user_agent>[^"]*)"$"#;

pub const PARSERS: &[Bundled] = &[
    Bundled {
        name: "alb",
        run: run_parser::<s3logd_parser_alb::Alb>,
        variants: ANY_KEY,
    },
    Bundled {
        name: "alb-connection",
        run: run_parser::<s3logd_parser_alb_connection::AlbConnection>,
        variants: ANY_KEY,
    },
    Bundled {
        name: "clb",
        run: run_parser::<s3logd_parser_clb::Clb>,
        variants: ANY_KEY,
    },
    Bundled {
        name: "cloudfront",
        run: run_parser::<s3logd_parser_cloudfront::CloudFront>,
        variants: ANY_KEY,
    },
    Bundled {
        name: "cloudtrail",
        run: run_parser::<s3logd_parser_cloudtrail::CloudTrail>,
        variants: &[
            Variant {
                key: "AWSLogs/111122223333/CloudTrail/us-east-2/2024/03/01/111122223333_CloudTrail_us-east-2_20240301T1205Z_abc.json.gz",
                options: &[],
            },
            Variant {
                key: "AWSLogs/111122223333/CloudTrail-Digest/us-east-2/2024/03/01/111122223333_CloudTrail-Digest_us-east-2_trail_us-east-2_20240301T1205Z.json.gz",
                options: &[],
            },
        ],
    },
    Bundled {
        name: "cloudwatch-firehose",
        run: run_parser::<s3logd_parser_cloudwatch_firehose::CloudWatchFirehose>,
        variants: &[
            Variant {
                key: "firehose/2024/03/01/12/stream-1-2024-03-01-12-00-00-abc",
                options: &[],
            },
            Variant {
                key: "firehose/2024/03/01/12/stream-1-2024-03-01-12-00-00-abc",
                options: &[("parse_json_messages", "true")],
            },
        ],
    },
    Bundled {
        name: "ndjson",
        run: run_parser::<s3logd_parser_ndjson::NdJson>,
        variants: &[
            Variant {
                key: "app/dt=2024-03-01/20240301T120500_0123456789abcdef.json.gz",
                options: &[],
            },
            Variant {
                key: "app/events.json",
                options: &[("time_field", "ts"), ("time_format", "unix_ms")],
            },
            Variant {
                key: "app/events.json",
                options: &[
                    ("time_field", "event.time"),
                    ("time_format", "rfc3339"),
                    ("msg_field", "message"),
                ],
            },
        ],
    },
    Bundled {
        name: "nlb",
        run: run_parser::<s3logd_parser_nlb::Nlb>,
        variants: ANY_KEY,
    },
    Bundled {
        name: "regex",
        run: run_parser::<s3logd_parser_regex::RegexSession>,
        variants: &[
            Variant {
                key: "nginx/access.log",
                options: &[
                    ("pattern", NGINX_COMBINED),
                    ("time_field", "time_local"),
                    ("time_format", "%d/%b/%Y:%H:%M:%S %z"),
                ],
            },
            Variant {
                key: "app/app.log",
                options: &[
                    ("pattern", r"^(?P<ts>\d+) (?P<level>\w+) (?P<text>.*)$"),
                    ("time_field", "ts"),
                    ("time_format", "unix_ms"),
                    ("msg_field", "text"),
                ],
            },
            Variant {
                key: "app/app.log",
                options: &[
                    ("pattern", r"(?P<when>\S+)\s+(?P<rest>.*)"),
                    ("time_field", "when"),
                ],
            },
        ],
    },
    Bundled {
        name: "s3-access",
        run: run_parser::<s3logd_parser_s3_access::S3Access>,
        variants: ANY_KEY,
    },
    Bundled {
        name: "vpc-flow",
        run: run_parser::<s3logd_parser_vpc_flow::VpcFlow>,
        variants: ANY_KEY,
    },
    Bundled {
        name: "waf",
        run: run_parser::<s3logd_parser_waf::Waf>,
        variants: ANY_KEY,
    },
];

pub fn run(data: &[u8]) {
    let mut input = Input::new(data);
    let parser = &PARSERS[usize::from(input.byte()) % PARSERS.len()];
    let lines_per_batch = 1 + usize::from(input.byte() % 8);
    let variant = &parser.variants[usize::from(input.byte()) % parser.variants.len()];
    let text = String::from_utf8_lossy(input.rest());
    (parser.run)(variant, &text, lines_per_batch);
}

fn run_parser<P: Parser>(variant: &Variant, text: &str, lines_per_batch: usize) {
    let description = P::describe();
    let options = variant
        .options
        .iter()
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect();
    let mut parser = BatchParser::<P>::open(variant.key, options).unwrap_or_else(|reason| {
        panic!("{} refused {:?}: {reason}", description.name, variant.key)
    });
    let mut fields: Vec<Field> = description.fields.into_iter().map(Field::from).collect();
    let mut allowance = OutputAllowance::new(&fields).expect("a bundled parser's fields fit");
    let documents = description.input == ParserInput::JsonDocuments;
    let mut lines_before = 0u64;
    let mut skipped_so_far = 0u64;
    // The empty batch that ends every object, as the host sends it.
    for batch in batches(text, lines_per_batch).chain([""]) {
        let encoded = parser.parse(batch);
        let sent = Sent::read(&encoded, batch);
        let before = if batch.is_empty() {
            lines_before.saturating_sub(1)
        } else {
            lines_before
        };
        let mut counted = Counted;
        let outcome = visit_rows(
            &encoded,
            batch,
            &mut fields,
            &mut allowance,
            before,
            &mut counted,
        )
        .unwrap_or_else(|failure| panic!("{}: {failure}", description.name));
        assert_eq!(
            (outcome.records, outcome.line_errors),
            (sent.rows, sent.errors),
            "every row arrives as a record: none holds a value outside its field's type"
        );
        let lines = lines_in(batch);
        assert_eq!(outcome.lines, lines, "every line of the batch is counted");
        // A document left open at the end of the object is reported by the
        // empty batch that ends it, on lines earlier batches counted.
        skipped_so_far += outcome.skipped_lines;
        assert!(
            if documents {
                skipped_so_far <= lines_before + lines
            } else {
                outcome.skipped_lines <= lines
            },
            "{}: {outcome:?} for {lines} lines of {batch:?}",
            description.name
        );
        assert!(
            sent.error_lines.iter().all(|&line| line < lines.max(1)),
            "errors are reported on lines of the batch: {:?} of {lines}",
            sent.error_lines
        );
        if !documents {
            // A line gives records, an error or is skipped.
            assert!(
                outcome.records + outcome.line_errors + outcome.skipped_lines >= lines,
                "{outcome:?} for {lines} lines"
            );
        }
        lines_before += outcome.lines;
    }
}

/// `text` in batches of `lines_per_batch` lines, each ending at a line end
/// but the last, as the host's batcher cuts them.
fn batches(text: &str, lines_per_batch: usize) -> impl Iterator<Item = &str> {
    let mut rest = text;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let end = memchr::memchr_iter(b'\n', rest.as_bytes())
            .nth(lines_per_batch - 1)
            .map_or(rest.len(), |end| end + 1);
        let (batch, after) = rest.split_at(end);
        rest = after;
        Some(batch)
    })
}

/// The lines of a batch, as the SDK counts them: a last line without its
/// line end is one too.
fn lines_in(batch: &str) -> u64 {
    let ends = memchr::memchr_iter(b'\n', batch.as_bytes()).count();
    (ends + usize::from(!batch.is_empty() && !batch.ends_with('\n'))) as u64
}

/// What a parser's encoding holds, read without the host's checks.
struct Sent {
    rows: u64,
    errors: u64,
    error_lines: Vec<u64>,
}

impl Sent {
    fn read(encoded: &[u8], batch: &str) -> Sent {
        let mut decoder = Decoder::new(encoded, batch).expect("the SDK writes a valid header");
        let mut values = Vec::new();
        let mut sent = Sent {
            rows: 0,
            errors: 0,
            error_lines: Vec::new(),
        };
        while let Some(entry) = decoder
            .next_entry(&mut values)
            .expect("the SDK writes a valid encoding")
        {
            match entry {
                Entry::Row(_) => sent.rows += 1,
                Entry::Error { line, .. } => {
                    sent.errors += 1;
                    sent.error_lines.push(line.into());
                }
                Entry::Field { .. } | Entry::End(_) => {}
            }
        }
        sent
    }
}

/// The host's side needs nothing from the records here: `visit_rows`
/// returns the counts, and the checks are on those.
struct Counted;

impl RecordVisitor for Counted {
    fn record(&mut self, _record: &Record<'_>) {}
    fn line_error(&mut self, _line: u64, _text: &str, _reason: &str) {}
}
