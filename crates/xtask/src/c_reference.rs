//! `cargo xtask sys --c-reference`: the C reference miniport (`driver/c-reference/`) built with
//! MinGW-w64 into a kernel-mode PE, `rspvscsi_c.sys`, held to the same image rules as the Rust
//! driver ([`pe::check`] with [`pe::SCSIPORT`]).
//!
//! The steps, and why each is there:
//! - `x86_64-w64-mingw32-dlltool` makes the import library for `SCSIPORT.SYS` from
//!   `scsiport.def` (the WDK's `scsiport.lib` plays that part in a WDK build).
//! - `x86_64-w64-mingw32-gcc` compiles with no C runtime and no runtime helpers (see
//!   [`COMPILE_FLAGS`]) and links a NATIVE image whose entry is `DriverEntry` and whose only
//!   imports are SCSI Port routines (see [`LINK_FLAGS`]).
//! - What GNU ld cannot do, done on the image afterwards: link.exe `/DRIVER` marks every resident
//!   section `IMAGE_SCN_MEM_NOT_PAGED`, GNU ld has no switch for it; and the checksum is then
//!   computed over the final bytes ([`pe::pe_checksum`]), as link.exe `/RELEASE` would.
//! - The map: GNU ld writes its own format, not link.exe's; [`parse_gnu_map`] reads it into the
//!   same [`Map`], so the checker finds `DriverEntry` and the interrupt routine
//!   (`PvscsiHwScsiInterrupt`, which [`pe::SCSIPORT`]'s `HwScsiInterrupt` candidate matches) just
//!   as it does in the Rust driver's map. The image itself keeps no symbol table (`-s`), as
//!   link.exe's images keep none.
//!
//! The image is not signed: it is an example, not a second product.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::map::{Map, Symbol};
use crate::pe;
use crate::{TARGET, workspace_root};

/// The image's file name.
pub const SYS_NAME: &str = "rspvscsi_c.sys";

/// The C compiler and the import-library tool of MinGW-w64 for x64.
pub const GCC: &str = "x86_64-w64-mingw32-gcc";
/// See [`GCC`].
pub const DLLTOOL: &str = "x86_64-w64-mingw32-dlltool";

/// The driver's sources, relative to the workspace root.
pub const SOURCE_DIR: &str = "driver/c-reference";

/// Compiler flags, each for a kernel-mode reason.
pub const COMPILE_FLAGS: &[&str] = &[
    "-std=gnu11",
    "-O2",
    // The WDK builds drivers at /W4 /WX.
    "-Wall",
    "-Wextra",
    "-Werror",
    // No C runtime: a miniport may not link libcntpr.lib (KG:scsi-port-driver-overview).
    "-ffreestanding",
    "-fno-builtin",
    // GCC turns copy and zero loops into memcpy/memset calls, which nothing would provide.
    "-fno-tree-loop-distribute-patterns",
    // The Windows x64 convention has no red zone; interrupts push onto the kernel stack.
    "-mno-red-zone",
    // No __security_cookie / __stack_chk_fail runtime, and no stack probes (__chkstk,
    // ___chkstk_ms): kernel stacks are not probed that way.
    "-fno-stack-protector",
    "-mno-stack-arg-probe",
    "-fno-common",
    // Unwind data (.pdata/.xdata) stays: the x64 kernel walks stacks with it, as link.exe's
    // images always carry it, and the image checker reads the ISR's extent from it.
    "-fasynchronous-unwind-tables",
];

