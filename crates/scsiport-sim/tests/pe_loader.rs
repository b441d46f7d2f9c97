//! The PE loader's own tests, independent of the Windows toolchain: small PE32+ AMD64 NATIVE
//! images are built here with `object`'s PE writer (their code assembled with iced's block
//! encoder), loaded, inspected, and broken one fault at a time.
//!
//! - A good image loads away from its preferred base, relocated, linked against the emulated
//!   `SCSIPORT.SYS`, each section with the page protection its flags ask for (read back from
//!   `/proc/self/maps`) and the headers read-only; its `DriverEntry` runs.
//! - Every refusal the loader documents comes from one mutation of the good image (or one builder
//!   option) and is asserted by its `LoadError` variant and its message.
//! - Seeded random corruption never panics and never crashes the process; a handful of corrupted
//!   images stay as regression cases (mutations in code, no binary files).
//! - A tiny miniport image whose `DriverEntry` calls `ScsiPortInitialize` and whose
//!   `HwScsiFindAdapter` touches its registers directly: the emulated accesses reach the HBA in
//!   program order, traced and counted; one the emulator cannot perform is the verifier's 0xD1
//!   violation, not a crash.
//! - The same with a tiny Storport miniport, linked against `STORPORT.SYS` on a Storport machine;
//!   an image of the other port is refused by `Machine::load_image`.
//! - A fault in a loaded image that is not the emulator's is reported image-relative before the
//!   process dies (checked in a child process of this test binary); `int 0x29` as bug check 0x139.
#![allow(clippy::cast_possible_truncation, clippy::too_many_lines, clippy::struct_excessive_bools)]

use std::collections::HashMap;
use std::io::Write as _;
use std::sync::{Arc, Mutex};

use iced_x86::{BlockEncoder, BlockEncoderOptions, Code, Instruction, InstructionBlock, MemoryOperand, Register};
use object::pe;
use object::write::pe::{NtHeaders, Writer};
use scsiport_sim::hba::{Bar, BarKind, Hba, PciIdentity, Waker};
use scsiport_sim::mem::SimDma;
use scsiport_sim::pe::{DriverImage, LoadError, load};
use scsiport_sim::{Machine, Port, PortConfig, Rule, Schedule, scsiport_exports, storport_exports};
use scsiport_sys as sys;

// ---------------------------------------------------------------------------------------------
// Building images
// ---------------------------------------------------------------------------------------------

/// Where the linker meant the images to go (link.exe's default for a driver).
const PREFERRED_BASE: u64 = 0x1_4000_0000;
const PAGE: u32 = 0x1000;
/// Every section of a built image fits in one page, so the layout is fixed.
const TEXT_RVA: u32 = 0x1000;
const RDATA_RVA: u32 = 0x2000;
const DATA_RVA: u32 = 0x3000;
const EXTRA_RVA: u32 = 0x4000;
/// `.rdata` starts with this constant; the tiny `DriverEntry` returns it through `.data`'s pointer.
const CONSTANT: u32 = 0x5EC7_1011;
/// The import table's offset in `.rdata`.
const IMPORTS_OFF: u32 = 0x10;
/// Bytes of `.data`.
const DATA_LEN: usize = 0x200;
/// Where the TLS and delay-load directories point when a builder option asks for them.
const TLS_OFF: u32 = 0x100;
const DELAY_OFF: u32 = 0x180;

