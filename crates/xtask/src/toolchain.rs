//! What the Rust toolchain offers for a Windows build: the compiler's version, its sysroot, an
//! installed `x86_64-pc-windows-msvc` standard library or the library source, and rust-lld.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

/// The running toolchain, as far as a Windows build cares.
#[derive(Clone, Debug)]
pub struct Toolchain {
    /// The release `rustc -V` reports, e.g. `1.95.0` (without `-nightly` or `-beta.N`).
    pub release: String,
    /// The whole first line of `rustc -V`.
    pub version_line: String,
    /// `rustc --print sysroot`.
    pub sysroot: PathBuf,
    /// The host triple (`rustc -vV`).
    pub host: String,
}

/// The `rustc` to ask: `$RUSTC` when set, otherwise the one on `PATH` (rustup's proxy, which
/// resolves to the same toolchain as the `cargo` running us).
fn rustc() -> Command {
    Command::new(std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into()))
}

fn capture(mut command: Command) -> Result<String> {
    let output = command.output().with_context(|| format!("running {command:?}"))?;
    if !output.status.success() {
        bail!("{command:?} failed: {}", String::from_utf8_lossy(&output.stderr).trim());
    }
    Ok(String::from_utf8(output.stdout)?)
}

/// `1.95.0` from `rustc 1.95.0 (59807616e 2026-04-14)` or `rustc 1.96.0-nightly (…)`.
#[must_use]
pub fn release_of(version_line: &str) -> Option<String> {
    let word = version_line.split_whitespace().nth(1)?;
    let release = word.split('-').next()?;
    let parts: Vec<&str> = release.split('.').collect();
    (parts.len() == 3 && parts.iter().all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit())))
        .then(|| release.to_string())
}

impl Toolchain {
    /// Asks `rustc`.
    ///
    /// # Errors
    /// When `rustc` cannot be run or its answers cannot be read.
    pub fn detect() -> Result<Self> {
        let verbose = capture({
            let mut c = rustc();
            c.arg("-vV");
            c
        })?;
        let version_line = verbose.lines().next().unwrap_or_default().to_string();
        let release = release_of(&version_line).with_context(|| format!("cannot read a version from `{version_line}`"))?;
        let host = verbose
            .lines()
            .find_map(|l| l.strip_prefix("host: "))
            .context("`rustc -vV` names no host")?
            .to_string();
        let sysroot = PathBuf::from(
            capture({
                let mut c = rustc();
                c.args(["--print", "sysroot"]);
                c
            })?
            .trim(),
        );
        Ok(Self { release, version_line, sysroot, host })
    }

    /// The installed standard library for `target` (`rustup target add`), if any.
    #[must_use]
    pub fn has_target(&self, target: &str) -> bool {
        self.sysroot.join("lib/rustlib").join(target).join("lib").is_dir()
    }

    /// The `rust-src` component's library folder (`rustup component add rust-src`), if installed.
    #[must_use]
    pub fn rust_src_component(&self) -> Option<PathBuf> {
        let library = self.sysroot.join("lib/rustlib/src/rust/library");
        library.join("core").is_dir().then_some(library)
    }

    /// rust-lld as the toolchain ships it, for `-C linker=rust-lld` (rustc finds it in its own
    /// `lib/rustlib/<host>/bin`).
    #[must_use]
    pub fn rust_lld(&self) -> Option<PathBuf> {
        let lld = self.sysroot.join("lib/rustlib").join(&self.host).join("bin/rust-lld");
        lld.is_file().then_some(lld)
    }
}

/// Whether `library` is the source of the standard library of `release`: it has `core`, and the
/// folder it came from is named for that release (Debian's `usr/src/rustc-1.95.0/library`), or
/// nothing says otherwise (rustup's component, which belongs to its toolchain).
#[must_use]
pub fn library_matches(library: &Path, release: &str) -> bool {
    if !library.join("core/src/lib.rs").is_file() {
        return false;
    }
    match library.parent().and_then(Path::file_name).and_then(|n| n.to_str()) {
        Some(name) if name.starts_with("rustc-") => name == format!("rustc-{release}"),
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn releases() {
        assert_eq!(release_of("rustc 1.95.0 (59807616e 2026-04-14)").as_deref(), Some("1.95.0"));
        assert_eq!(release_of("rustc 1.96.0-nightly (abc 2026-05-01)").as_deref(), Some("1.96.0"));
        assert_eq!(release_of("rustc 1.97.0-beta.3 (abc 2026-05-01)").as_deref(), Some("1.97.0"));
        assert_eq!(release_of("rustc"), None);
        assert_eq!(release_of("rustc 1.95 (x)"), None);
    }
}
