//! What a benchmark reads about another process: its memory, CPU time,
//! threads and open files from `/proc`.

// Each benchmark uses a part of it.
#![allow(dead_code)]

/// A `/proc/<pid>/status` value given in kB.
pub fn proc_status_kib(pid: u32, field: &str) -> u64 {
    proc_status(pid, field, |value| value.strip_suffix(" kB")?.parse().ok())
}

/// A plain number in `/proc/<pid>/status`, such as `Threads`.
pub fn proc_status_count(pid: u32, field: &str) -> u64 {
    proc_status(pid, field, |value| value.parse().ok())
}

fn proc_status(pid: u32, field: &str, read: impl Fn(&str) -> Option<u64>) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|value| read(value.trim()))
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

/// File descriptors the process has open.
pub fn open_fds(pid: u32) -> u64 {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("/proc fd")
        .count() as u64
}

/// User plus system CPU time the process used so far.
pub fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("/proc stat");
    // Fields after the parenthesised command name; utime and stime are the 14th and 15th overall.
    let after_name = stat.rsplit_once(") ").expect("stat has a command name").1;
    let fields: Vec<&str> = after_name.split(' ').collect();
    let ticks: u64 =
        fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime");
    // SAFETY: sysconf only reads a configuration value.
    let ticks_per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    ticks as f64 / ticks_per_second as f64
}