#[derive(Clone, Debug)]
enum Imp {
    Name(&'static str),
    Ordinal(u16),
}

#[derive(Clone, Debug)]
struct Module {
    name: &'static str,
    imports: Vec<Imp>,
}

fn scsiport(names: &[&'static str]) -> Module {
    Module { name: "SCSIPORT.SYS", imports: names.iter().map(|n| Imp::Name(n)).collect() }
}

/// Absolute (preferred-base) addresses the code and `.data` may refer to.
#[derive(Clone, Debug, Default)]
struct Layout {
    /// IAT slot RVA of every imported name.
    iat: HashMap<String, u32>,
}

impl Layout {
    fn iat(&self, name: &str) -> u64 {
        PREFERRED_BASE + u64::from(*self.iat.get(name).unwrap_or_else(|| panic!("{name} is not imported")))
    }
}

fn data(off: u32) -> u64 {
    PREFERRED_BASE + u64::from(DATA_RVA + off)
}

/// Instructions with labels: a label is an instruction's IP before encoding (the block encoder's
/// convention; real addresses are far above the small label numbers).
#[derive(Default)]
struct Asm {
    ins: Vec<Instruction>,
    labels: u64,
    pending: Option<u64>,
    /// A label the test wants the RVA of (the instruction that faults, for instance).
    mark: Option<u64>,
}

impl Asm {
    fn label(&mut self) -> u64 {
        self.labels += 1;
        self.labels
    }

    fn bind(&mut self, label: u64) {
        assert!(self.pending.replace(label).is_none(), "two labels on one instruction");
    }

    /// Labels the next instruction as the one the test asks about.
    fn mark(&mut self) {
        let l = self.label();
        self.bind(l);
        self.mark = Some(l);
    }

    fn op(&mut self, i: Result<Instruction, iced_x86::IcedError>) {
        let mut i = i.expect("a valid instruction");
        if let Some(l) = self.pending.take() {
            i.set_ip(l);
        }
        self.ins.push(i);
    }

    fn plain(&mut self, code: Code) {
        self.op(Ok(Instruction::with(code)));
    }
}

fn mem(base: Register, displ: i64) -> MemoryOperand {
    MemoryOperand::with_base_displ(base, displ)
}

/// `[base + offset of a structure field]`.
fn at_field(base: Register, offset: usize) -> MemoryOperand {
    mem(base, i64::try_from(offset).expect("a field offset"))
}

fn rip(target: u64) -> MemoryOperand {
    MemoryOperand::with_base_displ(Register::RIP, target.cast_signed())
}

/// What goes into `.text` and `.data`.
struct Program {
    code: Asm,
    entry: u64,
    /// `.data` contents.
    data: Vec<u8>,
    /// Absolute pointers in `.data` (offset, label or `None` for `.rdata`'s constant), each with
    /// a DIR64 relocation.
    pointers: Vec<(u32, Option<u64>)>,
}

/// `DriverEntry` returns `CONSTANT`, read through the absolute pointer in `.data` (relocated):
/// `mov rax, [rip+slot]; mov eax, [rax]; ret`.
fn tiny(_: &Layout, _: fn(&mut Asm)) -> Program {
    let mut a = Asm::default();
    let entry = a.label();
    a.bind(entry);
    a.op(Instruction::with2(Code::Mov_r64_rm64, Register::RAX, rip(data(0))));
    a.op(Instruction::with2(Code::Mov_r32_rm32, Register::EAX, mem(Register::RAX, 0)));
    a.plain(Code::Retnq);
    Program { code: a, entry, data: vec![0; DATA_LEN], pointers: vec![(0, None)] }
}

#[derive(Clone)]
struct Spec {
    pe32: bool,
    machine: u16,
    subsystem: u16,
    characteristics: u16,
    image_base: u64,
    modules: Vec<Module>,
    program: fn(&Layout, fn(&mut Asm)) -> Program,
    /// Code the program runs where it touches its registers (see [`miniport`]).
    body: fn(&mut Asm),
    text_flags: u32,
    extra_sections: Vec<(&'static str, u32)>,
    extra_relocs: Vec<(u32, u16)>,
    reloc_section: bool,
    tls: bool,
    delay_imports: bool,
    entry: Option<u32>,
}

fn no_body(_: &mut Asm) {}

impl Default for Spec {
    fn default() -> Self {
        Self {
            pe32: false,
            machine: pe::IMAGE_FILE_MACHINE_AMD64,
            subsystem: pe::IMAGE_SUBSYSTEM_NATIVE,
            // What link.exe writes for a driver: executable, large-address aware.
            characteristics: pe::IMAGE_FILE_EXECUTABLE_IMAGE | pe::IMAGE_FILE_LARGE_ADDRESS_AWARE,
            image_base: PREFERRED_BASE,
            modules: vec![scsiport(&["ScsiPortInitialize", "ScsiPortGetDeviceBase", "ScsiPortNotification"])],
            program: tiny,
            body: no_body,
            text_flags: pe::IMAGE_SCN_CNT_CODE | pe::IMAGE_SCN_MEM_EXECUTE | pe::IMAGE_SCN_MEM_READ,
            extra_sections: Vec::new(),
            extra_relocs: Vec::new(),
            reloc_section: true,
            tls: false,
            delay_imports: false,
            entry: None,
        }
    }
}

/// A built image and where things are in it.
#[derive(Clone, Debug)]
struct Built {
    bytes: Vec<u8>,
    /// (module, import, IAT slot RVA).
    iat: Vec<(String, String, u32)>,
    /// RVA of the program's marked instruction.
    mark: Option<u32>,
    /// `.data` offsets holding absolute pointers, and the RVA each points at.
    pointers: Vec<(u32, u32)>,
    size_of_image: u32,
}

/// An import directory as [`import_table`] lays it out.
struct ImportTable {
    bytes: Vec<u8>,
    /// Bytes of the descriptors (the import directory's size).
    directory_len: u32,
    /// RVA and bytes of the IATs (the IAT directory).
    iat_rva: u32,
    iat_len: u32,
    /// (module, import, IAT slot RVA).
    slots: Vec<(String, String, u32)>,
}

/// The import directory at `rva`: descriptors, lookup tables, IATs (contiguous, for the IAT
/// directory), hint/name entries, module names.
fn import_table(modules: &[Module], rva: u32) -> ImportTable {
    let align8 = |v: u32| v.div_ceil(8) * 8;
    let descriptors = align8((modules.len() as u32 + 1) * 20);
    let thunks: u32 = modules.iter().map(|m| (m.imports.len() as u32 + 1) * 8).sum();
    let lookup_start = descriptors;
    let iat_start = lookup_start + thunks;
    let mut strings_end = iat_start + thunks;
    let mut hint_names = Vec::new();
    for m in modules {
        for i in &m.imports {
            if let Imp::Name(n) = i {
                hint_names.push(strings_end);
                strings_end += (2 + n.len() as u32 + 1).div_ceil(2) * 2;
            }
        }
    }
    let mut module_names = Vec::new();
    for m in modules {
        module_names.push(strings_end);
        strings_end += m.name.len() as u32 + 1;
    }
    let mut out = vec![0u8; strings_end as usize];
    let put32 = |out: &mut Vec<u8>, at: u32, v: u32| out[at as usize..at as usize + 4].copy_from_slice(&v.to_le_bytes());
    let put64 = |out: &mut Vec<u8>, at: u32, v: u64| out[at as usize..at as usize + 8].copy_from_slice(&v.to_le_bytes());
    let mut slots = Vec::new();
    let (mut ilt, mut iat, mut hn) = (lookup_start, iat_start, hint_names.into_iter());
    for (k, m) in modules.iter().enumerate() {
        let d = k as u32 * 20;
        put32(&mut out, d, rva + ilt); // OriginalFirstThunk
        put32(&mut out, d + 12, rva + module_names[k]); // Name
        put32(&mut out, d + 16, rva + iat); // FirstThunk
        let module_name = module_names[k] as usize;
        out[module_name..module_name + m.name.len()].copy_from_slice(m.name.as_bytes());
        for i in &m.imports {
            let (thunk, what) = match i {
                Imp::Name(n) => {
                    let at = hn.next().expect("one hint/name entry per name");
                    out[at as usize + 2..at as usize + 2 + n.len()].copy_from_slice(n.as_bytes());
                    (u64::from(rva + at), (*n).to_string())
                }
                Imp::Ordinal(o) => (pe::IMAGE_ORDINAL_FLAG64 | u64::from(*o), format!("#{o}")),
            };
            put64(&mut out, ilt, thunk);
            put64(&mut out, iat, thunk);
            slots.push((m.name.to_string(), what, rva + iat));
            ilt += 8;
            iat += 8;
        }
        ilt += 8;
        iat += 8;
    }
    ImportTable { bytes: out, directory_len: descriptors, iat_rva: rva + iat_start, iat_len: thunks, slots }
}

fn build(spec: &Spec) -> Built {
    let imports = import_table(&spec.modules, RDATA_RVA + IMPORTS_OFF);
    let mut layout = Layout::default();
    for (_, name, rva) in &imports.slots {
        layout.iat.insert(name.clone(), *rva);
    }
    let mut rdata_bytes = vec![0u8; IMPORTS_OFF as usize];
    rdata_bytes[..4].copy_from_slice(&CONSTANT.to_le_bytes());
    rdata_bytes.extend_from_slice(&imports.bytes);
    assert!(rdata_bytes.len() <= PAGE as usize, ".rdata fits in a page");

    let program = (spec.program)(&layout, spec.body);
    let block = InstructionBlock::new(&program.code.ins, PREFERRED_BASE + u64::from(TEXT_RVA));
    let encoded = BlockEncoder::encode(64, block, BlockEncoderOptions::RETURN_NEW_INSTRUCTION_OFFSETS).expect("the program assembles");
    let code = encoded.code_buffer;
    assert!(code.len() <= PAGE as usize, ".text fits in a page");
    let mut labels = HashMap::new();
    for (i, off) in program.code.ins.iter().zip(&encoded.new_instruction_offsets) {
        if i.ip() != 0 {
            labels.insert(i.ip(), TEXT_RVA + off);
        }
    }
    let mut data_bytes = program.data;
    assert!(data_bytes.len() <= PAGE as usize, ".data fits in a page");
    let mut pointers = Vec::new();
    for (off, target) in &program.pointers {
        let rva = target.map_or(RDATA_RVA, |l| labels[&l]);
        data_bytes[*off as usize..*off as usize + 8].copy_from_slice(&(spec.image_base + u64::from(rva)).to_le_bytes());
        pointers.push((*off, rva));
    }

    let mut buf = Vec::new();
    let mut w = Writer::new(!spec.pe32, PAGE, 0x200, &mut buf);
    w.reserve_dos_header_and_stub();
    w.reserve_nt_headers(pe::IMAGE_NUMBEROF_DIRECTORY_ENTRIES);
    let sections = 3 + spec.extra_sections.len() + usize::from(spec.reloc_section);
    w.reserve_section_headers(sections as u16);
    let text = w.reserve_section(*b".text\0\0\0", spec.text_flags, code.len() as u32, code.len() as u32);
    let rdata_range = w.reserve_rdata_section(rdata_bytes.len() as u32);
    let data_range = w.reserve_data_section(data_bytes.len() as u32, data_bytes.len() as u32);
    assert_eq!((text.virtual_address, rdata_range.virtual_address, data_range.virtual_address), (TEXT_RVA, RDATA_RVA, DATA_RVA));
    let mut extras = Vec::new();
    for (i, (name, flags)) in spec.extra_sections.iter().enumerate() {
        let mut n = [0u8; 8];
        n[..name.len()].copy_from_slice(name.as_bytes());
        let r = w.reserve_section(n, *flags, 16, 16);
        assert_eq!(r.virtual_address, EXTRA_RVA + i as u32 * PAGE);
        extras.push(r);
    }
    w.set_data_directory(pe::IMAGE_DIRECTORY_ENTRY_IMPORT, RDATA_RVA + IMPORTS_OFF, imports.directory_len);
    w.set_data_directory(pe::IMAGE_DIRECTORY_ENTRY_IAT, imports.iat_rva, imports.iat_len);
    if spec.tls {
        w.set_data_directory(pe::IMAGE_DIRECTORY_ENTRY_TLS, DATA_RVA + TLS_OFF, 0x28);
    }
    if spec.delay_imports {
        w.set_data_directory(pe::IMAGE_DIRECTORY_ENTRY_DELAY_IMPORT, DATA_RVA + DELAY_OFF, 0x20);
    }
    let mut relocs: Vec<(u32, u16)> = pointers.iter().map(|(off, _)| (DATA_RVA + off, pe::IMAGE_REL_BASED_DIR64)).collect();
    relocs.extend_from_slice(&spec.extra_relocs);
    relocs.sort_unstable();
    if spec.reloc_section {
        for (rva, typ) in &relocs {
            w.add_reloc(*rva, *typ);
        }
        w.reserve_reloc_section();
    }
    let size_of_image = w.virtual_len();
    let entry = spec.entry.unwrap_or_else(|| labels[&program.entry]);
    w.write_dos_header_and_stub().expect("DOS header");
    w.write_nt_headers(NtHeaders {
        machine: spec.machine,
        time_date_stamp: 0,
        characteristics: spec.characteristics,
        major_linker_version: 14,
        minor_linker_version: 0,
        address_of_entry_point: entry,
        image_base: spec.image_base,
        major_operating_system_version: 10,
        minor_operating_system_version: 0,
        major_image_version: 10,
        minor_image_version: 0,
        major_subsystem_version: 10,
        minor_subsystem_version: 0,
        subsystem: spec.subsystem,
        dll_characteristics: pe::IMAGE_DLLCHARACTERISTICS_HIGH_ENTROPY_VA
            | pe::IMAGE_DLLCHARACTERISTICS_DYNAMIC_BASE
            | pe::IMAGE_DLLCHARACTERISTICS_NX_COMPAT,
        size_of_stack_reserve: 0x4_0000,
        size_of_stack_commit: 0x1000,
        size_of_heap_reserve: 0x10_0000,
        size_of_heap_commit: 0x1000,
    });
    w.write_section_headers();
    w.write_section(text.file_offset, &code);
    w.write_section(rdata_range.file_offset, &rdata_bytes);
    w.write_section(data_range.file_offset, &data_bytes);
    for r in &extras {
        w.write_section(r.file_offset, &[0xCC; 16]);
    }
    w.write_reloc_section();
    let mark = program.code.mark.map(|l| labels[&l]);
    Built { bytes: buf, iat: imports.slots, mark, pointers, size_of_image }
}

fn good() -> Built {
    build(&Spec::default())
}

fn try_load(bytes: &[u8]) -> Result<DriverImage, LoadError> {
    load("test.sys", bytes, &scsiport_exports())
}

// ---------------------------------------------------------------------------------------------
// Reading and rewriting header fields (offsets from object's own structure definitions)
// ---------------------------------------------------------------------------------------------

fn get32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

fn set16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_le_bytes());
}

fn set32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

/// Offset of the NT headers (`e_lfanew`).
fn nt(b: &[u8]) -> usize {
    get32(b, std::mem::offset_of!(pe::ImageDosHeader, e_lfanew)) as usize
}

/// Offset of a file header field.
fn file_header(b: &[u8], field: usize) -> usize {
    nt(b) + 4 + field
}

/// Offset of an optional header field.
fn optional(b: &[u8], field: usize) -> usize {
    nt(b) + 4 + size_of::<pe::ImageFileHeader>() + field
}

/// Offset of a data directory entry.
fn directory(b: &[u8], index: usize) -> usize {
    optional(b, size_of::<pe::ImageOptionalHeader64>()) + index * size_of::<pe::ImageDataDirectory>()
}

/// Offset of the section table.
fn section_table(b: &[u8]) -> usize {
    let soh = u16::from_le_bytes(b[file_header(b, 16)..file_header(b, 16) + 2].try_into().unwrap());
    nt(b) + 4 + size_of::<pe::ImageFileHeader>() + usize::from(soh)
}

fn section_count(b: &[u8]) -> usize {
    let at = file_header(b, std::mem::offset_of!(pe::ImageFileHeader, number_of_sections));
    usize::from(u16::from_le_bytes(b[at..at + 2].try_into().unwrap()))
}

/// Offset of the header of section `name`.
fn section(b: &[u8], name: &str) -> usize {
    let table = section_table(b);
    (0..section_count(b))
        .map(|i| table + i * size_of::<pe::ImageSectionHeader>())
        .find(|&h| b[h..h + 8].split(|&c| c == 0).next() == Some(name.as_bytes()))
        .unwrap_or_else(|| panic!("no section {name}"))
}

macro_rules! field {
    ($t:ty, $f:ident) => {
        std::mem::offset_of!($t, $f)
    };
}

fn sec_field(b: &[u8], name: &str, field: usize) -> usize {
    section(b, name) + field
}

// ---------------------------------------------------------------------------------------------
// What the host made of a mapping: /proc/self/maps
// ---------------------------------------------------------------------------------------------

/// `(start, end, perms)` of every mapping overlapping `[base, base+len)`.
fn maps(base: usize, len: usize) -> Vec<(usize, usize, String)> {
    let text = std::fs::read_to_string("/proc/self/maps").expect("/proc/self/maps");
    text.lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let range = it.next()?;
            let perms = it.next()?.to_string();
            let (s, e) = range.split_once('-')?;
            let (s, e) = (usize::from_str_radix(s, 16).ok()?, usize::from_str_radix(e, 16).ok()?);
            (s < base + len && e > base).then_some((s, e, perms))
        })
        .collect()
}

fn perms_at(maps: &[(usize, usize, String)], addr: usize) -> &str {
    maps.iter().find(|(s, e, _)| addr >= *s && addr < *e).map_or("unmapped", |(_, _, p)| &p[..3])
}

/// Asserts that every page of the image has the protection its section asks for and that no
/// page is writable and executable.
fn assert_protections(image: &DriverImage) {
    let m = maps(image.base(), image.size());
    for (s, e, p) in &m {
        assert!(!(p.contains('w') && p.contains('x')), "{s:#x}-{e:#x} is {p}: writable and executable");
    }
    let header_pages = 1;
    for page in 0..image.size() / PAGE as usize {
        let rva = page * PAGE as usize;
        let want = if page < header_pages {
            "r--"
        } else {
            match image.sections().iter().find(|s| rva >= s.rva as usize && rva < (s.rva + s.len) as usize) {
                None => "---",
                Some(s) => match (s.flags & pe::IMAGE_SCN_MEM_EXECUTE != 0, s.flags & pe::IMAGE_SCN_MEM_WRITE != 0, s.flags & pe::IMAGE_SCN_MEM_READ != 0) {
                    (true, _, _) => "r-x",
                    (false, true, _) => "rw-",
                    (false, false, true) => "r--",
                    (false, false, false) => "---",
                },
            }
        };
        assert_eq!(perms_at(&m, image.base() + rva), want, "page at RVA {rva:#x} ({:?})", image.sections());
    }
}

// ---------------------------------------------------------------------------------------------
// A good image
// ---------------------------------------------------------------------------------------------

fn export(name: &str) -> usize {
    scsiport_exports().symbols.iter().find(|(n, _)| *n == name).map_or_else(|| panic!("SCSIPORT.SYS has no {name}"), |(_, a)| *a)
}

/// Everything a good image promises once loaded.
fn assert_loaded_well(built: &Built, image: &DriverImage) {
    assert_ne!(image.base() as u64, image.preferred_base(), "the image is placed away from its preferred base");
    assert_eq!(image.base() % PAGE as usize, 0);
    assert_eq!(image.size(), built.size_of_image as usize);
    assert_eq!(image.relocations(), built.pointers.len(), "one DIR64 per absolute pointer (ABSOLUTE padding is not counted)");
    for (off, target) in &built.pointers {
        let slot = u64::from_le_bytes(image.read::<8>((DATA_RVA + off) as usize).expect("the slot is readable"));
        assert_eq!(slot, image.base() as u64 + u64::from(*target), "the relocated slot at .data+{off:#x} holds base + target RVA");
    }
    for (module, name, rva) in &built.iat {
        let slot = u64::from_le_bytes(image.read::<8>(*rva as usize).expect("the IAT is readable"));
        assert_eq!(slot, export(name) as u64, "IAT slot of {module}!{name} holds the export's address");
    }
    let names: Vec<_> = built.iat.iter().map(|(m, n, _)| (m.clone(), n.clone())).collect();
    assert_eq!(image.imports(), names.as_slice());
    assert_protections(image);
}

