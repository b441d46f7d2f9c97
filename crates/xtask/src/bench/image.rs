//! The loaded `.sys` in a callgrind profile.
//!
//! The emulator's PE loader maps the image into anonymous memory, where valgrind finds no
//! symbols: callgrind names its code `0x…` by address. With `--dump-instr=yes` every cost and
//! every call has its instruction address, so the image's code is put back together here by
//! address: its load base (from the port's calls into it), then the linker's map (symbol RVAs),
//! each address going to the symbol at or below it. The result is an ordinary [`Profile`] whose
//! image functions are named `rspvscsi.sys!<demangled name>` (see
//! [`super::attribution::IMAGE_PREFIX`]); the attribution then treats them as the driver.

use std::collections::BTreeMap;

use anyhow::{Context, Result, bail};

use super::attribution::IMAGE_PREFIX;
use super::callgrind::{Call, Profile};
use crate::map::Map;

/// The object name [`regroup`] gives the image's functions.
pub const OBJECT: &str = "rspvscsi.sys";

/// The image's symbols, by RVA.
#[derive(Clone, Debug, Default)]
pub struct Symbols {
    /// RVA → demangled name (no hash).
    pub by_rva: BTreeMap<u64, String>,
    /// The image's size in memory (`SizeOfImage`).
    pub size: u64,
}

impl Symbols {
    /// From the linker's map and the image's `SizeOfImage`: linked-in code and data only.
    #[must_use]
    pub fn from_map(map: &Map, size: u64) -> Self {
        let by_rva = map.linked_in().filter(|s| s.rva < size).map(|s| (s.rva, format!("{:#}", rustc_demangle::demangle(&s.name)))).collect();
        Self { by_rva, size }
    }

    /// Reads `SizeOfImage` from the `.sys` and the map beside it.
    ///
    /// # Errors
    /// When either cannot be read or parsed.
    pub fn load(sys: &std::path::Path, map: &std::path::Path) -> Result<Self> {
        let bytes = std::fs::read(sys).with_context(|| format!("reading {}", sys.display()))?;
        let pe = object::read::pe::PeFile64::parse(&*bytes).with_context(|| format!("{} is not a PE32+ image", sys.display()))?;
        let size = u64::from(pe.nt_headers().optional_header.size_of_image.get(object::LittleEndian));
        let text = std::fs::read_to_string(map).with_context(|| format!("reading {}", map.display()))?;
        Ok(Self::from_map(&Map::parse(&text), size))
    }

    /// The name of the function holding `rva`.
    #[must_use]
    pub fn name_at(&self, rva: u64) -> String {
        match self.by_rva.range(..=rva).next_back() {
            Some((_, name)) => format!("{IMAGE_PREFIX}{name}"),
            None => format!("{IMAGE_PREFIX}+{rva:#x}"),
        }
    }

    /// The RVA of the first symbol whose plain name (no generic arguments) is `path`.
    #[must_use]
    pub fn rva_of(&self, path: &str) -> Option<u64> {
        self.by_rva.iter().find(|(_, n)| super::attribution::plain_name(n) == path).map(|(r, _)| *r)
    }
}

/// Finds where the image was loaded: the base at which the most call targets in code without
/// a symbol land exactly on the entry points the port calls (the trampolines and
/// `DriverEntry`). `None` when no call lands on any.
#[must_use]
pub fn find_base(profile: &Profile, symbols: &Symbols) -> Option<u64> {
    let entries: Vec<u64> =
        super::attribution::ROUTINES.iter().filter_map(|(path, _)| symbols.rva_of(path)).collect();
    let mut votes: BTreeMap<u64, u64> = BTreeMap::new();
    for f in &profile.functions {
        for c in &f.calls {
            let Some(callee) = profile.functions.get(c.callee) else { continue };
            if !callee.name.starts_with("0x") {
                continue;
            }
            let Some(target) = c.target else { continue };
            for rva in &entries {
                if let Some(base) = target.checked_sub(*rva).filter(|b| b % 4096 == 0) {
                    *votes.entry(base).or_default() += 1;
                }
            }
        }
    }
    votes.into_iter().max_by_key(|(base, n)| (*n, std::cmp::Reverse(*base))).map(|(b, _)| b)
}

