//! Debian packages fetched into the build directory, never installed.
//!
//! A private apt configuration (its own source list, package lists and cache under
//! `target/xtask/debian/`) lets `apt-get download` fetch a `.deb` of any suite without root and
//! without touching the system's apt state; `dpkg-deb -x` unpacks it into a folder of ours. This
//! is how `tests/qemu/run` gets its guest kernel, and how `cargo xtask sys` gets the Rust library
//! source of exactly the compiler's version when rustup cannot provide one.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result, bail};

/// The Debian archive; `RSPVSCSI_DEBIAN_MIRROR` overrides it.
fn mirror() -> String {
    std::env::var("RSPVSCSI_DEBIAN_MIRROR").unwrap_or_else(|_| "http://deb.debian.org/debian".to_string())
}

/// Where the package lists come from.
#[derive(Clone, Debug)]
pub enum Sources {
    /// These suites of the Debian archive, `main` only.
    Suites(Vec<String>),
    /// The machine's own apt sources (for packages of the running release).
    System,
}

/// A private apt state rooted in one folder.
#[derive(Debug)]
pub struct PrivateApt {
    root: PathBuf,
    sources: Sources,
}

/// Whether `program` can be run (found on `PATH`).
#[must_use]
pub fn have(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}

impl PrivateApt {
    /// A private apt state in `root` for `sources`. Fails, saying what is missing, on a machine
    /// without Debian's tools.
    ///
    /// # Errors
    /// When `apt-get`, `apt-cache` or `dpkg-deb` is missing, or `root` cannot be created.
    pub fn new(root: &Path, sources: Sources) -> Result<Self> {
        for tool in ["apt-get", "apt-cache", "dpkg-deb"] {
            if !have(tool) {
                bail!("`{tool}` is not on PATH: fetching Debian packages needs apt and dpkg (a Debian or Ubuntu host)");
            }
        }
        for dir in ["lists/partial", "cache/archives/partial", "etc", "downloads"] {
            std::fs::create_dir_all(root.join(dir)).with_context(|| format!("creating {}", root.join(dir).display()))?;
        }
        if let Sources::Suites(suites) = &sources {
            let mirror = mirror();
            let list: Vec<String> = suites.iter().map(|s| format!("deb {mirror} {s} main")).collect();
            let list = list.join("\n") + "\n";
            std::fs::write(root.join("etc/sources.list"), list)?;
        }
        Ok(Self { root: root.to_path_buf(), sources })
    }

    fn command(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        let root = self.root.display();
        c.args(["-q", "-o", &format!("Dir::State::Lists={root}/lists"), "-o", &format!("Dir::Cache={root}/cache")]);
        c.args(["-o", "Debug::NoLocking=1", "-o", "APT::Get::List-Cleanup=0"]);
        if let Sources::Suites(_) = self.sources {
            c.args(["-o", &format!("Dir::Etc::sourcelist={root}/etc/sources.list"), "-o", "Dir::Etc::sourceparts=-"]);
        }
        // As root, apt drops to the `_apt` user for downloads, which cannot write our folders.
        if is_root() {
            c.args(["-o", "APT::Sandbox::User=root"]);
        }
        c
    }

    /// `apt-get update` into the private lists, unless they are less than a day old.
    ///
    /// # Errors
    /// When apt cannot fetch the lists.
    pub fn update(&self) -> Result<()> {
        let stamp = self.root.join("lists/.updated");
        let fresh = std::fs::metadata(&stamp)
            .and_then(|m| m.modified())
            .is_ok_and(|t| SystemTime::now().duration_since(t).unwrap_or(Duration::MAX) < Duration::from_hours(24));
        if fresh {
            return Ok(());
        }
        let mut c = self.command("apt-get");
        c.arg("update");
        run(c)?;
        std::fs::write(stamp, b"")?;
        Ok(())
    }

    /// The versions of `package` the lists offer, newest first.
    ///
    /// # Errors
    /// When apt-cache cannot be run.
    pub fn versions(&self, package: &str) -> Result<Vec<String>> {
        let mut c = self.command("apt-cache");
        c.args(["madison", package]);
        let output = c.output().context("running apt-cache")?;
        // `apt-cache madison` lines: " rust-src | 1.95.0+dfsg1-2~bpo13+1 | http://… Packages"
        let versions = String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter_map(|line| {
                let mut fields = line.split('|').map(str::trim);
                (fields.next() == Some(package)).then(|| fields.next().map(str::to_string)).flatten()
            })
            .collect();
        Ok(versions)
    }

    /// Downloads `package` at `version` and unpacks it into `into` (created, replaced if there).
    ///
    /// # Errors
    /// When the download or the unpacking fails.
    pub fn fetch(&self, package: &str, version: &str, into: &Path) -> Result<()> {
        let downloads = self.root.join("downloads");
        let mut c = self.command("apt-get");
        c.args(["download", &format!("{package}={version}")]).current_dir(&downloads);
        run(c)?;
        let deb = std::fs::read_dir(&downloads)?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .find(|p| {
                p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                    n.starts_with(&format!("{package}_")) && std::path::Path::new(n).extension().is_some_and(|e| e.eq_ignore_ascii_case("deb")) && n.contains(&version.replace(':', "%3a"))
                })
            })
            .with_context(|| format!("apt-get download left no {package} {version} .deb in {}", downloads.display()))?;
        let partial = into.with_extension("partial");
        let _ = std::fs::remove_dir_all(&partial);
        std::fs::create_dir_all(&partial)?;
        let mut x = Command::new("dpkg-deb");
        x.arg("-x").arg(&deb).arg(&partial);
        run(x)?;
        let _ = std::fs::remove_dir_all(into);
        std::fs::rename(&partial, into)?;
        let _ = std::fs::remove_file(deb);
        Ok(())
    }
}

fn is_root() -> bool {
    // The effective user of this process, read the portable way (no libc): /proc/self/status.
    std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines().find_map(|l| l.strip_prefix("Uid:")).and_then(|v| v.split_whitespace().nth(1)).is_some_and(|uid| uid == "0")
    })
}

fn run(mut command: Command) -> Result<()> {
    let output = command.output().with_context(|| format!("running {command:?}"))?;
    if !output.status.success() {
        bail!(
            "{} failed ({}):\n{}{}",
            command.get_program().display(),
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}

/// The upstream part of a Debian version: `1.95.0` of `1.95.0+dfsg1-2~bpo13+1`.
#[must_use]
pub fn upstream(version: &str) -> &str {
    let without_epoch = version.split_once(':').map_or(version, |(_, v)| v);
    let end = without_epoch.find(['+', '-', '~']).unwrap_or(without_epoch.len());
    &without_epoch[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_versions() {
        assert_eq!(upstream("1.95.0+dfsg1-2~bpo13+1"), "1.95.0");
        assert_eq!(upstream("1.97.1+dfsg1-1~bpo13+1"), "1.97.1");
        assert_eq!(upstream("1:2.5-4"), "2.5");
        assert_eq!(upstream("6.1.0-41"), "6.1.0");
    }
}