#[test]
fn a_good_image_loads_relocated_linked_and_protected() {
    let built = good();
    let image = try_load(&built.bytes).expect("the good image loads");
    assert_loaded_well(&built, &image);
    let names: Vec<_> = image.sections().iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, [".text", ".rdata", ".data", ".reloc"]);
    assert_eq!(image.preferred_base(), PREFERRED_BASE);
    assert_eq!(image.rva_of(image.base() + 0x1234), Some(0x1234));
    assert_eq!(image.rva_of(image.base() + image.size()), None);
    // The code runs: RIP-relative load of the relocated pointer, then through it.
    // SAFETY: the entry point of the image just loaded: `mov rax, [rip+slot]; mov eax, [rax];
    // ret`, which touches only the image.
    let r = unsafe { (image.entry())(std::ptr::null_mut(), std::ptr::null_mut()) };
    assert_eq!(r, CONSTANT, "DriverEntry read .rdata through .data's relocated pointer");
}

#[test]
fn two_loads_of_one_image_are_independent() {
    let built = good();
    let a = try_load(&built.bytes).unwrap();
    let b = try_load(&built.bytes).unwrap();
    assert_ne!(a.base(), b.base());
    assert_loaded_well(&built, &a);
    assert_loaded_well(&built, &b);
    drop(a);
    assert_loaded_well(&built, &b);
}

#[test]
fn the_module_name_is_compared_without_case_and_an_image_without_reloc_section_loads() {
    // rust-lld leaves no .reloc in rspvscsi.sys (every reference is RIP-relative); the kernel
    // relocates an image only through the directory, so none is fine.
    let spec = Spec {
        modules: vec![Module { name: "scsiport.sys", imports: vec![Imp::Name("ScsiPortNotification")] }],
        reloc_section: false,
        ..Spec::default()
    };
    let built = build(&spec);
    let image = try_load(&built.bytes).expect("loads");
    assert_eq!(image.relocations(), 0);
    assert_eq!(image.imports(), [("scsiport.sys".to_string(), "ScsiPortNotification".to_string())]);
    let iat = built.iat[0].2 as usize;
    assert_eq!(u64::from_le_bytes(image.read::<8>(iat).unwrap()), export("ScsiPortNotification") as u64);
}

#[test]
fn an_image_is_moved_even_when_the_host_offers_its_preferred_base() {
    // Find the address the host hands out next for a mapping of this size, and make it the
    // image's preferred base: the loader must still move it (the kernel never leaves a driver
    // where the linker put it, and relocations must be exercised).
    let size = good().size_of_image as usize;
    for _ in 0..8 {
        // SAFETY: a fresh anonymous mapping, unmapped right away; only its address is kept.
        let p = unsafe { libc::mmap(std::ptr::null_mut(), size, libc::PROT_NONE, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1, 0) };
        assert_ne!(p, libc::MAP_FAILED);
        // SAFETY: the mapping just made.
        unsafe { libc::munmap(p, size) };
        let built = build(&Spec { image_base: p as u64, ..Spec::default() });
        let image = try_load(&built.bytes).expect("loads");
        assert_loaded_well(&built, &image);
    }
}

#[test]
fn an_image_the_fault_handler_cannot_track_is_refused() {
    // The fault handler knows loaded images from a fixed table (it cannot lock or allocate); an
    // image past its capacity would run with its code unknown to the handler, so its register
    // accesses could not be emulated. Checked in a child process, which holds no other image.
    const TEST: &str = "an_image_the_fault_handler_cannot_track_is_refused";
    if std::env::var_os(CHILD).is_none() {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", TEST, "--nocapture", "--test-threads=1"])
            .env(CHILD, "1")
            .output()
            .expect("the test binary runs");
        assert!(out.status.success(), "the child failed:\n{}", String::from_utf8_lossy(&out.stderr));
        return;
    }
    let built = good();
    let mut images = Vec::new();
    let refused = loop {
        match try_load(&built.bytes) {
            Ok(image) => images.push(image),
            Err(e) => break e,
        }
        assert!(images.len() <= 1024, "no limit reached");
    };
    assert_eq!(images.len(), 64, "the table holds 64 images");
    assert!(matches!(&refused, LoadError::Map(m) if m.contains("64")), "{refused}");
    // A slot freed is a slot usable again.
    images.pop();
    images.push(try_load(&built.bytes).expect("a freed slot is reused"));
}

// ---------------------------------------------------------------------------------------------
// Refusals
// ---------------------------------------------------------------------------------------------

/// Loads `bytes`, expecting `want`, and checks that the message says `words`.
#[track_caller]
fn refused(bytes: &[u8], want: &LoadError, words: &[&str]) {
    match try_load(bytes) {
        Ok(image) => panic!("loaded, expected {want:?}: {image:?}"),
        Err(e) => {
            assert_eq!(std::mem::discriminant(&e), std::mem::discriminant(want), "{e:?}, expected {want:?}");
            let message = e.to_string();
            for w in words {
                assert!(message.contains(w), "{message:?} does not say {w:?}");
            }
            if !matches!(want, LoadError::Malformed(_) | LoadError::BadHeader(_) | LoadError::BadSection(_) | LoadError::BadRelocation(_)) {
                assert_eq!(&e, want);
            }
        }
    }
}

#[test]
fn refuses_pe32() {
    let built = build(&Spec { pe32: true, machine: pe::IMAGE_FILE_MACHINE_I386, ..Spec::default() });
    refused(&built.bytes, &LoadError::NotPe32Plus, &["PE32", "PE32+"]);
    let built = build(&Spec { pe32: true, ..Spec::default() });
    refused(&built.bytes, &LoadError::NotPe32Plus, &["PE32"]);
}

#[test]
fn refuses_other_machines() {
    for (machine, hex) in [(pe::IMAGE_FILE_MACHINE_I386, "0x014c"), (pe::IMAGE_FILE_MACHINE_ARM64, "0xaa64"), (pe::IMAGE_FILE_MACHINE_ARMNT, "0x01c4")] {
        let built = build(&Spec { machine, ..Spec::default() });
        refused(&built.bytes, &LoadError::NotAmd64(machine), &[hex, "not AMD64"]);
        // The same as a rewrite of the good image's field.
        let mut b = good().bytes;
        let at = file_header(&b, field!(pe::ImageFileHeader, machine));
        set16(&mut b, at, machine);
        refused(&b, &LoadError::NotAmd64(machine), &[hex]);
    }
}

#[test]
fn refuses_subsystems_other_than_native() {
    for subsystem in [pe::IMAGE_SUBSYSTEM_WINDOWS_GUI, pe::IMAGE_SUBSYSTEM_WINDOWS_CUI, pe::IMAGE_SUBSYSTEM_EFI_BOOT_SERVICE_DRIVER, 0] {
        let built = build(&Spec { subsystem, ..Spec::default() });
        refused(&built.bytes, &LoadError::NotNative(subsystem), &["not NATIVE", &format!("subsystem {subsystem},")]);
    }
}

#[test]
fn refuses_truncated_files() {
    let b = good().bytes;
    let nt = nt(&b);
    let table = section_table(&b);
    let text_raw = get32(&b, sec_field(&b, ".text", field!(pe::ImageSectionHeader, pointer_to_raw_data))) as usize;
    let data_raw = get32(&b, sec_field(&b, ".data", field!(pe::ImageSectionHeader, pointer_to_raw_data))) as usize;
    let reloc_raw = get32(&b, sec_field(&b, ".reloc", field!(pe::ImageSectionHeader, pointer_to_raw_data))) as usize;
    let headers = get32(&b, optional(&b, field!(pe::ImageOptionalHeader64, size_of_headers))) as usize;
    // Cuts in the headers: object cannot parse them.
    for (cut, words) in [
        (0, "DOS header"),
        (1, "DOS header"),
        (0x3f, "DOS header"),
        (0x40, "NT headers"),
        (nt + 2, "NT headers"),
        (nt + 4 + 10, "NT headers"),
        (nt + 4 + size_of::<pe::ImageFileHeader>() + 40, "NT headers"),
        (table + 8, "section headers"),
    ] {
        refused(&b[..cut], &LoadError::Malformed(String::new()), &["not a loadable PE image", words]);
    }
    // After the section table but inside SizeOfHeaders.
    refused(&b[..headers - 1], &LoadError::BadHeader(String::new()), &["SizeOfHeaders", "end of the file"]);
    // In a section's raw data, at its start, and one byte short of the end of the file.
    for (cut, section) in [
        (text_raw, ".text"),
        (text_raw + 1, ".text"),
        (data_raw + 0x10, ".data"),
        (reloc_raw, ".reloc"),
        (reloc_raw + 4, ".reloc"),
        (b.len() - 1, ".reloc"),
    ] {
        refused(&b[..cut], &LoadError::BadSection(String::new()), &[section, "past the end of the file"]);
    }
}

#[test]
fn refuses_section_raw_data_past_the_end_of_the_file() {
    let mut b = good().bytes;
    let len = b.len() as u32;
    let at = sec_field(&b, ".data", field!(pe::ImageSectionHeader, pointer_to_raw_data));
    set32(&mut b, at, len);
    refused(&b, &LoadError::BadSection(String::new()), &[".data", "past the end of the file"]);
    let mut b = good().bytes;
    let at = sec_field(&b, ".text", field!(pe::ImageSectionHeader, pointer_to_raw_data));
    set32(&mut b, at, u32::MAX - 8);
    refused(&b, &LoadError::BadSection(String::new()), &[".text", "past the end of the file"]);
}

#[test]
fn refuses_sections_outside_size_of_image() {
    let built = good();
    let mut b = built.bytes.clone();
    let reloc_rva = get32(&b, sec_field(&b, ".reloc", field!(pe::ImageSectionHeader, virtual_address)));
    let at = optional(&b, field!(pe::ImageOptionalHeader64, size_of_image));
    set32(&mut b, at, reloc_rva);
    refused(&b, &LoadError::BadSection(String::new()), &[".reloc", "past SizeOfImage"]);
    let mut b = built.bytes.clone();
    let at = sec_field(&b, ".data", field!(pe::ImageSectionHeader, virtual_address));
    set32(&mut b, at, built.size_of_image + 0x10_0000);
    refused(&b, &LoadError::BadSection(String::new()), &[".data", "past SizeOfImage"]);
    let mut b = built.bytes;
    let at = sec_field(&b, ".data", field!(pe::ImageSectionHeader, virtual_size));
    set32(&mut b, at, 0x10_0000);
    refused(&b, &LoadError::BadSection(String::new()), &[".data", "past SizeOfImage"]);
}

#[test]
fn refuses_overlapping_sections() {
    let mut b = good().bytes;
    let at = sec_field(&b, ".data", field!(pe::ImageSectionHeader, virtual_address));
    set32(&mut b, at, RDATA_RVA);
    refused(&b, &LoadError::BadSection(String::new()), &[".data overlaps .rdata"]);
    // A section whose size reaches into the next one.
    let mut b = good().bytes;
    let at = sec_field(&b, ".text", field!(pe::ImageSectionHeader, virtual_size));
    set32(&mut b, at, PAGE + 1);
    refused(&b, &LoadError::BadSection(String::new()), &[".rdata overlaps .text"]);
}

