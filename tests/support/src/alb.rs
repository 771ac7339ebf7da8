//! Deterministic, realistic ALB access log lines in the current 33-field
//! format, for tests and benchmarks. The traffic mix follows the shares the
//! performance figures in BENCHMARKS.md were measured on: mostly h2 and
//! https, some IPv6 clients, query strings, browser user agents with spaces,
//! a few 460/502/503 and redirects, and the occasional `Self=` trace id.

use std::fmt::{self, Write as _};
use std::io::{self, Write};

use s3logd_parser_sdk::time::civil_from_days;

/// `count` lines, each ending in `\n`; the same seed gives the same bytes.
pub fn lines(seed: u64, count: usize) -> String {
    let mut generator = Generator::new(seed);
    let mut out = String::with_capacity(count * 720);
    for _ in 0..count {
        generator
            .push_line(&mut out)
            .expect("writing to a String cannot fail");
    }
    out
}

/// The same lines as [`lines`], streamed to `out` without holding them all.
pub fn write_lines(seed: u64, count: usize, out: &mut impl Write) -> io::Result<()> {
    let mut generator = Generator::new(seed);
    let mut line = String::with_capacity(2048);
    for _ in 0..count {
        line.clear();
        generator
            .push_line(&mut line)
            .expect("writing to a String cannot fail");
        out.write_all(line.as_bytes())?;
    }
    Ok(())
}

/// SplitMix64: tiny, fast and good enough to make varied test data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n`.
    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next()) * u128::from(n)) >> 64) as u64
    }

    fn between(&mut self, low: u64, high: u64) -> u64 {
        low + self.below(high - low + 1)
    }

    /// True with probability `in_10000` / 10 000.
    fn chance(&mut self, in_10000: u64) -> bool {
        self.below(10_000) < in_10000
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    /// Picks by weight; the weights need not add up to anything.
    fn weighted<'a, T>(&mut self, items: &'a [(u64, T)]) -> &'a T {
        let total = items.iter().map(|(weight, _)| weight).sum();
        let mut roll = self.below(total);
        for (weight, item) in items {
            if roll < *weight {
                return item;
            }
            roll -= weight;
        }
        unreachable!("roll is below the total weight")
    }
}

const ELB: &str = "app/web-prod/50dc6c495c0c9188";
const ACCOUNT_REGION: &str = "us-east-2:123456789012";
const CERT_ID: &str = "3f6d2a4b-8c1e-4f7a-9b2d-5e6f7a8b9c0d";
const TARGET_GROUPS: [&str; 3] = [
    "web-frontend/73e2d6bc24d8a067",
    "api-backend/9a41c6e2f3b7d815",
    "grpc-services/1c5e8f0a2b4d6e79",
];
const HOSTS: [&str; 4] = [
    "www.example.com",
    "api.example.com",
    "shop.example.com",
    "static.example-cdn.net",
];
const USER_AGENTS: [&str; 17] = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/121.0.0.0 Safari/537.36 Edg/121.0.2277.128",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.3.1 Safari/605.1.15",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.0.0 Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64; rv:123.0) Gecko/20100101 Firefox/123.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:123.0) Gecko/20100101 Firefox/123.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_3_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.3.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/122.0.6261.89 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.6261.105 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 13; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/23.0 Chrome/115.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
    "Mozilla/5.0 (compatible; UptimeRobot/2.0; http://www.uptimerobot.com/)",
    "Amazon CloudFront (compatible; health check)",
    "okhttp/4.12.0 (Android 14; Pixel 7)",
    "ExampleShop/5.18.2 (iPhone; iOS 17.3.1; Scale/3.00)",
    "grpc-java-netty/1.62.2 (linux; amd64)",
];
const RESOURCES: [&str; 8] = [
    "products",
    "orders",
    "users",
    "carts",
    "reviews",
    "search",
    "inventory",
    "sessions",
];
const GRPC_METHODS: [&str; 4] = [
    "/inventory.v1.StockService/Reserve",
    "/orders.v2.OrderService/Create",
    "/pricing.v1.PriceService/Quote",
    "/grpc.health.v1.Health/Check",
];
const TLS: [(&str, &str); 4] = [
    ("ECDHE-RSA-AES128-GCM-SHA256", "TLSv1.2"),
    ("ECDHE-ECDSA-AES128-GCM-SHA256", "TLSv1.2"),
    ("TLS_AES_128_GCM_SHA256", "TLSv1.3"),
    ("TLS_AES_256_GCM_SHA384", "TLSv1.3"),
];

