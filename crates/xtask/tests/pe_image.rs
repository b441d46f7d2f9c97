//! The shipping images, `rspvscsi.sys` and `rspvscsi_storport.sys` as `cargo xtask sys` builds
//! them, held to the rules Windows and HLK apply to a SCSI Port and a Storport miniport
//! (`xtask::pe`). The report (sections, imports,
//! relocations, the interrupt routine's size and instructions) is printed with `--nocapture`.
//!
//! The package is (re)built first; cargo makes that a no-op when nothing changed. On a machine
//! that cannot build it (no Debian apt for the library source, no rust-lld, no osslsigncode)
//! the test prints `SKIPPED: …` and passes, except in CI (`RSPVSCSI_CI=1`), where it fails.

use std::sync::OnceLock;

use object::pe;
use xtask::map::Map;
use xtask::pe::{Report, SCSIPORT, STORPORT, check};
use xtask::sys::{self, Package};

fn build(flavor: &sys::Flavor) -> Option<Package> {
    if let Some(reason) = sys::unavailable_reason() {
        assert!(!xtask::in_ci(), "RSPVSCSI_CI=1 but {}.sys cannot be built here: {reason}", flavor.name);
        println!("SKIPPED: {}.sys cannot be built on this machine: {reason}", flavor.name);
        return None;
    }
    let built = sys::build(flavor, &sys::Options::default(), &mut |line| println!("{line}"));
    Some(built.unwrap_or_else(|e| panic!("cargo xtask sys failed: {e:#}")))
}

fn package() -> Option<&'static Package> {
    static PACKAGE: OnceLock<Option<Package>> = OnceLock::new();
    PACKAGE.get_or_init(|| build(&sys::SCSIPORT)).as_ref()
}

/// `rspvscsi_storport.sys`.
fn storport_package() -> Option<&'static Package> {
    static PACKAGE: OnceLock<Option<Package>> = OnceLock::new();
    PACKAGE.get_or_init(|| build(&sys::STORPORT)).as_ref()
}

fn image_and_map(p: &Package) -> (Vec<u8>, Map) {
    let image = std::fs::read(&p.sys).expect("reading the .sys");
    let map = Map::parse(&std::fs::read_to_string(&p.map).expect("reading the .map"));
    (image, map)
}

fn finding<'a>(report: &'a Report, rule_start: &str) -> &'a xtask::pe::Finding {
    report.findings.iter().find(|f| f.rule.starts_with(rule_start)).unwrap_or_else(|| panic!("no rule {rule_start}"))
}

#[test]
fn the_shipping_image_keeps_every_rule() {
    let Some(p) = package() else { return };
    let (image, map) = image_and_map(p);
    let report = check(&image, Some(&map), &SCSIPORT).expect("a PE32+ image");
    println!("{}\n{}", p.sys.display(), report.render());
    let failures: Vec<String> = report.failures().map(|f| format!("{}: {}", f.rule, f.detail)).collect();
    assert!(failures.is_empty(), "rules broken:\n{}", failures.join("\n"));

    // The routines a SCSI Port miniport of this kind cannot do without, and nothing else.
    let names: Vec<&str> = report.imports.iter().map(|(_, n)| n.as_str()).collect();
    for needed in ["ScsiPortInitialize", "ScsiPortNotification", "ScsiPortGetDeviceBase", "ScsiPortGetUncachedExtension"] {
        assert!(names.contains(&needed), "{needed} is not imported: {names:?}");
    }
    assert!(report.imports.iter().all(|(m, _)| m.eq_ignore_ascii_case("scsiport.sys")));
    assert!(report.signed, "the package's .sys is Authenticode-signed");
    assert!(report.mem_functions.is_empty(), "memory intrinsics are avoided, not linked in: {:?}", report.mem_functions);
    assert!(!report.panic_handler, "no panic path survives LTO in the shipping image");
    assert_eq!(report.linked_crates.iter().map(String::as_str).collect::<Vec<_>>(), ["rspvscsi"], "LTO made one module");
    let isr = report.interrupt.as_ref().expect("HwScsiInterrupt found through the map and .pdata");
    assert!(isr.bytes > 0 && isr.instructions > 0);
    assert!(isr.normal_path.is_some(), "a path through ScsiPortNotification(CallEnableInterrupts)");
    let cer = p.cer.as_ref().expect("the test certificate is in the package");
    assert!(cer.is_file());
}

