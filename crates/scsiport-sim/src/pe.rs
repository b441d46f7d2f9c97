//! The PE loader: a miniport's real `.sys`, mapped, relocated and linked against the emulator's
//! port exports, so that its `DriverEntry` can be called as `scsiport.sys` would call it.
//!
//! What a Windows kernel loader does with a driver image, and this one too (the PE format
//! specification, `learn.microsoft.com/windows/win32/debug/pe-format`; `NDISwrapper`'s
//! `pe_linker.c` and Wine's `ntoskrnl.exe` did the same for network drivers and kernel modules):
//! - only a PE32+ image for AMD64 with subsystem NATIVE is a kernel driver here;
//! - the headers and every section go to their RVAs in one block of `SizeOfImage` bytes, and each
//!   section gets the page protection its flags ask for — never writable and executable at once
//!   (memory integrity refuses such a section, and so does this loader);
//! - the image is always placed away from its preferred base, as the kernel does, so its base
//!   relocations are applied: `DIR64` (and `ABSOLUTE` padding) only, anything else is refused;
//! - imports are resolved by name against the port's exports; an import from another module, a
//!   name the port does not export, or an ordinal import is refused, and the error lists every
//!   one of them: that is HLK's Storage Imports rule, enforced at load time;
//! - import address tables in an executable section are refused: the loader must write them,
//!   and memory integrity never makes an executable page writable (Driver Verifier's code
//!   integrity check reports such an image as 0x2005);
//! - TLS and delay-load imports, which a kernel driver cannot have, are refused.
//!
//! The image is read with the `object` crate; nothing of the format is parsed by hand beyond
//! bounds checks on what `object` returns. A malformed image is an error, never a crash.

use std::fmt;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU8, AtomicU64, AtomicUsize, Ordering};

use object::LittleEndian as LE;
use object::pe;
use object::read::pe::{ImageNtHeaders, ImageOptionalHeader, Import, PeFile64};

use crate::machine::DriverEntryFn;
use crate::mem::PAGE_SIZE;

/// The largest image the loader maps (a miniport is tens of KiB).
const MAX_IMAGE: u32 = 64 << 20;

/// The routines a port driver exports, by name, as the loader resolves imports against them.
#[derive(Clone, Copy, Debug)]
pub struct PortExports {
    /// The module miniports import from (`SCSIPORT.SYS`), compared without case.
    pub module: &'static str,
    /// Name and address of every export.
    pub symbols: &'static [(&'static str, usize)],
}

impl PortExports {
    fn address(&self, name: &str) -> Option<usize> {
        self.symbols.iter().find(|(n, _)| *n == name).map(|(_, a)| *a)
    }
}

/// Why an image was not loaded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LoadError {
    /// Not a PE image at all, or one `object` cannot parse (truncated, inconsistent headers).
    Malformed(String),
    /// A PE32 (32-bit) image.
    NotPe32Plus,
    /// Another machine than AMD64.
    NotAmd64(u16),
    /// Not a kernel-mode image (subsystem other than NATIVE).
    NotNative(u16),
    /// A header value the loader cannot honour.
    BadHeader(String),
    /// A section outside the image or the file, misaligned, or overlapping another.
    BadSection(String),
    /// A section both writable and executable.
    WritableExecutable(String),
    /// Import address table slots in an executable section (named): the loader writes them.
    ExecutableIat(String),
    /// Relocations stripped: the image cannot be moved, and the kernel always moves a driver.
    NotRelocatable,
    /// A base relocation of another type than `DIR64`, or outside the image.
    BadRelocation(String),
    /// Imports the port does not export (or from other modules, or by ordinal), every one.
    Imports(Vec<String>),
    /// Something a kernel driver cannot have (TLS, delay-load imports).
    Unsupported(String),
    /// The host refused the mapping.
    Map(String),
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Malformed(m) => write!(f, "not a loadable PE image: {m}"),
            Self::NotPe32Plus => f.write_str("a PE32 (32-bit) image: a driver for x64 Windows is PE32+"),
            Self::NotAmd64(m) => write!(f, "machine {m:#06x}, not AMD64 (0x8664)"),
            Self::NotNative(s) => write!(f, "subsystem {s}, not NATIVE (1): not a kernel-mode driver"),
            Self::BadHeader(m) => write!(f, "bad header: {m}"),
            Self::BadSection(m) => write!(f, "bad section: {m}"),
            Self::WritableExecutable(s) => write!(f, "section {s} is writable and executable (memory integrity refuses it)"),
            Self::ExecutableIat(s) => write!(
                f,
                "the import address table is in executable section {s}: the loader writes it, and memory integrity never makes executable pages writable"
            ),
            Self::NotRelocatable => f.write_str("relocations stripped: a driver must be relocatable, the kernel places it"),
            Self::BadRelocation(m) => write!(f, "base relocation: {m}"),
            Self::Imports(list) => {
                write!(f, "imports the port does not export (a miniport may import only from its port driver): {}", list.join(", "))
            }
            Self::Unsupported(m) => write!(f, "not supported in a kernel driver: {m}"),
            Self::Map(m) => write!(f, "mapping the image: {m}"),
        }
    }
}