#[test]
fn refuses_misaligned_sections() {
    let mut b = good().bytes;
    let at = sec_field(&b, ".data", field!(pe::ImageSectionHeader, virtual_address));
    set32(&mut b, at, DATA_RVA + 0x200);
    refused(&b, &LoadError::BadSection(String::new()), &[".data", "not page-aligned"]);
    // Over the headers.
    let mut b = good().bytes;
    let at = sec_field(&b, ".text", field!(pe::ImageSectionHeader, virtual_address));
    set32(&mut b, at, 0);
    refused(&b, &LoadError::BadSection(String::new()), &[".text", "after the headers"]);
}

#[test]
fn refuses_section_alignment_other_than_a_page() {
    for alignment in [0x200, 0x2000, 0x1_0000] {
        let mut b = good().bytes;
        let at = optional(&b, field!(pe::ImageOptionalHeader64, section_alignment));
        set32(&mut b, at, alignment);
        refused(&b, &LoadError::BadHeader(String::new()), &["SectionAlignment", &format!("{alignment:#x}")]);
    }
}

#[test]
fn refuses_writable_executable_sections() {
    let mut b = good().bytes;
    let at = sec_field(&b, ".text", field!(pe::ImageSectionHeader, characteristics));
    let flags = get32(&b, at);
    set32(&mut b, at, flags | pe::IMAGE_SCN_MEM_WRITE);
    refused(&b, &LoadError::WritableExecutable(".text".into()), &[".text", "writable and executable", "memory integrity"]);
    let rwx = pe::IMAGE_SCN_CNT_CODE | pe::IMAGE_SCN_MEM_EXECUTE | pe::IMAGE_SCN_MEM_READ | pe::IMAGE_SCN_MEM_WRITE;
    let built = build(&Spec { extra_sections: vec![("INIT", rwx | pe::IMAGE_SCN_MEM_DISCARDABLE)], ..Spec::default() });
    refused(&built.bytes, &LoadError::WritableExecutable("INIT".into()), &["INIT"]);
    // Write and execute without read is W+X too.
    let built = build(&Spec { extra_sections: vec![("wx", pe::IMAGE_SCN_MEM_EXECUTE | pe::IMAGE_SCN_MEM_WRITE)], ..Spec::default() });
    refused(&built.bytes, &LoadError::WritableExecutable("wx".into()), &["wx"]);
}

#[test]
fn refuses_an_import_address_table_in_executable_code() {
    // The import table lives in .rdata; make that section executable (not writable).
    let mut b = good().bytes;
    let at = sec_field(&b, ".rdata", field!(pe::ImageSectionHeader, characteristics));
    let flags = get32(&b, at);
    set32(&mut b, at, flags | pe::IMAGE_SCN_MEM_EXECUTE);
    refused(&b, &LoadError::ExecutableIat(".rdata".into()), &[".rdata", "import address table", "memory integrity"]);
}

#[test]
fn refuses_images_with_relocations_stripped() {
    let built = build(&Spec { characteristics: Spec::default().characteristics | pe::IMAGE_FILE_RELOCS_STRIPPED, ..Spec::default() });
    refused(&built.bytes, &LoadError::NotRelocatable, &["relocations stripped"]);
}

#[test]
fn refuses_every_relocation_type_but_dir64() {
    for (typ, name) in [
        (pe::IMAGE_REL_BASED_HIGH, "HIGH"),
        (pe::IMAGE_REL_BASED_LOW, "LOW"),
        (pe::IMAGE_REL_BASED_HIGHLOW, "HIGHLOW"),
        (pe::IMAGE_REL_BASED_HIGHADJ, "HIGHADJ"),
        (5, "type 5"),
        (7, "type 7"),
        (9, "type 9"),
        (11, "type 11"),
        (15, "type 15"),
    ] {
        let built = build(&Spec { extra_relocs: vec![(DATA_RVA + 0x40, typ)], ..Spec::default() });
        refused(&built.bytes, &LoadError::BadRelocation(String::new()), &[name, &format!("type {typ}"), &format!("{:#x}", DATA_RVA + 0x40), "DIR64"]);
    }
}

#[test]
fn refuses_relocations_outside_the_image() {
    let size = good().size_of_image;
    for at in [size, size - 4, 0x10_0000, 0x7FFF_F000] {
        let built = build(&Spec { extra_relocs: vec![(at, pe::IMAGE_REL_BASED_DIR64)], ..Spec::default() });
        refused(&built.bytes, &LoadError::BadRelocation(String::new()), &["DIR64", &format!("{at:#x}"), "outside the image"]);
    }
}

#[test]
fn refuses_every_import_the_port_does_not_export_in_one_list() {
    let spec = Spec {
        modules: vec![
            Module { name: "SCSIPORT.SYS", imports: vec![Imp::Name("ScsiPortNotification"), Imp::Name("ScsiPortFooBar"), Imp::Ordinal(7)] },
            Module { name: "ntoskrnl.exe", imports: vec![Imp::Name("memcpy"), Imp::Ordinal(5)] },
            Module { name: "HAL.dll", imports: vec![Imp::Name("KeStallExecutionProcessor")] },
            // A port routine, but from another module: the Storage Imports rule is about modules.
            Module { name: "storport.sys", imports: vec![Imp::Name("ScsiPortNotification")] },
        ],
        ..Spec::default()
    };
    let built = build(&spec);
    let want = LoadError::Imports(vec![
        "SCSIPORT.SYS!ScsiPortFooBar".into(),
        "SCSIPORT.SYS#7 (by ordinal)".into(),
        "ntoskrnl.exe!memcpy".into(),
        "ntoskrnl.exe#5 (by ordinal)".into(),
        "HAL.dll!KeStallExecutionProcessor".into(),
        "storport.sys!ScsiPortNotification".into(),
    ]);
    refused(&built.bytes, &want, &["only from its port driver", "ntoskrnl.exe!memcpy", "SCSIPORT.SYS#7 (by ordinal)"]);
    // Names are exact: the export table is case-sensitive.
    let built = build(&Spec { modules: vec![scsiport(&["scsiportnotification"])], ..Spec::default() });
    refused(&built.bytes, &LoadError::Imports(vec!["SCSIPORT.SYS!scsiportnotification".into()]), &[]);
}

#[test]
fn refuses_tls_and_delay_load_imports() {
    refused(&build(&Spec { tls: true, ..Spec::default() }).bytes, &LoadError::Unsupported("thread-local storage".into()), &["thread-local storage"]);
    refused(&build(&Spec { delay_imports: true, ..Spec::default() }).bytes, &LoadError::Unsupported("delay-load imports".into()), &["delay-load imports"]);
}

#[test]
fn refuses_an_entry_point_outside_executable_code() {
    let size = good().size_of_image;
    for entry in [0, 0x10, RDATA_RVA, DATA_RVA + 8, size, 0xFFFF_FFF0] {
        let built = build(&Spec { entry: Some(entry), ..Spec::default() });
        refused(&built.bytes, &LoadError::BadHeader(String::new()), &["entry point", &format!("{entry:#x}"), "executable"]);
    }
}

// ---------------------------------------------------------------------------------------------
// Random corruption
// ---------------------------------------------------------------------------------------------

/// splitmix64: deterministic, seeded, good enough to pick mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Header fields worth rewriting: (offset, width).
fn fields(b: &[u8]) -> Vec<(usize, usize)> {
    let mut out = vec![
        (std::mem::offset_of!(pe::ImageDosHeader, e_lfanew), 4),
        (file_header(b, field!(pe::ImageFileHeader, machine)), 2),
        (file_header(b, field!(pe::ImageFileHeader, number_of_sections)), 2),
        (file_header(b, field!(pe::ImageFileHeader, size_of_optional_header)), 2),
        (file_header(b, field!(pe::ImageFileHeader, characteristics)), 2),
        (optional(b, field!(pe::ImageOptionalHeader64, magic)), 2),
        (optional(b, field!(pe::ImageOptionalHeader64, address_of_entry_point)), 4),
        (optional(b, field!(pe::ImageOptionalHeader64, image_base)), 8),
        (optional(b, field!(pe::ImageOptionalHeader64, section_alignment)), 4),
        (optional(b, field!(pe::ImageOptionalHeader64, file_alignment)), 4),
        (optional(b, field!(pe::ImageOptionalHeader64, size_of_image)), 4),
        (optional(b, field!(pe::ImageOptionalHeader64, size_of_headers)), 4),
        (optional(b, field!(pe::ImageOptionalHeader64, subsystem)), 2),
        (optional(b, field!(pe::ImageOptionalHeader64, number_of_rva_and_sizes)), 4),
    ];
    for d in 0..pe::IMAGE_NUMBEROF_DIRECTORY_ENTRIES {
        out.push((directory(b, d), 4));
        out.push((directory(b, d) + 4, 4));
    }
    let table = section_table(b);
    for s in 0..section_count(b) {
        let h = table + s * size_of::<pe::ImageSectionHeader>();
        for f in [
            field!(pe::ImageSectionHeader, virtual_size),
            field!(pe::ImageSectionHeader, virtual_address),
            field!(pe::ImageSectionHeader, size_of_raw_data),
            field!(pe::ImageSectionHeader, pointer_to_raw_data),
            field!(pe::ImageSectionHeader, characteristics),
        ] {
            out.push((h + f, 4));
        }
    }
    out
}

/// A value that tends to matter in a field of `width` bytes.
fn interesting(rng: &mut Rng, old: u64, len: usize, width: usize) -> u64 {
    let v = match rng.below(12) {
        0 => 0,
        1 => 1,
        2 => u64::MAX,
        3 => 0x7FFF_FFFF,
        4 => 0x8000_0000,
        5 => u64::from(PAGE),
        6 => old.wrapping_add(1),
        7 => old.wrapping_sub(1),
        8 => old.wrapping_add(u64::from(PAGE)),
        9 => len as u64,
        10 => old ^ (1 << rng.below(width * 8)),
        _ => rng.next(),
    };
    if width == 8 { v } else { v & ((1u64 << (width * 8)) - 1) }
}

/// One deterministic corruption of `b`.
fn mutate(rng: &mut Rng, b: &mut Vec<u8>, fields: &[(usize, usize)], relocs: (usize, usize), imports: (usize, usize)) {
    let len = b.len();
    match rng.below(8) {
        // Flip bits anywhere.
        0 => {
            for _ in 0..=rng.below(4) {
                let at = rng.below(len);
                b[at] ^= 1 << rng.below(8);
            }
        }
        // Random bytes in the headers.
        1 => {
            let at = rng.below(0x400.min(len));
            b[at] = rng.next() as u8;
        }
        // Truncate.
        2 => b.truncate(rng.below(len)),
        // Rewrite a header field.
        3 | 4 => {
            let (at, width) = fields[rng.below(fields.len())];
            if at + width <= b.len() {
                let mut old = [0u8; 8];
                old[..width].copy_from_slice(&b[at..at + width]);
                let v = interesting(rng, u64::from_le_bytes(old), len, width);
                b[at..at + width].copy_from_slice(&v.to_le_bytes()[..width]);
            }
        }
        // Rewrite base relocation entries (type and offset) or block headers.
        5 => {
            let (start, n) = relocs;
            let at = start + rng.below(n) / 2 * 2;
            if at + 2 <= b.len() {
                let v = rng.next() as u16;
                b[at..at + 2].copy_from_slice(&v.to_le_bytes());
            }
        }
        // Rewrite the import directory: descriptors, thunks, names.
        6 => {
            let (start, n) = imports;
            let at = start + rng.below(n.saturating_sub(4));
            if at + 4 <= b.len() {
                let v = interesting(rng, u64::from(get32(b, at)), len, 4) as u32;
                set32(b, at, v);
            }
        }
        // Several of the above.
        _ => {
            for _ in 0..3 {
                mutate(rng, b, fields, relocs, imports);
                if b.len() < 0x400 {
                    break;
                }
            }
        }
    }
}