#[test]
fn the_signature_verifies_and_the_checksum_covers_it() {
    let Some(p) = package() else { return };
    let cert = xtask::sign::ensure_cert(&sys::target_dir().join("xtask/signing")).expect("the test certificate");
    xtask::sign::verify(&cert, &p.sys).expect("osslsigncode verifies the package's signature");
    let (image, _) = image_and_map(p);
    let report = check(&image, None, &SCSIPORT).unwrap();
    assert!(finding(&report, "valid image checksum").ok, "signing kept the checksum valid: {:?}", report.checksum);
}

#[test]
fn the_inf_is_stamped_and_ranks_the_exact_hardware_id_first() {
    let Some(p) = package() else { return };
    let inf = std::fs::read_to_string(&p.inf).unwrap();
    assert!(!inf.contains("$ARCH$"));
    assert!(inf.contains("[Models.NTamd64.10.0...16299]"));
    assert!(inf.contains("CatalogFile = rspvscsi.cat"));
    let driver_ver = inf.lines().find(|l| l.starts_with("DriverVer")).expect("DriverVer");
    let value = driver_ver.split('=').nth(1).unwrap().trim();
    let (date, version) = value.split_once(',').expect("date,version");
    assert_eq!(date.len(), 10, "mm/dd/yyyy: {date}");
    // The time of day, as `stampinf -v *` stamps it (hours.minutes.seconds.milliseconds), so that
    // a later build of the same date outranks an installed one.
    // This process built the package just now: the stamp is the build's moment, in UTC.
    let parts: Vec<u64> = version.split('.').map(|p| p.parse().unwrap()).collect();
    let [hours, minutes, seconds, millis] = parts[..] else { panic!("four parts: {version}") };
    assert!(hours < 24 && minutes < 60 && seconds < 60 && millis < 1000, "hours.minutes.seconds.milliseconds: {version}");
    let (now, _) = xtask::inf::now();
    let today = now / 86_400;
    let stamped_day = [today, today - 1]
        .into_iter()
        .find(|d| {
            let (year, month, day) = xtask::inf::civil_date(d * 86_400);
            date == format!("{month:02}/{day:02}/{year:04}")
        })
        .expect("the stamped date is today or yesterday (UTC)");
    let stamped = stamped_day * 86_400 + hours * 3600 + minutes * 60 + seconds;
    assert!(stamped <= now && now - stamped < 3600, "stamped {date},{version}, {} s before now", now.saturating_sub(stamped));
    // The first model line is the device's first hardware ID on VMware and current QEMU.
    let models = inf.split("[Models.NTamd64.10.0...16299]").nth(1).unwrap();
    let first = models.lines().find(|l| l.contains("PCI\\")).unwrap();
    assert!(first.ends_with("PCI\\VEN_15AD&DEV_07C0&SUBSYS_07C015AD&REV_02"), "{first}");
}

