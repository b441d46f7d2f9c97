//! `check-image`: checks raw image files for the write-pattern, on the host, without a driver.

use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use serde_json::json;

use crate::app::{self, Verdict};
use crate::cli::CheckImageArgs;
use crate::extents::{self, Extents};
use crate::pattern::{self, SECTOR};

/// Sectors read from the file at a time.
const CHUNK_SECTORS: usize = 2048;
/// Mismatches described one by one.
const SHOW: usize = 10;

/// What one image held.
#[derive(Debug, Default)]
pub struct ImageResult {
    /// Sectors checked.
    pub sectors: u64,
    /// Sectors that did not carry the pattern.
    pub bad: u64,
    /// Of those: all zero (never written).
    pub zero: u64,
    /// Of those: another LBA's sector (misplaced).
    pub misplaced: u64,
    /// Of those: right LBA, another seed.
    pub other_seed: u64,
    /// The first mismatches, described.
    pub first: Vec<String>,
    /// Every sector that did not carry the pattern, as extents by kind.
    pub extents: Extents,
}

/// Checks `sectors` sectors (default: all) of `path` against the pattern of `seed`.
///
/// # Errors
/// The file cannot be read or is shorter than asked.
pub fn check(path: &Path, seed: u64, sectors: Option<u64>) -> Result<ImageResult, String> {
    let file = File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let len = file.metadata().map_err(|e| format!("{}: {e}", path.display()))?.len();
    let whole = len / SECTOR as u64;
    let n = match sectors {
        Some(s) if s > whole => return Err(format!("{}: holds {whole} sectors, fewer than the {s} asked for", path.display())),
        Some(s) => s,
        None => whole,
    };
    if n == 0 {
        return Err(format!("{}: no whole 512-byte sector to check", path.display()));
    }
    let mut r = ImageResult { sectors: n, ..ImageResult::default() };
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut buf = vec![0u8; CHUNK_SECTORS * SECTOR];
    let mut lba = 0u64;
    while lba < n {
        let count = usize::try_from((n - lba).min(CHUNK_SECTORS as u64)).unwrap_or(CHUNK_SECTORS);
        let chunk = &mut buf[..count * SECTOR];
        reader.read_exact(chunk).map_err(|e| format!("{}: reading at LBA {lba}: {e}", path.display()))?;
        for (i, sector) in chunk.chunks_exact(SECTOR).enumerate() {
            if let Err(m) = pattern::check_sector(lba + i as u64, seed, sector) {
                r.bad += 1;
                r.extents.add(0, m.lba, 1, m.kind());
                if m.zero {
                    r.zero += 1;
                } else if m.found_lba != m.lba {
                    r.misplaced += 1;
                } else if m.offset < 16 {
                    r.other_seed += 1;
                }
                if r.first.len() < SHOW {
                    r.first.push(m.to_string());
                }
            }
        }
        lba += count as u64;
    }
    Ok(r)
}

/// Refuses what is not a raw image before reading anything: a missing file, a directory or
/// another non-file, a length that is not whole 512-byte sectors (a usage error, as for --disk).
fn check_files(args: &CheckImageArgs) -> Result<(), String> {
    for path in &args.files {
        let md = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
        if !md.is_file() {
            return Err(format!("{}: not a regular file (a raw image is a file of whole 512-byte sectors)", path.display()));
        }
        if md.len() % SECTOR as u64 != 0 {
            return Err(format!(
                "{}: {} bytes is not a whole number of 512-byte sectors ({} bytes more than {} sectors)",
                path.display(),
                md.len(),
                md.len() % SECTOR as u64,
                md.len() / SECTOR as u64
            ));
        }
    }
    Ok(())
}

/// Runs the subcommand.
#[must_use]
pub fn run(args: &CheckImageArgs) -> Verdict {
    if let Err(e) = check_files(args) {
        return app::usage(&e);
    }
    let mut all_ok = true;
    let mut out = String::new();
    for path in &args.files {
        match check(path, args.seed, args.sectors) {
            Ok(r) if r.bad == 0 => {
                if args.json {
                    let _ = writeln!(out, "{}", json!({"image": path, "seed": args.seed, "sectors": r.sectors, "bad": 0, "extents": [], "result": "pass"}));
                } else {
                    let _ = writeln!(out, "{}: {} sectors ok (pattern of seed {})", path.display(), r.sectors, args.seed);
                }
            }
            Ok(r) => {
                all_ok = false;
                if args.json {
                    let _ = writeln!(
                        out,
                        "{}",
                        json!({"image": path, "seed": args.seed, "sectors": r.sectors, "bad": r.bad, "zero": r.zero,
                               "misplaced": r.misplaced, "other_seed": r.other_seed, "first": r.first,
                               "extents": r.extents.json(), "result": "fail"})
                    );
                }
                eprintln!(
                    "rspvscsi-sim: FAIL: {}: {} of {} sectors do not carry the pattern of seed {} ({} zero, {} misplaced, {} with another seed, {} corrupt)",
                    path.display(),
                    r.bad,
                    r.sectors,
                    args.seed,
                    r.zero,
                    r.misplaced,
                    r.other_seed,
                    r.bad - r.zero - r.misplaced - r.other_seed
                );
                for m in &r.first {
                    eprintln!("  {m}");
                }
                if r.bad > r.first.len() as u64 {
                    eprintln!("  … {} more", r.bad - r.first.len() as u64);
                }
                eprintln!("  by extent:");
                for l in extents::lines(&r.extents.sorted(), SHOW, "    ", " (all in --json: extents)") {
                    eprintln!("{l}");
                }
            }
            Err(e) => {
                all_ok = false;
                eprintln!("rspvscsi-sim: FAIL: {e}");
            }
        }
    }
    app::emit_or_fail(&out, if all_ok { Verdict::Pass } else { Verdict::Fail })
}