/// The profile with the image's code regrouped into its symbols. Costs and calls outside
/// `[base, base + size)` stay where they were.
///
/// # Errors
/// When the profile has no instruction addresses (`--dump-instr=yes` was not given).
pub fn regroup(profile: &Profile, base: u64, symbols: &Symbols) -> Result<Profile> {
    if !profile.positions.iter().any(|p| p == "instr") {
        bail!("the profile has no instruction addresses: run callgrind with --dump-instr=yes");
    }
    let in_image = |addr: u64| addr.checked_sub(base).filter(|rva| *rva < symbols.size);
    let mut out = Profile::default();
    out.events.clone_from(&profile.events);
    out.positions.clone_from(&profile.positions);
    out.summary = profile.summary;
    let name_of = |own: &str, addr: Option<u64>| match addr.and_then(in_image) {
        Some(rva) => symbols.name_at(rva),
        None => own.to_string(),
    };
    for f in &profile.functions {
        let own = out.intern(&f.name, &f.object);
        for (&addr, &cost) in &f.self_by_addr {
            let i = match in_image(addr) {
                Some(rva) => out.intern(&symbols.name_at(rva), OBJECT),
                None => own,
            };
            if let Some(g) = out.functions.get_mut(i) {
                g.self_cost += cost;
                *g.self_by_addr.entry(addr).or_default() += cost;
            }
        }
        for c in &f.calls {
            let Some(callee) = profile.functions.get(c.callee) else { continue };
            let from = name_of(&f.name, c.site);
            let to = name_of(&callee.name, c.target);
            if from == to && from.starts_with(IMAGE_PREFIX) {
                // Callgrind's per-block pseudo-functions jumping inside one symbol.
                continue;
            }
            let from_i = out.intern(&from, if from == f.name { &f.object } else { OBJECT });
            let to_object = if to == callee.name { callee.object.clone() } else { OBJECT.into() };
            let to_i = out.intern(&to, &to_object);
            out.add_call(from_i, Call { callee: to_i, ..c.clone() });
        }
    }
    // Pseudo-functions left without cost or calls.
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::attribution::{attribute, kind_of};
    use super::*;

    fn symbols() -> Symbols {
        let mut by_rva = BTreeMap::new();
        by_rva.insert(0x1000, "rspvscsi::DriverEntry".to_string());
        by_rva.insert(0x1100, "scsiport::miniport::hw_start_io::<rspvscsi::adapter::Adapter>".to_string());
        by_rva.insert(0x1200, "rspvscsi::adapter::Adapter::post".to_string());
        by_rva.insert(0x1300, "scsiport::miniport::hw_interrupt::<rspvscsi::adapter::Adapter>".to_string());
        Symbols { by_rva, size: 0x3000 }
    }

    /// The image at 0x7f0000000000: the port calls `DriverEntry` once, `HwScsiStartIo` twice, the
    /// ISR once; `hw_start_io`'s code is two callgrind blocks (a jump between them shows as a call),
    /// and it calls `post` and the port's `ScsiPortNotification`.
    const LOADED: &str = "\
positions: instr
events: Ir
fn=scsiport_sim::pe::run_entry
0x5000 10
cfn=0x00007f0000001000
calls=1 0x7f0000001000
0x5004 100
fn=scsiport_sim::port::start
0x6000 10
cfn=0x00007f0000001100
calls=2 0x7f0000001100
0x6004 500
cfn=0x00007f0000001300
calls=1 0x7f0000001300
0x6008 40
fn=0x00007f0000001000
0x7f0000001000 60
+4 40
fn=0x00007f0000001100
0x7f0000001100 30
cfn=0x00007f0000001140
calls=2 0x7f0000001140
0x7f0000001104 400
fn=0x00007f0000001140
0x7f0000001140 50
cfn=0x00007f0000001200
calls=2 0x7f0000001200
+4 100
cfn=ScsiPortNotification
calls=2 0x9000
+8 220
fn=0x00007f0000001200
0x7f0000001200 100
fn=0x00007f0000001300
0x7f0000001300 40
fn=ScsiPortNotification
0x9000 220
";

    #[test]
    fn the_image_is_found_and_regrouped_into_its_symbols() {
        let p = Profile::parse(LOADED).unwrap();
        let s = symbols();
        assert_eq!(find_base(&p, &s), Some(0x7f00_0000_0000));
        let r = regroup(&p, 0x7f00_0000_0000, &s).unwrap();
        assert_eq!(r.total(), p.total(), "regrouping keeps every instruction");
        let start = r.function("rspvscsi.sys!scsiport::miniport::hw_start_io::<rspvscsi::adapter::Adapter>").unwrap();
        assert_eq!(start.self_cost, 80, "both blocks of hw_start_io");
        assert_eq!(r.function("rspvscsi.sys!rspvscsi::DriverEntry").unwrap().self_cost, 100);
        assert!(kind_of(&start.name) == super::super::attribution::Kind::Driver);

        let a = attribute(&r, &kind_of);
        assert_eq!(a.routines["HwScsiStartIo"].calls, 2);
        assert!((a.routines["HwScsiStartIo"].cost - 180.0).abs() < 1e-9, "{:?}", a.routines);
        assert!((a.routines["HwScsiInterrupt"].cost - 40.0).abs() < 1e-9);
        assert!((a.routines["DriverEntry"].cost - 100.0).abs() < 1e-9);
        assert_eq!(a.routines.len(), 3, "{:?}", a.routines);
    }

    #[test]
    fn symbols_come_from_lld_maps() {
        let map = Map::parse(
            " Preferred load address is 0000000180000000\n\
 0001:00003630       DriverEntry                0000000180004630     rspvscsi.rspvscsi.22ac-cgu.0.rcgu.o\n\
 0001:000020a0       _RINvNtCs4wCUWrBvBYW_8scsiport8miniport11hw_start_ioNtNtCs2Yz5kxUsfIk_8rspvscsi7adapter7AdapterEBR_ 00000001800030a0     rspvscsi.rspvscsi.22ac-cgu.0.rcgu.o\n\
 0002:00000570       __imp_ScsiPortNotification 0000000180005570     libscsiport_sys-f2a9:scsiport.sys\n",
        );
        let s = Symbols::from_map(&map, 0x8000);
        assert_eq!(s.rva_of("scsiport::miniport::hw_start_io"), Some(0x30a0));
        assert_eq!(s.rva_of("DriverEntry"), Some(0x4630));
        assert_eq!(s.by_rva.len(), 2, "imports are not code of the image");
        assert_eq!(s.name_at(0x30a8), "rspvscsi.sys!scsiport::miniport::hw_start_io::<rspvscsi::adapter::Adapter>");
        assert_eq!(s.name_at(0x10), "rspvscsi.sys!+0x10");
        assert_eq!(super::super::attribution::routine_of(&s.name_at(0x4631)), "DriverEntry");
    }

    #[test]
    fn without_addresses_it_refuses() {
        let p = Profile::parse("events: Ir\nfn=a\n1 1\n").unwrap();
        assert!(regroup(&p, 0, &symbols()).is_err());
    }
}
