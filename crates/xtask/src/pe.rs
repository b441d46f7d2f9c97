//! The rules Windows and HLK apply to a storage miniport's image, checked on the binary.
//!
//! The image is read with the `object` crate; the map file (`/MAP`) adds what the image alone
//! cannot tell: which library each symbol came from (so whether LTO really made one module of the
//! driver), and where `HwScsiInterrupt` is (its extent then comes from `.pdata`, its instructions
//! from a disassembly with `iced-x86`).
//!
//! Sources of the rules:
//! - PE format (`learn.microsoft.com/windows/win32/debug/pe-format`): headers, checksum, section
//!   flags, base relocations.
//! - HLK "Storage Imports Test" and the SCSI Port overview (`KG:scsi-port-driver-overview`,
//!   windows-image-facts.md): a miniport imports from its port driver only, never ntoskrnl.
//! - `srb.h` for x64: the `ScsiPortRead/Write*` accessors are macros, not imports.
//! - "Driver compatibility with memory integrity and VBS" (HVCI): no section both writable and
//!   executable, page-aligned sections, NX-compatible image.
//! - link.exe `/DRIVER`: `IMAGE_SCN_MEM_NOT_PAGED` on resident sections, a `.reloc` directory.
//! - windows-drivers-rs issue 182: a `.retplne` section left by rust-lld makes a driver fail to
//!   load (error 998).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt::Write as _;

use anyhow::{Context, Result, bail};
use iced_x86::{Decoder, DecoderOptions, FlowControl, Formatter, Instruction, IntelFormatter, Mnemonic, OpKind};
use object::LittleEndian as LE;
use object::pe;
use object::read::pe::{ImageNtHeaders, ImageOptionalHeader, Import, PeFile64};

use crate::map::{self, Map};

/// What a port driver allows its miniports to import.
#[derive(Clone, Copy, Debug)]
pub struct PortRules {
    /// The one module a miniport of this port may import from (`SCSIPORT.SYS`).
    pub module: &'static str,
    /// The routines the port driver documents for miniports (`nf-srb-*`, `nf-storport-*`).
    pub routines: &'static [&'static str],
    /// Name prefixes that must not be imports on x64 (inline accessors in the header).
    pub inline_on_x64: &'static [&'static str],
    /// Where the interrupt routine's symbol may be found in the map, in order of preference.
    pub interrupt_symbols: &'static [&'static str],
    /// The notification routine whose call marks the interrupt routine's normal path.
    pub notification: &'static str,
}

/// SCSI Port: the routines of `srb.h` a miniport may call (`nf-srb-*` pages).
pub const SCSIPORT: PortRules = PortRules {
    module: "SCSIPORT.SYS",
    routines: &[
        "ScsiPortCompleteRequest",
        "ScsiPortConvertUlongToPhysicalAddress",
        "ScsiPortFlushDma",
        "ScsiPortFreeDeviceBase",
        "ScsiPortGetBusData",
        "ScsiPortGetDeviceBase",
        "ScsiPortGetLogicalUnit",
        "ScsiPortGetPhysicalAddress",
        "ScsiPortGetSrb",
        "ScsiPortGetUncachedExtension",
        "ScsiPortGetVirtualAddress",
        "ScsiPortInitialize",
        "ScsiPortIoMapTransfer",
        "ScsiPortLogError",
        "ScsiPortMoveMemory",
        "ScsiPortNotification",
        "ScsiPortQuerySystemTime",
        "ScsiPortSetBusDataByOffset",
        "ScsiPortStallExecution",
        "ScsiPortValidateRange",
        "ScsiDebugPrint",
    ],
    inline_on_x64: &["ScsiPortRead", "ScsiPortWrite"],
    interrupt_symbols: &["hw_interrupt", "HwScsiInterrupt"],
    notification: "ScsiPortNotification",
};

