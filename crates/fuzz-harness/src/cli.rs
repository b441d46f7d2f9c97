//! Target `cli`: what `rspvscsi-sim` parses from its user — the command line (every option's
//! value parser: sizes, `--disk` specs, latency ranges, seconds, HBAs, CDBs, statuses, the
//! soak's fault list), probe answers (framed or plain JSON) and their comparison, the allowlist,
//! and raw disk images (`check-image`).
//!
//! **Property.** No panic; what is refused is an error with a message, never a success; a
//! command-line error exits 2 (usage) unless it is `--help`/`--version` (0); and what is accepted
//! is consistent: an image check counts no more bad sectors than it checked, its kinds add up and
//! its extents cover exactly the bad sectors; a probe answer compared with itself shows no
//! difference; an allowlist entry names fields and carries its reason.
//!
//! **Input:** a selector byte, then the payload ([`Input`]).

use std::io::Write as _;

use clap::Parser as _;
use rspvscsi_sim::{cdb, check_image, cli::Cli, cli::Command, pattern, probe, probe_diff, soak};
use serde_json::Value;

use crate::Failure;

/// Arguments taken from one command line.
pub const MAX_ARGS: usize = 64;

/// A decoded input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    /// A command line: the arguments after the program name, one per line.
    Args(Vec<String>),
    /// An allowlist file.
    Allowlist(String),
    /// Two probe answers (expected, actual), separated by a NUL byte.
    Probe(String, String),
    /// A raw image checked for the pattern of `seed`, the first `sectors` sectors (0: all).
    Image {
        /// The pattern's seed.
        seed: u64,
        /// `--sectors` (0: not given).
        sectors: u8,
        /// The file.
        bytes: Vec<u8>,
    },
}

impl Input {
    /// Decodes any bytes.
    #[must_use]
    pub fn decode(data: &[u8]) -> Self {
        let (kind, rest) = data.split_first().map_or((0, &[][..]), |(k, r)| (*k, r));
        let text = || String::from_utf8_lossy(rest).into_owned();
        match kind % 4 {
            0 => Self::Args(text().split('\n').take(MAX_ARGS).map(str::to_string).collect()),
            1 => Self::Allowlist(text()),
            2 => {
                let t = text();
                let (a, b) = t.split_once('\0').unwrap_or((&t, ""));
                Self::Probe(a.to_string(), b.to_string())
            }
            _ => {
                let mut r = crate::bytes::Reader::new(rest);
                let seed = r.u64();
                let sectors = r.u8();
                Self::Image { seed, sectors, bytes: rest.get(9..).unwrap_or_default().to_vec() }
            }
        }
    }

    /// Encodes it again.
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Self::Args(args) => [&[0u8][..], args.join("\n").as_bytes()].concat(),
            Self::Allowlist(t) => [&[1u8][..], t.as_bytes()].concat(),
            Self::Probe(a, b) => [&[2u8][..], a.as_bytes(), b"\0", b.as_bytes()].concat(),
            Self::Image { seed, sectors, bytes } => [&[3u8][..], &seed.to_le_bytes(), &[*sectors], bytes].concat(),
        }
    }
}

/// What happened to an input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Accepted.
    Accepted,
    /// Refused with this message.
    Refused(String),
}

/// Runs one input and checks the property.
pub fn run(data: &[u8]) -> Result<Outcome, Failure> {
    match Input::decode(data) {
        Input::Args(args) => command_line(&args),
        Input::Allowlist(text) => allowlist(&text),
        Input::Probe(a, b) => probe_answers(&a, &b),
        Input::Image { seed, sectors, bytes } => image(seed, sectors, &bytes),
    }
}

fn refused(message: String, what: &str) -> Result<Outcome, Failure> {
    if message.trim().is_empty() { Err(Failure::new(format!("{what}: refused with no message"))) } else { Ok(Outcome::Refused(message)) }
}