/// Loads a corrupted image in a way a panic cannot hide: the panic is caught and reported with
/// the case that caused it.
fn load_corrupted(case: &str, bytes: &[u8]) -> Result<(), LoadError> {
    let r = std::panic::catch_unwind(|| try_load(bytes)).unwrap_or_else(|_| panic!("the loader panicked on {case}"));
    if let Ok(image) = &r {
        // Whatever was accepted keeps the loader's promises.
        for s in image.sections() {
            assert!(s.flags & pe::IMAGE_SCN_MEM_WRITE == 0 || s.flags & pe::IMAGE_SCN_MEM_EXECUTE == 0, "{case}: W+X section accepted");
        }
        assert_ne!(image.base() as u64, image.preferred_base(), "{case}");
        let m = maps(image.base(), image.size());
        assert!(m.iter().all(|(_, _, p)| !(p.contains('w') && p.contains('x'))), "{case}: W+X mapping {m:?}");
        let entry = image.entry() as usize - image.base();
        let s = image.sections().iter().find(|s| entry >= s.rva as usize && entry < (s.rva + s.len) as usize);
        assert!(s.is_some_and(|s| s.flags & pe::IMAGE_SCN_MEM_EXECUTE != 0), "{case}: entry point {entry:#x} outside executable code");
    }
    r.map(drop)
}

/// Corrupted images per run: a few thousand take well under a second.
const CASES: usize = 4000;

#[test]
fn random_corruption_never_panics_nor_crashes() {
    let built = good();
    let fields = fields(&built.bytes);
    let reloc_raw = get32(&built.bytes, sec_field(&built.bytes, ".reloc", field!(pe::ImageSectionHeader, pointer_to_raw_data))) as usize;
    let reloc_len = get32(&built.bytes, sec_field(&built.bytes, ".reloc", field!(pe::ImageSectionHeader, virtual_size))) as usize;
    let rdata_raw = get32(&built.bytes, sec_field(&built.bytes, ".rdata", field!(pe::ImageSectionHeader, pointer_to_raw_data))) as usize;
    let rdata_len = get32(&built.bytes, sec_field(&built.bytes, ".rdata", field!(pe::ImageSectionHeader, virtual_size))) as usize;
    let imports = (rdata_raw + IMPORTS_OFF as usize, rdata_len - IMPORTS_OFF as usize);
    let mut rng = Rng(0x005E_ED0F_10AD);
    let (mut ok, mut errors) = (0usize, HashMap::<String, usize>::new());
    for case in 0..CASES {
        let mut b = built.bytes.clone();
        mutate(&mut rng, &mut b, &fields, (reloc_raw, reloc_len), imports);
        match load_corrupted(&format!("case {case}"), &b) {
            Ok(()) => ok += 1,
            Err(e) => {
                let kind = format!("{e:?}");
                *errors.entry(kind.split('(').next().unwrap_or_default().to_string()).or_default() += 1;
            }
        }
    }
    let _ = writeln!(std::io::stderr(), "{CASES} corrupted images: {ok} loaded, refused: {errors:?}");
    // The corpus reaches the loader's checks, not only object's parser.
    for kind in ["Malformed", "BadHeader", "BadSection", "BadRelocation", "Imports"] {
        assert!(errors.get(kind).copied().unwrap_or(0) > 0, "no {kind} among {errors:?}");
    }
    assert!(ok > 0, "some mutations are harmless (padding, unused fields)");
}

// Corrupted images kept as regression cases, picked by hand (the random corpus found no loader
// fault besides the ones fixed with their own tests above): each reaches a corner of the loader
// or of object's parser, with the answer it must keep giving.

#[test]
fn regression_relocation_block_that_never_ends() {
    // A block whose SizeOfBlock is 0: object's iterator must not spin on it.
    let mut b = good().bytes;
    let reloc_raw = get32(&b, sec_field(&b, ".reloc", field!(pe::ImageSectionHeader, pointer_to_raw_data))) as usize;
    set32(&mut b, reloc_raw + 4, 0);
    refused(&b, &LoadError::BadRelocation(String::new()), &["base relocation"]);
}

#[test]
fn regression_relocation_directory_larger_than_its_section() {
    let mut b = good().bytes;
    let at = directory(&b, pe::IMAGE_DIRECTORY_ENTRY_BASERELOC) + 4;
    set32(&mut b, at, 0x10_0000);
    refused(&b, &LoadError::BadRelocation(String::new()), &["base relocation"]);
}

#[test]
fn regression_import_descriptor_pointing_outside_the_image() {
    let built = good();
    let mut b = built.bytes.clone();
    let rdata_raw = get32(&b, sec_field(&b, ".rdata", field!(pe::ImageSectionHeader, pointer_to_raw_data))) as usize;
    // OriginalFirstThunk of the first descriptor.
    set32(&mut b, rdata_raw + IMPORTS_OFF as usize, 0x7FFF_0000);
    refused(&b, &LoadError::Malformed(String::new()), &["not a loadable PE image"]);
    // Its Name.
    let mut b = built.bytes;
    set32(&mut b, rdata_raw + IMPORTS_OFF as usize + 12, u32::MAX);
    refused(&b, &LoadError::Malformed(String::new()), &["not a loadable PE image"]);
}

#[test]
fn regression_section_count_past_the_headers() {
    let mut b = good().bytes;
    let at = file_header(&b, field!(pe::ImageFileHeader, number_of_sections));
    set16(&mut b, at, 0xFFFF);
    refused(&b, &LoadError::Malformed(String::new()), &["section headers"]);
}

#[test]
fn regression_size_of_image_at_the_limit() {
    // A SizeOfImage far past the sections is only address space; the largest one refused.
    let mut b = good().bytes;
    let at = optional(&b, field!(pe::ImageOptionalHeader64, size_of_image));
    set32(&mut b, at, u32::MAX);
    refused(&b, &LoadError::BadHeader(String::new()), &["SizeOfImage"]);
    let mut b = good().bytes;
    let at = optional(&b, field!(pe::ImageOptionalHeader64, size_of_image));
    set32(&mut b, at, 0);
    refused(&b, &LoadError::BadHeader(String::new()), &["SizeOfImage"]);
}

#[test]
fn regression_no_sections_at_all() {
    let mut b = good().bytes;
    let at = file_header(&b, field!(pe::ImageFileHeader, number_of_sections));
    set16(&mut b, at, 0);
    refused(&b, &LoadError::BadHeader(String::new()), &["entry point"]);
}

// ---------------------------------------------------------------------------------------------
// A tiny miniport: direct register accesses from a loaded image
// ---------------------------------------------------------------------------------------------

/// `.data` offset of the miniport's `HW_INITIALIZATION_DATA`.
const HWINIT_OFF: u32 = 0x40;
const BAR_BASE: u64 = 0xFEB0_0000;
const BAR_LEN: u32 = 0x8000;

/// A register file that records every access in order; a read of offset `o` returns
/// `0x8000_0000 | o` (4 bytes), `0x8000 | o` (2) or `0x80 | o` (1).
#[derive(Default)]
struct RegisterFile {
    log: Mutex<Vec<(char, u64, u8, u32)>>,
}

fn read_value(off: u64, size: u8) -> u32 {
    let off = off as u32;
    match size {
        1 => 0x80 | (off & 0x7F),
        2 => 0x8000 | (off & 0x7FFF),
        _ => 0x8000_0000 | off,
    }
}

impl Hba for RegisterFile {
    fn identity(&self) -> PciIdentity {
        PciIdentity { vendor_id: 0x15AD, device_id: 0x07C0, subsystem_vendor_id: 0x15AD, subsystem_id: 0x07C0, revision: 2, class_code: 0x01_0000 }
    }
    fn bars(&self) -> Vec<Bar> {
        vec![Bar { index: 0, kind: BarKind::Memory, base: BAR_BASE, len: u64::from(BAR_LEN) }]
    }
    fn config_read(&self, offset: u32, buf: &mut [u8]) -> usize {
        let n = buf.len().min(256usize.saturating_sub(offset as usize));
        buf[..n].fill(0);
        n
    }
    fn config_write(&self, _offset: u32, data: &[u8]) -> usize {
        data.len()
    }
    fn read(&self, bar: u8, offset: u64, size: u8) -> u32 {
        assert_eq!(bar, 0);
        let v = read_value(offset, size);
        self.log.lock().unwrap().push(('R', offset, size, v));
        v
    }
    fn write(&self, bar: u8, offset: u64, size: u8, value: u32) {
        assert_eq!(bar, 0);
        self.log.lock().unwrap().push(('W', offset, size, value));
    }
    fn irq_asserted(&self) -> bool {
        false
    }
    fn next_event_ns(&self) -> Option<u64> {
        None
    }
    fn run_due(&self, _now_ns: u64) -> bool {
        false
    }
    fn set_waker(&self, _waker: Waker) {}
}

