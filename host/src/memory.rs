//! Keeping the collector's memory small: how malloc caches freed buffers,
//! and handing back the pages only start-up needed.

/// glibc gives each thread that allocates concurrently an arena of its own
/// (up to eight per core) and raises its mmap threshold to the largest block
/// freed so far, so the collector's megabyte buffers (record chunks, sink
/// batches, line batches) end up cached in many arenas instead of going back
/// to the system. Two arenas and a fixed threshold, so that such buffers are
/// mapped and unmapped, took the full-path benchmark's peak RSS from 139 to
/// 73 MiB at no measurable throughput cost (BENCHMARKS.md). The sink
/// recycles its own buffers, which keeps their mapping cost off the hot path.
///
/// Call before any other thread starts.
pub fn limit_malloc_caching() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator tunables; no other thread exists
    // yet that could be allocating.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 << 10);
    }
}

/// Hands back to the kernel the executable's pages that start-up left
/// resident.
///
/// Reading the configuration, building the AWS clients and the parser
/// runtime page in code that never runs again: s3logd idle on an empty
/// queue held 15 MiB of file-backed pages, mostly its executable, of which
/// the receive loop uses 8. `MADV_PAGEOUT` reclaims the executable's
/// read-only pages now instead of under memory pressure; those the
/// collector goes on using fault back in from the file. Best effort: a
/// kernel without `MADV_PAGEOUT` (before Linux 5.4) leaves them.
pub fn release_startup_pages() -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        let executable = std::fs::read_link("/proc/self/exe")?;
        let executable = executable.to_string_lossy();
        let maps = std::fs::read_to_string("/proc/self/maps")?;
        for (start, end) in maps
            .lines()
            .filter_map(|line| read_only_mapping_of(line, &executable))
        {
            // SAFETY: the range is a whole mapping of the executable that
            // nothing writes; paging it out changes no contents, only where
            // they are until the next access.
            let advised = unsafe {
                libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_PAGEOUT)
            };
            if advised != 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
    }
    Ok(())
}

/// The address range of a `/proc/self/maps` line when it maps `path`
/// without write access.
#[cfg(target_os = "linux")]
fn read_only_mapping_of(line: &str, path: &str) -> Option<(usize, usize)> {
    // range, permissions, offset, device and inode are single-spaced; the
    // path, which may hold spaces, is padded.
    let mut fields = line.splitn(6, ' ');
    let range = fields.next()?;
    let permissions = fields.next()?;
    let mapped_path = fields.nth(3)?.trim_start();
    if permissions.contains('w') || mapped_path != path {
        return None;
    }
    let (start, end) = range.split_once('-')?;
    Some((
        usize::from_str_radix(start, 16).ok()?,
        usize::from_str_radix(end, 16).ok()?,
    ))
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn maps_lines_of_other_files_or_writable_mappings_are_not_paged_out() {
        let path = "/usr/bin/s3 logd";
        let line = |permissions: &str, mapped: &str| {
            format!("55d0c8a00000-55d0c8b00000 {permissions} 00001000 fd:01 1234    {mapped}")
        };
        assert_eq!(
            read_only_mapping_of(&line("r-xp", path), path),
            Some((0x55d0_c8a0_0000, 0x55d0_c8b0_0000))
        );
        assert_eq!(read_only_mapping_of(&line("rw-p", path), path), None);
        assert_eq!(
            read_only_mapping_of(&line("r--p", "/usr/lib/libc.so.6"), path),
            None
        );
        assert_eq!(read_only_mapping_of(&line("r--p", "[heap]"), path), None);
        assert_eq!(
            read_only_mapping_of("7ffd-7ffe rw-p 00000000 00:00 0", path),
            None
        );
    }

    #[test]
    fn releasing_start_up_pages_shrinks_the_resident_executable() {
        let resident_file_kib = || {
            let status = std::fs::read_to_string("/proc/self/status").unwrap();
            let line = status.lines().find(|l| l.starts_with("RssFile:")).unwrap();
            line.split_ascii_whitespace()
                .nth(1)
                .unwrap()
                .parse::<u64>()
                .unwrap()
        };
        let before = resident_file_kib();
        release_startup_pages().expect("the kernel takes MADV_PAGEOUT");
        let after = resident_file_kib();
        assert!(
            after < before,
            "file-backed RSS {before} KiB before, {after} KiB after"
        );
    }
}
