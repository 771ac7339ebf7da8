//! Listing a source page by page, the way [`super::layouts`] says: down the
//! folder tree with a `/` delimiter (accounts, services, regions), only the
//! day prefixes of the range below a date root, seeking past flat-dated
//! names outside it, and everything else filtered by the time in its key or
//! its LastModified. Objects go to a bounded channel as they are listed, so
//! the listing is never held whole.
//!
//! A local directory answers the same requests as S3 would, in S3's order.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::mpsc;

use super::layouts::{self, DateStyle, TimeRange};
use crate::errors::error_chain;

/// One ListObjectsV2-like request.
#[derive(Debug, Clone, Default)]
pub struct ListRequest {
    pub prefix: String,
    /// `/` for one folder level; `None` for everything below the prefix.
    pub delimited: bool,
    pub start_after: Option<String>,
    pub continuation: Option<String>,
}

#[derive(Debug, Default)]
pub struct Page {
    pub objects: Vec<Entry>,
    /// Child folders (`prefix/child/`) of a delimited request.
    pub folders: Vec<String>,
    pub next: Option<String>,
}

/// A listed object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub key: String,
    pub size: u64,
    /// Unix seconds.
    pub last_modified: Option<i64>,
    pub etag: Option<String>,
}

/// Where objects are listed and read from.
#[derive(Clone)]
pub enum Store {
    S3 {
        client: aws_sdk_s3::Client,
        bucket: String,
        /// S3's `ExpectedBucketOwner` for every request on the bucket.
        expected_owner: Option<String>,
    },
    /// A directory laid out like a bucket: keys are paths below it.
    Local { root: PathBuf },
}

const PAGE_SIZE: usize = 1000;
const LIST_ATTEMPTS: u32 = 5;

impl Store {
    pub async fn list(&self, request: &ListRequest) -> Result<Page, String> {
        match self {
            Store::S3 {
                client,
                bucket,
                expected_owner,
            } => list_s3(client, bucket, expected_owner.clone(), request).await,
            Store::Local { root } => {
                let root = root.clone();
                let request = request.clone();
                tokio::task::spawn_blocking(move || list_local(&root, &request))
                    .await
                    .expect("listing a directory does not panic")
                    .map_err(|error| error.to_string())
            }
        }
    }
}

async fn list_s3(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    expected_owner: Option<String>,
    request: &ListRequest,
) -> Result<Page, String> {
    let mut call = client
        .list_objects_v2()
        .bucket(bucket)
        .set_expected_bucket_owner(expected_owner)
        .prefix(&request.prefix)
        .max_keys(PAGE_SIZE as i32);
    if request.delimited {
        call = call.delimiter("/");
    }
    if let Some(start_after) = &request.start_after {
        call = call.start_after(start_after);
    }
    if let Some(token) = &request.continuation {
        call = call.continuation_token(token);
    }
    let output = call.send().await.map_err(|error| error_chain(&error))?;
    let objects = output
        .contents
        .unwrap_or_default()
        .into_iter()
        .filter_map(|object| {
            Some(Entry {
                key: object.key?,
                size: object.size.unwrap_or(0).max(0) as u64,
                last_modified: object.last_modified.map(|time| time.secs()),
                etag: object.e_tag.map(|tag| tag.trim_matches('"').to_owned()),
            })
        })
        .collect();
    let folders = output
        .common_prefixes
        .unwrap_or_default()
        .into_iter()
        .filter_map(|prefix| prefix.prefix)
        .collect();
    let next = output
        .is_truncated
        .unwrap_or(false)
        .then_some(output.next_continuation_token)
        .flatten();
    Ok(Page {
        objects,
        folders,
        next,
    })
}

/// S3's answer from a directory: keys in byte order, a page of at most
/// [`PAGE_SIZE`], the last key as the continuation token. A folder sorts as
/// its name plus `/`, so a depth-first walk in that order yields S3's order.
fn list_local(root: &Path, request: &ListRequest) -> std::io::Result<Page> {
    let (folder, name_prefix) = match request.prefix.rfind('/') {
        Some(at) => request.prefix.split_at(at + 1),
        None => ("", request.prefix.as_str()),
    };
    let after = match (&request.continuation, &request.start_after) {
        (Some(token), _) => Some(token.clone()),
        (None, start_after) => start_after.clone(),
    };
    let mut page = Page::default();
    let mut last = None;
    let dir = root.join(folder);
    if dir.is_dir() {
        walk_local(
            &dir,
            folder,
            Some(name_prefix),
            request.delimited,
            after.as_deref(),
            &mut page,
            &mut last,
        )?;
    }
    if page.objects.len() + page.folders.len() >= PAGE_SIZE {
        page.next = last;
    }
    Ok(page)
}

