//! Each contender runs as a child process, so its CPU time and peak memory
//! are its own: read from `/proc/<pid>/stat` while it runs (the CPU of one
//! phase, its peak memory) and from `wait4`'s rusage when it has exited
//! (its CPU over its whole life). The broker's CPU and peak memory are
//! read from `/proc` the same way.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context as _;

/// What the kernel says a child used over its life.
#[derive(Debug, Clone, Copy)]
pub struct Usage {
    /// User + system CPU seconds.
    pub cpu: f64,
    /// Peak resident set size in bytes, as the kernel counts it for a
    /// child: including its parent's peak before `exec` (see
    /// [`Contender::peak_rss_now`]).
    pub max_rss: u64,
    /// The exit code, or 128 + the signal that ended it.
    pub status: i32,
}

pub struct Contender {
    pid: libc::pid_t,
    pub log: PathBuf,
    exited: Option<Usage>,
}

impl Contender {
    /// Starts `cmd` with stdout and stderr into `log`.
    pub fn spawn(mut cmd: Command, log: &Path) -> anyhow::Result<Contender> {
        let out = File::create(log).with_context(|| format!("{}", log.display()))?;
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .with_context(|| format!("cannot start {cmd:?}"))?;
        // Reaped with wait4 below, not through `Child`, to get its rusage.
        let pid = child.id() as libc::pid_t;
        Ok(Contender {
            pid,
            log: log.to_path_buf(),
            exited: None,
        })
    }

    /// CPU seconds used so far (all threads), while it runs.
    pub fn cpu_so_far(&self) -> Option<f64> {
        cpu_of(self.pid)
    }

    /// Resident memory now, in bytes.
    pub fn rss_now(&self) -> Option<u64> {
        status_kib(self.pid, "VmRSS:").map(|kib| kib * 1024)
    }

    /// Peak resident memory so far, in bytes. Read while it runs: the
    /// rusage's `ru_maxrss` is no good here, as Linux carries the parent's
    /// peak across `exec` into the child's.
    pub fn peak_rss_now(&self) -> Option<u64> {
        peak_rss_of(self.pid)
    }

    /// Its usage if it has exited (without waiting).
    pub fn try_exited(&mut self) -> Option<Usage> {
        if self.exited.is_none() {
            self.exited = wait4(self.pid, libc::WNOHANG);
        }
        self.exited
    }

    /// SIGTERM, then waits up to `grace` (SIGKILL after that) and returns
    /// its whole-life usage.
    pub fn stop(&mut self, grace: Duration) -> Usage {
        if let Some(u) = self.try_exited() {
            return u;
        }
        // SAFETY: kill with a pid we spawned and have not reaped.
        unsafe { libc::kill(self.pid, libc::SIGTERM) };
        let deadline = Instant::now() + grace;
        loop {
            if let Some(u) = self.try_exited() {
                return u;
            }
            if Instant::now() > deadline {
                // SAFETY: as above.
                unsafe { libc::kill(self.pid, libc::SIGKILL) };
                if let Some(u) = wait4(self.pid, 0) {
                    self.exited = Some(u);
                    return u;
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The last lines of its log, for an error message.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

impl Drop for Contender {
    fn drop(&mut self) {
        if self.exited.is_none() {
            self.stop(Duration::from_secs(5));
        }
    }
}

/// CPU seconds process `pid` has used so far (all threads).
pub fn cpu_of(pid: libc::pid_t) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Some((utime + stime) / ticks)
}

/// Peak resident memory of process `pid` so far (`VmHWM`), in bytes.
pub fn peak_rss_of(pid: libc::pid_t) -> Option<u64> {
    status_kib(pid, "VmHWM:").map(|kib| kib * 1024)
}

fn status_kib(pid: libc::pid_t, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn wait4(pid: libc::pid_t, options: libc::c_int) -> Option<Usage> {
    let mut status: libc::c_int = 0;
    // SAFETY: rusage is plain data; wait4 fills it when it returns pid.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let reaped = unsafe { libc::wait4(pid, &mut status, options, &mut usage) };
    if reaped != pid {
        return None;
    }
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else if libc::WIFSIGNALED(status) {
        128 + libc::WTERMSIG(status)
    } else {
        -1
    };
    Some(Usage {
        cpu: secs(usage.ru_utime) + secs(usage.ru_stime),
        // Linux reports ru_maxrss in KiB.
        max_rss: usage.ru_maxrss as u64 * 1024,
        status: code,
    })
}