/// Storport: the routines of `storport.h` a miniport may call (`nf-storport-*` pages) that
/// `scsiport-sys` binds. `StorPortInitializeDpc` and `StorPortIssueDpc` are inline functions of
/// the header over `StorPortNotification`, and the register and port accessors are macros on x64.
pub const STORPORT: PortRules = PortRules {
    module: "STORPORT.SYS",
    routines: &[
        "StorPortAcquireSpinLock",
        "StorPortBusy",
        "StorPortCompleteRequest",
        "StorPortConvertUlongToPhysicalAddress",
        "StorPortDebugPrint",
        "StorPortDeviceBusy",
        "StorPortDeviceReady",
        "StorPortEnablePassiveInitialization",
        "StorPortFreeDeviceBase",
        "StorPortGetBusData",
        "StorPortGetDeviceBase",
        "StorPortGetLogicalUnit",
        "StorPortGetPhysicalAddress",
        "StorPortGetScatterGatherList",
        "StorPortGetSrb",
        "StorPortGetUncachedExtension",
        "StorPortGetVirtualAddress",
        "StorPortInitialize",
        "StorPortLogError",
        "StorPortMoveMemory",
        "StorPortNotification",
        "StorPortPause",
        "StorPortPauseDevice",
        "StorPortReady",
        "StorPortReleaseSpinLock",
        "StorPortResume",
        "StorPortResumeDevice",
        "StorPortSetBusDataByOffset",
        "StorPortStallExecution",
        "StorPortSynchronizeAccess",
        "StorPortValidateRange",
    ],
    inline_on_x64: &["StorPortRead", "StorPortWrite"],
    interrupt_symbols: &["hw_interrupt", "HwStorInterrupt"],
    // `StorPortIssueDpc`, the ISR's normal end, is `StorPortNotification(IssueDpc, ...)`.
    notification: "StorPortNotification",
};

/// One rule's verdict.
#[derive(Clone, Debug)]
pub struct Finding {
    /// The rule, as a short sentence.
    pub rule: &'static str,
    /// Whether the image keeps it.
    pub ok: bool,
    /// What was seen.
    pub detail: String,
}

/// A section as the report lists it.
#[derive(Clone, Debug)]
pub struct SectionInfo {
    /// Its name.
    pub name: String,
    /// RVA.
    pub rva: u32,
    /// Virtual size.
    pub size: u32,
    /// `Characteristics`.
    pub flags: u32,
}

/// The interrupt routine as the disassembly sees it.
#[derive(Clone, Debug)]
pub struct FunctionStats {
    /// The map symbol.
    pub symbol: String,
    /// RVA of its first instruction.
    pub rva: u32,
    /// Bytes, from its `.pdata` entry.
    pub bytes: u32,
    /// Instructions in the whole routine.
    pub instructions: usize,
    /// Instructions on the shortest path from the entry through the call of the port's
    /// notification routine (`CallEnableInterrupts`) to a return: a static lower bound of the
    /// normal, deferring path (it may take branches the normal path does not, such as a
    /// register bounds check failing). The emulator counts the executed path exactly.
    pub normal_path: Option<usize>,
    /// That path, disassembled.
    pub normal_path_listing: Vec<String>,
}

/// Everything the check saw, and its verdicts.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// File size in bytes.
    pub size: usize,
    /// Sections.
    pub sections: Vec<SectionInfo>,
    /// `(module, routine)` of every import.
    pub imports: Vec<(String, String)>,
    /// The checksum in the header and the one computed.
    pub checksum: (u32, u32),
    /// `FileHeader.Characteristics`.
    pub characteristics: u16,
    /// `OptionalHeader.DllCharacteristics`.
    pub dll_characteristics: u16,
    /// Base relocations by type.
    pub relocations: BTreeMap<u16, usize>,
    /// Whether an Authenticode signature is present (security directory).
    pub signed: bool,
    /// Crates whose code or data the map shows linked in.
    pub linked_crates: BTreeSet<String>,
    /// Memory intrinsics defined in the image (from the map).
    pub mem_functions: Vec<String>,
    /// Whether the image still contains a panic handler (from the map).
    pub panic_handler: bool,
    /// The interrupt routine.
    pub interrupt: Option<FunctionStats>,
    /// Rule verdicts.
    pub findings: Vec<Finding>,
}

