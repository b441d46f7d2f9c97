//! `cargo xtask sys`: the driver's `.sys`, built on a Linux host exactly as the Windows flow
//! builds it, and packaged as `cargo make` packages it.
//!
//! What is the same as `cargo make` on Windows: the source, the target (`x86_64-pc-windows-msvc`,
//! release), the codegen flags (`.cargo/config.toml`: `+crt-static`, `panic=abort`; the release
//! profile's LTO) and the link arguments (the package's `build.rs`). What differs, and why:
//! - the `wdk-build` feature is off (`--no-default-features`): wdk-build builds only on Windows,
//!   and `build.rs` then gives the linker the same arguments itself;
//! - the linker is rust-lld in lld-link mode, the toolchain's own, instead of link.exe;
//! - without an installed `x86_64-pc-windows-msvc` standard library (rustup cannot fetch one
//!   here) `core` is built from source with `-Z build-std`, from the `rust-src` of exactly
//!   `rustc -V`'s version: rustup's component when installed, otherwise Debian's `rust-src`
//!   package, downloaded into `target/xtask/` (never installed).
//!
//! The package is built with `cargo rustc --crate-type cdylib`: cargo applies the release
//! profile's `lto = true` only to a package whose library is a cdylib alone, and this one is
//! `cdylib` + `rlib` (the emulator links the rlib).

use std::io::BufRead as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

use crate::debian::{self, PrivateApt, Sources};
use crate::pe::{self, PortRules};
use crate::toolchain::{self, Toolchain};
use crate::{TARGET, inf, map, sign, workspace_root};

/// One driver image the workspace builds.
#[derive(Clone, Copy, Debug)]
pub struct Flavor {
    /// The cargo package.
    pub package: &'static str,
    /// The image's base name (`<name>.sys`, `.inf`, `.map`, `.pdb`, `<name>_package/`).
    pub name: &'static str,
    /// The package's features that select this flavour.
    pub features: &'static [&'static str],
    /// The `.inx`, relative to the workspace root.
    pub inx: &'static str,
    /// The port driver's import rules.
    pub port: &'static PortRules,
    /// The signature's description.
    pub description: &'static str,
}

/// `rspvscsi.sys`, the SCSI Port miniport.
pub const SCSIPORT: Flavor = Flavor {
    package: "rspvscsi",
    name: "rspvscsi",
    features: &[],
    inx: "inf/rspvscsi.inx",
    port: &pe::SCSIPORT,
    description: "rspvscsi PVSCSI SCSI Port miniport",
};

/// `rspvscsi_storport.sys`, the Storport miniport: the same package with its `storport` feature.
pub const STORPORT: Flavor = Flavor {
    package: "rspvscsi",
    name: "rspvscsi_storport",
    features: &["storport"],
    inx: "inf/rspvscsi_storport.inx",
    port: &pe::STORPORT,
    description: "rspvscsi PVSCSI Storport miniport",
};

/// Both images, in the order `cargo xtask sys` builds them.
pub const ALL: [&Flavor; 2] = [&STORPORT, &SCSIPORT];

/// What `cargo xtask sys` produced.
#[derive(Clone, Debug)]
pub struct Package {
    /// The package folder.
    pub dir: PathBuf,
    /// The (signed) driver image.
    pub sys: PathBuf,
    /// The linker's map.
    pub map: PathBuf,
    /// The stamped INF.
    pub inf: PathBuf,
    /// Debug symbols.
    pub pdb: PathBuf,
    /// The test certificate to trust on the VM, when signed.
    pub cer: Option<PathBuf>,
}

/// Build options.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Leave the image unsigned (for a machine without openssl/osslsigncode).
    pub no_sign: bool,
    /// Show cargo's progress.
    pub verbose: bool,
}

/// The workspace's target directory.
#[must_use]
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| workspace_root().join("target"), PathBuf::from)
}

