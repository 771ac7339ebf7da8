//! Log objects of several AWS formats for the long-running collector checks
//! (the soak bench and the fault campaign): gzipped ALB from the ALB
//! generator, and plain CLB, S3 server access and gzipped VPC flow logs
//! whose every line is unique across objects, so that a stored row names
//! the one line it came from. Each format has a key prefix that a route
//! sends to its parser, so detection plays no part.

use super::{LogObject, gzip};

/// The formats, in the order [`Format::nth`] cycles through them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    Alb,
    Clb,
    S3Access,
    VpcFlow,
}

/// The first line of a VPC flow log object in the default format: a header, not a record.
const VPC_FLOW_HEADER: &str = "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status";

impl Format {
    pub const ALL: [Format; 4] = [Format::Alb, Format::Clb, Format::S3Access, Format::VpcFlow];

    /// The format of the `n`th object of a mixed load.
    pub fn nth(n: u64) -> Format {
        Format::ALL[(n % Format::ALL.len() as u64) as usize]
    }

    pub fn parser(self) -> &'static str {
        match self {
            Format::Alb => "alb",
            Format::Clb => "clb",
            Format::S3Access => "s3-access",
            Format::VpcFlow => "vpc-flow",
        }
    }

    /// `(key_regex, parser)` routes for every format.
    pub fn routes() -> Vec<(String, String)> {
        Format::ALL
            .iter()
            .map(|format| (format!("^{}/", format.parser()), format.parser().to_owned()))
            .collect()
    }

    /// The key of object `n`, under this format's route.
    pub fn key(self, n: u64) -> String {
        let name = match self {
            Format::Alb | Format::VpcFlow => format!("object-{n:08}.log.gz"),
            Format::Clb | Format::S3Access => format!("object-{n:08}.log"),
        };
        format!("{}/2024/03/01/{name}", self.parser())
    }

    /// Object `n` of `lines` lines: what the store must end up holding, and
    /// the bytes to upload.
    pub fn object(self, n: u64, lines: usize) -> (LogObject, Vec<u8>) {
        let key = self.key(n);
        let object = match self {
            Format::Alb => LogObject::alb(&key, n, lines),
            Format::Clb => generated(&key, n, lines, clb_line),
            Format::S3Access => generated(&key, n, lines, s3_access_line),
            Format::VpcFlow => generated(&key, n, lines, vpc_flow_line),
        };
        let body = match self {
            Format::Alb => gzip(&object.text()),
            Format::Clb | Format::S3Access => object.text().into_bytes(),
            Format::VpcFlow => gzip(&format!("{VPC_FLOW_HEADER}\n{}", object.text())),
        };
        (object, body)
    }
}

fn generated(key: &str, n: u64, lines: usize, line: fn(u64, u64) -> String) -> LogObject {
    LogObject {
        key: key.to_owned(),
        lines: (0..lines as u64).map(|i| line(n, i)).collect(),
    }
}

/// Seconds into the day of line `i`, so that times vary and stay valid.
fn clock(i: u64) -> (u64, u64, u64) {
    let seconds = i % 86_400;
    (seconds / 3600, seconds / 60 % 60, seconds % 60)
}

/// An HTTP listener's line; the object and line number are in the path.
fn clb_line(n: u64, i: u64) -> String {
    let (h, m, s) = clock(i);
    format!(
        "2024-03-01T{h:02}:{m:02}:{s:02}.{micros:06}Z my-loadbalancer 192.168.{a}.{b}:{port} 10.0.0.1:80 \
         0.000073 0.001048 0.000057 200 200 0 29 \"GET http://www.example.com:80/items/{n}/{i} HTTP/1.1\" \
         \"curl/7.38.0\" - -",
        micros = i % 1_000_000,
        a = n % 256,
        b = i % 256,
        port = 1024 + i % 60_000,
    )
}

/// A REST.GET.OBJECT line; the object and line number are in the key and request id.
fn s3_access_line(n: u64, i: u64) -> String {
    let (h, m, s) = clock(i);
    format!(
        "79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be amzn-s3-demo-bucket \
         [01/Mar/2024:{h:02}:{m:02}:{s:02} +0000] 192.0.2.3 arn:aws:iam::123456789012:user/alice \
         {n:08X}{i:08X} REST.GET.OBJECT photos/{n}/{i}.jpg \"GET /photos/{n}/{i}.jpg HTTP/1.1\" 200 - \
         {size} {size} 12 11 \"-\" \"aws-cli/2.15.0 Python/3.11.6\" - \
         3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY+MTRCxf3vjVBH40Nr8X8gdRQBpUMLUo SigV4 \
         TLS_AES_128_GCM_SHA256 AuthHeader amzn-s3-demo-bucket.s3.eu-west-1.amazonaws.com TLSv1.3 - -",
        size = 1000 + i,
    )
}

/// A default-format record; the object is the interface id, the line number the byte count.
fn vpc_flow_line(n: u64, i: u64) -> String {
    let start = 1_709_294_400 + i;
    format!(
        "2 123456789012 eni-{n:017x} 172.31.{a}.{b} 172.31.9.12 {port} 443 6 20 {bytes} {start} {end} ACCEPT OK",
        a = n % 256,
        b = i % 256,
        port = 1024 + i % 60_000,
        bytes = 4000 + i,
        end = start + 60,
    )
}