impl std::error::Error for LoadError {}

/// A section as mapped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MappedSection {
    /// Its name.
    pub name: String,
    /// RVA.
    pub rva: u32,
    /// Bytes mapped (rounded up to pages).
    pub len: u32,
    /// `IMAGE_SCN_*` flags.
    pub flags: u32,
}

/// A loaded driver image. The mapping lives as long as the value; a machine that runs the
/// driver holds it in an `Arc`.
pub struct DriverImage {
    name: String,
    base: NonNull<u8>,
    size: usize,
    entry: DriverEntryFn,
    preferred_base: u64,
    sections: Vec<MappedSection>,
    imports: Vec<(String, String)>,
    relocations: usize,
    registry_slot: usize,
}

// SAFETY: the mapping is owned by this value and never written after loading (its writable
// sections belong to the driver, which the emulator runs); the pointer is only an address.
unsafe impl Send for DriverImage {}
// SAFETY: as above; shared references hand out only addresses and metadata.
unsafe impl Sync for DriverImage {}

impl fmt::Debug for DriverImage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DriverImage")
            .field("name", &self.name)
            .field("base", &self.base)
            .field("size", &self.size)
            .field("sections", &self.sections)
            .field("imports", &self.imports.len())
            .field("relocations", &self.relocations)
            .finish_non_exhaustive()
    }
}

impl Drop for DriverImage {
    fn drop(&mut self) {
        unregister(self.registry_slot);
        // SAFETY: `base..base+size` is the mapping `load` created; nothing runs its code now
        // (the machine that ran it holds the last reference until its threads are gone).
        unsafe { libc::munmap(self.base.as_ptr().cast(), self.size) };
    }
}

impl DriverImage {
    /// The name it was loaded under (`rspvscsi.sys`).
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Where it was mapped.
    #[must_use]
    pub fn base(&self) -> usize {
        self.base.as_ptr() as usize
    }

    /// `SizeOfImage`, rounded to pages.
    #[must_use]
    pub fn size(&self) -> usize {
        self.size
    }

    /// `OptionalHeader.ImageBase`: where the linker meant it to go (it never goes there).
    #[must_use]
    pub fn preferred_base(&self) -> u64 {
        self.preferred_base
    }

    /// `DriverEntry`.
    #[must_use]
    pub fn entry(&self) -> DriverEntryFn {
        self.entry
    }

    /// The sections as mapped.
    #[must_use]
    pub fn sections(&self) -> &[MappedSection] {
        &self.sections
    }

    /// `(module, routine)` of every import, resolved.
    #[must_use]
    pub fn imports(&self) -> &[(String, String)] {
        &self.imports
    }

    /// Base relocations applied.
    #[must_use]
    pub fn relocations(&self) -> usize {
        self.relocations
    }

    /// The RVA of `address` if it lies in the image.
    #[must_use]
    pub fn rva_of(&self, address: usize) -> Option<usize> {
        address.checked_sub(self.base()).filter(|off| *off < self.size)
    }