/// The miniport: `DriverEntry` passes its `HW_INITIALIZATION_DATA` (in `.data`, its routine
/// pointers relocated) to `ScsiPortInitialize`; `HwScsiFindAdapter` maps BAR 0 with
/// `ScsiPortGetDeviceBase`, runs the spec's body with the register base in RDI, and reports the
/// HBA found; `HwScsiInitialize` and `HwScsiResetBus` return TRUE; `HwScsiAdapterControl` supports
/// the query and `ScsiStopAdapter`; `HwScsiStartIo` is never called (no bus scan).
fn miniport(layout: &Layout, body: fn(&mut Asm)) -> Program {
    use Register::*;
    let mut a = Asm::default();
    let (entry, find, init, start_io, reset, control) = (a.label(), a.label(), a.label(), a.label(), a.label(), a.label());

    // NTSTATUS DriverEntry(PVOID DriverObject, PVOID Argument2)
    a.bind(entry);
    a.op(Instruction::with2(Code::Sub_rm64_imm8, RSP, 0x28));
    a.op(Instruction::with2(Code::Lea_r64_m, R8, rip(data(HWINIT_OFF))));
    a.op(Instruction::with2(Code::Xor_r32_rm32, R9D, R9D));
    a.op(Instruction::with1(Code::Call_rm64, rip(layout.iat("ScsiPortInitialize"))));
    a.op(Instruction::with2(Code::Add_rm64_imm8, RSP, 0x28));
    a.plain(Code::Retnq);

    // ULONG HwScsiFindAdapter(DeviceExtension, HwContext, BusInformation, ArgumentString,
    //                         ConfigInfo [rsp+0x28 at entry], Again [rsp+0x30])
    let cfg = |f: usize| at_field(RSI, f);
    a.bind(find);
    a.op(Instruction::with1(Code::Push_r64, RBX));
    a.op(Instruction::with1(Code::Push_r64, RSI));
    a.op(Instruction::with1(Code::Push_r64, RDI));
    a.op(Instruction::with2(Code::Sub_rm64_imm8, RSP, 0x30));
    a.op(Instruction::with2(Code::Mov_r64_rm64, RBX, RCX));
    a.op(Instruction::with2(Code::Mov_r64_rm64, RSI, mem(RSP, 0x70)));
    a.op(Instruction::with2(Code::Mov_r64_rm64, RAX, cfg(field!(sys::PORT_CONFIGURATION_INFORMATION, AccessRanges))));
    a.op(Instruction::with2(Code::Mov_r64_rm64, R9, at_field(RAX, field!(sys::ACCESS_RANGE, RangeStart))));
    a.op(Instruction::with2(Code::Mov_r32_rm32, EAX, at_field(RAX, field!(sys::ACCESS_RANGE, RangeLength))));
    a.op(Instruction::with2(Code::Mov_rm32_r32, mem(RSP, 0x20), EAX));
    a.op(Instruction::with2(Code::Mov_rm64_imm32, mem(RSP, 0x28), 0)); // InIoSpace FALSE
    a.op(Instruction::with2(Code::Mov_r64_rm64, RCX, RBX));
    a.op(Instruction::with2(Code::Mov_r32_rm32, EDX, cfg(field!(sys::PORT_CONFIGURATION_INFORMATION, AdapterInterfaceType))));
    a.op(Instruction::with2(Code::Mov_r32_rm32, R8D, cfg(field!(sys::PORT_CONFIGURATION_INFORMATION, SystemIoBusNumber))));
    a.op(Instruction::with1(Code::Call_rm64, rip(layout.iat("ScsiPortGetDeviceBase"))));
    a.op(Instruction::with2(Code::Mov_rm64_r64, mem(RBX, 0), RAX));
    a.op(Instruction::with2(Code::Mov_r64_rm64, RDI, RAX));
    body(&mut a);
    a.op(Instruction::with2(Code::Mov_r64_rm64, RAX, mem(RSP, 0x78)));
    a.op(Instruction::with2(Code::Mov_rm8_imm8, mem(RAX, 0), 0)); // *Again = FALSE
    a.op(Instruction::with2(Code::Mov_r32_imm32, EAX, sys::SP_RETURN_FOUND));
    a.op(Instruction::with2(Code::Add_rm64_imm8, RSP, 0x30));
    a.op(Instruction::with1(Code::Pop_r64, RDI));
    a.op(Instruction::with1(Code::Pop_r64, RSI));
    a.op(Instruction::with1(Code::Pop_r64, RBX));
    a.plain(Code::Retnq);

    // BOOLEAN HwScsiInitialize / HwScsiResetBus: TRUE. HwScsiStartIo: FALSE (never called).
    for (label, value) in [(init, 1), (reset, 1), (start_io, 0)] {
        a.bind(label);
        a.op(Instruction::with2(Code::Mov_r32_imm32, EAX, value));
        a.plain(Code::Retnq);
    }

    // SCSI_ADAPTER_CONTROL_STATUS HwScsiAdapterControl(DeviceExtension, ControlType, Parameters)
    let done = a.label();
    a.bind(control);
    a.op(Instruction::with2(Code::Test_rm32_r32, EDX, EDX));
    a.op(Instruction::with_branch(Code::Jne_rel32_64, done));
    // ScsiQuerySupportedControlTypes: SupportedTypeList[0] (the query) and [1] (stop).
    a.op(Instruction::with2(Code::Mov_rm8_imm8, mem(R8, 4), 1));
    a.op(Instruction::with2(Code::Mov_rm8_imm8, mem(R8, 5), 1));
    a.bind(done);
    a.op(Instruction::with2(Code::Xor_r32_rm32, EAX, EAX));
    a.plain(Code::Retnq);

    // SAFETY: HW_INITIALIZATION_DATA is plain data (integers, booleans, optional function
    // pointers); all-zero is a valid value.
    let mut hw: sys::HW_INITIALIZATION_DATA = unsafe { std::mem::zeroed() };
    hw.HwInitializationDataSize = size_of::<sys::HW_INITIALIZATION_DATA>() as u32;
    hw.AdapterInterfaceType = sys::PCIBus;
    hw.DeviceExtensionSize = 64;
    hw.NumberOfAccessRanges = 1;
    hw.NeedPhysicalAddresses = 1;
    let mut d = vec![0u8; DATA_LEN];
    // SAFETY: reads the bytes of a plain-data value that lives for the whole statement.
    let raw = unsafe { std::slice::from_raw_parts((&raw const hw).cast::<u8>(), size_of::<sys::HW_INITIALIZATION_DATA>()) };
    d[HWINIT_OFF as usize..HWINIT_OFF as usize + raw.len()].copy_from_slice(raw);
    let at = |f: usize| HWINIT_OFF + f as u32;
    let pointers = vec![
        (at(field!(sys::HW_INITIALIZATION_DATA, HwFindAdapter)), Some(find)),
        (at(field!(sys::HW_INITIALIZATION_DATA, HwInitialize)), Some(init)),
        (at(field!(sys::HW_INITIALIZATION_DATA, HwStartIo)), Some(start_io)),
        (at(field!(sys::HW_INITIALIZATION_DATA, HwResetBus)), Some(reset)),
        (at(field!(sys::HW_INITIALIZATION_DATA, HwAdapterControl)), Some(control)),
    ];
    Program { code: a, entry, data: d, pointers }
}

fn miniport_image(body: fn(&mut Asm)) -> (Built, DriverImage) {
    let built = build(&Spec { program: miniport, body, ..Spec::default() });
    let image = load("miniport.sys", &built.bytes, &scsiport_exports()).expect("the miniport image loads");
    (built, image)
}

