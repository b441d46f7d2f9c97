//! Emulator code inlined into the driver's functions, and the other way round.
//!
//! The release CLI is built with LTO, so a call from the driver to a routine the emulator
//! exports can be inlined: `scsiport::hw::Registers::write_u32` holds the body of the
//! emulator's `ScsiPortWriteRegisterUlong`. By function name those instructions would count as
//! the miniport's. The bench's CLI is built with line tables (`debug = "line-tables-only"`,
//! which changes no instruction: checked by the whole-program counts, which equal the plain
//! release build's), and with callgrind's instruction addresses each instruction is looked up
//! in the DWARF inline tree (addr2line): the innermost frame of a driver crate or of the
//! emulator says whose it is; library frames (`core`, `alloc`, `scsiport_sys`) are transparent.
//! A function whose instructions belong to both sides is split into two nodes of the profile,
//! the foreign part named with [`PORT_PART`] or [`DRIVER_PART`] after the function's name; its
//! calls follow the side of their call site.

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::Path;

use addr2line::gimli;
use anyhow::{Context as _, Result, bail};
use object::{Object as _, ObjectSection as _};

use super::attribution::{Kind, kind_of};
use super::callgrind::{Call, Profile};

/// Suffix of the part of a driver function that is the emulator's inlined code.
pub const PORT_PART: &str = " [inlined port code]";
/// Suffix of the part of an emulator function that is the driver's inlined code.
pub const DRIVER_PART: &str = " [inlined driver code]";

type Reader = gimli::EndianSlice<'static, gimli::RunTimeEndian>;

/// The DWARF of one executable, for inline-frame look-ups.
pub struct Frames {
    ctx: addr2line::Context<Reader>,
    cache: HashMap<u64, Option<Kind>>,
}

impl Frames {
    /// Reads the executable's DWARF (it is kept for the life of the process).
    ///
    /// # Errors
    /// When the file cannot be read, is not an object file, or has no line tables.
    pub fn load(path: &Path) -> Result<Self> {
        let data: &'static [u8] = Box::leak(std::fs::read(path).with_context(|| format!("reading {}", path.display()))?.into_boxed_slice());
        let file = object::File::parse(data).with_context(|| format!("{} is not an object file", path.display()))?;
        if file.section_by_name(".debug_line").is_none() {
            bail!("{} has no line tables (build it with debug = \"line-tables-only\")", path.display());
        }
        let endian = if file.is_little_endian() { gimli::RunTimeEndian::Little } else { gimli::RunTimeEndian::Big };
        let load = |id: gimli::SectionId| -> Result<Reader> {
            let bytes: &'static [u8] = match file.section_by_name(id.name()) {
                Some(s) => match s.uncompressed_data()? {
                    Cow::Borrowed(b) => b,
                    Cow::Owned(v) => Box::leak(v.into_boxed_slice()),
                },
                None => &[],
            };
            Ok(gimli::EndianSlice::new(bytes, endian))
        };
        let dwarf = gimli::Dwarf::load(load)?;
        Ok(Self { ctx: addr2line::Context::from_dwarf(dwarf)?, cache: HashMap::new() })
    }

    /// Whose instruction is at `addr`: the innermost frame of the driver or the emulator, or
    /// `None` when only library frames (or none) cover it.
    pub fn side(&mut self, addr: u64) -> Option<Kind> {
        if let Some(k) = self.cache.get(&addr) {
            return *k;
        }
        let k = self.lookup(addr);
        self.cache.insert(addr, k);
        k
    }

    fn lookup(&self, addr: u64) -> Option<Kind> {
        let mut frames = self.ctx.find_frames(addr).skip_all_loads().ok()?;
        while let Ok(Some(frame)) = frames.next() {
            let Some(name) = frame.function.as_ref().and_then(|f| f.raw_name().ok()) else { continue };
            let name = format!("{:#}", rustc_demangle::demangle(&name));
            match kind_of(&name) {
                Kind::Neutral => {}
                k => return Some(k),
            }
        }
        None
    }
}

