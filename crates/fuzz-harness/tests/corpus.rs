//! Every fuzz target's corpus, replayed through the target's property on stable Rust: the seeds
//! and the reproducers of what fuzzing found (`crates/fuzz/seeds/<target>/`).
//!
//! The generated seeds (files named `seed-*`) are made here from their descriptions
//! (`srb::seeds`, `hostile::seeds`, [`pe_seeds`]); the test fails when a committed one differs,
//! so that a change of an input format cannot leave the corpus meaning something else.
//! `FUZZ_SEEDS_UPDATE=1 cargo test -p fuzz-harness --test corpus` rewrites them. Reproducers
//! (`repro-*`) are kept as found.
#![cfg(target_os = "linux")]

use std::path::{Path, PathBuf};

use fuzz_harness::{Failure, cli, hostile, pe_load, srb};
use object::pe;
use object::write::pe::{NtHeaders, Writer};

fn seeds_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds").join(target)
}

/// The corpus of a target: (file name, bytes), sorted.
fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = seeds_dir(target);
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| {
            let path = e.expect("a directory entry").path();
            (path.file_name().expect("a file name").to_string_lossy().into_owned(), std::fs::read(&path).expect("a seed file"))
        })
        .collect();
    out.sort();
    out
}

/// Checks the committed generated seeds against their descriptions (or rewrites them).
fn check_generated(target: &str, generated: &[(String, Vec<u8>)]) {
    let dir = seeds_dir(target);
    let update = std::env::var_os("FUZZ_SEEDS_UPDATE").is_some();
    if update {
        std::fs::create_dir_all(&dir).expect("creating the seed directory");
        for entry in std::fs::read_dir(&dir).expect("the seed directory") {
            let path = entry.expect("a directory entry").path();
            if path.file_name().is_some_and(|n| n.to_string_lossy().starts_with("seed-")) {
                std::fs::remove_file(&path).expect("removing an old seed");
            }
        }
    }
    let mut stale = Vec::new();
    for (name, bytes) in generated {
        let path = dir.join(name);
        if update {
            std::fs::write(&path, bytes).expect("writing a seed");
        } else if std::fs::read(&path).ok().as_deref() != Some(bytes.as_slice()) {
            stale.push(name.clone());
        }
    }
    let committed: Vec<String> = corpus(target).into_iter().map(|(n, _)| n).filter(|n| n.starts_with("seed-")).collect();
    for name in committed {
        if !generated.iter().any(|(n, _)| *n == name) {
            stale.push(format!("{name} (no longer generated)"));
        }
    }
    assert!(stale.is_empty(), "{target}: seeds differ from their descriptions: {stale:?}; FUZZ_SEEDS_UPDATE=1 cargo test -p fuzz-harness --test corpus rewrites them");
}

fn replay<R>(target: &str, run: impl Fn(&[u8]) -> Result<R, Failure>) -> Vec<(String, R)> {
    let mut failures = Vec::new();
    let mut results = Vec::new();
    for (name, bytes) in corpus(target) {
        match run(&bytes) {
            Ok(r) => results.push((name, r)),
            Err(f) => failures.push(format!("{target}/{name}: {f}")),
        }
    }
    assert!(failures.is_empty(), "{} inputs break the property:\n{}", failures.len(), failures.join("\n"));
    results
}

#[test]
fn srb_corpus() {
    let generated: Vec<(String, Vec<u8>)> = srb::seeds().into_iter().map(|(n, i)| (format!("seed-{n}"), i.encode())).collect();
    check_generated("srb", &generated);
    for (name, input) in srb::seeds() {
        assert_eq!(srb::Input::decode(&input.encode()), input, "{name} decodes to what it was made from");
    }
    let results = replay("srb", srb::run);
    let success = |r: &srb::Report| r.statuses.get(&scsiport_sys::SRB_STATUS_SUCCESS).copied().unwrap_or(0);
    for (name, r) in &results {
        assert!(!r.statuses.is_empty(), "{name}: nothing completed");
    }
    assert!(results.iter().map(|(_, r)| success(r)).sum::<u64>() > 0, "nothing succeeded");
    let refused: u64 = results.iter().map(|(_, r)| r.statuses.get(&scsiport_sys::SRB_STATUS_INVALID_REQUEST).copied().unwrap_or(0)).sum();
    assert!(refused > 0, "the seeds include requests the driver must refuse");
}

