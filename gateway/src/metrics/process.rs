//! The process's own figures for the scrape: resident memory, CPU time, open files.

/// Process figures from /proc (Linux); zeros elsewhere.
#[derive(Debug, Default)]
pub(super) struct ProcessFigures {
    pub(super) resident_bytes: i64,
    pub(super) cpu_seconds: f64,
    pub(super) open_fds: i64,
}

impl ProcessFigures {
    pub(super) fn read() -> Self {
        let mut figures = Self::default();
        if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
            for line in status.lines() {
                if let Some(kb) = line.strip_prefix("VmRSS:") {
                    let kb: i64 = kb.trim().trim_end_matches("kB").trim().parse().unwrap_or(0);
                    figures.resident_bytes = kb * 1024;
                }
            }
        }
        figures.cpu_seconds = ccp_core::telemetry::process_cpu_seconds();
        if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
            figures.open_fds = i64::try_from(dir.count()).unwrap_or(0);
        }
        figures
    }
}
