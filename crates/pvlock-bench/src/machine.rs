//! Facts about the machine: CPU affinity (the one helper for it), model, kernel, hypervisor,
//! date; resource usage.

use serde::{Deserialize, Serialize};

/// The machine description stored in the JSON output.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct Machine {
    /// CPUs the benchmark ran on (its affinity set, after `--cpus`).
    pub cpus: usize,
    /// The CPU ids of that set.
    #[serde(default)]
    pub cpu_list: Vec<usize>,
    #[serde(default)]
    pub model_name: String,
    #[serde(default)]
    pub kernel: String,
    /// Whether /proc/cpuinfo has the `hypervisor` flag (running in a VM).
    #[serde(default)]
    pub hypervisor: bool,
    /// `std::thread::available_parallelism()` (includes cgroup CPU quotas).
    #[serde(default)]
    pub available_parallelism: usize,
    /// UTC date and time of the run, ISO 8601.
    #[serde(default)]
    pub date: String,
    /// Timestamp source for latencies (`rdtsc` or `clock_gettime`).
    #[serde(default)]
    pub clock: String,
    #[serde(default)]
    pub hostname: String,
    /// pvlock's calibrated cost of 1024 spin-loop iterations (`PAUSE` + load), in ns; 0 in files
    /// written before it was recorded.
    #[serde(default)]
    pub spin_ns_per_1k: u32,
    /// pvlock's spin budget in force, in spin-loop iterations (0: not recorded).
    #[serde(default)]
    pub spin_budget_iterations: u32,
}

impl Machine {
    pub fn describe(cpu_list: Vec<usize>, clock: &str) -> Machine {
        Machine {
            clock: clock.to_string(),
            spin_ns_per_1k: spin_ns_per_1k(),
            spin_budget_iterations: pvlock::tuning::spin_iterations(),
            ..Machine::host(cpu_list)
        }
    }

    /// The host alone: everything but the clock and pvlock's calibration (left empty).
    pub fn host(cpu_list: Vec<usize>) -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let field = |name: &str| {
            cpuinfo
                .lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
                .unwrap_or_default()
        };
        let hypervisor = field("flags").split_whitespace().any(|f| f == "hypervisor");
        let read = |p: &str| {
            std::fs::read_to_string(p)
                .map(|s| s.trim().to_string())
                .unwrap_or_default()
        };
        Machine {
            cpus: cpu_list.len(),
            cpu_list,
            model_name: field("model name"),
            kernel: read("/proc/sys/kernel/osrelease"),
            hypervisor,
            available_parallelism: std::thread::available_parallelism().map_or(1, |n| n.get()),
            date: utc_now(),
            clock: String::new(),
            hostname: read("/proc/sys/kernel/hostname"),
            spin_ns_per_1k: 0,
            spin_budget_iterations: 0,
        }
    }
}

/// The current UTC time as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn utc_now() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

/// The CPUs this thread may run on.
pub fn affinity() -> Vec<usize> {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; sched_getaffinity writes at most its size.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            let n = std::thread::available_parallelism().map_or(1, |n| n.get());
            return (0..n).collect();
        }
        (0..libc::CPU_SETSIZE as usize)
            .filter(|&c| libc::CPU_ISSET(c, &set))
            .collect()
    }
}

/// Restricts the calling thread (and every thread and process it creates later) to `cpus`; ids
/// at or beyond `CPU_SETSIZE` are left out.
pub fn set_affinity(cpus: &[usize]) -> std::io::Result<()> {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; CPU_SET is given ids < CPU_SETSIZE only;
    // sched_setaffinity reads at most the size passed.
    let rc = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        for &c in cpus.iter().filter(|&&c| c < libc::CPU_SETSIZE as usize) {
            libc::CPU_SET(c, &mut set);
        }
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set)
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Process resource usage: CPU time and context switches.
#[derive(Debug, Clone, Copy, Default)]
pub struct Usage {
    pub cpu_ns: u64,
    pub voluntary: u64,
    pub involuntary: u64,
}

impl Usage {
    /// getrusage(RUSAGE_SELF): all threads of this process (not the hogs, which are processes).
    pub fn now() -> Usage {
        // SAFETY: a zeroed rusage is valid; getrusage fills it.
        let ru = unsafe {
            let mut ru: libc::rusage = std::mem::zeroed();
            libc::getrusage(libc::RUSAGE_SELF, &mut ru);
            ru
        };
        let tv = |t: libc::timeval| t.tv_sec as u64 * 1_000_000_000 + t.tv_usec as u64 * 1000;
        Usage {
            cpu_ns: tv(ru.ru_utime) + tv(ru.ru_stime),
            voluntary: ru.ru_nvcsw as u64,
            involuntary: ru.ru_nivcsw as u64,
        }
    }

    pub fn since(&self, earlier: &Usage) -> Usage {
        Usage {
            cpu_ns: self.cpu_ns.saturating_sub(earlier.cpu_ns),
            voluntary: self.voluntary.saturating_sub(earlier.voluntary),
            involuntary: self.involuntary.saturating_sub(earlier.involuntary),
        }
    }
}

/// pvlock's calibrated cost of 1024 spin iterations, in ns, from the spin budget in force.
fn spin_ns_per_1k() -> u32 {
    let ns = pvlock::tuning::spin_budget().as_nanos() as f64;
    (ns * 1024.0 / f64::from(pvlock::tuning::spin_iterations().max(1))).round() as u32
}

#[cfg(test)]
mod tests {
    #[test]
    fn date_format() {
        let d = super::utc_now();
        assert_eq!(d.len(), 20, "{d}");
        assert!(d.starts_with("20") && d.ends_with('Z'), "{d}");
    }
}
