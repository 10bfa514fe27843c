//! `doorstep-server serve` as a child process of a benchmark, so that server figures come from
//! the server's own process (CPU and peak memory from `/proc/PID`).
// Each benchmark uses part of it.
#![allow(dead_code)]

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

/// Clock ticks per second of `/proc/PID/stat` (USER_HZ, 100 on Linux).
const TICKS: f64 = 100.0;

/// The token the benchmark's server serves `/metrics` to.
const METRICS_TOKEN: &str = "bench-metrics-token";

/// `doorstep-server serve` as a child process.
pub struct Server {
    child: Child,
    pub url: String,
}

impl Server {
    pub fn start(db: impl AsRef<std::ffi::OsStr>) -> Result<Server> {
        Self::start_with(db, &[])
    }

    /// Start it with `extra` arguments after `serve --db DB --listen ADDR` (`DB` a SQLite
    /// file or a `postgres://` address).
    pub fn start_with(db: impl AsRef<std::ffi::OsStr>, extra: &[&str]) -> Result<Server> {
        let exe = std::env::current_exe()?;
        let bin = exe
            .parent()
            .and_then(|examples| examples.parent())
            .map(|dir| dir.join("doorstep-server"))
            .context("the target directory")?;
        if !bin.exists() {
            bail!(
                "{} is missing: cargo build --release -p doorstep-server --bins --examples",
                bin.display()
            );
        }
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let listen = format!("127.0.0.1:{port}");
        let child = Command::new(&bin)
            .args(["serve", "--db"])
            .arg(db)
            .args(["--listen", &listen])
            .args(["--metrics-token", METRICS_TOKEN])
            .args(extra)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let server = Server {
            child,
            url: format!("http://{listen}"),
        };
        let started = Instant::now();
        while std::net::TcpStream::connect(&listen).is_err() {
            if started.elapsed() > Duration::from_secs(30) {
                bail!("the server did not start listening on {listen}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(server)
    }

    fn proc(&self, file: &str) -> Result<String> {
        Ok(std::fs::read_to_string(format!(
            "/proc/{}/{file}",
            self.child.id()
        ))?)
    }

    /// User + system CPU time the server process has used so far.
    pub fn cpu_seconds(&self) -> Result<f64> {
        let stat = self.proc("stat")?;
        // Fields after the command name (which is in parentheses): utime is the 14th field of
        // the line, stime the 15th.
        let rest = stat.rsplit_once(')').context("/proc stat")?.1;
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let utime: f64 = fields.get(11).context("utime")?.parse()?;
        let stime: f64 = fields.get(12).context("stime")?.parse()?;
        Ok((utime + stime) / TICKS)
    }

    /// The server's peak resident memory so far (VmHWM), in KiB.
    pub fn peak_rss_kib(&self) -> Result<u64> {
        self.status_kib("VmHWM:")
    }

    /// The server's resident memory now (VmRSS), in KiB.
    pub fn rss_kib(&self) -> Result<u64> {
        self.status_kib("VmRSS:")
    }

    fn status_kib(&self, field: &str) -> Result<u64> {
        self.proc("status")?
            .lines()
            .find(|l| l.starts_with(field))
            .and_then(|l| l.split_whitespace().nth(1))
            .with_context(|| field.to_string())?
            .parse()
            .map_err(Into::into)
    }

    /// The value of counter or gauge `name` (without labels) in the server's `/metrics`.
    pub fn metric(&self, name: &str) -> Result<f64> {
        let text = ureq::get(format!("{}/metrics", self.url))
            .header("authorization", format!("Bearer {METRICS_TOKEN}"))
            .call()?
            .body_mut()
            .read_to_string()?;
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
            .with_context(|| format!("{name} in /metrics"))?
            .trim()
            .parse()
            .map_err(Into::into)
    }

    pub fn kill(&mut self) -> Result<()> {
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