/// Where `cargo make` puts a package on Windows (`<target>/<triple>/<profile>/<name>_package`).
#[must_use]
pub fn package_dir(flavor: &Flavor) -> PathBuf {
    target_dir().join(TARGET).join("release").join(format!("{}_package", flavor.name))
}

/// The package as `cargo xtask sys` leaves it, if it is there.
#[must_use]
pub fn existing(flavor: &Flavor) -> Option<Package> {
    let dir = package_dir(flavor);
    let p = Package {
        sys: dir.join(format!("{}.sys", flavor.name)),
        map: dir.join(format!("{}.map", flavor.name)),
        inf: dir.join(format!("{}.inf", flavor.name)),
        pdb: dir.join(format!("{}.pdb", flavor.name)),
        cer: Some(dir.join(format!("{}-test.cer", flavor.name))).filter(|c| c.is_file()),
        dir,
    };
    (p.sys.is_file() && p.map.is_file() && p.inf.is_file()).then_some(p)
}

/// How `core` is provided for the Windows target.
#[derive(Clone, Debug)]
pub enum StdSource {
    /// `rustup target add x86_64-pc-windows-msvc` was done: the installed library.
    Installed,
    /// `-Z build-std` from this `library` folder.
    BuildStd(PathBuf),
}

/// Finds (or fetches) what `core` for the Windows target is built from. `log` gets progress.
///
/// # Errors
/// When neither an installed target, a `rust-src` component, `RSPVSCSI_RUST_SRC`, nor Debian's
/// `rust-src` of the compiler's version is available.
pub fn std_source(tc: &Toolchain, log: &mut dyn FnMut(&str)) -> Result<StdSource> {
    if tc.has_target(TARGET) {
        return Ok(StdSource::Installed);
    }
    if let Some(path) = std::env::var_os("RSPVSCSI_RUST_SRC") {
        let library = PathBuf::from(path);
        if !toolchain::library_matches(&library, &tc.release) {
            bail!("RSPVSCSI_RUST_SRC={} is not the library source of rustc {}", library.display(), tc.release);
        }
        return Ok(StdSource::BuildStd(library));
    }
    if let Some(library) = tc.rust_src_component() {
        return Ok(StdSource::BuildStd(library));
    }
    let work = target_dir().join("xtask");
    let unpacked = work.join(format!("rust-src-{}", tc.release));
    let library = unpacked.join(format!("usr/src/rustc-{}/library", tc.release));
    if toolchain::library_matches(&library, &tc.release) {
        return Ok(StdSource::BuildStd(library));
    }
    log(&format!("fetching Debian's rust-src for rustc {} (not installed; nothing is installed)", tc.release));
    // Debian carries each rustc release in some suite for a while: backports of the stable
    // release first (a small list), then testing and unstable.
    let tries: [&[&str]; 2] = [&["trixie-backports"], &["trixie-backports", "forky", "sid", "experimental"]];
    for suites in tries {
        let apt = PrivateApt::new(&work.join("debian").join(suites.join("+")), Sources::Suites(suites.iter().map(ToString::to_string).collect()))
            .with_context(|| no_std_help(tc))?;
        apt.update().with_context(|| no_std_help(tc))?;
        let versions = apt.versions("rust-src")?;
        if let Some(version) = versions.iter().find(|v| debian::upstream(v) == tc.release) {
            log(&format!("rust-src {version} from Debian {}", suites.join("/")));
            apt.fetch("rust-src", version, &unpacked)?;
            if !toolchain::library_matches(&library, &tc.release) {
                bail!("Debian's rust-src {version} has no {}", library.display());
            }
            return Ok(StdSource::BuildStd(library));
        }
    }
    bail!("Debian has no rust-src for rustc {}.\n{}", tc.release, no_std_help(tc))
}

fn no_std_help(tc: &Toolchain) -> String {
    format!(
        "A Windows build needs the standard library for {TARGET} or its source, and this machine has neither. \
         Any one of these works: `rustup target add {TARGET}`; `rustup component add rust-src`; \
         RSPVSCSI_RUST_SRC=<the library folder of rustc {}'s source>.",
        tc.release
    )
}

fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

/// Builds, packages and (unless told not to) signs `flavor`. Progress goes to `log`.
///
/// # Errors
/// When something the build needs is missing (said clearly), or a step fails, or the image
/// breaks a rule of [`pe::check`].
pub fn build(flavor: &Flavor, opts: &Options, log: &mut dyn FnMut(&str)) -> Result<Package> {
    // Test binaries may build at the same time (one per process): one build at a time, and every
    // file of the package replaced atomically, so a reader never sees half of one.
    let work = target_dir().join("xtask");
    std::fs::create_dir_all(&work)?;
    let lock = std::fs::File::create(work.join("build.lock"))?;
    lock.lock()?;
    let tc = Toolchain::detect()?;
    if tc.rust_lld().is_none() {
        bail!("this toolchain ({}) ships no rust-lld in {}", tc.version_line, tc.sysroot.join("lib/rustlib").join(&tc.host).join("bin").display());
    }
    let missing = if opts.no_sign { Vec::new() } else { sign::missing_tools() };
    if !missing.is_empty() {
        bail!("signing needs {} (Debian: apt-get install {}); or build unsigned with --no-sign", missing.join(" and "), missing.join(" "));
    }
    let std = std_source(&tc, log)?;

    let mut c = cargo();
    c.current_dir(workspace_root());
    c.args(["rustc", "--locked", "--package", flavor.package, "--lib", "--crate-type", "cdylib", "--release", "--target", TARGET]);
    c.arg("--no-default-features").args(flavor.features.iter().flat_map(|f| ["--features", f]));
    c.args(["--config", &format!("target.{TARGET}.linker=\"rust-lld\"")]);
    c.args(["--config", &format!("target.{TARGET}.rustflags=[\"-Clinker-flavor=lld-link\"]")]);
    c.args(["--message-format", "json-render-diagnostics"]);
    if !opts.verbose {
        c.arg("--quiet");
    }
    match &std {
        StdSource::Installed => log(&format!("core: the installed {TARGET} standard library")),
        StdSource::BuildStd(library) => {
            log(&format!("core: built from {}", library.display()));
            c.args(["-Z", "build-std=core,compiler_builtins"]);
            c.env("RUSTC_BOOTSTRAP", "1").env("__CARGO_TESTS_ONLY_SRC_ROOT", library);
        }
    }
    c.stdout(Stdio::piped());
    let mut child = c.spawn().context("running cargo")?;
    let mut artifacts: Vec<PathBuf> = Vec::new();
    if let Some(stdout) = child.stdout.take() {
        for line in std::io::BufReader::new(stdout).lines() {
            let line = line?;
            let Ok(msg) = serde_json::from_str::<serde_json::Value>(&line) else { continue };
            if msg["reason"] == "compiler-artifact"
                && msg["target"]["name"] == flavor.package
                && let Some(files) = msg["filenames"].as_array()
            {
                artifacts.extend(files.iter().filter_map(|f| f.as_str()).map(PathBuf::from));
            }
        }
    }
    let status = child.wait()?;
    if !status.success() {
        bail!("cargo rustc for {TARGET} failed ({status})");
    }
    let dll = artifacts.iter().find(|p| p.extension().is_some_and(|e| e == "dll")).context("cargo reported no .dll")?.clone();
    let pdb = artifacts.iter().find(|p| p.extension().is_some_and(|e| e == "pdb")).context("cargo reported no .pdb")?.clone();
    // lld-link writes the map beside its /OUT, which is in deps/.
    let built_map = dll.parent().map(|d| d.join("deps").join(format!("{}.map", flavor.package))).filter(|m| m.is_file());
    let built_map = built_map.context("the linker left no .map in deps/")?;

    let dir = package_dir(flavor);
    std::fs::create_dir_all(&dir)?;
    let sys = dir.join(format!("{}.sys", flavor.name));
    let pkg_map = dir.join(format!("{}.map", flavor.name));
    let pkg_pdb = dir.join(format!("{}.pdb", flavor.name));
    let pkg_inf = dir.join(format!("{}.inf", flavor.name));
    install(&built_map, &pkg_map)?;
    install(&pdb, &pkg_pdb)?;

    let inx = std::fs::read_to_string(workspace_root().join(flavor.inx)).with_context(|| format!("reading {}", flavor.inx))?;
    let (secs, millis) = inf::now();
    let stamp = inf::Stamp {
        arch: "amd64",
        date: inf::civil_date(secs),
        version: inf::time_of_day_version(secs, millis),
        catalog: format!("{}.cat", flavor.name),
    };
    let inf_tmp = pkg_inf.with_extension("inf.tmp");
    std::fs::write(&inf_tmp, inf::stamp(&inx, &stamp)?)?;
    std::fs::rename(&inf_tmp, &pkg_inf)?;

    let cer = if opts.no_sign {
        install(&dll, &sys)?;
        None
    } else {
        let cert = sign::ensure_cert(&target_dir().join("xtask/signing"))?;
        let signed = sys.with_extension("sys.tmp");
        sign::sign(&cert, flavor.description, &dll, &signed)?;
        std::fs::rename(&signed, &sys)?;
        let cer = dir.join(format!("{}-test.cer", flavor.name));
        install(&cert.cer, &cer)?;
        Some(cer)
    };

    let image = std::fs::read(&sys)?;
    let map_text = std::fs::read_to_string(&pkg_map)?;
    let report = pe::check(&image, Some(&map::Map::parse(&map_text)), flavor.port)?;
    if !report.ok() {
        let failures: Vec<String> = report.failures().map(|f| format!("{}: {}", f.rule, f.detail)).collect();
        bail!("{} breaks the rules for a {} miniport:\n  {}", sys.display(), flavor.port.module, failures.join("\n  "));
    }
    log(&format!(
        "{}: {} bytes, imports {}, {}",
        sys.file_name().and_then(|n| n.to_str()).unwrap_or_default(),
        report.size,
        report.imports.iter().map(|(_, n)| n.as_str()).collect::<Vec<_>>().join(" "),
        if report.signed { "signed" } else { "unsigned" }
    ));
    Ok(Package { dir, sys, map: pkg_map, inf: pkg_inf, pdb: pkg_pdb, cer })
}