/// A trace sink the test reads back.
#[derive(Clone, Default)]
struct SharedBuf(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for SharedBuf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

struct Run {
    machine: Machine,
    hba: Arc<RegisterFile>,
    result: Result<(), scsiport_sim::Error>,
    trace: Vec<serde_json::Value>,
}

fn run_miniport(body: fn(&mut Asm)) -> Run {
    let (_, image) = miniport_image(body);
    let hba = Arc::new(RegisterFile::default());
    let trace = SharedBuf::default();
    let machine = Machine::builder()
        .schedule(Schedule::Deterministic { seed: 9 })
        .port_config(PortConfig { scan: false, ..PortConfig::default() })
        .trace(trace.clone())
        .adapter(hba.clone(), Arc::new(SimDma::default()))
        .build();
    let result = machine.load_image(Arc::new(image));
    machine.flush_trace();
    let text = String::from_utf8(trace.0.lock().unwrap().clone()).unwrap();
    let trace = text.lines().map(|l| serde_json::from_str(l).expect("JSON line")).collect();
    Run { machine, hba, result, trace }
}

/// The trace's register events: (fn, offset, value).
fn register_events(trace: &[serde_json::Value]) -> Vec<(String, String, String)> {
    trace
        .iter()
        .filter(|e| e["ev"] == "port" && e["fn"].as_str().is_some_and(|f| f.starts_with("ScsiPortReadRegister") || f.starts_with("ScsiPortWriteRegister")))
        .map(|e| (e["fn"].as_str().unwrap().to_string(), e["offset"].as_str().unwrap().to_string(), e["value"].as_str().unwrap().to_string()))
        .collect()
}

fn accessor(op: char, size: u8) -> String {
    let width = match size {
        1 => "Uchar",
        2 => "Ushort",
        _ => "Ulong",
    };
    format!("ScsiPort{}Register{width}", if op == 'R' { "Read" } else { "Write" })
}

/// Every form of access the emulator performs, with the loaded values written back out so that
/// the HBA sees what landed in each register (width, zero or sign extension, upper halves).
fn emulated_body(a: &mut Asm) {
    use Register::*;
    let r = |d: i64| mem(RDI, d);
    a.op(Instruction::with2(Code::Mov_rm32_imm32, r(0x10), 0x1122_3344u32)); // W4 0x10
    a.op(Instruction::with2(Code::Mov_r32_rm32, EAX, r(0x20))); // R4 0x20
    a.op(Instruction::with2(Code::Mov_rm32_r32, r(0x24), EAX)); // W4 0x24 = 0x80000020
    a.op(Instruction::with2(Code::Mov_r64_imm64, RCX, 0xFFFF_FFFF_FFFF_FFFFu64));
    a.op(Instruction::with2(Code::Movzx_r32_rm8, ECX, r(0x31))); // R1 0x31 → ecx = 0xB1
    a.op(Instruction::with2(Code::Mov_rm16_r16, r(0x40), CX)); // W2 0x40 = 0x00B1
    a.op(Instruction::with2(Code::Movsx_r64_rm16, RAX, r(0x32))); // R2 0x32 → rax = sign-extended 0x8032
    a.op(Instruction::with2(Code::Mov_rm32_r32, r(0x44), EAX)); // W4 0x44 = 0xFFFF8032
    a.op(Instruction::with2(Code::Shr_rm64_imm8, RAX, 32u32));
    a.op(Instruction::with2(Code::Mov_rm32_r32, r(0x48), EAX)); // W4 0x48 = 0xFFFFFFFF
    a.op(Instruction::with2(Code::Mov_rm8_imm8, r(0x50), 0x5Au32)); // W1 0x50
    a.op(Instruction::with2(Code::Mov_rm16_imm16, r(0x52), 0xBEEFu32)); // W2 0x52
    a.op(Instruction::with2(Code::Mov_r32_imm32, EDX, 0x1234u32));
    a.op(Instruction::with2(Code::Mov_rm8_r8, r(0x54), DH)); // W1 0x54 = 0x12 (a high-byte register)
    a.op(Instruction::with2(Code::Movsxd_r64_rm32, RAX, r(0x58))); // R4 0x58 → rax = 0xFFFFFFFF80000058
    a.op(Instruction::with2(Code::Shr_rm64_imm8, RAX, 32u32));
    a.op(Instruction::with2(Code::Mov_rm32_r32, r(0x5C), EAX)); // W4 0x5C = 0xFFFFFFFF
    a.op(Instruction::with2(Code::Mov_r32_rm32, R10D, r(0x60))); // R4 0x60 into an extended register
    a.op(Instruction::with2(Code::Mov_rm32_r32, r(0x64), R10D)); // W4 0x64 = 0x80000060
    a.op(Instruction::with2(Code::Mov_r32_imm32, ECX, 2u32));
    a.op(Instruction::with2(Code::Mov_r32_rm32, EAX, MemoryOperand::with_base_index_scale_displ_size(RDI, RCX, 8, 0x70, 1))); // R4 0x80
    a.op(Instruction::with2(Code::Mov_rm32_r32, r(0x84), EAX)); // W4 0x84 = 0x80000080
    a.op(Instruction::with2(Code::Mov_r64_imm64, RAX, 0x1111_2222_3333_4444u64));
    a.op(Instruction::with2(Code::Mov_r8_rm8, AL, r(0x11))); // R1 0x11 → al, the rest kept
    a.op(Instruction::with2(Code::Mov_rm32_r32, r(0x88), EAX)); // W4 0x88 = 0x33334491
    a.op(Instruction::with2(Code::Shr_rm64_imm8, RAX, 32u32));
    a.op(Instruction::with2(Code::Mov_rm32_r32, r(0x8C), EAX)); // W4 0x8C = 0x11112222
}

#[test]
fn direct_register_accesses_of_a_loaded_image_are_emulated_in_program_order_traced_and_counted() {
    let run = run_miniport(emulated_body);
    run.result.as_ref().expect("the miniport loads");
    assert!(run.machine.violations().is_empty(), "{:?}", run.machine.violations());
    let want: Vec<(char, u64, u8, u32)> = vec![
        ('W', 0x10, 4, 0x1122_3344),
        ('R', 0x20, 4, 0x8000_0020),
        ('W', 0x24, 4, 0x8000_0020),
        ('R', 0x31, 1, 0xB1),
        ('W', 0x40, 2, 0x00B1),
        ('R', 0x32, 2, 0x8032),
        ('W', 0x44, 4, 0xFFFF_8032),
        ('W', 0x48, 4, 0xFFFF_FFFF),
        ('W', 0x50, 1, 0x5A),
        ('W', 0x52, 2, 0xBEEF),
        ('W', 0x54, 1, 0x12),
        ('R', 0x58, 4, 0x8000_0058),
        ('W', 0x5C, 4, 0xFFFF_FFFF),
        ('R', 0x60, 4, 0x8000_0060),
        ('W', 0x64, 4, 0x8000_0060),
        ('R', 0x80, 4, 0x8000_0080),
        ('W', 0x84, 4, 0x8000_0080),
        ('R', 0x11, 1, 0x91),
        ('W', 0x88, 4, 0x3333_4491),
        ('W', 0x8C, 4, 0x1111_2222),
    ];
    assert_eq!(*run.hba.log.lock().unwrap(), want, "the HBA saw every access, in program order, with the values the CPU would have");
    let traced: Vec<_> = want.iter().map(|(op, off, size, v)| (accessor(*op, *size), format!("{off:#x}"), format!("{v:#x}"))).collect();
    assert_eq!(register_events(&run.trace), traced, "traced as the accessor routines of the same width");
    let stats = run.machine.stats();
    assert_eq!(stats.register_accesses, want.len() as u64);
    assert_eq!(stats.registers_emulated, want.len() as u64, "every access of the image was emulated");
}

/// The same few register accesses executed again and again, as a driver's I/O path does, with
/// other registers each time: the emulator keeps what it decoded at each address
/// (`mmio::cache`), and every pass must still land where its own registers say, with its own
/// values.
fn loop_body(a: &mut Asm) {
    use Register::*;
    let top = a.label();
    a.op(Instruction::with2(Code::Mov_r32_imm32, ECX, 0u32));
    a.bind(top);
    a.op(Instruction::with2(Code::Mov_rm32_r32, MemoryOperand::with_base_index_scale_displ_size(RDI, RCX, 4, 0x100, 1), ECX)); // W4 0x100+4i = i
    a.op(Instruction::with2(Code::Mov_r32_rm32, EAX, MemoryOperand::with_base_index_scale_displ_size(RDI, RCX, 4, 0x200, 1))); // R4 0x200+4i
    a.op(Instruction::with2(Code::Mov_rm32_r32, MemoryOperand::with_base_index_scale_displ_size(RDI, RCX, 8, 0x300, 1), EAX)); // W4 0x300+8i
    a.op(Instruction::with2(Code::Movzx_r32_rm8, EDX, MemoryOperand::with_base_index_scale_displ_size(RDI, RCX, 1, 0x11, 1))); // R1 0x11+i
    a.op(Instruction::with2(Code::Mov_rm8_r8, MemoryOperand::with_base_index_scale_displ_size(RDI, RCX, 2, 0x400, 1), DL)); // W1 0x400+2i
    a.op(Instruction::with2(Code::Add_rm32_imm8, ECX, 1));
    a.op(Instruction::with2(Code::Cmp_rm32_imm8, ECX, 5));
    a.op(Instruction::with_branch(Code::Jb_rel32_64, top));
}

#[test]
fn a_register_access_executed_again_is_emulated_with_the_registers_of_each_pass() {
    let run = run_miniport(loop_body);
    run.result.as_ref().expect("the miniport loads");
    assert!(run.machine.violations().is_empty(), "{:?}", run.machine.violations());
    let mut want = Vec::new();
    for i in 0..5u64 {
        want.push(('W', 0x100 + 4 * i, 4, i as u32));
        want.push(('R', 0x200 + 4 * i, 4, read_value(0x200 + 4 * i, 4)));
        want.push(('W', 0x300 + 8 * i, 4, read_value(0x200 + 4 * i, 4)));
        want.push(('R', 0x11 + i, 1, read_value(0x11 + i, 1)));
        want.push(('W', 0x400 + 2 * i, 1, read_value(0x11 + i, 1)));
    }
    assert_eq!(*run.hba.log.lock().unwrap(), want);
    let stats = run.machine.stats();
    assert_eq!((stats.register_accesses, stats.registers_emulated), (25, 25));
}

/// A store emulated from the cache on its second pass is checked as the first was: the second
/// pass is misaligned, and that is the verifier's register-access violation.
fn misaligned_on_the_second_pass_body(a: &mut Asm) {
    use Register::*;
    let top = a.label();
    a.op(Instruction::with2(Code::Mov_r32_imm32, ECX, 0u32));
    a.bind(top);
    a.op(Instruction::with2(Code::Mov_rm32_r32, MemoryOperand::with_base_index_scale_displ_size(RDI, RCX, 2, 0x100, 1), ECX)); // W4 0x100, then 0x102
    a.op(Instruction::with2(Code::Add_rm32_imm8, ECX, 1));
    a.op(Instruction::with2(Code::Cmp_rm32_imm8, ECX, 3));
    a.op(Instruction::with_branch(Code::Jb_rel32_64, top));
}

#[test]
fn a_register_access_emulated_again_is_checked_again() {
    let run = run_miniport(misaligned_on_the_second_pass_body);
    let err = run.result.as_ref().expect_err("the machine stops");
    let bug = err.bugcheck().unwrap_or_else(|| panic!("a bug check, not {err}"));
    assert_eq!(bug.rule, Rule::RegisterAccess, "{bug:?}");
    assert!(bug.message.contains("misaligned"), "{}", bug.message);
    assert_eq!(run.hba.log.lock().unwrap()[0], ('W', 0x100, 4, 0), "the first pass reached the HBA");
    assert!(!run.hba.log.lock().unwrap().iter().any(|&(_, off, _, _)| off == 0x102), "the misaligned store did not");
}

fn read_modify_write_body(a: &mut Asm) {
    a.op(Instruction::with2(Code::Mov_rm32_imm32, mem(Register::RDI, 0x10), 1u32));
    a.op(Instruction::with2(Code::Or_rm32_imm8, mem(Register::RDI, 0x10), 2));
    a.op(Instruction::with2(Code::Mov_rm32_imm32, mem(Register::RDI, 0x14), 3u32));
}

fn wide_body(a: &mut Asm) {
    a.op(Instruction::with2(Code::Mov_r64_rm64, Register::RAX, mem(Register::RDI, 0x20)));
}

/// Loads a miniport whose `HwScsiFindAdapter` makes one access the emulator cannot perform.
fn refused_access(body: fn(&mut Asm), emulated_before: u64, why: &str) -> Run {
    let run = run_miniport(body);
    let err = run.result.as_ref().expect_err("the machine stops");
    let bug = err.bugcheck().unwrap_or_else(|| panic!("a bug check, not {err}"));
    assert_eq!((bug.rule, bug.code), (Rule::DirectRegisterAccess, 0xD1), "{bug:?}");
    assert!(bug.message.contains("an instruction the emulator cannot perform"), "{}", bug.message);
    let note = run.trace.iter().find(|e| e["fn"] == "mmio").unwrap_or_else(|| panic!("no mmio event in {:?}", run.trace));
    assert!(note["error"].as_str().unwrap().contains(why), "{note}");
    let stats = run.machine.stats();
    assert_eq!(stats.registers_emulated, emulated_before);
    assert_eq!(stats.register_accesses, emulated_before);
    run
}

#[test]
fn a_read_modify_write_of_a_register_is_the_direct_access_violation_not_a_crash() {
    let run = refused_access(read_modify_write_body, 1, "Or_rm32_imm8");
    // The store before it reached the HBA; the OR did not, and nothing after it did either (the
    // range is opened to plain memory so the instruction completes, and the machine stops when
    // the routine returns).
    assert_eq!(*run.hba.log.lock().unwrap(), [('W', 0x10, 4, 1)]);
}

#[test]
fn an_8_byte_register_access_is_refused_the_same_way() {
    refused_access(wide_body, 0, "8-byte register access");
}

#[test]
fn a_string_instruction_on_registers_is_refused_the_same_way() {
    // movsb from the register range (RSI) to the stack.
    fn body(a: &mut Asm) {
        a.op(Instruction::with2(Code::Mov_r64_rm64, Register::RSI, Register::RDI));
        a.op(Instruction::with2(Code::Lea_r64_m, Register::RDI, mem(Register::RSP, 0)));
        a.op(Instruction::with_movsb(64, Register::None, iced_x86::RepPrefixKind::None));
    }
    refused_access(body, 0, "Movsb");
}

// ---------------------------------------------------------------------------------------------
// A tiny Storport miniport: the same image machinery with STORPORT.SYS
// ---------------------------------------------------------------------------------------------

fn storport(names: &[&'static str]) -> Module {
    Module { name: "STORPORT.SYS", imports: names.iter().map(|n| Imp::Name(n)).collect() }
}

/// The Storport miniport: `DriverEntry` passes Storport's `HW_INITIALIZATION_DATA` to
/// `StorPortInitialize`; `HwStorFindAdapter` sets the transfer limits and full duplex
/// (`DT:storport-storportfindadapter`, `DT:storport-spduplex`), maps BAR 0 with
/// `StorPortGetDeviceBase`, runs the body with the register base in RDI and reports the HBA found
/// (Storport passes no `Again`); `HwStorInitialize` and `HwStorResetBus` return TRUE, the ISR
/// FALSE; `HwStorAdapterControl` supports the query, stop and restart; `HwStorStartIo` is never
/// called (no bus scan).
fn stor_miniport(layout: &Layout, body: fn(&mut Asm)) -> Program {
    use Register::*;
    use sys::storport as stor;
    let mut a = Asm::default();
    let (entry, find, init, start_io, interrupt, reset, control) = (a.label(), a.label(), a.label(), a.label(), a.label(), a.label(), a.label());

    // ULONG DriverEntry(PVOID Argument1, PVOID Argument2)
    a.bind(entry);
    a.op(Instruction::with2(Code::Sub_rm64_imm8, RSP, 0x28));
    a.op(Instruction::with2(Code::Lea_r64_m, R8, rip(data(HWINIT_OFF))));
    a.op(Instruction::with2(Code::Xor_r32_rm32, R9D, R9D));
    a.op(Instruction::with1(Code::Call_rm64, rip(layout.iat("StorPortInitialize"))));
    a.op(Instruction::with2(Code::Add_rm64_imm8, RSP, 0x28));
    a.plain(Code::Retnq);

    // ULONG HwStorFindAdapter(DeviceExtension, HwContext, BusInformation, ArgumentString,
    //                         ConfigInfo [rsp+0x28 at entry], Reserved3 [rsp+0x30])
    let cfg = |f: usize| at_field(RSI, f);
    a.bind(find);
    a.op(Instruction::with1(Code::Push_r64, RBX));
    a.op(Instruction::with1(Code::Push_r64, RSI));
    a.op(Instruction::with1(Code::Push_r64, RDI));
    a.op(Instruction::with2(Code::Sub_rm64_imm8, RSP, 0x30));
    a.op(Instruction::with2(Code::Mov_r64_rm64, RBX, RCX));
    a.op(Instruction::with2(Code::Mov_r64_rm64, RSI, mem(RSP, 0x70)));
    a.op(Instruction::with2(Code::Mov_rm32_imm32, cfg(field!(stor::PORT_CONFIGURATION_INFORMATION, MaximumTransferLength)), 0x1_0000u32));
    a.op(Instruction::with2(Code::Mov_rm32_imm32, cfg(field!(stor::PORT_CONFIGURATION_INFORMATION, NumberOfPhysicalBreaks)), 17u32));
    a.op(Instruction::with2(Code::Mov_rm32_imm32, cfg(field!(stor::PORT_CONFIGURATION_INFORMATION, SynchronizationModel)), stor::StorSynchronizeFullDuplex.cast_unsigned()));
    a.op(Instruction::with2(Code::Mov_r64_rm64, RAX, cfg(field!(stor::PORT_CONFIGURATION_INFORMATION, AccessRanges))));
    a.op(Instruction::with2(Code::Mov_r64_rm64, R9, at_field(RAX, field!(sys::ACCESS_RANGE, RangeStart))));
    a.op(Instruction::with2(Code::Mov_r32_rm32, EAX, at_field(RAX, field!(sys::ACCESS_RANGE, RangeLength))));
    a.op(Instruction::with2(Code::Mov_rm32_r32, mem(RSP, 0x20), EAX));
    a.op(Instruction::with2(Code::Mov_rm64_imm32, mem(RSP, 0x28), 0)); // InIoSpace FALSE
    a.op(Instruction::with2(Code::Mov_r64_rm64, RCX, RBX));
    a.op(Instruction::with2(Code::Mov_r32_rm32, EDX, cfg(field!(stor::PORT_CONFIGURATION_INFORMATION, AdapterInterfaceType))));
    a.op(Instruction::with2(Code::Mov_r32_rm32, R8D, cfg(field!(stor::PORT_CONFIGURATION_INFORMATION, SystemIoBusNumber))));
    a.op(Instruction::with1(Code::Call_rm64, rip(layout.iat("StorPortGetDeviceBase"))));
    a.op(Instruction::with2(Code::Mov_rm64_r64, mem(RBX, 0), RAX));
    a.op(Instruction::with2(Code::Mov_r64_rm64, RDI, RAX));
    body(&mut a);
    a.op(Instruction::with2(Code::Mov_r32_imm32, EAX, sys::SP_RETURN_FOUND));
    a.op(Instruction::with2(Code::Add_rm64_imm8, RSP, 0x30));
    a.op(Instruction::with1(Code::Pop_r64, RDI));
    a.op(Instruction::with1(Code::Pop_r64, RSI));
    a.op(Instruction::with1(Code::Pop_r64, RBX));
    a.plain(Code::Retnq);

    // BOOLEAN HwStorInitialize / HwStorResetBus / HwStorStartIo: TRUE. HwStorInterrupt: FALSE.
    for (label, value) in [(init, 1), (reset, 1), (start_io, 1), (interrupt, 0)] {
        a.bind(label);
        a.op(Instruction::with2(Code::Mov_r32_imm32, EAX, value));
        a.plain(Code::Retnq);
    }

    // SCSI_ADAPTER_CONTROL_STATUS HwStorAdapterControl(DeviceExtension, ControlType, Parameters)
    let done = a.label();
    a.bind(control);
    a.op(Instruction::with2(Code::Test_rm32_r32, EDX, EDX));
    a.op(Instruction::with_branch(Code::Jne_rel32_64, done));
    // ScsiQuerySupportedControlTypes: the query, ScsiStopAdapter and ScsiRestartAdapter.
    for i in 0..3 {
        a.op(Instruction::with2(Code::Mov_rm8_imm8, mem(R8, 4 + i), 1));
    }
    a.bind(done);
    a.op(Instruction::with2(Code::Xor_r32_rm32, EAX, EAX));
    a.plain(Code::Retnq);

    // SAFETY: Storport's HW_INITIALIZATION_DATA is plain data; all-zero is a valid value.
    let mut hw: stor::HW_INITIALIZATION_DATA = unsafe { std::mem::zeroed() };
    hw.HwInitializationDataSize = size_of::<stor::HW_INITIALIZATION_DATA>() as u32;
    hw.AdapterInterfaceType = sys::PCIBus;
    hw.DeviceExtensionSize = 64;
    hw.NumberOfAccessRanges = 1;
    hw.NeedPhysicalAddresses = 1;
    hw.TaggedQueuing = 1;
    hw.AutoRequestSense = 1;
    hw.MultipleRequestPerLu = 1;
    hw.MapBuffers = stor::STOR_MAP_NO_BUFFERS;
    hw.SrbTypeFlags = stor::SRB_TYPE_FLAG_SCSI_REQUEST_BLOCK;
    hw.AddressTypeFlags = stor::ADDRESS_TYPE_FLAG_BTL8;
    let mut d = vec![0u8; DATA_LEN];
    // SAFETY: reads the bytes of a plain-data value that lives for the whole statement.
    let raw = unsafe { std::slice::from_raw_parts((&raw const hw).cast::<u8>(), size_of::<stor::HW_INITIALIZATION_DATA>()) };
    d[HWINIT_OFF as usize..HWINIT_OFF as usize + raw.len()].copy_from_slice(raw);
    let at = |f: usize| HWINIT_OFF + f as u32;
    let pointers = vec![
        (at(field!(stor::HW_INITIALIZATION_DATA, HwFindAdapter)), Some(find)),
        (at(field!(stor::HW_INITIALIZATION_DATA, HwInitialize)), Some(init)),
        (at(field!(stor::HW_INITIALIZATION_DATA, HwStartIo)), Some(start_io)),
        (at(field!(stor::HW_INITIALIZATION_DATA, HwInterrupt)), Some(interrupt)),
        (at(field!(stor::HW_INITIALIZATION_DATA, HwResetBus)), Some(reset)),
        (at(field!(stor::HW_INITIALIZATION_DATA, HwAdapterControl)), Some(control)),
    ];
    Program { code: a, entry, data: d, pointers }
}

fn stor_image(body: fn(&mut Asm)) -> Built {
    build(&Spec { program: stor_miniport, body, modules: vec![storport(&["StorPortInitialize", "StorPortGetDeviceBase"])], ..Spec::default() })
}

fn machine_for(port: Port, hba: Arc<RegisterFile>, trace: SharedBuf) -> Machine {
    Machine::builder()
        .port(port)
        .schedule(Schedule::Deterministic { seed: 9 })
        .port_config(PortConfig { scan: false, ..PortConfig::default() })
        .trace(trace)
        .adapter(hba, Arc::new(SimDma::default()))
        .build()
}

#[test]
fn a_storport_image_links_against_storport_sys_and_its_direct_register_accesses_are_emulated() {
    let built = stor_image(emulated_body);
    // SCSIPORT.SYS does not export what it imports.
    match load("stor.sys", &built.bytes, &scsiport_exports()) {
        Err(LoadError::Imports(list)) => assert!(list.iter().any(|p| p.contains("StorPortInitialize")), "{list:?}"),
        other => panic!("expected the imports refused, got {:?}", other.map(|_| ())),
    }
    let image = Arc::new(load("stor.sys", &built.bytes, &storport_exports()).expect("the Storport image loads"));
    assert!(image.imports().iter().all(|(m, _)| m.eq_ignore_ascii_case("STORPORT.SYS")));

    // A SCSI Port machine refuses it; a Storport machine runs it.
    let scsi = machine_for(Port::ScsiPort, Arc::new(RegisterFile::default()), SharedBuf::default());
    let e = scsi.load_image(image.clone()).expect_err("the wrong port");
    assert!(e.to_string().contains("STORPORT.SYS") && e.to_string().contains("SCSIPORT.SYS"), "{e}");

    let hba = Arc::new(RegisterFile::default());
    let trace = SharedBuf::default();
    let m = machine_for(Port::Storport, hba.clone(), trace.clone());
    m.load_image(image).expect("the Storport miniport loads");
    assert!(m.violations().is_empty(), "{:#?}", m.violations());
    m.flush_trace();
    let text = String::from_utf8(trace.0.lock().unwrap().clone()).unwrap();
    let events: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    for routine in ["HwStorFindAdapter", "HwStorInitialize", "HwStorAdapterControl"] {
        assert!(events.iter().any(|e| e["ev"] == "call" && e["routine"] == routine), "{routine} was called");
    }
    // The same accesses as the SCSI Port image's, in program order, traced as StorPort accessors.
    let log = hba.log.lock().unwrap().clone();
    assert_eq!(log.len(), 20, "{log:?}");
    assert_eq!(log[0], ('W', 0x10, 4, 0x1122_3344));
    assert_eq!(log[19], ('W', 0x8C, 4, 0x1111_2222));
    let traced: Vec<(String, String)> = events
        .iter()
        .filter(|e| e["ev"] == "port" && e["fn"].as_str().is_some_and(|f| f.contains("Register")))
        .map(|e| (e["fn"].as_str().unwrap().to_string(), e["offset"].as_str().unwrap().to_string()))
        .collect();
    let want: Vec<(String, String)> = log.iter().map(|(op, off, size, _)| (accessor(*op, *size).replace("ScsiPort", "StorPort"), format!("{off:#x}"))).collect();
    assert_eq!(traced, want);
    let s = m.stats();
    assert_eq!((s.register_accesses, s.registers_emulated), (20, 20));

    // And a SCSI Port image on a Storport machine is refused the same way.
    let (_, scsi_image) = miniport_image(no_body);
    let m = machine_for(Port::Storport, Arc::new(RegisterFile::default()), SharedBuf::default());
    let e = m.load_image(Arc::new(scsi_image)).expect_err("the wrong port");
    assert!(e.to_string().contains("SCSIPORT.SYS"), "{e}");
}

// ---------------------------------------------------------------------------------------------
// A fault of the image's own: reported image-relative before the process dies
// ---------------------------------------------------------------------------------------------

const CHILD: &str = "PE_LOADER_TEST_CHILD";

fn fastfail_body(a: &mut Asm) {
    a.op(Instruction::with2(Code::Mov_r32_imm32, Register::ECX, 7u32)); // FAST_FAIL_FATAL_APP_EXIT
    a.mark();
    a.op(Instruction::with1(Code::Int_imm8, 0x29u32));
}

fn null_read_body(a: &mut Asm) {
    a.op(Instruction::with2(Code::Mov_r32_imm32, Register::EAX, 0x10u32));
    a.mark();
    a.op(Instruction::with2(Code::Mov_r32_rm32, Register::EAX, mem(Register::RAX, 0)));
}

fn port_io_body(a: &mut Asm) {
    a.op(Instruction::with2(Code::Mov_r32_imm32, Register::EDX, 0x1F0u32));
    a.mark();
    a.op(Instruction::with2(Code::In_AL_DX, Register::AL, Register::DX));
}

/// In the child: runs the miniport with `body`, which faults; never returns. In the parent:
/// runs the test named `test` in a child and returns its stderr, its exit status and the RVA of
/// the faulting instruction (the body's mark).
fn crash(test: &str, body: fn(&mut Asm)) -> (String, std::process::ExitStatus, u32) {
    if std::env::var_os(CHILD).is_some() {
        // No core file from the crash this child is for.
        let none = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        // SAFETY: sets this process's own core size limit from a valid structure.
        unsafe { libc::setrlimit(libc::RLIMIT_CORE, &raw const none) };
        let _ = run_miniport(body);
        panic!("the child survived the fault");
    }
    let rva = build(&Spec { program: miniport, body, ..Spec::default() }).mark.expect("the body marks its faulting instruction");
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(CHILD, "1")
        .output()
        .expect("the test binary runs");
    (String::from_utf8_lossy(&out.stderr).into_owned(), out.status, rva)
}

fn assert_died_of_sigsegv(status: std::process::ExitStatus, stderr: &str) {
    use std::os::unix::process::ExitStatusExt as _;
    assert_eq!(status.signal(), Some(libc::SIGSEGV), "the fault still ends the process ({status:?}); stderr:\n{stderr}");
}

#[test]
fn fastfail_in_a_loaded_image_is_reported_as_bug_check_0x139() {
    let (stderr, status, rva) = crash("fastfail_in_a_loaded_image_is_reported_as_bug_check_0x139", fastfail_body);
    assert_died_of_sigsegv(status, &stderr);
    assert!(stderr.contains(&format!("miniport.sys+{rva:#x}")), "names the image-relative address {rva:#x}:\n{stderr}");
    assert!(stderr.contains("int 0x29") && stderr.contains("bug check 0x139") && stderr.contains("parameter 1 = 0x7 (ECX)"), "{stderr}");
}

#[test]
fn a_fault_in_a_loaded_image_is_reported_image_relative() {
    let (stderr, status, rva) = crash("a_fault_in_a_loaded_image_is_reported_image_relative", null_read_body);
    assert_died_of_sigsegv(status, &stderr);
    assert!(stderr.contains(&format!("miniport.sys+{rva:#x}")), "names the image-relative address {rva:#x}:\n{stderr}");
    assert!(stderr.contains("address 0x10"), "{stderr}");
    assert!(!stderr.contains("bug check 0x139"), "{stderr}");
}

#[test]
fn an_io_port_instruction_in_a_loaded_image_is_named_as_not_emulated() {
    let (stderr, status, rva) = crash("an_io_port_instruction_in_a_loaded_image_is_named_as_not_emulated", port_io_body);
    assert_died_of_sigsegv(status, &stderr);
    assert!(stderr.contains(&format!("miniport.sys+{rva:#x}")), "{stderr}");
    assert!(stderr.contains("in/out") && stderr.contains("not emulated"), "{stderr}");
}