fn walk_local(
    dir: &Path,
    key_prefix: &str,
    name_prefix: Option<&str>,
    delimited: bool,
    after: Option<&str>,
    page: &mut Page,
    last: &mut Option<String>,
) -> std::io::Result<()> {
    let mut entries = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        if name_prefix.is_some_and(|prefix| !name.starts_with(prefix)) {
            continue;
        }
        let file_type = entry.file_type()?;
        let is_dir = file_type.is_dir() || (file_type.is_symlink() && entry.path().is_dir());
        let sort_key = if is_dir { format!("{name}/") } else { name };
        entries.push((sort_key, is_dir, entry.path()));
    }
    entries.sort();
    for (name, is_dir, path) in entries {
        if page.objects.len() + page.folders.len() >= PAGE_SIZE {
            return Ok(());
        }
        let key = format!("{key_prefix}{name}");
        if is_dir {
            // Every key below sorts after `after` unless `after` is past them all.
            if after.is_some_and(|after| after >= key.as_str() && !after.starts_with(&key)) {
                continue;
            }
            if delimited {
                if after.is_some_and(|after| after >= key.as_str()) {
                    continue;
                }
                page.folders.push(key.clone());
                *last = Some(key);
            } else {
                walk_local(&path, &key, None, false, after, page, last)?;
            }
            continue;
        }
        if after.is_some_and(|after| after >= key.as_str()) {
            continue;
        }
        // A link to nothing is still an object: listed, it fails when read,
        // counted with its key, instead of failing the whole listing.
        let (metadata, size) = match std::fs::metadata(&path) {
            Ok(metadata) => {
                let size = metadata.len();
                (metadata, size)
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                (std::fs::symlink_metadata(&path)?, 0)
            }
            Err(error) => return Err(error),
        };
        let last_modified = metadata
            .modified()
            .ok()
            .and_then(|time| time.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|since| since.as_secs() as i64);
        page.objects.push(Entry {
            key: key.clone(),
            size,
            last_modified,
            etag: None,
        });
        *last = Some(key);
    }
    Ok(())
}

/// What the listing did, for the summary and the tests.
#[derive(Debug, Default)]
pub struct ListStats {
    pub requests: AtomicU64,
    /// Objects listed in a listed prefix but outside the range.
    pub outside_range: AtomicU64,
    /// Objects the range kept.
    pub listed: AtomicU64,
    pub listed_bytes: AtomicU64,
}

/// Lists `prefix` of `store` and sends every object in `range` to `out`;
/// stops early when `out` is closed.
pub async fn walk(
    store: &Store,
    prefix: &str,
    range: TimeRange,
    stats: &Arc<ListStats>,
    out: &mpsc::Sender<Entry>,
) -> Result<(), String> {
    let walker = Walker {
        store,
        range,
        stats,
        out,
    };
    if !prefix.is_empty() && !prefix.ends_with('/') {
        // Part of a name: everything below it.
        return walker.flat(prefix).await;
    }
    let mut folders = vec![prefix.to_owned()];
    while let Some(folder) = folders.pop() {
        if let Some(days) = walker.partial_date_root(&folder) {
            for day in days {
                walker.flat(&day).await?;
            }
            continue;
        }
        let children = walker.folder(&folder).await?;
        // Depth first, in key order.
        folders.extend(children.into_iter().rev());
    }
    Ok(())
}

struct Walker<'a> {
    store: &'a Store,
    range: TimeRange,
    stats: &'a Arc<ListStats>,
    out: &'a mpsc::Sender<Entry>,
}

/// Raised when the receiver is gone: the import is stopping.
const STOPPED: &str = "import stopped";

