//! Target `pe_load`: the PE loader's image parsing (`scsiport_sim::pe::load` against the
//! emulated `SCSIPORT.SYS` exports).
//!
//! **Property.** Any bytes either load or are refused with a `LoadError`; never a panic, a
//! crash or a sanitizer report. What loads keeps the loader's promises (crates/scsiport-sim/
//! LOADER.md): it is mapped away from its preferred base, every section lies inside the image,
//! no page of it is both writable and executable (checked in `/proc/self/maps`, as the kernel
//! maps it), the entry point is in an executable section, and every import is a `SCSIPORT.SYS`
//! export. The image is only loaded, never run: running arbitrary code is not parsing.
//!
//! **Input:** the file itself. Seeds: small valid images built with `object`'s PE writer
//! (`tests/corpus.rs` makes them), and `rspvscsi.sys` / `rspvscsi_c.sys` when they have been
//! built (`.ci/run` adds them to the run).

use scsiport_sim::pe::{self, LoadError};

use crate::Failure;

/// `IMAGE_SCN_MEM_EXECUTE`.
const EXECUTE: u32 = 0x2000_0000;
/// `IMAGE_SCN_MEM_WRITE`.
const WRITE: u32 = 0x8000_0000;

/// What happened to an input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Loaded (and kept its promises).
    Loaded,
    /// Refused, with this error.
    Refused(LoadError),
}

/// Loads `data` as a driver image and checks the property.
pub fn run(data: &[u8]) -> Result<Outcome, Failure> {
    let exports = scsiport_sim::scsiport_exports();
    let image = match pe::load("fuzz.sys", data, &exports) {
        Ok(image) => image,
        Err(e) => return Ok(Outcome::Refused(e)),
    };
    let fail = |why: String| Err(Failure::new(format!("loaded, but {why}")));
    if image.base() as u64 == image.preferred_base() {
        return fail(format!("at its preferred base {:#x}", image.base()));
    }
    for s in image.sections() {
        if u64::from(s.rva) + u64::from(s.len) > image.size() as u64 {
            return fail(format!("section {} ({:#x}+{:#x}) ends past the image ({:#x})", s.name, s.rva, s.len, image.size()));
        }
        if s.flags & (EXECUTE | WRITE) == EXECUTE | WRITE {
            return fail(format!("section {} is writable and executable", s.name));
        }
    }
    let entry = image.entry() as usize;
    let in_code = image
        .rva_of(entry)
        .and_then(|rva| image.sections().iter().find(|s| (s.rva as usize..(s.rva + s.len) as usize).contains(&rva)).map(|s| s.flags & EXECUTE != 0));
    if in_code != Some(true) {
        return fail(format!("its entry point {entry:#x} is not in an executable section"));
    }
    for (module, name) in image.imports() {
        if !module.eq_ignore_ascii_case(exports.module) || !exports.symbols.iter().any(|(n, _)| n == name) {
            return fail(format!("it imports {module}!{name}"));
        }
    }
    if let Some(line) = writable_executable(image.base(), image.size()) {
        return fail(format!("a page is writable and executable: {line}"));
    }
    Ok(Outcome::Loaded)
}

/// The first mapping of `[base, base + len)` in `/proc/self/maps` that is writable and
/// executable.
fn writable_executable(base: usize, len: usize) -> Option<String> {
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    maps.lines()
        .find(|line| {
            let mut it = line.split_whitespace();
            let (Some(range), Some(perms)) = (it.next(), it.next()) else { return false };
            let Some((a, b)) = range.split_once('-') else { return false };
            let (Ok(a), Ok(b)) = (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16)) else { return false };
            a < base.saturating_add(len) && b > base && perms.contains('w') && perms.contains('x')
        })
        .map(str::to_string)
}