    /// Reads `N` bytes at `rva` (tests look at relocated slots and the IAT).
    #[must_use]
    pub fn read<const N: usize>(&self, rva: usize) -> Option<[u8; N]> {
        if rva.checked_add(N)? > self.size {
            return None;
        }
        let section = self.sections.iter().find(|s| rva >= s.rva as usize && rva + N <= (s.rva + s.len) as usize)?;
        if section.flags & pe::IMAGE_SCN_MEM_READ == 0 {
            return None;
        }
        let mut out = [0u8; N];
        let src = self.base.as_ptr().wrapping_add(rva);
        // SAFETY: `rva..rva+N` is inside a readable section of the live mapping.
        unsafe { std::ptr::copy_nonoverlapping(src, out.as_mut_ptr(), N) };
        Some(out)
    }
}

fn round_up(v: u64, to: u64) -> u64 {
    v.div_ceil(to) * to
}

fn section_name(raw: [u8; 8]) -> String {
    let end = raw.iter().position(|&b| b == 0).unwrap_or(8);
    String::from_utf8_lossy(&raw[..end]).into_owned()
}

fn protection(flags: u32) -> libc::c_int {
    let mut prot = libc::PROT_NONE;
    if flags & pe::IMAGE_SCN_MEM_READ != 0 {
        prot |= libc::PROT_READ;
    }
    if flags & pe::IMAGE_SCN_MEM_WRITE != 0 {
        prot |= libc::PROT_WRITE;
    }
    if flags & pe::IMAGE_SCN_MEM_EXECUTE != 0 {
        prot |= libc::PROT_EXEC | libc::PROT_READ;
    }
    prot
}

/// A mapping while it is being built; unmapped on error.
struct Building {
    base: NonNull<u8>,
    size: usize,
}

impl Drop for Building {
    fn drop(&mut self) {
        // SAFETY: the anonymous mapping `load` made; nothing else refers to it yet.
        unsafe { libc::munmap(self.base.as_ptr().cast(), self.size) };
    }
}

impl Building {
    fn bytes_mut(&mut self, rva: usize, len: usize) -> Option<&mut [u8]> {
        if rva.checked_add(len)? > self.size {
            return None;
        }
        let start = self.base.as_ptr().wrapping_add(rva);
        // SAFETY: in bounds of the writable mapping this value owns exclusively.
        Some(unsafe { std::slice::from_raw_parts_mut(start, len) })
    }
}

/// A base relocation type as the PE format names it (the x86 ones; the rest are other
/// machines' and named by number).
fn relocation_type(typ: u16) -> String {
    match typ {
        pe::IMAGE_REL_BASED_HIGH => "HIGH (type 1)".into(),
        pe::IMAGE_REL_BASED_LOW => "LOW (type 2)".into(),
        pe::IMAGE_REL_BASED_HIGHLOW => "HIGHLOW (type 3, 32-bit images)".into(),
        pe::IMAGE_REL_BASED_HIGHADJ => "HIGHADJ (type 4)".into(),
        other => format!("type {other}"),
    }
}

/// A fresh read-write mapping of `size` bytes anywhere but at `preferred_base`: should the host
/// offer exactly that address, a second mapping is taken while the first still holds it.
fn map_away_from(preferred_base: u64, size: usize) -> Result<Building, LoadError> {
    let map = || {
        // SAFETY: a fresh private anonymous mapping; no existing memory is affected.
        let p = unsafe {
            libc::mmap(std::ptr::null_mut(), size, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1, 0)
        };
        if p == libc::MAP_FAILED {
            return Err(LoadError::Map(std::io::Error::last_os_error().to_string()));
        }
        Ok(Building { base: NonNull::new(p.cast()).ok_or_else(|| LoadError::Map("null mapping".into()))?, size })
    };
    let first = map()?;
    if first.base.as_ptr() as u64 != preferred_base {
        return Ok(first);
    }
    let second = map()?;
    drop(first);
    Ok(second)
}