/// What happened to a request, which decides the target and timing fields.
#[derive(Clone, Copy, PartialEq)]
enum Outcome {
    /// Forwarded; the target answered with this status.
    Forwarded(u16),
    /// 460: the client closed the connection before the target answered.
    ClientClosed,
    /// 502 or 503 from the load balancer, no target reached.
    NoTarget(u16),
    /// A redirect rule answered.
    Redirected(u16),
}

struct Generator {
    rng: Rng,
    /// Microseconds since the Unix epoch of the next response.
    clock_micros: i64,
}

impl Generator {
    fn new(seed: u64) -> Generator {
        Generator {
            rng: Rng(seed),
            // 2024-03-01T12:00:00Z
            clock_micros: 1_709_294_400_000_000,
        }
    }

    fn push_line(&mut self, out: &mut String) -> fmt::Result {
        let rng = &mut self.rng;
        self.clock_micros += rng.below(700) as i64;
        let kind = *rng.weighted(&[
            (500, "h2"),
            (380, "https"),
            (80, "http"),
            (20, "wss"),
            (20, "grpcs"),
        ]);
        let tls = kind != "http";
        let outcome = if rng.chance(150) {
            Outcome::ClientClosed
        } else if rng.chance(100) {
            Outcome::NoTarget(502)
        } else if rng.chance(50) {
            Outcome::NoTarget(503)
        } else if (kind == "http" && rng.chance(6000)) || rng.chance(100) {
            Outcome::Redirected(if tls { 302 } else { 301 })
        } else if kind == "wss" {
            Outcome::Forwarded(101)
        } else if kind == "grpcs" {
            Outcome::Forwarded(200)
        } else {
            Outcome::Forwarded(*rng.weighted(&[
                (800, 200),
                (30, 201),
                (30, 204),
                (5, 206),
                (15, 302),
                (50, 304),
                (15, 400),
                (10, 401),
                (10, 403),
                (30, 404),
                (5, 429),
                (10, 500),
            ]))
        };
        let target_reached = matches!(outcome, Outcome::Forwarded(_) | Outcome::ClientClosed);

        // Milliseconds; -1 is AWS's "not available".
        let (request_ms, target_ms, response_ms) = match outcome {
            Outcome::Forwarded(_) => {
                let target_ms = if rng.chance(500) {
                    rng.between(400, 5000)
                } else {
                    rng.below(250)
                };
                (rng.below(3) as i64, target_ms as i64, rng.below(2) as i64)
            }
            Outcome::ClientClosed => (rng.below(2) as i64, -1, -1),
            Outcome::NoTarget(_) | Outcome::Redirected(_) => (-1, -1, -1),
        };
        let duration_micros = 1000
            * [request_ms, target_ms, response_ms]
                .iter()
                .map(|ms| ms.max(&0))
                .sum::<i64>()
            + rng.below(1000) as i64;

        write!(out, "{kind} ")?;
        push_time(out, self.clock_micros)?;
        write!(out, " {ELB} ")?;
        push_client(rng, out)?;
        let target = target_reached.then(|| {
            let port = if kind == "grpcs" { 50051 } else { 8080 };
            (rng.between(1, 3), rng.between(10, 250), port)
        });
        match target {
            Some((subnet, host, port)) => write!(out, " 10.0.{subnet}.{host}:{port} ")?,
            None => out.push_str(" - "),
        }
        for millis in [request_ms, target_ms, response_ms] {
            push_timing(out, millis)?;
        }
        let elb_status = match outcome {
            Outcome::Forwarded(status)
            | Outcome::NoTarget(status)
            | Outcome::Redirected(status) => status,
            Outcome::ClientClosed => 460,
        };
        match outcome {
            Outcome::Forwarded(status) => write!(out, "{elb_status} {status} ")?,
            _ => write!(out, "{elb_status} - ")?,
        }

        let method = if kind == "grpcs" {
            "POST"
        } else if kind == "wss" {
            "GET"
        } else {
            *rng.weighted(&[
                (700, "GET"),
                (150, "POST"),
                (50, "PUT"),
                (30, "DELETE"),
                (30, "HEAD"),
                (20, "OPTIONS"),
                (20, "PATCH"),
            ])
        };
        let body = if matches!(method, "POST" | "PUT" | "PATCH") {
            rng.below(20_000)
        } else {
            0
        };
        let received = rng.between(250, 1800) + body;
        let sent = match outcome {
            Outcome::Forwarded(204 | 304) | Outcome::Redirected(_) => rng.between(150, 400),
            _ => rng.between(300, 60_000),
        };
        write!(out, "{received} {sent} ")?;

        let host = *rng.pick(&HOSTS);
        let (scheme, port) = if tls { ("https", 443) } else { ("http", 80) };
        let protocol = if matches!(kind, "h2" | "grpcs") {
            "HTTP/2.0"
        } else {
            "HTTP/1.1"
        };
        write!(out, "\"{method} {scheme}://{host}:{port}")?;
        let path_start = out.len();
        push_path(rng, out, kind)?;
        let path_end = out.len();
        write!(out, " {protocol}\" \"{}\" ", rng.pick(&USER_AGENTS))?;

        if tls {
            let (cipher, tls_protocol) = rng.pick(&TLS);
            write!(out, "{cipher} {tls_protocol} ")?;
        } else {
            out.push_str("- - ");
        }
        if matches!(outcome, Outcome::Redirected(_)) {
            out.push_str("- ");
        } else {
            let group = if kind == "grpcs" {
                TARGET_GROUPS[2]
            } else {
                *rng.pick(&TARGET_GROUPS[..2])
            };
            write!(
                out,
                "arn:aws:elasticloadbalancing:{ACCOUNT_REGION}:targetgroup/{group} "
            )?;
        }

        let epoch_secs = self.clock_micros / 1_000_000;
        out.push('"');
        if rng.chance(500) {
            write!(out, "Self=1-{epoch_secs:08x}-")?;
            push_hex(rng, out, 24)?;
            out.push(';');
        }
        write!(out, "Root=1-{:08x}-", epoch_secs - rng.below(2) as i64)?;
        push_hex(rng, out, 24)?;
        out.push_str("\" ");
        if tls {
            write!(out, "\"{host}\" ")?;
            if rng.chance(1500) {
                out.push_str("\"session-reused\" ");
            } else {
                write!(
                    out,
                    "\"arn:aws:acm:{ACCOUNT_REGION}:certificate/{CERT_ID}\" "
                )?;
            }
        } else {
            out.push_str("\"-\" \"-\" ");
        }

        let priority = match outcome {
            Outcome::Redirected(_) => 1,
            _ if rng.chance(4000) => 0,
            _ => rng.between(2, 60),
        };
        write!(out, "{priority} ")?;
        push_time(out, self.clock_micros - duration_micros)?;

        let waf = rng.chance(1000);
        let actions = match outcome {
            Outcome::Redirected(_) => "redirect",
            _ if rng.chance(500) => "authenticate,forward",
            _ => "forward",
        };
        write!(out, " \"{}{actions}\" ", if waf { "waf," } else { "" })?;
        if matches!(outcome, Outcome::Redirected(_)) {
            let path = out[path_start..path_end].to_owned();
            write!(out, "\"https://{host}:443{path}\" ")?;
        } else {
            out.push_str("\"-\" ");
        }
        if outcome == Outcome::NoTarget(502) && rng.chance(3000) {
            out.push_str("\"LambdaInvalidResponse\" ");
        } else {
            out.push_str("\"-\" ");
        }
        match (target, outcome) {
            (Some((subnet, host, port)), Outcome::Forwarded(status)) => {
                write!(out, "\"10.0.{subnet}.{host}:{port}\" \"{status}\" ")?
            }
            (Some((subnet, host, port)), _) => {
                write!(out, "\"10.0.{subnet}.{host}:{port}\" \"-\" ")?
            }
            (None, _) => out.push_str("\"-\" \"-\" "),
        }
        if rng.chance(100) {
            out.push_str("\"Ambiguous\" \"AmbiguousUri\" ");
        } else {
            out.push_str("\"-\" \"-\" ");
        }
        out.push_str("TID_");
        push_hex(rng, out, 32)?;
        if rng.chance(300) {
            let resource = rng.pick(&RESOURCES);
            write!(
                out,
                " \"internal-{resource}.example.internal\" \"/v2/{resource}\" \"TransformSuccess\""
            )?;
        } else {
            out.push_str(" \"-\" \"-\" \"-\"");
        }
        out.push('\n');
        Ok(())
    }
}

