//! The C reference miniport, `rspvscsi_c.sys` as `cargo xtask sys --c-reference` builds it with
//! MinGW-w64, held to the rules Windows and HLK apply to a SCSI Port miniport (`xtask::pe`), the
//! same rules as the Rust driver's image. The report is printed with `--nocapture`.
//!
//! Without MinGW-w64 the test prints `SKIPPED: …` and passes, except in CI (`RSPVSCSI_CI=1`),
//! where it fails.

use std::process::Command;
use std::sync::OnceLock;

use xtask::c_reference::{self, Options, Package};
use xtask::pe::{Report, SCSIPORT, check};

fn package() -> Option<&'static Package> {
    static PACKAGE: OnceLock<Option<Package>> = OnceLock::new();
    PACKAGE
        .get_or_init(|| {
            if let Some(reason) = c_reference::unavailable_reason() {
                assert!(!xtask::in_ci(), "RSPVSCSI_CI=1 but the C reference cannot be built here: {reason}");
                println!("SKIPPED: rspvscsi_c.sys cannot be built on this machine: {reason}");
                return None;
            }
            let built = c_reference::build(&Options::default(), &mut |line| println!("{line}"));
            Some(built.unwrap_or_else(|e| panic!("cargo xtask sys --c-reference failed: {e:#}")))
        })
        .as_ref()
}

fn finding<'a>(report: &'a Report, rule_start: &str) -> &'a xtask::pe::Finding {
    report.findings.iter().find(|f| f.rule.starts_with(rule_start)).unwrap_or_else(|| panic!("no rule {rule_start}"))
}

#[test]
fn the_c_image_keeps_every_rule() {
    let Some(p) = package() else { return };
    let image = std::fs::read(&p.sys).unwrap();
    let map = c_reference::parse_gnu_map(&std::fs::read_to_string(&p.map).unwrap());
    let report = check(&image, Some(&map), &SCSIPORT).expect("a PE32+ image");
    println!("{}\n{}", p.sys.display(), report.render());
    let failures: Vec<String> = report.failures().map(|f| format!("{}: {}", f.rule, f.detail)).collect();
    assert!(failures.is_empty(), "rules broken:\n{}", failures.join("\n"));

    // Every rule the Rust image is held to was checked here too, with the map's help.
    for rule in [
        "entry point is DriverEntry",
        "valid image checksum",
        "no section both writable and executable",
        "sections page-aligned",
        "NX-compatible, relocatable, integrity-checked",
        "resident sections NOT_PAGED",
        "no TLS",
        "relocatable",
        "imports only from the port driver",
        "every import a documented port routine",
        "no register/port accessor imports",
        "no memcpy/memset/memmove/memcmp imports",
        "no __chkstk",
    ] {
        assert!(finding(&report, rule).ok, "{rule}");
    }
    assert!(report.imports.iter().all(|(m, _)| m == "SCSIPORT.SYS"));
    let names: Vec<&str> = report.imports.iter().map(|(_, n)| n.as_str()).collect();
    for needed in ["ScsiPortInitialize", "ScsiPortNotification", "ScsiPortGetDeviceBase", "ScsiPortGetUncachedExtension", "ScsiPortGetPhysicalAddress"] {
        assert!(names.contains(&needed), "{needed} is not imported: {names:?}");
    }
    assert!(report.mem_functions.is_empty(), "no C runtime routine is linked in: {:?}", report.mem_functions);
    assert!(!report.signed, "the C reference is an example: unsigned");
    let isr = report.interrupt.as_ref().expect("the ISR found through the GNU ld map and .pdata");
    assert_eq!(isr.symbol, "PvscsiHwScsiInterrupt");
    assert!(isr.normal_path.is_some(), "a path through ScsiPortNotification(CallEnableInterrupts)");
}

#[test]
fn one_command_builds_it_and_prints_the_path_last() {
    let Some(p) = package() else { return };
    let output = Command::new(env!("CARGO"))
        .current_dir(xtask::workspace_root())
        .args(["xtask", "sys", "--c-reference"])
        .output()
        .expect("running cargo xtask sys --c-reference");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(stdout.lines().last().map(std::path::PathBuf::from).as_ref(), Some(&p.sys), "{stdout}");
}

#[test]
fn the_build_is_reproducible_and_a_test_build_goes_elsewhere() {
    let Some(p) = package() else { return };
    let first = std::fs::read(&p.sys).unwrap();
    let again = c_reference::build(&Options::default(), &mut |_| {}).unwrap();
    assert_eq!(std::fs::read(&again.sys).unwrap(), first, "the same bytes from the same sources");
    let broken = c_reference::build(&Options { defines: vec!["PVSCSI_BREAK_COMPLETE_TWICE".into()] }, &mut |_| {}).unwrap();
    assert_ne!(broken.sys, p.sys, "a test build never replaces the package");
    assert_ne!(std::fs::read(&broken.sys).unwrap(), first, "the define changed the code");
    assert!(broken.report.ok());
}