/// Linker flags (GNU ld through gcc), the counterparts of link.exe's `/DRIVER` switches.
pub const LINK_FLAGS: &[&str] = &[
    // No startup files, no libgcc, no mingwex, no kernel32: SCSIPORT.SYS only.
    "-nostdlib",
    "-nostartfiles",
    // /SUBSYSTEM:NATIVE,6.01 /ENTRY:DriverEntry.
    "-Wl,--subsystem,native:6.1",
    "-Wl,--major-os-version,6",
    "-Wl,--minor-os-version,1",
    "-Wl,--entry,DriverEntry",
    // /DYNAMICBASE /NXCOMPAT /INTEGRITYCHECK and high-entropy addresses, as link.exe sets for x64;
    // a .reloc section whenever the code holds an absolute address (this driver holds none, as
    // the Rust image holds none: both are relocatable with nothing to relocate).
    "-Wl,--dynamicbase",
    "-Wl,--enable-reloc-section",
    "-Wl,--nxcompat",
    "-Wl,--forceinteg",
    "-Wl,--high-entropy-va",
    // Page-aligned sections (memory integrity) and 512-byte file alignment.
    "-Wl,--section-alignment,0x1000",
    "-Wl,--file-alignment,0x200",
    // The same bytes from the same sources.
    "-Wl,--no-insert-timestamp",
    // No COFF symbol table in the image (the map has the symbols).
    "-s",
];

/// Build options.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Preprocessor symbols to define, for a test build such as the verifier's deliberate mistake
    /// (`PVSCSI_BREAK_COMPLETE_TWICE`). A build with defines goes to its own folder.
    pub defines: Vec<String>,
}

/// What the build produced.
#[derive(Clone, Debug)]
pub struct Package {
    /// The package folder.
    pub dir: PathBuf,
    /// The driver image.
    pub sys: PathBuf,
    /// GNU ld's map.
    pub map: PathBuf,
    /// The image checker's verdicts.
    pub report: pe::Report,
}

/// Where the package goes: beside the Rust driver's (`rspvscsi_package`), or, for a test build
/// with defines, a folder named after them.
#[must_use]
pub fn package_dir(opts: &Options) -> PathBuf {
    let release = crate::sys::target_dir().join(TARGET).join("release");
    if opts.defines.is_empty() {
        release.join("rspvscsi_c_package")
    } else {
        release.join(format!("rspvscsi_c_package-{}", opts.defines.join("-").to_ascii_lowercase()))
    }
}

/// Why the C reference cannot be built here, if it cannot (MinGW-w64 missing).
#[must_use]
pub fn unavailable_reason() -> Option<String> {
    let missing: Vec<&str> = [GCC, DLLTOOL].into_iter().filter(|t| !crate::debian::have(t)).collect();
    (!missing.is_empty())
        .then(|| format!("{} not found (Debian: apt-get install gcc-mingw-w64-x86-64 binutils-mingw-w64-x86-64)", missing.join(" and ")))
}