/// Loads `bytes` (a `.sys` read from disk) under `name`, resolving its imports against `port`.
///
/// # Errors
/// A [`LoadError`] saying what about the image a kernel loader (or this one) refuses.
#[allow(clippy::too_many_lines)] // the loader's steps, in order
pub fn load(name: &str, bytes: &[u8], port: &PortExports) -> Result<DriverImage, LoadError> {
    let magic = object::read::pe::optional_header_magic(bytes).map_err(|e| LoadError::Malformed(e.to_string()))?;
    if magic == pe::IMAGE_NT_OPTIONAL_HDR32_MAGIC {
        return Err(LoadError::NotPe32Plus);
    }
    let file = PeFile64::parse(bytes).map_err(|e| LoadError::Malformed(e.to_string()))?;
    let nt = file.nt_headers();
    let fh = nt.file_header();
    let oh = nt.optional_header();
    let machine = fh.machine.get(LE);
    if machine != pe::IMAGE_FILE_MACHINE_AMD64 {
        return Err(LoadError::NotAmd64(machine));
    }
    if oh.subsystem() != pe::IMAGE_SUBSYSTEM_NATIVE {
        return Err(LoadError::NotNative(oh.subsystem()));
    }
    if fh.characteristics.get(LE) & pe::IMAGE_FILE_RELOCS_STRIPPED != 0 {
        return Err(LoadError::NotRelocatable);
    }
    let size_of_image = oh.size_of_image();
    if size_of_image == 0 || size_of_image > MAX_IMAGE {
        return Err(LoadError::BadHeader(format!("SizeOfImage {size_of_image:#x}")));
    }
    if oh.section_alignment() as usize != PAGE_SIZE {
        return Err(LoadError::BadHeader(format!(
            "SectionAlignment {:#x}: sections must be page-aligned to get their own protections",
            oh.section_alignment()
        )));
    }
    let headers = oh.size_of_headers();
    if headers == 0 || headers > size_of_image {
        return Err(LoadError::BadHeader(format!("SizeOfHeaders {headers:#x} (SizeOfImage {size_of_image:#x})")));
    }
    if headers as usize > bytes.len() {
        return Err(LoadError::BadHeader(format!("SizeOfHeaders {headers:#x} runs past the end of the file ({:#x})", bytes.len())));
    }
    for (dir, what) in [(pe::IMAGE_DIRECTORY_ENTRY_TLS, "thread-local storage"), (pe::IMAGE_DIRECTORY_ENTRY_DELAY_IMPORT, "delay-load imports")] {
        if file.data_directory(dir).is_some_and(|d| d.virtual_address.get(LE) != 0) {
            return Err(LoadError::Unsupported(what.into()));
        }
    }

    // Sections: inside the image and the file, page-aligned, not overlapping, never W+X.
    let size = usize::try_from(round_up(u64::from(size_of_image), PAGE_SIZE as u64)).map_err(|_| LoadError::BadHeader("SizeOfImage".into()))?;
    let table = file.section_table();
    let mut sections: Vec<MappedSection> = Vec::new();
    let mut raw: Vec<(u32, u32, u32)> = Vec::new(); // (rva, file offset, bytes to copy)
    for s in table.iter() {
        let name = section_name(s.name);
        let rva = s.virtual_address.get(LE);
        let vsize = s.virtual_size.get(LE);
        let raw_size = s.size_of_raw_data.get(LE);
        let raw_ptr = s.pointer_to_raw_data.get(LE);
        let flags = s.characteristics.get(LE);
        if flags & pe::IMAGE_SCN_MEM_WRITE != 0 && flags & pe::IMAGE_SCN_MEM_EXECUTE != 0 {
            return Err(LoadError::WritableExecutable(name));
        }
        if !(rva as usize).is_multiple_of(PAGE_SIZE) || rva < headers {
            return Err(LoadError::BadSection(format!("{name} at RVA {rva:#x}: not page-aligned after the headers")));
        }
        let extent = vsize.max(raw_size);
        let mapped = round_up(u64::from(extent), PAGE_SIZE as u64);
        if u64::from(rva) + mapped > size as u64 {
            return Err(LoadError::BadSection(format!("{name} ({rva:#x}+{extent:#x}) runs past SizeOfImage {size_of_image:#x}")));
        }
        // The file holds all SizeOfRawData bytes of a section (the PE format's definition of the
        // field), not only the part that is copied: a file cut anywhere in them is truncated.
        if raw_size > 0 && u64::from(raw_ptr) + u64::from(raw_size) > bytes.len() as u64 {
            return Err(LoadError::BadSection(format!("{name}: raw data {raw_ptr:#x}+{raw_size:#x} past the end of the file ({:#x})", bytes.len())));
        }
        let copy = if vsize == 0 { raw_size } else { raw_size.min(vsize) };
        let len = u32::try_from(mapped).map_err(|_| LoadError::BadSection(name.clone()))?;
        if let Some(other) = sections.iter().find(|o| rva < o.rva + o.len && o.rva < rva + len.max(1)) {
            return Err(LoadError::BadSection(format!("{name} overlaps {}", other.name)));
        }
        raw.push((rva, raw_ptr, copy));
        sections.push(MappedSection { name, rva, len, flags });
    }
    let entry_rva = oh.address_of_entry_point();
    let entry_section = sections.iter().find(|s| entry_rva >= s.rva && entry_rva < s.rva + s.len);
    if entry_rva == 0 || entry_section.is_none_or(|s| s.flags & pe::IMAGE_SCN_MEM_EXECUTE == 0) {
        return Err(LoadError::BadHeader(format!("entry point {entry_rva:#x} is not in an executable section")));
    }

    // Map, copy.
    let preferred_base = oh.image_base();
    let mut image = map_away_from(preferred_base, size)?;
    let header_bytes = bytes.get(..headers as usize).ok_or_else(|| LoadError::BadHeader("headers".into()))?;
    image.bytes_mut(0, header_bytes.len()).ok_or_else(|| LoadError::BadHeader("headers".into()))?.copy_from_slice(header_bytes);
    for (rva, from, copy) in &raw {
        if *copy == 0 {
            continue;
        }
        let src = bytes.get(*from as usize..(*from + *copy) as usize).ok_or_else(|| LoadError::BadSection("raw data".into()))?;
        image.bytes_mut(*rva as usize, src.len()).ok_or_else(|| LoadError::BadSection("raw data".into()))?.copy_from_slice(src);
    }

    // Relocate: the kernel never leaves a driver at its preferred base, nor does this loader.
    let delta = (image.base.as_ptr() as u64).wrapping_sub(preferred_base);
    let mut relocations = 0usize;
    let blocks = file.data_directories().relocation_blocks(bytes, &table).map_err(|e| LoadError::BadRelocation(e.to_string()))?;
    if let Some(mut blocks) = blocks {
        while let Some(block) = blocks.next().map_err(|e| LoadError::BadRelocation(e.to_string()))? {
            for reloc in block {
                match reloc.typ {
                    pe::IMAGE_REL_BASED_ABSOLUTE => {}
                    pe::IMAGE_REL_BASED_DIR64 => {
                        let at = reloc.virtual_address as usize;
                        let slot = image
                            .bytes_mut(at, 8)
                            .ok_or_else(|| LoadError::BadRelocation(format!("DIR64 at {at:#x} is outside the image")))?;
                        let mut word = [0u8; 8];
                        word.copy_from_slice(slot);
                        slot.copy_from_slice(&u64::from_le_bytes(word).wrapping_add(delta).to_le_bytes());
                        relocations += 1;
                    }
                    other => {
                        return Err(LoadError::BadRelocation(format!(
                            "{} at {:#x}: only DIR64 exists on x64",
                            relocation_type(other),
                            reloc.virtual_address
                        )));
                    }
                }
            }
        }
    }

    // Link: every import by name from the port's exports; collect every problem before failing.
    let mut imports = Vec::new();
    let mut problems = Vec::new();
    let mut patches: Vec<(usize, usize)> = Vec::new();
    if let Some(table) = file.import_table().map_err(|e| LoadError::Malformed(e.to_string()))? {
        let mut descriptors = table.descriptors().map_err(|e| LoadError::Malformed(e.to_string()))?;
        while let Some(d) = descriptors.next().map_err(|e| LoadError::Malformed(e.to_string()))? {
            let module = String::from_utf8_lossy(table.name(d.name.get(LE)).map_err(|e| LoadError::Malformed(e.to_string()))?).into_owned();
            let ours = module.eq_ignore_ascii_case(port.module);
            let iat = d.first_thunk.get(LE) as usize;
            let lookup = if d.original_first_thunk.get(LE) != 0 { d.original_first_thunk.get(LE) } else { d.first_thunk.get(LE) };
            let mut thunks = table.thunks(lookup).map_err(|e| LoadError::Malformed(e.to_string()))?;
            let mut index = 0usize;
            while let Some(thunk) = thunks.next::<pe::ImageNtHeaders64>().map_err(|e| LoadError::Malformed(e.to_string()))? {
                let slot = index.checked_mul(8).and_then(|o| o.checked_add(iat)).ok_or_else(|| LoadError::Malformed("IAT".into()))?;
                index += 1;
                match table.import::<pe::ImageNtHeaders64>(thunk).map_err(|e| LoadError::Malformed(e.to_string()))? {
                    Import::Ordinal(n) => problems.push(format!("{module}#{n} (by ordinal)")),
                    Import::Name(_, raw_name) => {
                        let routine = String::from_utf8_lossy(raw_name).into_owned();
                        match port.address(&routine).filter(|_| ours) {
                            Some(address) => {
                                patches.push((slot, address));
                                imports.push((module.clone(), routine));
                            }
                            None => problems.push(format!("{module}!{routine}")),
                        }
                    }
                }
            }
        }
    }
    if !problems.is_empty() {
        return Err(LoadError::Imports(problems));
    }
    for (slot, _) in &patches {
        if let Some(s) = sections.iter().find(|s| *slot >= s.rva as usize && *slot < (s.rva + s.len) as usize)
            && s.flags & pe::IMAGE_SCN_MEM_EXECUTE != 0
        {
            return Err(LoadError::ExecutableIat(s.name.clone()));
        }
    }
    for (slot, address) in patches {
        image
            .bytes_mut(slot, 8)
            .ok_or_else(|| LoadError::Malformed(format!("IAT slot {slot:#x} outside the image")))?
            .copy_from_slice(&(address as u64).to_le_bytes());
    }

    // Protections: headers read-only, gaps inaccessible, each section as its flags say.
    let base = image.base;
    let set = |rva: usize, len: usize, prot: libc::c_int| -> Result<(), LoadError> {
        let start = base.as_ptr().wrapping_add(rva);
        // SAFETY: `rva..rva+len` is page-aligned and inside the mapping (checked above).
        let r = unsafe { libc::mprotect(start.cast(), len, prot) };
        if r == 0 { Ok(()) } else { Err(LoadError::Map(std::io::Error::last_os_error().to_string())) }
    };
    set(0, size, libc::PROT_NONE)?;
    set(0, (headers as usize).div_ceil(PAGE_SIZE) * PAGE_SIZE, libc::PROT_READ)?;
    for s in &sections {
        if s.len > 0 {
            set(s.rva as usize, s.len as usize, protection(s.flags))?;
        }
    }

    // SAFETY: the entry point is inside an executable section of the image, and `DriverEntry`
    // of a kernel driver has this signature (win64, two pointers, NTSTATUS).
    let entry: DriverEntryFn = unsafe { std::mem::transmute::<usize, DriverEntryFn>(base.as_ptr() as usize + entry_rva as usize) };
    // The fault handler must know the image's code, or its register accesses cannot be emulated.
    // Its code sections, mapped read and execute above and never writable (W+X is refused), are
    // what the fault handler may keep decoded instructions of (`mmio::cache`).
    let code: Vec<(usize, usize)> = sections
        .iter()
        .filter(|s| s.flags & pe::IMAGE_SCN_MEM_EXECUTE != 0 && s.flags & pe::IMAGE_SCN_MEM_WRITE == 0 && s.len > 0)
        .map(|s| (s.rva as usize, s.len as usize))
        .collect();
    let registry_slot = register(name, image.base.as_ptr() as usize, size, &code)
        .ok_or_else(|| LoadError::Map(format!("{IMAGES} images are loaded already, as many as the fault handler tracks")))?;
    let building = std::mem::ManuallyDrop::new(image);
    Ok(DriverImage {
        name: name.to_string(),
        base: building.base,
        size,
        entry,
        preferred_base,
        sections,
        imports,
        relocations,
        registry_slot,
    })
}

