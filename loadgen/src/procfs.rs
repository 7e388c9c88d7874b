//! What /proc says about a process or thread: CPU time and memory, and the
//! host's facts for the report.

use std::path::Path;
use std::time::Duration;

use crate::report::Host;

/// CPU time (user + system) of `/proc/<pid>/stat` or
/// `/proc/<pid>/task/<tid>/stat`.
pub fn cpu_time(stat_path: &Path) -> Option<Duration> {
    let text = std::fs::read_to_string(stat_path).ok()?;
    // The command name may hold spaces and parentheses: fields start after
    // the last ')'. utime and stime are fields 14 and 15 (1-based).
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(Duration::from_secs_f64(
        (utime + stime) as f64 / ticks_per_second(),
    ))
}

pub fn process_cpu(pid: u32) -> Option<Duration> {
    cpu_time(Path::new(&format!("/proc/{pid}/stat")))
}

pub fn thread_cpu(tid: i32) -> Option<Duration> {
    cpu_time(Path::new(&format!("/proc/self/task/{tid}/stat")))
}

/// This process's threads whose name starts with `prefix` (names are cut
/// at 15 octets by the kernel).
pub fn threads_named(prefix: &str) -> Vec<i32> {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return Vec::new();
    };
    tasks
        .filter_map(|task| {
            let task = task.ok()?;
            let tid: i32 = task.file_name().to_str()?.parse().ok()?;
            let name = std::fs::read_to_string(task.path().join("comm")).ok()?;
            name.starts_with(prefix).then_some(tid)
        })
        .collect()
}

fn ticks_per_second() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 {
        ticks as f64
    } else {
        100.0
    }
}

/// Resident set size, in octets (`VmRSS`).
pub fn rss_bytes(pid: u32) -> Option<u64> {
    status_kib(pid, "VmRSS:").map(|kib| kib * 1024)
}

fn status_kib(pid: u32, key: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = text.lines().find(|l| l.starts_with(key))?;
    line[key.len()..].split_whitespace().next()?.parse().ok()
}

/// The open file descriptors (sockets included) of a process.
pub fn open_fds(pid: u32) -> Option<u64> {
    let entries = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?;
    Some(entries.count() as u64)
}

/// The peak resident set size (`VmHWM`), in octets.
pub fn peak_rss_bytes(pid: u32) -> Option<u64> {
    status_kib(pid, "VmHWM:").map(|kib| kib * 1024)
}

pub fn host() -> Host {
    let read = |path: &str| {
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .trim()
            .to_string()
    };
    let cpuinfo = read("/proc/cpuinfo");
    let cpu_model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_default();
    let memory_bytes = read("/proc/meminfo")
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kib| kib.parse::<u64>().ok())
        .map_or(0, |kib| kib * 1024);
    Host {
        hostname: read("/proc/sys/kernel/hostname"),
        kernel: read("/proc/sys/kernel/osrelease"),
        cpu_model,
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        memory_bytes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_cpu_time_and_memory() {
        let pid = std::process::id();
        assert!(process_cpu(pid).is_some());
        assert!(rss_bytes(pid).unwrap() > 0);
        assert!(peak_rss_bytes(pid).unwrap() >= rss_bytes(pid).unwrap() / 2);
        // stdin, stdout, stderr at least; one more while a file is open.
        let before = open_fds(pid).unwrap();
        let file = std::fs::File::open("/proc/self/status").unwrap();
        assert!(before >= 3);
        assert_eq!(open_fds(pid).unwrap(), before + 1);
        drop(file);
        let host = host();
        assert!(host.cpus >= 1 && host.memory_bytes > 0 && !host.kernel.is_empty());
    }
}
