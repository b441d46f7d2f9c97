//! The device model against what QEMU 7.2's real pvscsi and scsi-hd answered, without QEMU:
//! `rspvscsi-sim probe` on the model (configured as the QEMU harness's guest: two disks of 8 and
//! 12 MiB, the second with a serial number) must agree with the committed golden file
//! `probe/qemu-7.2.json`, recorded by `tests/qemu/run` from a real run, up to `probe/allowlist`.
//!
//! When the model changes on purpose or QEMU changes, re-record: run `tests/qemu/run` and then
//! `rspvscsi-sim probe-diff --make-golden --source "..." tests/qemu/work/probe-serial.out >
//! crates/rspvscsi-sim/probe/qemu-7.2.json` (see the README).
#![cfg(target_os = "linux")]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn sim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rspvscsi-sim")).args(args).output().expect("the binary runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn golden() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("probe/qemu-7.2.json")
}

fn probe_to(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("rspvscsi-sim-probe");
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join(name);
    let run = sim(&["probe", "--output", out.to_str().unwrap()]);
    assert!(run.status.success(), "rspvscsi-sim probe failed\n{}\n{}", text(&run.stdout), text(&run.stderr));
    out
}

#[test]
fn the_model_answers_the_probe_as_qemu_7_2_did() {
    let model = probe_to("model.json");
    let diff = sim(&["probe-diff", "--verbose", "--labels", "QEMU 7.2 (golden),model", golden().to_str().unwrap(), model.to_str().unwrap()]);
    let report = text(&diff.stdout);
    assert!(
        diff.status.success(),
        "the device model no longer answers as QEMU 7.2 did (fix the model, or re-record the golden file if QEMU \
         is what changed):\n{report}{}",
        text(&diff.stderr)
    );
    assert!(report.contains("0 differences not allowlisted"), "{report}");
}

#[test]
fn the_probe_on_the_model_is_reproducible() {
    let a = std::fs::read(probe_to("a.json")).unwrap();
    let b = std::fs::read(probe_to("b.json")).unwrap();
    assert_eq!(a, b, "two probe runs on the model gave different answers");
}

#[test]
fn the_golden_file_leaves_out_exactly_the_allowlisted_fields() {
    // A golden made from the golden is the golden: nothing allowlisted is left in it.
    let again = sim(&["probe-diff", "--make-golden", "--source", "x", golden().to_str().unwrap()]);
    assert!(again.status.success(), "{}", text(&again.stderr));
    let committed: serde_json::Value = serde_json::from_slice(&std::fs::read(golden()).unwrap()).unwrap();
    let remade: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(committed["results"], remade["results"]);
    assert!(committed["source"].as_str().is_some_and(|s| s.contains("QEMU 7.2")), "the golden file names its QEMU");
    assert!(committed["results"].as_array().is_some_and(|r| r.len() > 300), "a whole catalogue");
}

#[test]
fn a_changed_answer_fails_with_a_report() {
    // Negative control: one byte of one answer changed in the golden's copy is found and shown.
    let committed = std::fs::read_to_string(golden()).unwrap();
    let from = r#""id":"cap.rc10","cdb":"25000000000000000000","data":"00003fff00000200""#;
    assert!(committed.contains(from), "cap.rc10 as recorded");
    let changed = committed.replace(from, r#""id":"cap.rc10","cdb":"25000000000000000000","data":"00003ffe00000200""#);
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("rspvscsi-sim-probe");
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("changed-golden.json");
    std::fs::write(&bad, changed).unwrap();
    let model = probe_to("model-control.json");
    let diff = sim(&["probe-diff", "--labels", "golden,model", bad.to_str().unwrap(), model.to_str().unwrap()]);
    assert_eq!(diff.status.code(), Some(1));
    let report = text(&diff.stdout);
    assert!(report.contains("DIFF cap.rc10 data") && report.contains("first: byte 3, fe vs ff"), "{report}");
}