// ---------------------------------------------------------------------------------------------
// Where loaded images are, for the fault handler: a fault in a driver's code is reported as
// `rspvscsi.sys+0x1234`, and only code of a loaded image may touch registers directly (x64).
// ---------------------------------------------------------------------------------------------

const IMAGES: usize = 64;
/// Bytes of an image's name the fault handler can print (longer names are cut).
pub(crate) const NAME_BYTES: usize = 48;
/// Code sections per image whose decoded instructions may be cached (a driver has one `.text`;
/// further ones are simply decoded on every fault).
const CODE_RANGES: usize = 4;
static IMAGE_START: [AtomicUsize; IMAGES] = [const { AtomicUsize::new(0) }; IMAGES];
static IMAGE_LEN: [AtomicUsize; IMAGES] = [const { AtomicUsize::new(0) }; IMAGES];
// Names as bytes in atomics, so that the signal handler reads them without locking.
static IMAGE_NAME: [[AtomicU8; NAME_BYTES]; IMAGES] = [const { [const { AtomicU8::new(0) }; NAME_BYTES] }; IMAGES];
static IMAGE_NAME_LEN: [AtomicUsize; IMAGES] = [const { AtomicUsize::new(0) }; IMAGES];
/// Each image's read-execute sections as (offset from its start, length); length 0 = none.
static IMAGE_CODE: [[(AtomicUsize, AtomicUsize); CODE_RANGES]; IMAGES] =
    [const { [const { (AtomicUsize::new(0), AtomicUsize::new(0)) }; CODE_RANGES] }; IMAGES];