impl Report {
    /// Whether every rule holds.
    #[must_use]
    pub fn ok(&self) -> bool {
        self.findings.iter().all(|f| f.ok)
    }

    fn rule(&mut self, rule: &'static str, ok: bool, detail: impl Into<String>) {
        self.findings.push(Finding { rule, ok, detail: detail.into() });
    }

    /// The findings that fail.
    pub fn failures(&self) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(|f| !f.ok)
    }

    /// A human-readable report: facts, then one line per rule.
    #[must_use]
    pub fn render(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "size: {} bytes", self.size);
        let _ = writeln!(
            s,
            "checksum: header {:#010x}, computed {:#010x}; Characteristics {:#06x}; DllCharacteristics {:#06x}; signed: {}",
            self.checksum.0, self.checksum.1, self.characteristics, self.dll_characteristics, self.signed
        );
        let _ = writeln!(s, "sections:");
        for sec in &self.sections {
            let _ = writeln!(s, "  {:<8} rva {:#07x} size {:#07x} flags {:#010x} {}", sec.name, sec.rva, sec.size, sec.flags, flag_names(sec.flags));
        }
        let _ = writeln!(s, "imports ({}):", self.imports.len());
        for (module, name) in &self.imports {
            let _ = writeln!(s, "  {module}!{name}");
        }
        let relocs: Vec<String> = self.relocations.iter().map(|(t, n)| format!("{n} of type {t}")).collect();
        let _ = writeln!(s, "base relocations: {}", if relocs.is_empty() { "none".into() } else { relocs.join(", ") });
        if !self.linked_crates.is_empty() {
            let crates: Vec<&str> = self.linked_crates.iter().map(String::as_str).collect();
            let _ = writeln!(s, "linked in from: {}", crates.join(", "));
        }
        let _ = writeln!(
            s,
            "memory intrinsics in the image: {}; panic handler present: {}",
            if self.mem_functions.is_empty() { "none".into() } else { self.mem_functions.join(", ") },
            self.panic_handler
        );
        if let Some(f) = &self.interrupt {
            let _ = writeln!(
                s,
                "interrupt routine {}: rva {:#x}, {} bytes, {} instructions; shortest path through the notification {}",
                f.symbol,
                f.rva,
                f.bytes,
                f.instructions,
                f.normal_path.map_or_else(|| "not found".to_string(), |n| format!("{n} instructions"))
            );
            for line in &f.normal_path_listing {
                let _ = writeln!(s, "    {line}");
            }
        }
        for f in &self.findings {
            let _ = writeln!(s, "[{}] {}: {}", if f.ok { "ok" } else { "FAIL" }, f.rule, f.detail);
        }
        s
    }
}

fn flag_names(flags: u32) -> String {
    let mut names = Vec::new();
    for (bit, name) in [
        (pe::IMAGE_SCN_CNT_CODE, "CODE"),
        (pe::IMAGE_SCN_CNT_INITIALIZED_DATA, "IDATA"),
        (pe::IMAGE_SCN_CNT_UNINITIALIZED_DATA, "UDATA"),
        (pe::IMAGE_SCN_MEM_DISCARDABLE, "DISCARDABLE"),
        (pe::IMAGE_SCN_MEM_NOT_PAGED, "NOT_PAGED"),
        (pe::IMAGE_SCN_MEM_EXECUTE, "EXECUTE"),
        (pe::IMAGE_SCN_MEM_READ, "READ"),
        (pe::IMAGE_SCN_MEM_WRITE, "WRITE"),
    ] {
        if flags & bit != 0 {
            names.push(name);
        }
    }
    names.join("|")
}