#[test]
fn hostile_corpus() {
    let generated: Vec<(String, Vec<u8>)> = hostile::seeds().into_iter().map(|(n, i)| (format!("seed-{n}"), i.encode())).collect();
    check_generated("hostile", &generated);
    for (name, input) in hostile::seeds() {
        assert_eq!(hostile::Input::decode(&input.encode()), input, "{name} decodes to what it was made from");
    }
    for (name, r) in replay("hostile", hostile::run) {
        if name.starts_with("seed-") {
            assert!(r.hostile > 0, "{name}: the device never misbehaved");
        }
    }
}

#[test]
fn pe_load_corpus() {
    let generated = pe_seeds();
    check_generated("pe_load", &generated);
    for (name, outcome) in replay("pe_load", pe_load::run) {
        if name.starts_with("seed-") {
            assert_eq!(outcome, pe_load::Outcome::Loaded, "{name}");
        }
    }
}

#[test]
fn cli_corpus() {
    let generated: Vec<(String, Vec<u8>)> = cli::seeds().into_iter().map(|(n, i)| (format!("seed-{n}"), i.encode())).collect();
    check_generated("cli", &generated);
    for (name, input) in cli::seeds() {
        assert_eq!(cli::Input::decode(&input.encode()), input, "{name} decodes to what it was made from");
    }
    let results = replay("cli", cli::run);
    let accepted = results.iter().filter(|(_, r)| *r == cli::Outcome::Accepted).count();
    assert!(accepted > 0 && accepted < results.len(), "the seeds are accepted and refused: {results:?}");
}

/// What a seed image holds.
struct Image {
    imports: &'static [&'static str],
    /// Pointers in .data (each with a DIR64 relocation).
    pointers: usize,
    reloc_section: bool,
}

/// Small valid driver images, built with `object`'s PE writer as the loader's own tests do:
/// `.text` (`xor eax, eax; ret`), `.rdata` (the import directory), `.data` (pointers into the
/// image), `.reloc`.
fn pe_seeds() -> Vec<(String, Vec<u8>)> {
    [
        ("seed-minimal.sys", Image { imports: &["ScsiPortInitialize"], pointers: 1, reloc_section: true }),
        (
            "seed-imports.sys",
            Image {
                imports: &["ScsiPortInitialize", "ScsiPortNotification", "ScsiPortGetDeviceBase", "ScsiPortGetUncachedExtension", "ScsiPortStallExecution"],
                pointers: 3,
                reloc_section: true,
            },
        ),
        ("seed-no-relocations.sys", Image { imports: &["ScsiPortInitialize"], pointers: 0, reloc_section: false }),
    ]
    .into_iter()
    .map(|(name, spec)| (name.to_string(), pe_image(&spec)))
    .collect()
}