/// Moves (by two) whenever an image is loaded or unloaded; odd while a registration is being
/// written or removed. What the fault handler decoded at an address in a loaded image's code
/// holds for as long as this has not moved.
static GENERATION: AtomicU64 = AtomicU64::new(2);
/// Serialises registrations (the handler only reads).
static REGISTRY: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn register(name: &str, start: usize, len: usize, code: &[(usize, usize)]) -> Option<usize> {
    let _serialise = REGISTRY.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let slot = IMAGE_START.iter().position(|s| s.load(Ordering::Acquire) == 0)?;
    GENERATION.fetch_add(1, Ordering::AcqRel);
    let bytes = name.as_bytes();
    let n = bytes.len().min(NAME_BYTES);
    for (dst, src) in IMAGE_NAME.get(slot)?.iter().zip(bytes) {
        dst.store(*src, Ordering::Relaxed);
    }
    IMAGE_NAME_LEN.get(slot)?.store(n, Ordering::Relaxed);
    IMAGE_LEN.get(slot)?.store(len, Ordering::Relaxed);
    for (i, (off, l)) in IMAGE_CODE.get(slot)?.iter().enumerate() {
        let (o, n) = code.get(i).copied().unwrap_or((0, 0));
        off.store(o, Ordering::Relaxed);
        l.store(n, Ordering::Relaxed);
    }
    // Published last: a reader that sees the start sees the rest.
    IMAGE_START.get(slot)?.store(start, Ordering::Release);
    GENERATION.fetch_add(1, Ordering::AcqRel);
    Some(slot)
}

