//! Process metrics read from `/proc/self` at scrape time (Linux only; on
//! other systems the families are simply absent).

use std::sync::{Mutex, PoisonError};

use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{Counter, IntGauge, Opts};

/// Collects `process_*` families when the registry is gathered.
pub(crate) struct ProcessCollector {
    resident: IntGauge,
    virtual_memory: IntGauge,
    cpu: Counter,
    open_fds: IntGauge,
    max_fds: IntGauge,
    /// Serialises scrapes: the CPU counter is advanced by a delta.
    scrape: Mutex<()>,
    /// One file descriptor held back for the scrape itself: a process out
    /// of descriptors cannot open `/proc/self/fd` to count them, and would
    /// otherwise report the last count it managed to read.
    reserve: Mutex<Option<std::fs::File>>,
    descs: Vec<Desc>,
}

impl ProcessCollector {
    pub(crate) fn new() -> prometheus::Result<Self> {
        let resident = IntGauge::with_opts(Opts::new(
            "process_resident_memory_bytes",
            "Resident memory size in bytes.",
        ))?;
        let virtual_memory = IntGauge::with_opts(Opts::new(
            "process_virtual_memory_bytes",
            "Virtual memory size in bytes.",
        ))?;
        let cpu = Counter::with_opts(Opts::new(
            "process_cpu_seconds_total",
            "Total user and system CPU time spent in seconds.",
        ))?;
        let open_fds = IntGauge::with_opts(Opts::new(
            "process_open_fds",
            "Number of open file descriptors.",
        ))?;
        let max_fds = IntGauge::with_opts(Opts::new(
            "process_max_fds",
            "Maximum number of open file descriptors (soft limit).",
        ))?;
        let mut descs = Vec::new();
        descs.extend(resident.desc().into_iter().cloned());
        descs.extend(virtual_memory.desc().into_iter().cloned());
        descs.extend(cpu.desc().into_iter().cloned());
        descs.extend(open_fds.desc().into_iter().cloned());
        descs.extend(max_fds.desc().into_iter().cloned());
        Ok(ProcessCollector {
            resident,
            virtual_memory,
            cpu,
            open_fds,
            max_fds,
            scrape: Mutex::new(()),
            reserve: Mutex::new(std::fs::File::open("/dev/null").ok()),
            descs,
        })
    }

    fn refresh(&self) {
        let mut sample = read_proc();
        if sample.open_fds.is_none() {
            // Most likely out of descriptors: give back the one held in
            // reserve, read again, and take it back.
            let mut reserve = self.reserve.lock().unwrap_or_else(PoisonError::into_inner);
            if reserve.take().is_some() {
                sample = read_proc();
                *reserve = std::fs::File::open("/dev/null").ok();
                // The reading was taken without the reserve: count it again
                // once it is held again.
                if reserve.is_some() {
                    sample.open_fds = sample.open_fds.map(|n| n + 1);
                }
            }
        }
        if let Some((size, resident)) = sample.memory {
            self.virtual_memory.set(size);
            self.resident.set(resident);
        }
        if let Some(seconds) = sample.cpu_seconds {
            let delta = seconds - self.cpu.get();
            if delta > 0.0 {
                self.cpu.inc_by(delta);
            }
        }
        if let Some(open) = sample.open_fds {
            self.open_fds.set(open);
        }
        if let Some(max) = sample.max_fds {
            self.max_fds.set(max);
        }
    }
}

impl Collector for ProcessCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        if !cfg!(target_os = "linux") {
            return Vec::new();
        }
        let _scrape = self.scrape.lock().unwrap_or_else(PoisonError::into_inner);
        self.refresh();
        let mut families = Vec::with_capacity(5);
        families.extend(self.resident.collect());
        families.extend(self.virtual_memory.collect());
        families.extend(self.cpu.collect());
        families.extend(self.open_fds.collect());
        families.extend(self.max_fds.collect());
        families
    }
}

/// One reading of `/proc/self`; a field is `None` when its file could not
/// be read or parsed (the gauge then keeps its previous value).
#[derive(Debug, Default, PartialEq)]
struct ProcSample {
    /// (virtual, resident) bytes.
    memory: Option<(i64, i64)>,
    cpu_seconds: Option<f64>,
    open_fds: Option<i64>,
    max_fds: Option<i64>,
}