fn command_line(args: &[String]) -> Result<Outcome, Failure> {
    let command = std::iter::once("rspvscsi-sim").chain(args.iter().map(String::as_str));
    match Cli::try_parse_from(command) {
        Ok(cli) => match &cli.command {
            Some(Command::Soak(a)) => soak::parse_faults(&a.faults).map_or_else(|e| refused(e, "--faults"), |_| Ok(Outcome::Accepted)),
            Some(Command::Cdb(a)) => cdb_arguments(a),
            _ => Ok(Outcome::Accepted),
        },
        Err(e) => {
            let text = e.render().to_string();
            let informational = matches!(e.kind(), clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion);
            let want = if informational { 0 } else { 2 };
            if e.exit_code() != want {
                return Err(Failure::new(format!("{args:?}: {:?} exits {}, not {want}: {text}", e.kind(), e.exit_code())));
            }
            if informational { Ok(Outcome::Accepted) } else { refused(text, "the command line") }
        }
    }
}

/// The `cdb` command's arguments it parses itself: the CDB and data in hex, expected statuses.
fn cdb_arguments(a: &rspvscsi_sim::cli::CdbArgs) -> Result<Outcome, Failure> {
    match cdb::parse_cdb(&a.cdb) {
        Ok(bytes) => hex_is_hex(&a.cdb, &bytes)?,
        Err(e) => return refused(e, "the CDB"),
    }
    for text in a.data.iter().chain(&a.expect_data) {
        match cdb::parse_hex(text) {
            Ok(bytes) => hex_is_hex(text, &bytes)?,
            Err(e) => return refused(e, "hex data"),
        }
    }
    for text in &a.expect {
        if let Err(e) = cdb::parse_status(text) {
            return refused(e, "--expect");
        }
    }
    Ok(Outcome::Accepted)
}

/// Hex accepted as `bytes` is hex digits and spaces only, and says exactly those bytes.
fn hex_is_hex(text: &str, bytes: &[u8]) -> Result<(), Failure> {
    let digits: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let again = bytes.iter().fold(String::new(), |mut s, b| {
        let _ = std::fmt::Write::write_fmt(&mut s, format_args!("{b:02x}"));
        s
    });
    if digits.to_ascii_lowercase() == again {
        Ok(())
    } else {
        Err(Failure::new(format!("{text:?} accepted as hex, as the bytes {bytes:02x?}")))
    }
}

fn allowlist(text: &str) -> Result<Outcome, Failure> {
    match probe_diff::parse_allowlist(text) {
        Ok(list) => {
            for a in &list {
                if a.fields.is_empty() || a.reason.trim().is_empty() || a.id.is_empty() {
                    return Err(Failure::new(format!("allowlist entry without a field, an ID or a reason accepted: {a:?}")));
                }
                let _ = probe_diff::glob(&a.id, "pci.bar0.base");
            }
            Ok(Outcome::Accepted)
        }
        Err(e) => refused(e, "the allowlist"),
    }
}

fn parse_answer(text: &str) -> Result<Value, String> {
    let doc = probe::unframe(text)?;
    serde_json::from_str(doc.trim()).map_err(|e| format!("not JSON: {e}"))
}

fn probe_answers(a: &str, b: &str) -> Result<Outcome, Failure> {
    let allow = probe_diff::parse_allowlist(probe_diff::BUILTIN_ALLOWLIST).map_err(|e| Failure::setup(format!("built-in allowlist: {e}")))?;
    let expected = match parse_answer(a) {
        Ok(v) => v,
        Err(e) => return refused(e, "the expected answer"),
    };
    match probe_diff::compare(&expected, &expected, &allow) {
        Ok(same) => {
            if let Some(d) = same.failures().next() {
                return Err(Failure::new(format!("an answer compared with itself differs: {d:?}")));
            }
            let golden = probe_diff::golden(&expected, &allow, "fuzz");
            let _ = probe_diff::pretty(&golden);
        }
        Err(e) => return refused(e, "the expected answer"),
    }
    let actual = match parse_answer(b) {
        Ok(v) => v,
        Err(e) => return refused(e, "the actual answer"),
    };
    match probe_diff::compare(&expected, &actual, &allow) {
        Ok(cmp) => {
            let _ = probe_diff::report(&cmp, ("expected", "actual"), true);
            Ok(Outcome::Accepted)
        }
        Err(e) => refused(e, "the comparison"),
    }
}