/// The rules can fail: each mutation of the good image breaks the rule it should, and only
/// because of the mutation (the unmutated image passes, above).
#[test]
fn the_checker_catches_broken_images() {
    let Some(p) = package() else { return };
    let (image, map) = image_and_map(p);
    let file = object::read::pe::PeFile64::parse(image.as_slice()).unwrap();
    let lfanew = file.dos_header().nt_headers_offset() as usize;
    let sections_at = lfanew + 4 + 20 + usize::from(file.nt_headers().file_header.size_of_optional_header.get(object::LittleEndian));
    let section_named = |name: &str| -> usize {
        (0..usize::from(file.nt_headers().file_header.number_of_sections.get(object::LittleEndian)))
            .map(|i| sections_at + i * 40)
            .find(|&off| image[off..off + 8].starts_with(name.as_bytes()))
            .unwrap_or_else(|| panic!("no section {name}"))
    };
    let flags_at = |off: usize| off + 36;
    let set_u32 = |img: &mut Vec<u8>, at: usize, v: u32| img[at..at + 4].copy_from_slice(&v.to_le_bytes());
    let get_u32 = |img: &[u8], at: usize| u32::from_le_bytes(img[at..at + 4].try_into().unwrap());
    let broken = |mutate: &dyn Fn(&mut Vec<u8>), rule: &str| {
        let mut bad = image.clone();
        mutate(&mut bad);
        let report = check(&bad, Some(&map), &SCSIPORT).expect("still a PE image");
        assert!(!finding(&report, rule).ok, "mutation not caught by '{rule}'");
    };

    let text = section_named(".text");
    broken(&|img| set_u32(img, flags_at(text), get_u32(img, flags_at(text)) | pe::IMAGE_SCN_MEM_WRITE), "no section both writable");
    let rdata = section_named(".rdata");
    broken(&|img| set_u32(img, flags_at(rdata), get_u32(img, flags_at(rdata)) & !pe::IMAGE_SCN_MEM_NOT_PAGED), "resident sections NOT_PAGED");
    broken(&|img| img[section_named(".pdata")..][..8].copy_from_slice(b".retplne"), "no .retplne");
    let subsystem = lfanew + 4 + 20 + 68;
    broken(&|img| img[subsystem] = 2, "subsystem NATIVE");
    let code = get_u32(&image, text + 20) as usize;
    broken(&|img| img[code + 16] ^= 0xFF, "valid image checksum");
    let dllc = subsystem + 2;
    // IMAGE_DLLCHARACTERISTICS_NX_COMPAT (0x0100) is bit 0 of the field's high byte.
    broken(&|img| img[dllc + 1] &= !0x01, "NX-compatible");
    // The import module's name, same length: the image now imports from ntoskrnl.
    let module = image.windows(12).position(|w| w.eq_ignore_ascii_case(b"scsiport.sys")).expect("the module name");
    broken(&|img| img[module..module + 12].copy_from_slice(b"ntoskrnl.exe"), "imports only from the port driver");
    // A routine renamed to an accessor that is a macro on x64 (same length as the original).
    let name = image.windows(22).position(|w| w == b"ScsiPortFreeDeviceBase").expect("an import name");
    broken(&|img| img[name..name + 22].copy_from_slice(b"ScsiPortReadRegisterUc"), "every import a documented");

    // A map that shows code from core's rlib: LTO did not make one module.
    let mut text_map = std::fs::read_to_string(&p.map).unwrap();
    text_map.push_str(" 0001:00000010       _RNvCs1_4core3foo 0000000180001010     libcore-0123456789abcdef.rlib(core-0123.core.abc-cgu.0.rcgu.o)\n");
    let report = check(&image, Some(&Map::parse(&text_map)), &SCSIPORT).unwrap();
    assert!(!finding(&report, "LTO applied").ok);
}