fn read_proc() -> ProcSample {
    let statm = std::fs::read_to_string("/proc/self/statm").ok();
    let stat = std::fs::read_to_string("/proc/self/stat").ok();
    let limits = std::fs::read_to_string("/proc/self/limits").ok();
    let open_fds = std::fs::read_dir("/proc/self/fd")
        .ok()
        // The directory handle itself is one of the entries: not counted.
        .map(|entries| entries.count().saturating_sub(1))
        .and_then(|n| i64::try_from(n).ok());
    ProcSample {
        memory: statm.as_deref().and_then(|s| parse_statm(s, page_size())),
        cpu_seconds: stat
            .as_deref()
            .and_then(|s| parse_stat_cpu(s, clock_ticks())),
        open_fds,
        max_fds: limits.as_deref().and_then(parse_max_fds),
    }
}

/// `/proc/self/statm`: size and resident set, in pages.
fn parse_statm(statm: &str, page_size: i64) -> Option<(i64, i64)> {
    let mut fields = statm.split_ascii_whitespace();
    let size: i64 = fields.next()?.parse().ok()?;
    let resident: i64 = fields.next()?.parse().ok()?;
    Some((
        size.checked_mul(page_size)?,
        resident.checked_mul(page_size)?,
    ))
}

/// `/proc/self/stat`: utime and stime (fields 14 and 15, in clock ticks).
/// The command name (field 2) may hold spaces and parentheses, so fields
/// are counted from the last `)`.
fn parse_stat_cpu(stat: &str, ticks_per_second: f64) -> Option<f64> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    // after_name starts at field 3 (state); utime is field 14.
    let mut fields = after_name.split_ascii_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime + stime) as f64 / ticks_per_second)
}

/// `/proc/self/limits`: the soft limit of "Max open files".
fn parse_max_fds(limits: &str) -> Option<i64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    let soft = line["Max open files".len()..]
        .split_ascii_whitespace()
        .next()?;
    soft.parse().ok()
}

#[cfg(unix)]
fn page_size() -> i64 {
    // SAFETY: sysconf only reads a system constant.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if size > 0 {
        size
    } else {
        4096
    }
}

#[cfg(unix)]
fn clock_ticks() -> f64 {
    // SAFETY: sysconf only reads a system constant.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 {
        ticks as f64
    } else {
        100.0
    }
}

#[cfg(not(unix))]
fn page_size() -> i64 {
    4096
}

#[cfg(not(unix))]
fn clock_ticks() -> f64 {
    100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_statm() {
        assert_eq!(
            parse_statm("2000 300 100 5 0 400 0\n", 4096),
            Some((2000 * 4096, 300 * 4096))
        );
        assert_eq!(parse_statm("", 4096), None);
        assert_eq!(parse_statm("x y", 4096), None);
    }

    #[test]
    fn parses_stat_with_awkward_command_names() {
        let stat = "1234 (my (odd) proc) S 1 1234 1234 0 -1 4194304 100 0 0 0 \
                    250 50 0 0 20 0 4 0 1000 10000 300";
        assert_eq!(parse_stat_cpu(stat, 100.0), Some(3.0));
        assert_eq!(parse_stat_cpu("1234 (x) S 1", 100.0), None);
        assert_eq!(parse_stat_cpu("no parenthesis", 100.0), None);
    }

    #[test]
    fn parses_limits() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units     \n\
                      Max cpu time              unlimited            unlimited            seconds   \n\
                      Max open files            1024                 524288               files     \n";
        assert_eq!(parse_max_fds(limits), Some(1024));
        assert_eq!(
            parse_max_fds("Max open files unlimited unlimited files"),
            None
        );
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn reads_this_process() {
        let sample = read_proc();
        assert!(sample.memory.is_some_and(|(_, rss)| rss > 0));
        assert!(sample.cpu_seconds.is_some());
        assert!(sample.open_fds.is_some_and(|n| n >= 3));
    }
}