#[allow(clippy::cast_possible_truncation)] // small, known sizes
fn pe_image(spec: &Image) -> Vec<u8> {
    const PAGE: u32 = 0x1000;
    const BASE: u64 = 0x1_4000_0000;
    const MODULE: &str = "SCSIPORT.SYS";
    let (text_rva, rdata_rva, data_rva) = (PAGE, 2 * PAGE, 3 * PAGE);
    let code = [0x31, 0xC0, 0xC3];
    // .rdata: one import descriptor and the null one, the lookup table, the IAT, the hint/name
    // entries, the module name.
    let n = spec.imports.len() as u32;
    let descriptors = 40;
    let ilt = descriptors;
    let iat = ilt + (n + 1) * 8;
    let mut names = iat + (n + 1) * 8;
    let mut rdata = vec![0u8; names as usize];
    let put32 = |b: &mut Vec<u8>, at: u32, v: u32| b[at as usize..at as usize + 4].copy_from_slice(&v.to_le_bytes());
    for (i, name) in spec.imports.iter().enumerate() {
        let entry = u64::from(rdata_rva + names);
        let slot = i as u32 * 8;
        rdata[(ilt + slot) as usize..(ilt + slot + 8) as usize].copy_from_slice(&entry.to_le_bytes());
        rdata[(iat + slot) as usize..(iat + slot + 8) as usize].copy_from_slice(&entry.to_le_bytes());
        rdata.extend_from_slice(&[0, 0]);
        rdata.extend_from_slice(name.as_bytes());
        rdata.push(0);
        if rdata.len() % 2 == 1 {
            rdata.push(0);
        }
        names = rdata.len() as u32;
    }
    let module = rdata.len() as u32;
    rdata.extend_from_slice(MODULE.as_bytes());
    rdata.push(0);
    put32(&mut rdata, 0, rdata_rva + ilt);
    put32(&mut rdata, 12, rdata_rva + module);
    put32(&mut rdata, 16, rdata_rva + iat);
    // .data: pointers to .text and .rdata.
    let mut data = Vec::new();
    for i in 0..spec.pointers {
        let target = if i % 2 == 0 { text_rva } else { rdata_rva };
        data.extend_from_slice(&(BASE + u64::from(target)).to_le_bytes());
    }
    data.resize(data.len().max(16), 0);

    let mut buf = Vec::new();
    let mut w = Writer::new(true, PAGE, 0x200, &mut buf);
    w.reserve_dos_header_and_stub();
    w.reserve_nt_headers(pe::IMAGE_NUMBEROF_DIRECTORY_ENTRIES);
    w.reserve_section_headers(3 + u16::from(spec.reloc_section));
    let text = w.reserve_text_section(code.len() as u32);
    let rdata_range = w.reserve_rdata_section(rdata.len() as u32);
    let data_range = w.reserve_data_section(data.len() as u32, data.len() as u32);
    assert_eq!((text.virtual_address, rdata_range.virtual_address, data_range.virtual_address), (text_rva, rdata_rva, data_rva));
    w.set_data_directory(pe::IMAGE_DIRECTORY_ENTRY_IMPORT, rdata_rva, descriptors);
    w.set_data_directory(pe::IMAGE_DIRECTORY_ENTRY_IAT, rdata_rva + iat, (n + 1) * 8);
    if spec.reloc_section {
        for i in 0..spec.pointers {
            w.add_reloc(data_rva + i as u32 * 8, pe::IMAGE_REL_BASED_DIR64);
        }
        w.reserve_reloc_section();
    }
    w.write_dos_header_and_stub().expect("DOS header");
    w.write_nt_headers(NtHeaders {
        machine: pe::IMAGE_FILE_MACHINE_AMD64,
        time_date_stamp: 0,
        characteristics: pe::IMAGE_FILE_EXECUTABLE_IMAGE | pe::IMAGE_FILE_LARGE_ADDRESS_AWARE,
        major_linker_version: 14,
        minor_linker_version: 0,
        address_of_entry_point: text_rva,
        image_base: BASE,
        major_operating_system_version: 10,
        minor_operating_system_version: 0,
        major_image_version: 10,
        minor_image_version: 0,
        major_subsystem_version: 10,
        minor_subsystem_version: 0,
        subsystem: pe::IMAGE_SUBSYSTEM_NATIVE,
        dll_characteristics: pe::IMAGE_DLLCHARACTERISTICS_DYNAMIC_BASE | pe::IMAGE_DLLCHARACTERISTICS_NX_COMPAT,
        size_of_stack_reserve: 0x4_0000,
        size_of_stack_commit: 0x1000,
        size_of_heap_reserve: 0x10_0000,
        size_of_heap_commit: 0x1000,
    });
    w.write_section_headers();
    w.write_section(text.file_offset, &code);
    w.write_section(rdata_range.file_offset, &rdata);
    w.write_section(data_range.file_offset, &data);
    w.write_reloc_section();
    buf
}