fn unregister(slot: usize) {
    let _serialise = REGISTRY.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(s) = IMAGE_START.get(slot) {
        GENERATION.fetch_add(1, Ordering::AcqRel);
        s.store(0, Ordering::Release);
        GENERATION.fetch_add(1, Ordering::AcqRel);
    }
}

/// The generation of the loaded images now; `None` while one is being loaded or unloaded. An
/// address [`code_generation`] found in an image's code under this generation is still there.
/// One atomic load, for the fault handler.
pub(crate) fn generation() -> Option<u64> {
    let now = GENERATION.load(Ordering::Acquire);
    now.is_multiple_of(2).then_some(now)
}

/// When `address` is in a read-execute section of a loaded image: the generation of the loaded
/// images, under which what is decoded there stays true (`mmio::cache`). `None` elsewhere, or
/// while an image is being loaded or unloaded. Lock-free, for the fault handler.
pub(crate) fn code_generation(address: usize) -> Option<u64> {
    let before = generation()?;
    let (slot, start) = slot_of(address)?;
    let offset = address - start;
    let in_code = IMAGE_CODE.get(slot)?.iter().any(|(o, l)| {
        let (o, l) = (o.load(Ordering::Relaxed), l.load(Ordering::Relaxed));
        offset >= o && offset - o < l
    });
    (in_code && GENERATION.load(Ordering::Acquire) == before).then_some(before)
}