fn image(seed: u64, sectors: u8, bytes: &[u8]) -> Result<Outcome, Failure> {
    let path = std::env::temp_dir().join(format!("rspvscsi-fuzz-cli-{}.img", std::process::id()));
    let written = std::fs::File::create(&path).and_then(|mut f| f.write_all(bytes));
    written.map_err(|e| Failure::setup(format!("{}: {e}", path.display())))?;
    let result = check_image::check(&path, seed, (sectors != 0).then_some(u64::from(sectors)));
    let _ = std::fs::remove_file(&path);
    match result {
        Ok(r) => {
            let whole = (bytes.len() / pattern::SECTOR) as u64;
            let asked = if sectors == 0 { whole } else { u64::from(sectors) };
            if r.sectors != asked || r.bad > r.sectors || r.zero + r.misplaced + r.other_seed > r.bad || r.extents.sectors() != r.bad {
                return Err(Failure::new(format!(
                    "an image of {whole} sectors checked for {asked}: {} checked, {} bad ({} zero, {} misplaced, {} other seed), extents cover {}",
                    r.sectors,
                    r.bad,
                    r.zero,
                    r.misplaced,
                    r.other_seed,
                    r.extents.sectors()
                )));
            }
            let _ = r.extents.json();
            Ok(Outcome::Accepted)
        }
        Err(e) => refused(e, "check-image"),
    }
}

/// Seeds: command lines of every subcommand and option, a probe answer, the built-in
/// allowlist, and images with the pattern, damaged in each way `check-image` tells apart.
#[must_use]
pub fn seeds() -> Vec<(&'static str, Input)> {
    let args = |a: &[&str]| Input::Args(a.iter().map(ToString::to_string).collect());
    let mut image = pattern::sectors(0, 8, 7);
    image[512..1024].fill(0);
    let moved = pattern::sectors(5, 1, 7);
    image[2048..2560].copy_from_slice(&moved);
    let other = pattern::sectors(6, 1, 8);
    image[3072..3584].copy_from_slice(&other);
    image.extend_from_slice(&[0xAB; 100]);
    let answer = r#"{"probe":1,"source":"fuzz","disks":[{"target":0,"blocks":16384}],"results":[{"id":"inquiry.t0","what":"INQUIRY","host_status":0,"scsi_status":0,"data":"00000532"},{"id":"pci.command","value":7}]}"#;
    vec![
        ("args-run", args(&["--disk", "ram:64M,serial=SN1,name=d0", "--disk", "ram:1G", "--qd", "64", "--bs", "4K", "--latency-us", "5-50", "--seconds", "0.5", "--mode", "concurrent", "--buffer-offset", "513"])),
        ("args-bad", args(&["--latency-us", "100-10", "--count", "0", "--disk", "ram:12Q"])),
        ("args-soak", args(&["soak", "--seeds", "4", "--steps", "1000", "--faults", "abort,hostile,pnp-stop-start", "--mode", "both", "--jobs", "2"])),
        ("args-cdb", args(&["cdb", "28 00 00 00 00 00 00 00 08 00", "--dir", "in", "--len", "4096", "--expect", "SUCCESS", "--expect", "0x06", "--expect-data", "00 00 05"])),
        ("args-check-image", args(&["check-image", "--seed", "7", "--sectors", "8", "--json", "a.img"])),
        ("args-probe-diff", args(&["probe-diff", "--allowlist", "x", "--labels", "qemu,model", "--verbose", "a.json", "b.json"])),
        ("args-scenario-help", args(&["scenario", "list", "--help"])),
        ("allowlist", Input::Allowlist(probe_diff::BUILTIN_ALLOWLIST.to_string())),
        ("probe", Input::Probe(answer.to_string(), probe::framed(&answer.replace("00000532", "00000533")))),
        ("image", Input::Image { seed: 7, sectors: 0, bytes: image }),
        ("image-short", Input::Image { seed: 7, sectors: 9, bytes: pattern::sectors(0, 4, 7) }),
    ]
}