#[test]
fn the_storport_image_keeps_every_rule_of_a_storport_miniport() {
    let Some(p) = storport_package() else { return };
    let (image, map) = image_and_map(p);
    let report = check(&image, Some(&map), &STORPORT).expect("a PE32+ image");
    println!("{}\n{}", p.sys.display(), report.render());
    let failures: Vec<String> = report.failures().map(|f| format!("{}: {}", f.rule, f.detail)).collect();
    assert!(failures.is_empty(), "rules broken:\n{}", failures.join("\n"));
    assert_eq!(p.sys.file_name().unwrap(), "rspvscsi_storport.sys");

    // What a Storport miniport of this kind cannot do without: StorPortIssueDpc and
    // StorPortInitializeDpc are StorPortNotification in storport.h; the scatter/gather list is
    // read in HwStorBuildIo and HwStorStartIo.
    let names: Vec<&str> = report.imports.iter().map(|(_, n)| n.as_str()).collect();
    for needed in
        ["StorPortInitialize", "StorPortNotification", "StorPortGetDeviceBase", "StorPortGetUncachedExtension", "StorPortGetScatterGatherList"]
    {
        assert!(names.contains(&needed), "{needed} is not imported: {names:?}");
    }
    assert!(report.imports.iter().all(|(m, _)| m.eq_ignore_ascii_case("storport.sys")), "{:?}", report.imports);
    assert!(report.signed, "the package's .sys is Authenticode-signed");
    assert!(report.mem_functions.is_empty(), "memory intrinsics are avoided, not linked in: {:?}", report.mem_functions);
    assert!(!report.panic_handler, "no panic path survives LTO in the shipping image");
    assert_eq!(report.linked_crates.iter().map(String::as_str).collect::<Vec<_>>(), ["rspvscsi"], "LTO made one module");
    // One flavour per image: the SCSI Port routines are not in it.
    assert!(!map.linked_in().any(|s| s.name.contains("scsi_port")), "the SCSI Port flavour is linked into the Storport image");
    let isr = report.interrupt.as_ref().expect("HwStorInterrupt found through the map and .pdata");
    assert!(isr.bytes > 0 && isr.instructions > 0);
    assert!(isr.normal_path.is_some(), "a path through StorPortNotification(IssueDpc)");

    // The same image under SCSI Port's rules fails the import rule: the rules tell the ports apart.
    let as_scsiport = check(&image, Some(&map), &SCSIPORT).unwrap();
    assert!(!finding(&as_scsiport, "imports only from the port driver").ok);
    // And the SCSI Port image under Storport's.
    if let Some(scsi) = package() {
        let (scsi_image, scsi_map) = image_and_map(scsi);
        assert!(!finding(&check(&scsi_image, Some(&scsi_map), &STORPORT).unwrap(), "imports only from the port driver").ok);
        assert!(!scsi_map.linked_in().any(|s| s.name.contains("stor_port")), "the Storport flavour is linked into the SCSI Port image");
    }
}

#[test]
fn the_storport_inf_installs_the_storport_image() {
    let Some(p) = storport_package() else { return };
    let inf = std::fs::read_to_string(&p.inf).unwrap();
    assert_eq!(p.inf.file_name().unwrap(), "rspvscsi_storport.inf");
    assert!(!inf.contains("$ARCH$"));
    assert!(inf.contains("CatalogFile = rspvscsi_storport.cat"));
    assert!(inf.contains("AddService = rspvscsi_storport, 0x00000002,"));
    assert!(inf.contains("ServiceBinary  = %13%\\rspvscsi_storport.sys"));
    assert!(inf.contains("HKR, \"Parameters\\PnpInterface\", \"5\", %REG_DWORD%, 0x00000001"));
    assert!(!inf.lines().any(|l| !l.starts_with(';') && l.contains("rspvscsi.sys")), "nothing of the SCSI Port image is installed");
    let models = inf.split("[Models.NTamd64.10.0...16299]").nth(1).unwrap();
    let first = models.lines().find(|l| l.contains("PCI\\")).unwrap();
    assert!(first.ends_with("PCI\\VEN_15AD&DEV_07C0&SUBSYS_07C015AD&REV_02"), "{first}");
}

/// Storport's import rules fail on a mutated Storport image.
#[test]
fn the_checker_catches_a_broken_storport_image() {
    let Some(p) = storport_package() else { return };
    let (image, map) = image_and_map(p);
    let broken = |mutate: &dyn Fn(&mut Vec<u8>), rule: &str| {
        let mut bad = image.clone();
        mutate(&mut bad);
        let report = check(&bad, Some(&map), &STORPORT).expect("still a PE image");
        assert!(!finding(&report, rule).ok, "mutation not caught by '{rule}'");
    };
    let module = image.windows(12).position(|w| w.eq_ignore_ascii_case(b"storport.sys")).expect("the module name");
    broken(&|img| img[module..module + 12].copy_from_slice(b"ntoskrnl.exe"), "imports only from the port driver");
    // An import renamed to a register accessor, a macro on x64 (same length).
    let name = image.windows(21).position(|w| w == b"StorPortGetDeviceBase").expect("an import name");
    broken(&|img| img[name..name + 21].copy_from_slice(b"StorPortReadRegisterU"), "no register/port accessor imports");
    broken(&|img| img[name..name + 21].copy_from_slice(b"StorPortGetDeviceBasX"), "every import a documented");
}