/// A client `ip:port`: 12% IPv6, written as ELB does, without brackets.
fn push_client(rng: &mut Rng, out: &mut String) -> fmt::Result {
    if rng.chance(1200) {
        write!(out, "2a02:{:x}", rng.below(0x10000))?;
        for _ in 0..6 {
            write!(out, ":{:x}", rng.below(0x10000))?;
        }
    } else {
        write!(
            out,
            "{}.{}.{}.{}",
            rng.between(1, 223),
            rng.below(256),
            rng.below(256),
            rng.between(1, 254)
        )?;
    }
    write!(out, ":{}", rng.between(1024, 65535))
}

/// A path, 45% of them with a query string (never for gRPC).
fn push_path(rng: &mut Rng, out: &mut String, kind: &str) -> fmt::Result {
    if kind == "grpcs" {
        let method = *rng.pick(&GRPC_METHODS);
        out.push_str(method);
        return Ok(());
    }
    if kind == "wss" {
        write!(out, "/ws/v1/stream/{}", rng.below(100_000))?;
    } else {
        match rng.below(6) {
            0 => out.push('/'),
            1 => write!(out, "/static/js/chunk-vendors.{:08x}.js", rng.next() as u32)?,
            2 => write!(
                out,
                "/images/catalog/{}/{}-large.webp",
                rng.below(1000),
                rng.below(100_000)
            )?,
            _ => write!(
                out,
                "/api/v2/{}/{}",
                rng.pick(&RESOURCES),
                rng.below(10_000_000)
            )?,
        }
    }
    if rng.chance(4500) {
        if rng.chance(5000) {
            write!(out, "?q={}&page={}", rng.pick(&RESOURCES), rng.below(40))?;
        } else {
            write!(
                out,
                "?page={}&sort=created_at&utm_source=newsletter&utm_campaign=spring-{}&session=",
                rng.below(40),
                rng.below(100)
            )?;
            push_hex(rng, out, 16)?;
        }
    }
    Ok(())
}

fn push_timing(out: &mut String, millis: i64) -> fmt::Result {
    if millis < 0 {
        out.push_str("-1 ");
        Ok(())
    } else {
        write!(out, "{}.{:03} ", millis / 1000, millis % 1000)
    }
}

fn push_hex(rng: &mut Rng, out: &mut String, digits: usize) -> fmt::Result {
    let mut left = digits;
    while left > 0 {
        let take = left.min(16);
        write!(out, "{:0take$x}", rng.next() >> (64 - 4 * take))?;
        left -= take;
    }
    Ok(())
}

/// `2024-03-01T12:00:00.123456Z` from microseconds since the epoch.
fn push_time(out: &mut String, micros: i64) -> fmt::Result {
    let secs = micros.div_euclid(1_000_000);
    let (year, month, day) = civil_from_days(secs.div_euclid(86_400));
    let of_day = secs.rem_euclid(86_400);
    write!(
        out,
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:06}Z",
        of_day / 3600,
        of_day / 60 % 60,
        of_day % 60,
        micros.rem_euclid(1_000_000)
    )
}

#[cfg(test)]
mod tests;