/// The slot of the image containing `address`, and the image's start.
fn slot_of(address: usize) -> Option<(usize, usize)> {
    IMAGE_START.iter().zip(IMAGE_LEN.iter()).enumerate().find_map(|(i, (s, l))| {
        let start = s.load(Ordering::Acquire);
        (start != 0 && address >= start && address - start < l.load(Ordering::Relaxed)).then_some((i, start))
    })
}

/// Whether `address` is inside a loaded image (lock-free: the fault handler asks).
pub(crate) fn in_image(address: usize) -> bool {
    slot_of(address).is_some()
}

/// The image containing `address`: its start, and its name copied into `name` (the number of
/// bytes returned). Lock-free and allocation-free, for the fault handler.
pub(crate) fn image_at(address: usize, name: &mut [u8; NAME_BYTES]) -> Option<(usize, usize)> {
    let (slot, start) = slot_of(address)?;
    let n = IMAGE_NAME_LEN.get(slot)?.load(Ordering::Relaxed).min(NAME_BYTES);
    for (dst, src) in name.iter_mut().zip(IMAGE_NAME.get(slot)?.iter()).take(n) {
        *dst = src.load(Ordering::Relaxed);
    }
    Some((start, n))
}

/// `name+0xrva` for an address inside a loaded image.
#[must_use]
pub fn describe(address: usize) -> Option<String> {
    let mut name = [0u8; NAME_BYTES];
    let (start, n) = image_at(address, &mut name)?;
    Some(format!("{}+{:#x}", String::from_utf8_lossy(name.get(..n)?), address - start))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `code_generation` of `address`, retried while another test's image is being registered.
    fn generation(address: usize) -> Option<u64> {
        for _ in 0..1000 {
            if let Some(g) = code_generation(address) {
                return Some(g);
            }
            if !in_image(address) {
                return None;
            }
            std::thread::yield_now();
        }
        None
    }

    /// What the fault handler may cache is named by the code sections and the generation: only
    /// addresses in an image's read-execute sections have one, and unloading the image (or
    /// loading another at its address) moves it, so nothing decoded before is used again.
    #[test]
    fn code_has_a_generation_that_moves_with_every_load_and_unload() {
        // Nothing is mapped here: the table is only addresses.
        let start = 0x5A5A_0000_0000usize;
        let slot = register("gen.sys", start, 0x8000, &[(0x1000, 0x2000), (0x6000, 0x1000)]).unwrap();
        let g = generation(start + 0x1000).expect("code");
        assert!(generation(start + 0x2FFF).is_some() && generation(start + 0x6800).is_some());
        assert_eq!(generation(start), None, "headers");
        assert_eq!(generation(start + 0x3000), None, "data after the first code section");
        assert_eq!(generation(start + 0x8000), None, "past the image");
        unregister(slot);
        assert_eq!(generation(start + 0x1000), None, "unloaded");
        let slot = register("other.sys", start, 0x8000, &[(0x1000, 0x2000)]).unwrap();
        let again = generation(start + 0x1000).expect("code");
        assert!(again > g, "another image at the same address has another generation ({g} then {again})");
        assert_eq!(generation(start + 0x6800), None, "not code in this one");
        unregister(slot);
    }
}