impl Walker<'_> {
    async fn request(&self, request: &ListRequest) -> Result<Page, String> {
        let mut backoff = Duration::from_millis(200);
        let mut attempt = 1;
        loop {
            self.stats.requests.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(
                prefix = %request.prefix,
                delimited = request.delimited,
                start_after = request.start_after.as_deref().unwrap_or(""),
                page = request.continuation.is_some(),
                "list"
            );
            match self.store.list(request).await {
                Ok(page) => return Ok(page),
                Err(error) if attempt < LIST_ATTEMPTS => {
                    tracing::warn!(prefix = %request.prefix, %error, retry_in = ?backoff, "listing failed");
                    tokio::time::sleep(backoff).await;
                    backoff *= 2;
                    attempt += 1;
                }
                Err(error) => {
                    return Err(format!("listing {:?} failed: {error}", request.prefix));
                }
            }
        }
    }

    /// Sends `entry` on when the range keeps it.
    async fn offer(&self, entry: Entry) -> Result<(), String> {
        let time = layouts::key_time(&entry.key).or(entry.last_modified);
        if !time.is_none_or(|time| self.range.contains(time)) {
            self.stats.outside_range.fetch_add(1, Ordering::Relaxed);
            return Ok(());
        }
        self.stats.listed.fetch_add(1, Ordering::Relaxed);
        self.stats
            .listed_bytes
            .fetch_add(entry.size, Ordering::Relaxed);
        self.out.send(entry).await.map_err(|_| STOPPED.to_owned())
    }

    /// Everything below `prefix`, page by page.
    async fn flat(&self, prefix: &str) -> Result<(), String> {
        let mut request = ListRequest {
            prefix: prefix.to_owned(),
            ..ListRequest::default()
        };
        loop {
            let page = self.request(&request).await?;
            for entry in page.objects {
                self.offer(entry).await?;
            }
            match page.next {
                Some(token) => request.continuation = Some(token),
                None => return Ok(()),
            }
        }
    }

    /// One folder level: its objects are offered, its child folders
    /// returned, except year folders, whose day prefixes in the range are
    /// listed here.
    async fn folder(&self, folder: &str) -> Result<Vec<String>, String> {
        let mut request = ListRequest {
            prefix: folder.to_owned(),
            delimited: true,
            ..ListRequest::default()
        };
        // A seek asks again from a point before folders already seen.
        let mut children = BTreeSet::new();
        let mut years: BTreeSet<(DateStyle, i64)> = BTreeSet::new();
        'pages: loop {
            let page = self.request(&request).await?;
            for child in page.folders {
                let segment = child[folder.len()..].trim_end_matches('/');
                match layouts::year_folder(segment) {
                    Some((year, style)) => {
                        years.insert((style, year));
                    }
                    None => {
                        children.insert(child);
                    }
                }
            }
            for entry in page.objects {
                let name = &entry.key[folder.len()..];
                if let Some(target) = layouts::seek(name, self.range) {
                    request.start_after = Some(format!("{folder}{target}"));
                    request.continuation = None;
                    continue 'pages;
                }
                self.offer(entry).await?;
            }
            match page.next {
                Some(token) => request.continuation = Some(token),
                None => break,
            }
        }
        for style in [DateStyle::Plain, DateStyle::Hive] {
            let mut years: Vec<i64> = years
                .iter()
                .filter(|(of, _)| *of == style)
                .map(|&(_, year)| year)
                .collect();
            // A year the range covers whole is one listing, not 365.
            let whole = |year: i64| {
                let start = s3logd_rows::calendar::days_from_civil(year, 1, 1) * crate::time::DAY;
                let end = s3logd_rows::calendar::days_from_civil(year + 1, 1, 1) * crate::time::DAY;
                self.range.since.is_none_or(|since| since <= start)
                    && self.range.until.is_none_or(|until| until >= end)
            };
            for &year in years.iter().filter(|&&year| whole(year)) {
                let prefix = match style {
                    DateStyle::Plain => format!("{folder}{year:04}/"),
                    DateStyle::Hive => format!("{folder}year={year:04}/"),
                };
                self.flat(&prefix).await?;
            }
            years.retain(|&year| !whole(year));
            for day in layouts::day_prefixes(folder, style, &years, self.range) {
                self.flat(&day).await?;
            }
        }
        Ok(children.into_iter().collect())
    }

    /// A source prefix that already ends inside a date tree
    /// (`…/2024/` or `…/2024/05/`): the days of the range within it.
    fn partial_date_root(&self, folder: &str) -> Option<Vec<String>> {
        let trimmed = folder.strip_suffix('/')?;
        let mut segments: Vec<&str> = trimmed.rsplit('/').take(2).collect();
        segments.reverse();
        let (root, year, month) = match segments.as_slice() {
            [year, month] if layouts::year_folder(year).is_some() && is_month(month) => (
                &trimmed[..trimmed.len() - year.len() - month.len() - 1],
                *year,
                Some(*month),
            ),
            [.., year] if layouts::year_folder(year).is_some() => {
                (&trimmed[..trimmed.len() - year.len()], *year, None)
            }
            _ => return None,
        };
        let (year, style) = layouts::year_folder(year)?;
        let days = layouts::day_prefixes(root, style, &[year], self.range)
            .into_iter()
            .filter(|day| match month {
                Some(month) => day[root.len()..].contains(&format!("/{month}/")),
                None => true,
            })
            .collect();
        Some(days)
    }
}