fn run(mut command: Command) -> Result<()> {
    let output = command.output().with_context(|| format!("running {command:?}"))?;
    if !output.status.success() {
        bail!(
            "{command:?} failed ({}):\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}

/// Builds the image, checks it and puts it in [`package_dir`]. Progress goes to `log`.
///
/// # Errors
/// When MinGW-w64 is missing, a step fails, or the image breaks a rule of [`pe::check`].
pub fn build(opts: &Options, log: &mut dyn FnMut(&str)) -> Result<Package> {
    if let Some(reason) = unavailable_reason() {
        bail!("{reason}");
    }
    // Test binaries may build at the same time (one per process): one build at a time, and every
    // file of the package replaced by a rename.
    let xtask_dir = crate::sys::target_dir().join("xtask");
    std::fs::create_dir_all(&xtask_dir)?;
    let lock = std::fs::File::create(xtask_dir.join("c-reference.lock"))?;
    lock.lock()?;

    let source = workspace_root().join(SOURCE_DIR);
    let dir = package_dir(opts);
    let work = xtask_dir.join("c-reference").join(dir.file_name().unwrap_or_default());
    std::fs::create_dir_all(&work)?;
    std::fs::create_dir_all(&dir)?;

    let import_lib = work.join("libscsiport.a");
    let mut dlltool = Command::new(DLLTOOL);
    dlltool.arg("--input-def").arg(source.join("scsiport.def")).arg("--output-lib").arg(&import_lib);
    run(dlltool)?;

    let mut objects = Vec::new();
    let mut sources: Vec<PathBuf> = std::fs::read_dir(&source)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "c"))
        .collect();
    sources.sort();
    for c in &sources {
        let object = work.join(c.file_name().unwrap_or_default()).with_extension("o");
        let mut gcc = Command::new(GCC);
        gcc.args(COMPILE_FLAGS);
        for define in &opts.defines {
            gcc.arg(format!("-D{define}"));
        }
        gcc.arg("-c").arg(c).arg("-o").arg(&object);
        run(gcc)?;
        objects.push(object);
    }

    let linked = work.join(SYS_NAME);
    let map_path = work.join(Path::new(SYS_NAME).with_extension("map"));
    let mut link = Command::new(GCC);
    link.args(LINK_FLAGS);
    link.arg(format!("-Wl,-Map,{}", map_path.display()));
    link.arg("-o").arg(&linked).args(&objects);
    link.arg("-L").arg(&work).arg("-lscsiport");
    run(link)?;

    let mut image = std::fs::read(&linked)?;
    let paged = mark_resident_sections_not_paged(&mut image)?;
    set_checksum(&mut image)?;
    let map_text = std::fs::read_to_string(&map_path)?;
    let map = parse_gnu_map(&map_text);
    let report = pe::check(&image, Some(&map), &pe::SCSIPORT)?;
    if !report.ok() {
        let failures: Vec<String> = report.failures().map(|f| format!("{}: {}", f.rule, f.detail)).collect();
        bail!("{SYS_NAME} breaks the rules for a {} miniport:\n  {}", pe::SCSIPORT.module, failures.join("\n  "));
    }

    let sys = dir.join(SYS_NAME);
    let pkg_map = dir.join(Path::new(SYS_NAME).with_extension("map"));
    let tmp = sys.with_extension("sys.tmp");
    std::fs::write(&tmp, &image)?;
    std::fs::rename(&tmp, &sys)?;
    let tmp = pkg_map.with_extension("map.tmp");
    std::fs::copy(&map_path, &tmp)?;
    std::fs::rename(&tmp, &pkg_map)?;
    log(&format!(
        "{SYS_NAME}: {} bytes, imports {}; NOT_PAGED set on {}{}",
        report.size,
        report.imports.iter().map(|(_, n)| n.as_str()).collect::<Vec<_>>().join(" "),
        paged.join(" "),
        if opts.defines.is_empty() { String::new() } else { format!("; test build with {}", opts.defines.join(" ")) }
    ));
    Ok(Package { dir, sys, map: pkg_map, report })
}

fn u16_at(image: &[u8], offset: usize) -> Option<u16> {
    Some(u16::from_le_bytes(image.get(offset..offset.checked_add(2)?)?.try_into().ok()?))
}

fn u32_at(image: &[u8], offset: usize) -> Option<u32> {
    Some(u32::from_le_bytes(image.get(offset..offset.checked_add(4)?)?.try_into().ok()?))
}

/// Offsets of the file header and the section table.
fn headers(image: &[u8]) -> Result<(usize, usize, usize)> {
    let lfanew = u32_at(image, 0x3C).context("no e_lfanew")? as usize;
    if image.get(lfanew..lfanew + 4) != Some(b"PE\0\0".as_slice()) {
        bail!("no PE signature at {lfanew:#x}");
    }
    let file_header = lfanew + 4;
    let sections = usize::from(u16_at(image, file_header + 2).context("truncated file header")?);
    let optional = usize::from(u16_at(image, file_header + 16).context("truncated file header")?);
    Ok((file_header, file_header + 20 + optional, sections))
}

/// Sets `IMAGE_SCN_MEM_NOT_PAGED` on every section that stays in memory (not discardable, not
/// `PAGE*`), as link.exe `/DRIVER` does; returns their names.
///
/// # Errors
/// When the headers are not a PE's.
pub fn mark_resident_sections_not_paged(image: &mut [u8]) -> Result<Vec<String>> {
    const SECTION_HEADER: usize = 40;
    const CHARACTERISTICS: usize = 36;
    let (_, table, count) = headers(image)?;
    let mut names = Vec::new();
    for i in 0..count {
        let header = table + i * SECTION_HEADER;
        let raw_name = image.get(header..header + 8).context("truncated section table")?;
        let end = raw_name.iter().position(|&b| b == 0).unwrap_or(8);
        let name = String::from_utf8_lossy(&raw_name[..end]).into_owned();
        let at = header + CHARACTERISTICS;
        let flags = u32_at(image, at).context("truncated section table")?;
        if flags & object::pe::IMAGE_SCN_MEM_DISCARDABLE != 0 || name.starts_with("PAGE") {
            continue;
        }
        let patched = flags | object::pe::IMAGE_SCN_MEM_NOT_PAGED;
        image.get_mut(at..at + 4).context("truncated section table")?.copy_from_slice(&patched.to_le_bytes());
        names.push(name);
    }
    Ok(names)
}

/// Writes the PE checksum of the final bytes into the optional header.
///
/// # Errors
/// When the headers are not a PE's.
pub fn set_checksum(image: &mut [u8]) -> Result<u32> {
    let (file_header, _, _) = headers(image)?;
    let offset = file_header + 20 + 64;
    let checksum = pe::pe_checksum(image, offset);
    image.get_mut(offset..offset + 4).context("truncated optional header")?.copy_from_slice(&checksum.to_le_bytes());
    Ok(checksum)
}

/// Reads a map in either format: GNU ld's (it has a "Linker script and memory map" part) or
/// link.exe's ([`Map::parse`]).
#[must_use]
pub fn parse_any_map(text: &str) -> Map {
    if text.lines().any(|l| l.starts_with("Linker script and memory map")) { parse_gnu_map(text) } else { Map::parse(text) }
}

/// Reads a GNU ld map (`-Wl,-Map`) into a [`Map`]: the image base from `__image_base__`, and for
/// every global symbol of the memory map its RVA and the input file (`pvscsi.o`,
/// `./libscsiport.a(libscsiport_a_s00006.o)`) that defined it. Static functions are not in a
/// GNU ld map; the routines SCSI Port calls are global.
#[must_use]
pub fn parse_gnu_map(text: &str) -> Map {
    let hex = |s: &str| s.strip_prefix("0x").and_then(|h| u64::from_str_radix(h, 16).ok());
    let mut map = Map::default();
    let mut in_memory_map = false;
    let mut object = String::new();
    let mut pending_section = false;
    let mut symbols: Vec<(String, u64, String)> = Vec::new();
    for line in text.lines() {
        if line.starts_with("Linker script and memory map") {
            in_memory_map = true;
            continue;
        }
        if !in_memory_map {
            continue;
        }
        let tokens: Vec<&str> = line.split_whitespace().collect();
        if tokens.len() >= 3 && tokens.get(1) == Some(&"__image_base__") && tokens.get(2) == Some(&"=") {
            map.base = tokens.first().and_then(|t| hex(t)).unwrap_or(0);
            continue;
        }
        // An input section: " .text  0x… 0x… file", or its name alone when long, the rest on the
        // next line.
        if line.starts_with(" .") {
            match tokens.as_slice() {
                [_, address, size, file @ ..] if hex(address).is_some() && hex(size).is_some() && !file.is_empty() => {
                    object = file.join(" ");
                    pending_section = false;
                }
                [_] => pending_section = true,
                _ => pending_section = false,
            }
            continue;
        }
        if pending_section {
            pending_section = false;
            if let [address, size, file @ ..] = tokens.as_slice()
                && hex(address).is_some()
                && hex(size).is_some()
                && !file.is_empty()
            {
                object = file.join(" ");
                continue;
            }
        }
        // A symbol: "                0x0000000140001100                PvscsiHwScsiInitialize".
        if let [address, name] = tokens.as_slice()
            && let Some(address) = hex(address)
            && !object.is_empty()
        {
            symbols.push(((*name).to_string(), address, object.clone()));
        }
    }
    map.symbols = symbols
        .into_iter()
        .map(|(name, address, object)| Symbol { name, rva: address.wrapping_sub(map.base), object })
        .collect();
    map
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "Archive member included to satisfy reference by file (symbol)

./libscsiport.a(libscsiport_a_s00006.o)
                              pvscsi.o (__imp_ScsiPortNotification)

Linker script and memory map

                0x0000000140000000                __image_base__ = 0x140000000
                0x0000000000001000                __section_alignment__ = 0x1000

.text           0x0000000140001000     0x1e00
 *(.text)
 .text          0x0000000140001000     0x1cb0 pvscsi.o
                0x0000000140001550                PvscsiHwScsiInterrupt
                0x0000000140002bc0                DriverEntry
 .text          0x0000000140002cb0        0x8 ./libscsiport.a(libscsiport_a_s00006.o)
                0x0000000140002cb0                ScsiPortNotification
 .rdata$zzz_a_long_name
                0x0000000140003240       0x20 other.o
                0x0000000140003240                Something
 .idata$5       0x0000000140006098        0x8 ./libscsiport.a(libscsiport_a_s00006.o)
                0x0000000140006098                __imp_ScsiPortNotification
";

    #[test]
    fn reads_gnu_ld_maps() {
        let map = parse_gnu_map(SAMPLE);
        assert_eq!(map.base, 0x1_4000_0000);
        let find = |name: &str| map.symbols.iter().find(|s| s.name == name).cloned();
        assert_eq!(find("DriverEntry").map(|s| (s.rva, s.object)), Some((0x2bc0, "pvscsi.o".to_string())));
        assert_eq!(find("PvscsiHwScsiInterrupt").map(|s| s.rva), Some(0x1550));
        assert_eq!(find("Something").map(|s| s.object), Some("other.o".to_string()));
        assert_eq!(map.symbols.len(), 5, "{:?}", map.symbols);
        assert!(map.linked_in().all(|s| !s.name.starts_with("__imp_")));
        // What the image checker looks for, in its order of preference.
        let isr = pe::SCSIPORT.interrupt_symbols.iter().find_map(|p| map.linked_in().find(|s| s.name.contains(p)));
        assert_eq!(isr.map(|s| s.name.as_str()), Some("PvscsiHwScsiInterrupt"));
    }

    #[test]
    fn not_paged_and_checksum_on_a_minimal_image() {
        // DOS header with e_lfanew, PE signature, file header with two sections, a 240-byte
        // optional header, two section headers.
        let mut image = vec![0u8; 0x400];
        image[0x3C..0x40].copy_from_slice(&0x80u32.to_le_bytes());
        image[0x80..0x84].copy_from_slice(b"PE\0\0");
        image[0x86..0x88].copy_from_slice(&2u16.to_le_bytes());
        image[0x94..0x96].copy_from_slice(&240u16.to_le_bytes());
        let table = 0x84 + 20 + 240;
        image[table..table + 5].copy_from_slice(b".text");
        image[table + 36..table + 40].copy_from_slice(&0x6000_0020u32.to_le_bytes());
        image[table + 40..table + 46].copy_from_slice(b".reloc");
        image[table + 76..table + 80].copy_from_slice(&0x4200_0040u32.to_le_bytes());
        let names = mark_resident_sections_not_paged(&mut image).unwrap();
        assert_eq!(names, [".text"]);
        assert_eq!(u32_at(&image, table + 36), Some(0x6800_0020));
        assert_eq!(u32_at(&image, table + 76), Some(0x4200_0040), "a discardable section stays as it is");
        let sum = set_checksum(&mut image).unwrap();
        assert_eq!(u32_at(&image, 0x84 + 20 + 64), Some(sum));
        assert_eq!(pe::pe_checksum(&image, 0x84 + 20 + 64), sum);
    }
}