/// The PE checksum (the `imagehlp` `CheckSumMappedFile` algorithm): 16-bit one's-complement-style
/// sum of the file with the checksum field taken as zero, folded, plus the file length.
#[must_use]
pub fn pe_checksum(image: &[u8], checksum_offset: usize) -> u32 {
    let mut sum: u64 = 0;
    let mut i = 0;
    while i < image.len() {
        let lo = u64::from(image.get(i).copied().unwrap_or(0));
        let hi = u64::from(image.get(i + 1).copied().unwrap_or(0));
        let word = if (checksum_offset..checksum_offset + 4).contains(&i) { 0 } else { lo | (hi << 8) };
        sum += word;
        sum = (sum & 0xFFFF) + (sum >> 16);
        i += 2;
    }
    sum = (sum & 0xFFFF) + (sum >> 16);
    let total = sum + image.len() as u64;
    u32::try_from(total & 0xFFFF_FFFF).unwrap_or(0)
}

/// Where the checksum field is: `e_lfanew` + signature + file header + 64 bytes of optional header.
fn checksum_offset(image: &[u8]) -> Option<usize> {
    let lfanew = u32::from_le_bytes(image.get(0x3C..0x40)?.try_into().ok()?) as usize;
    Some(lfanew + 4 + 20 + 64)
}

fn section_name(raw: [u8; 8]) -> String {
    let end = raw.iter().position(|&b| b == 0).unwrap_or(8);
    String::from_utf8_lossy(&raw[..end]).into_owned()
}