/// `profile` with every function of `object` split by the side of each instruction
/// (`side(addr)`; `None` keeps the function's own kind).
#[must_use]
pub fn split(profile: &Profile, object: &str, side: &mut dyn FnMut(u64) -> Option<Kind>) -> Profile {
    let mut out = Profile::default();
    out.events.clone_from(&profile.events);
    out.positions.clone_from(&profile.positions);
    out.summary = profile.summary;
    let mut part = |f: &super::callgrind::Function, addr: Option<u64>, out: &mut Profile| -> usize {
        let own = kind_of(&f.name);
        let theirs = if f.object == object { addr.and_then(&mut *side) } else { None };
        let name = match (own, theirs) {
            (Kind::Driver, Some(Kind::Port)) => format!("{}{PORT_PART}", f.name),
            (Kind::Port | Kind::Neutral, Some(Kind::Driver)) => format!("{}{DRIVER_PART}", f.name),
            _ => f.name.clone(),
        };
        out.intern(&name, &f.object)
    };
    for f in &profile.functions {
        out.intern(&f.name, &f.object);
        for (&addr, &cost) in &f.self_by_addr {
            let i = part(f, Some(addr), &mut out);
            if let Some(g) = out.functions.get_mut(i) {
                g.self_cost += cost;
                *g.self_by_addr.entry(addr).or_default() += cost;
            }
        }
        if f.self_by_addr.is_empty() && f.self_cost > 0 {
            let i = out.intern(&f.name, &f.object);
            if let Some(g) = out.functions.get_mut(i) {
                g.self_cost += f.self_cost;
            }
        }
        for c in &f.calls {
            let Some(callee) = profile.functions.get(c.callee) else { continue };
            let from = part(f, c.site, &mut out);
            let to = out.intern(&callee.name, &callee.object);
            out.add_call(from, Call { callee: to, ..c.clone() });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::attribution::attribute;
    use super::*;

    /// `write_u32` (driver) holds the emulator's register write inlined at 0x110..0x120, which
    /// calls the emulator's `resolve` from 0x114; `run` (emulator) holds an inlined driver
    /// helper at 0x210.
    const PROFILE: &str = "\
positions: instr
events: Ir
ob=/t/cli
fn=scsiport_sim::run
0x200 100
0x210 7
cfn=scsiport::hw::Registers::write_u32
calls=4 0x100
0x204 0
fn=scsiport::hw::Registers::write_u32
0x100 20
0x110 30
cfn=scsiport_sim::resolve
calls=4 0x300
0x114 0
fn=scsiport_sim::resolve
0x300 40
";

    fn side(addr: u64) -> Option<Kind> {
        match addr {
            0x110..0x120 => Some(Kind::Port),
            0x210..0x220 => Some(Kind::Driver),
            _ => None,
        }
    }

    #[test]
    fn inlined_code_goes_to_its_own_side() {
        let p = Profile::parse(PROFILE).unwrap();
        let s = split(&p, "/t/cli", &mut side);
        assert_eq!(s.total(), p.total());
        assert_eq!(s.function("scsiport::hw::Registers::write_u32").unwrap().self_cost, 20);
        let port_part = s.function(&format!("scsiport::hw::Registers::write_u32{PORT_PART}")).unwrap();
        assert_eq!(port_part.self_cost, 30);
        assert_eq!(kind_of(&port_part.name), Kind::Port);
        let driver_part = s.function(&format!("scsiport_sim::run{DRIVER_PART}")).unwrap();
        assert_eq!((driver_part.self_cost, kind_of(&driver_part.name)), (7, Kind::Driver));
        // The call to resolve was made by the inlined port code.
        assert!(s.function("scsiport::hw::Registers::write_u32").unwrap().calls.is_empty());
        assert_eq!(port_part.calls.len(), 1);

        let a = attribute(&s, &kind_of);
        let w = &a.routines["scsiport::hw::Registers::write_u32"];
        assert_eq!(w.calls, 4);
        assert!((w.cost - 20.0).abs() < 1e-9, "{w:?}");
        let inlined = &a.routines[&format!("scsiport_sim::run{DRIVER_PART}")];
        assert!((inlined.cost - 7.0).abs() < 1e-9);
        assert!((a.total() - 27.0).abs() < 1e-9);
    }

    #[test]
    fn other_objects_are_left_alone() {
        let p = Profile::parse(PROFILE).unwrap();
        let s = split(&p, "/elsewhere", &mut side);
        assert_eq!(s.functions.len(), p.functions.len());
        assert_eq!(s.function("scsiport::hw::Registers::write_u32").unwrap().self_cost, 50);
    }
}