/// Copies `from` to `to` through a temporary file and a rename.
fn install(from: &Path, to: &Path) -> Result<()> {
    let tmp = to.with_extension(format!("{}.tmp", to.extension().and_then(|e| e.to_str()).unwrap_or_default()));
    std::fs::copy(from, &tmp).with_context(|| format!("copying {} to {}", from.display(), tmp.display()))?;
    std::fs::rename(&tmp, to)?;
    Ok(())
}

/// Whether this machine can build the image at all, and if not, why: for tests that skip.
#[must_use]
pub fn unavailable_reason() -> Option<String> {
    let tc = match Toolchain::detect() {
        Ok(tc) => tc,
        Err(e) => return Some(format!("{e:#}")),
    };
    if tc.rust_lld().is_none() {
        return Some("the toolchain has no rust-lld".into());
    }
    let buildable = tc.has_target(TARGET)
        || tc.rust_src_component().is_some()
        || std::env::var_os("RSPVSCSI_RUST_SRC").is_some()
        || ["apt-get", "apt-cache", "dpkg-deb"].iter().all(|t| debian::have(t));
    if !buildable {
        return Some(no_std_help(&tc));
    }
    let missing = sign::missing_tools();
    (!missing.is_empty()).then(|| format!("signing needs {}", missing.join(" and ")))
}

/// Path helper for reports.
#[must_use]
pub fn relative(path: &Path) -> String {
    path.strip_prefix(workspace_root()).unwrap_or(path).display().to_string()
}