/// Checks `image` (with its `map`, when there is one) against the rules for `port`.
///
/// # Errors
/// When the file is not a PE32+ image at all (that is reported as an error, not a finding).
#[allow(clippy::too_many_lines)] // one rule after another
pub fn check(image: &[u8], map: Option<&Map>, port: &PortRules) -> Result<Report> {
    let magic = object::read::pe::optional_header_magic(image).context("not a PE image")?;
    if magic != pe::IMAGE_NT_OPTIONAL_HDR64_MAGIC {
        bail!("not PE32+ (optional header magic {magic:#x})");
    }
    let file = PeFile64::parse(image).context("parsing the PE32+ image")?;
    let nt = file.nt_headers();
    let fh = nt.file_header();
    let oh = nt.optional_header();
    let mut r = Report { size: image.len(), ..Report::default() };
    r.characteristics = fh.characteristics.get(LE);
    r.dll_characteristics = oh.dll_characteristics();

    // --- Headers ------------------------------------------------------------------------------
    let machine = fh.machine.get(LE);
    r.rule("PE32+ for AMD64", machine == pe::IMAGE_FILE_MACHINE_AMD64, format!("Machine {machine:#06x}, magic {magic:#x}"));
    let subsystem = oh.subsystem();
    r.rule("subsystem NATIVE (a kernel driver)", subsystem == pe::IMAGE_SUBSYSTEM_NATIVE, format!("Subsystem {subsystem}"));

    let entry = oh.address_of_entry_point();
    let exports = file.export_table()?.map(|t| t.exports()).transpose()?.unwrap_or_default();
    let exported_entry = exports.iter().find(|e| e.name == Some(b"DriverEntry".as_slice())).and_then(|e| match e.target {
        object::read::pe::ExportTarget::Address(a) => Some(a),
        _ => None,
    });
    let mapped_entry = map.and_then(|m| m.symbols.iter().find(|s| s.name == "DriverEntry")).and_then(|s| u32::try_from(s.rva).ok());
    let entry_rva = exported_entry.or(mapped_entry);
    r.rule(
        "entry point is DriverEntry",
        entry != 0 && entry_rva == Some(entry),
        format!("AddressOfEntryPoint {entry:#x}, DriverEntry at {}", entry_rva.map_or("?".into(), |a| format!("{a:#x}"))),
    );

    let offset = checksum_offset(image).context("no e_lfanew")?;
    let stored = oh.check_sum();
    let computed = pe_checksum(image, offset);
    r.checksum = (stored, computed);
    r.rule("valid image checksum (the kernel loader checks a driver's)", stored != 0 && stored == computed, format!("header {stored:#x}, computed {computed:#x}"));

    // --- Sections -----------------------------------------------------------------------------
    let section_alignment = oh.section_alignment();
    let sections = file.section_table();
    let mut misaligned = Vec::new();
    let mut wx = Vec::new();
    let mut pageable = Vec::new();
    for s in sections.iter() {
        let name = section_name(s.name);
        let flags = s.characteristics.get(LE);
        let rva = s.virtual_address.get(LE);
        r.sections.push(SectionInfo { name: name.clone(), rva, size: s.virtual_size.get(LE), flags });
        if section_alignment == 0 || rva % section_alignment != 0 {
            misaligned.push(name.clone());
        }
        if flags & pe::IMAGE_SCN_MEM_WRITE != 0 && flags & pe::IMAGE_SCN_MEM_EXECUTE != 0 {
            wx.push(name.clone());
        }
        let resident = flags & pe::IMAGE_SCN_MEM_DISCARDABLE == 0 && !name.starts_with("PAGE");
        if resident && flags & pe::IMAGE_SCN_MEM_NOT_PAGED == 0 {
            pageable.push(name.clone());
        }
    }
    r.rule(
        "no section both writable and executable (memory integrity)",
        wx.is_empty(),
        if wx.is_empty() { "none".to_string() } else { wx.join(", ") },
    );
    r.rule(
        "sections page-aligned (memory integrity)",
        section_alignment == 0x1000 && misaligned.is_empty(),
        format!("SectionAlignment {section_alignment:#x}{}", if misaligned.is_empty() { String::new() } else { format!(", misaligned: {}", misaligned.join(", ")) }),
    );
    let dllc = r.dll_characteristics;
    r.rule(
        "NX-compatible, relocatable, integrity-checked (/NXCOMPAT /DYNAMICBASE /INTEGRITYCHECK)",
        dllc & pe::IMAGE_DLLCHARACTERISTICS_NX_COMPAT != 0
            && dllc & pe::IMAGE_DLLCHARACTERISTICS_DYNAMIC_BASE != 0
            && dllc & pe::IMAGE_DLLCHARACTERISTICS_FORCE_INTEGRITY != 0,
        format!("DllCharacteristics {dllc:#06x}"),
    );
    r.rule(
        "resident sections NOT_PAGED (as link.exe /DRIVER marks them)",
        pageable.is_empty(),
        if pageable.is_empty() { "all".to_string() } else { format!("pageable: {}", pageable.join(", ")) },
    );
    let retpoline = r.sections.iter().any(|s| s.name == ".retplne");
    r.rule("no .retplne section (windows-drivers-rs#182)", !retpoline, if retpoline { "present" } else { "absent" });
    let tls = file.data_directory(pe::IMAGE_DIRECTORY_ENTRY_TLS).is_some_and(|d| d.virtual_address.get(LE) != 0);
    r.rule("no TLS (a driver has no thread-local storage)", !tls, if tls { "TLS directory present" } else { "none" });
    r.signed = file.data_directory(pe::IMAGE_DIRECTORY_ENTRY_SECURITY).is_some_and(|d| d.size.get(LE) != 0);

    // --- Relocations --------------------------------------------------------------------------
    let stripped = r.characteristics & pe::IMAGE_FILE_RELOCS_STRIPPED != 0;
    if let Some(mut blocks) = file.data_directories().relocation_blocks(image, &sections)? {
        while let Some(block) = blocks.next()? {
            for reloc in block {
                *r.relocations.entry(reloc.typ).or_default() += 1;
            }
        }
    }
    let foreign: Vec<u16> = r.relocations.keys().copied().filter(|t| *t != pe::IMAGE_REL_BASED_DIR64 && *t != pe::IMAGE_REL_BASED_ABSOLUTE).collect();
    let has_dir = file.data_directory(pe::IMAGE_DIRECTORY_ENTRY_BASERELOC).is_some_and(|d| d.virtual_address.get(LE) != 0);
    r.rule(
        "relocatable: not RELOCS_STRIPPED; base relocations DIR64 only",
        !stripped && foreign.is_empty(),
        if has_dir {
            format!("{} DIR64 relocations", r.relocations.get(&pe::IMAGE_REL_BASED_DIR64).copied().unwrap_or(0))
        } else {
            "no .reloc directory: the image holds no absolute address, so there is nothing to relocate (the loader relocates only when the directory exists)".to_string()
        },
    );

    // --- Imports ------------------------------------------------------------------------------
    let mut iat_slots: BTreeMap<u32, String> = BTreeMap::new();
    let mut ordinals = Vec::new();
    if let Some(table) = file.import_table()? {
        let mut descriptors = table.descriptors()?;
        while let Some(d) = descriptors.next()? {
            let module = String::from_utf8_lossy(table.name(d.name.get(LE))?).into_owned();
            let lookup = if d.original_first_thunk.get(LE) != 0 { d.original_first_thunk.get(LE) } else { d.first_thunk.get(LE) };
            let mut thunks = table.thunks(lookup)?;
            let mut index: u32 = 0;
            while let Some(thunk) = thunks.next::<pe::ImageNtHeaders64>()? {
                let slot = d.first_thunk.get(LE) + index * 8;
                match table.import::<pe::ImageNtHeaders64>(thunk)? {
                    Import::Name(_, name) => {
                        let name = String::from_utf8_lossy(name).into_owned();
                        iat_slots.insert(slot, name.clone());
                        r.imports.push((module.clone(), name));
                    }
                    Import::Ordinal(n) => ordinals.push(format!("{module}#{n}")),
                }
                index += 1;
            }
        }
    }
    let foreign_modules: BTreeSet<&str> = r.imports.iter().map(|(m, _)| m.as_str()).filter(|m| !m.eq_ignore_ascii_case(port.module)).collect();
    r.rule(
        "imports only from the port driver (HLK Storage Imports; no ntoskrnl)",
        foreign_modules.is_empty() && ordinals.is_empty(),
        if foreign_modules.is_empty() {
            format!("{} routines, all from {}", r.imports.len(), port.module)
        } else {
            format!("also from {}", foreign_modules.into_iter().collect::<Vec<_>>().join(", "))
        },
    );
    let undocumented: Vec<&str> = r.imports.iter().map(|(_, n)| n.as_str()).filter(|n| !port.routines.contains(n)).collect();
    r.rule(
        "every import a documented port routine",
        undocumented.is_empty() && ordinals.is_empty(),
        if undocumented.is_empty() && ordinals.is_empty() { "yes".into() } else { format!("not documented: {}", [undocumented.join(", "), ordinals.join(", ")].join(" ")) },
    );
    let inline: Vec<&str> = r.imports.iter().map(|(_, n)| n.as_str()).filter(|n| port.inline_on_x64.iter().any(|p| n.starts_with(p))).collect();
    r.rule("no register/port accessor imports (macros on x64)", inline.is_empty(), if inline.is_empty() { "none".into() } else { inline.join(", ") });
    let mem_imports: Vec<&str> =
        r.imports.iter().map(|(_, n)| n.as_str()).filter(|n| matches!(*n, "memcpy" | "memset" | "memmove" | "memcmp")).collect();
    r.rule(
        "no memcpy/memset/memmove/memcmp imports",
        mem_imports.is_empty(),
        if mem_imports.is_empty() { "none".into() } else { mem_imports.join(", ") },
    );
    let chkstk_import = r.imports.iter().any(|(_, n)| n.contains("chkstk"));
    let chkstk_linked = map.is_some_and(|m| m.linked_in().any(|s| s.name.contains("__chkstk")));
    r.rule("no __chkstk (kernel stacks are not probed that way)", !chkstk_import && !chkstk_linked, if chkstk_import || chkstk_linked { "present" } else { "absent" });

    // --- Map: LTO, intrinsics, the interrupt routine ------------------------------------------
    if let Some(map) = map {
        for sym in map.linked_in() {
            r.linked_crates.insert(map::crate_of(&sym.object));
        }
        r.mem_functions = map
            .linked_in()
            .filter(|s| matches!(s.name.as_str(), "memcpy" | "memset" | "memmove" | "memcmp" | "bcmp"))
            .map(|s| s.name.clone())
            .collect();
        r.panic_handler = map.linked_in().any(|s| s.name.contains("rust_begin_unwind") || s.name.contains("panic_handler") || s.name.contains("6panic5panic"));
        // Fat LTO makes one object of the driver and everything it uses; only compiler_builtins
        // never takes part in LTO.
        let others: Vec<&String> = r.linked_crates.iter().filter(|c| c.as_str() != "compiler_builtins").collect();
        if map.linked_in().any(|s| s.object.ends_with(".rcgu.o")) {
            r.rule(
                "LTO applied: one module of the driver and its dependencies",
                others.len() == 1,
                format!("code from {}", others.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")),
            );
        }
        r.interrupt = interrupt_stats(&file, image, map, port, &iat_slots);
    }
    Ok(r)
}

/// The `.pdata` extent of the function starting at `rva`.
fn function_extent(file: &PeFile64<'_>, image: &[u8], rva: u32) -> Option<u32> {
    let dir = file.data_directory(pe::IMAGE_DIRECTORY_ENTRY_EXCEPTION)?;
    let data = dir.data(image, &file.section_table()).ok()?;
    data.chunks_exact(12).find_map(|entry| {
        let begin = u32::from_le_bytes(entry.get(0..4)?.try_into().ok()?);
        let end = u32::from_le_bytes(entry.get(4..8)?.try_into().ok()?);
        (begin == rva).then(|| end.saturating_sub(begin))
    })
}

fn interrupt_stats(file: &PeFile64<'_>, image: &[u8], map: &Map, port: &PortRules, iat: &BTreeMap<u32, String>) -> Option<FunctionStats> {
    let sym = port.interrupt_symbols.iter().find_map(|p| map.linked_in().find(|s| s.name.contains(p)))?;
    let rva = u32::try_from(sym.rva).ok()?;
    let bytes = function_extent(file, image, rva)?;
    let code = file.section_table().pe_data_at(image, rva)?.get(..bytes as usize)?;
    let base = file.nt_headers().optional_header().image_base();
    let ip = base + u64::from(rva);
    let mut decoder = Decoder::with_ip(64, code, ip, DecoderOptions::NONE);
    let instructions: Vec<Instruction> = decoder.iter().collect();
    let notify_slot = iat.iter().find(|(_, n)| n.as_str() == port.notification).map(|(slot, _)| base + u64::from(*slot));
    let (normal_path, listing) = match notify_slot {
        Some(slot) => shortest_path_through(&instructions, ip, ip + u64::from(bytes), slot),
        None => (None, Vec::new()),
    };
    Some(FunctionStats { symbol: sym.name.clone(), rva, bytes, instructions: instructions.len(), normal_path, normal_path_listing: listing })
}

/// The shortest path (in instructions) from the first instruction through a call of the import
/// slot `slot` to a return or a jump out of `[start, end)`, with its listing. Paths through port
/// I/O instructions are not taken (the registers are memory-mapped).
fn shortest_path_through(code: &[Instruction], start: u64, end: u64, slot: u64) -> (Option<usize>, Vec<String>) {
    let index: BTreeMap<u64, usize> = code.iter().enumerate().map(|(i, ins)| (ins.ip(), i)).collect();
    let successors = |i: usize| -> (Vec<usize>, bool) {
        let Some(ins) = code.get(i) else { return (Vec::new(), true) };
        // PVSCSI's registers are memory-mapped: the `in`/`out` branches of the accessor layer
        // (an I/O-space range) are not the normal path.
        if matches!(ins.mnemonic(), Mnemonic::In | Mnemonic::Out) {
            return (Vec::new(), false);
        }
        let next = index.get(&ins.next_ip()).copied();
        let target = || {
            (ins.op0_kind() == OpKind::NearBranch64).then(|| ins.near_branch64()).filter(|t| (start..end).contains(t)).and_then(|t| index.get(&t).copied())
        };
        match ins.flow_control() {
            FlowControl::Return | FlowControl::Interrupt | FlowControl::Exception | FlowControl::IndirectBranch => {
                (Vec::new(), true)
            }
            FlowControl::UnconditionalBranch => target().map_or((Vec::new(), true), |t| (vec![t], false)),
            FlowControl::ConditionalBranch => (next.into_iter().chain(target()).collect(), false),
            _ => (next.into_iter().collect(), next.is_none()),
        }
    };
    let calls_slot = |ins: &Instruction| {
        ins.flow_control() == FlowControl::IndirectCall && ins.is_ip_rel_memory_operand() && ins.ip_rel_memory_address() == slot
    };
    // BFS from the entry to every instruction.
    let bfs = |from: usize| -> Vec<Option<usize>> {
        let mut prev: Vec<Option<usize>> = vec![None; code.len()];
        let mut seen = vec![false; code.len()];
        let mut queue = VecDeque::from([from]);
        if let Some(s) = seen.get_mut(from) {
            *s = true;
        }
        while let Some(i) = queue.pop_front() {
            for n in successors(i).0 {
                if let Some(s) = seen.get_mut(n)
                    && !*s
                {
                    *s = true;
                    if let Some(p) = prev.get_mut(n) {
                        *p = Some(i);
                    }
                    queue.push_back(n);
                }
            }
        }
        prev.iter_mut().enumerate().for_each(|(i, p)| {
            if i == from {
                *p = Some(i);
            } else if !seen.get(i).copied().unwrap_or(false) {
                *p = None;
            }
        });
        prev
    };
    let path_to = |prev: &[Option<usize>], from: usize, to: usize| -> Option<Vec<usize>> {
        let mut path = vec![to];
        let mut at = to;
        while at != from {
            at = (*prev.get(at)?)?;
            path.push(at);
        }
        path.reverse();
        Some(path)
    };
    let from_entry = bfs(0);
    let mut best: Option<Vec<usize>> = None;
    for (c, ins) in code.iter().enumerate() {
        if !calls_slot(ins) || from_entry.get(c).copied().flatten().is_none() {
            continue;
        }
        let Some(head) = path_to(&from_entry, 0, c) else { continue };
        let from_call = bfs(c);
        let exits = (0..code.len()).filter(|&i| successors(i).1 && from_call.get(i).copied().flatten().is_some());
        for exit in exits {
            let Some(tail) = path_to(&from_call, c, exit) else { continue };
            let whole: Vec<usize> = head.iter().chain(tail.iter().skip(1)).copied().collect();
            if best.as_ref().is_none_or(|b| whole.len() < b.len()) {
                best = Some(whole);
            }
        }
    }
    let mut formatter = IntelFormatter::new();
    let listing = best
        .as_ref()
        .map(|p| {
            p.iter()
                .filter_map(|&i| code.get(i))
                .map(|ins| {
                    let mut text = String::new();
                    formatter.format(ins, &mut text);
                    format!("{:#x}: {text}", ins.ip())
                })
                .collect()
        })
        .unwrap_or_default();
    (best.map(|p| p.len()), listing)
}