fn is_month(segment: &str) -> bool {
    let digits = segment.strip_prefix("month=").unwrap_or(segment);
    digits.len() == 2
        && digits
            .parse::<u32>()
            .is_ok_and(|month| (1..=12).contains(&month))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(root: &Path, key: &str) {
        let path = root.join(key);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, key).unwrap();
    }

    #[test]
    fn a_directory_lists_in_s3_order_with_folders_and_pages() {
        let dir = tempfile::tempdir().unwrap();
        for key in ["a.txt", "a/b", "a0", "b/c/d", "b/c.e", "b-x"] {
            touch(dir.path(), key);
        }
        let list = |prefix: &str, delimited: bool, after: Option<&str>| {
            let page = list_local(
                dir.path(),
                &ListRequest {
                    prefix: prefix.into(),
                    delimited,
                    start_after: after.map(str::to_owned),
                    continuation: None,
                },
            )
            .unwrap();
            let objects: Vec<String> = page.objects.into_iter().map(|e| e.key).collect();
            (objects, page.folders)
        };
        assert_eq!(
            list("", false, None).0,
            ["a.txt", "a/b", "a0", "b-x", "b/c.e", "b/c/d"]
        );
        let (objects, folders) = list("", true, None);
        assert_eq!(objects, ["a.txt", "a0", "b-x"]);
        assert_eq!(folders, ["a/", "b/"]);
        assert_eq!(list("b/c", false, None).0, ["b/c.e", "b/c/d"]);
        assert_eq!(list("", false, Some("a0")).0, ["b-x", "b/c.e", "b/c/d"]);
        assert_eq!(list("", false, Some("b/c.e")).0, ["b/c/d"]);
        assert_eq!(list("", true, Some("a/")).1, ["b/"]);
    }

    #[test]
    fn a_link_to_nothing_is_listed_for_its_read_to_fail() {
        let dir = tempfile::tempdir().unwrap();
        touch(dir.path(), "a/1");
        std::os::unix::fs::symlink("../nowhere", dir.path().join("a/2")).unwrap();
        touch(dir.path(), "a/3");
        let page = list_local(dir.path(), &ListRequest::default()).unwrap();
        let keys: Vec<&str> = page.objects.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(keys, ["a/1", "a/2", "a/3"]);
        assert_eq!(page.objects[1].size, 0);
    }

    #[test]
    fn a_large_directory_is_paged() {
        let dir = tempfile::tempdir().unwrap();
        for n in 0..(PAGE_SIZE + 5) {
            touch(dir.path(), &format!("d/{n:05}"));
        }
        let mut request = ListRequest {
            prefix: "d/".into(),
            ..ListRequest::default()
        };
        let first = list_local(dir.path(), &request).unwrap();
        assert_eq!(first.objects.len(), PAGE_SIZE);
        request.continuation = first.next;
        let second = list_local(dir.path(), &request).unwrap();
        assert_eq!(second.objects.len(), 5);
        assert_eq!(second.objects[0].key, format!("d/{PAGE_SIZE:05}"));
        assert!(second.next.is_none());
    }

    #[tokio::test]
    async fn only_the_days_of_the_range_are_listed_below_a_date_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = "AWSLogs/123456789012/elasticloadbalancing/us-east-1/";
        for day in ["2024/01/30", "2024/01/31", "2024/02/01", "2024/02/02"] {
            let compact = day.replace('/', "");
            touch(
                dir.path(),
                &format!(
                    "{root}{day}/123456789012_elasticloadbalancing_us-east-1_app.x.1_{compact}T1200Z_1.2.3.4_a.log.gz"
                ),
            );
        }
        touch(dir.path(), "cf/E2EXAMPLE.2024-01-31-23.a.gz");
        touch(dir.path(), "cf/E2EXAMPLE.2024-02-01-00.b.gz");
        touch(dir.path(), "cf/E2EXAMPLE.2024-02-02-00.c.gz");
        let store = Store::Local {
            root: dir.path().to_owned(),
        };
        let range = TimeRange {
            since: Some(crate::time::parse_time("2024-01-31").unwrap()),
            until: Some(crate::time::parse_time("2024-02-02").unwrap()),
        };
        let stats = Arc::new(ListStats::default());
        let (sender, mut receiver) = mpsc::channel(100);
        walk(&store, "", range, &stats, &sender).await.unwrap();
        drop(sender);
        let mut keys = Vec::new();
        while let Some(entry) = receiver.recv().await {
            keys.push(entry.key);
        }
        assert_eq!(keys.len(), 4, "{keys:?}");
        assert!(keys.iter().any(|k| k.contains("/2024/01/31/")));
        assert!(keys.iter().any(|k| k.contains("/2024/02/01/")));
        assert!(keys.contains(&"cf/E2EXAMPLE.2024-01-31-23.a.gz".to_owned()));
        assert!(keys.contains(&"cf/E2EXAMPLE.2024-02-01-00.b.gz".to_owned()));
        // 5 folder levels + 1 year folder listing ... but never 2024/02/02/:
        // root, AWSLogs/, account/, service/, region/ (delimited), three
        // days (01/30 as the day before), cf/ (delimited, one seek).
        assert_eq!(stats.requests.load(Ordering::Relaxed), 10);
    }
}
