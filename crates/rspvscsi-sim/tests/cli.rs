//! The CLI as a user (and the QEMU harness) runs it: exit statuses, the table, the JSON, the
//! pattern on raw images and `check-image`, reproducibility, the scenario set.
#![cfg(target_os = "linux")]

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::Value;

fn sim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rspvscsi-sim")).args(args).output().expect("the binary runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Runs and expects exit status `code`; returns stdout.
fn expect(args: &[&str], code: i32) -> String {
    let out = sim(args);
    assert_eq!(
        out.status.code(),
        Some(code),
        "rspvscsi-sim {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        args.join(" "),
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

fn json(args: &[&str]) -> Value {
    let mut a = args.to_vec();
    a.push("--json");
    let out = expect(&a, 0);
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("not one JSON object ({e}):\n{out}"))
}

/// A fresh raw image of `bytes`, as `qemu-img create -f raw` makes it (sparse, zero).
fn image(name: &str, bytes: u64) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("rspvscsi-sim-cli");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    let f = OpenOptions::new().create(true).write(true).truncate(true).open(&path).unwrap();
    f.set_len(bytes).unwrap();
    path
}

#[test]
fn the_default_run_passes_and_prints_the_table() {
    let out = expect(&[], 0);
    for row in ["rspvscsi miniport", "I/Os", "IOPS", "latency p50 / p99", "interrupts", "completions/interrupt", "verifier", "clean", "errors", "data mismatches"] {
        assert!(out.contains(row), "no {row:?} in\n{out}");
    }
    assert!(out.lines().any(|l| l.trim_start().starts_with("result") && l.ends_with("PASS")), "{out}");
}

#[test]
fn json_has_the_summary_keys() {
    let v = json(&["--count", "300"]);
    for key in ["ios", "errors", "verifier_violations", "interrupts", "completions_per_interrupt", "iops", "mismatches", "latency_ns", "seed", "mode"] {
        assert!(v.get(key).is_some(), "no {key} in {v}");
    }
    assert_eq!(v["verifier_violations"], 0);
    assert_eq!(v["errors"], 0);
    assert_eq!(v["mismatches"], 0);
    assert_eq!(v["ios"], 300);
    assert!(v["interrupts"].as_u64().unwrap() > 0);
    assert!(v["completions_per_interrupt"].as_f64().unwrap() >= 1.0);
    assert!(v["sectors_checked"].as_u64().unwrap() > 0, "the mixed workload checks what it reads");
    assert_eq!(v["result"], "pass");
}

#[test]
fn pattern_on_a_raw_image_and_check_image() {
    let img = image("pattern.img", 2 << 20);
    let disk = format!("file:{}", img.display());
    let p = img.to_str().unwrap();
    let w = json(&["--disk", &disk, "--workload", "write-pattern", "--seed", "5", "--bs", "8K", "--qd", "8"]);
    assert_eq!(w["writes"], 256);
    let v = json(&["--disk", &disk, "--workload", "verify-pattern", "--seed", "5", "--bs", "12800", "--buffer-offset", "512"]);
    assert_eq!(v["sectors_checked"], 4096);
    assert_eq!(v["mismatches"], 0);
    assert!(expect(&["check-image", "--seed", "5", p], 0).contains("4096 sectors ok"));
    assert!(expect(&["check-image", "--seed", "5", "--sectors", "100", p], 0).contains("100 sectors ok"));

    // Another seed is not this pattern.
    let out = sim(&["check-image", "--seed", "6", p]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("with another seed"), "{}", text(&out.stderr));

    // One corrupted sector: check-image names it, and so does verify-pattern through the driver.
    let f = OpenOptions::new().write(true).open(&img).unwrap();
    f.write_all_at(b"garbage", 1234 * 512 + 200).unwrap();
    drop(f);
    let out = sim(&["check-image", "--seed", "5", p]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("1 of 4096 sectors") && err.contains("LBA 1234: header right, body differs from byte 200"), "{err}");
    let out = sim(&["--disk", &disk, "--workload", "verify-pattern", "--seed", "5"]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("1 sectors read back did not hold what was written") && err.contains("LBA 1234"), "{err}");

    // A file too short for --sectors is an error, not a pass.
    let out = sim(&["check-image", "--seed", "5", "--sectors", "5000", p]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn deterministic_runs_repeat_exactly() {
    let strip = |mut v: Value| {
        for k in ["elapsed_ms", "iops", "load_ms"] {
            v.as_object_mut().unwrap().remove(k);
        }
        v
    };
    let args = ["--count", "400", "--seed", "9", "--qd", "32", "--disk", "ram:4M", "--disk", "ram:6M"];
    let a = strip(json(&args));
    let b = strip(json(&args));
    assert_eq!(a, b);
    assert_eq!(a["disks"].as_array().unwrap().len(), 2);
    // Another seed is another run.
    let mut other = args.to_vec();
    other[3] = "10";
    assert_ne!(strip(json(&other))["latency_ns"], a["latency_ns"]);
}

#[test]
fn disks_skip_the_initiator_id() {
    let disks: Vec<String> = (0..9).map(|_| "ram:64K".to_string()).collect();
    let mut args: Vec<&str> = Vec::new();
    for d in &disks {
        args.extend(["--disk", d]);
    }
    args.extend(["--workload", "inquiry"]);
    let v = json(&args);
    let targets: Vec<u64> = v["disks"].as_array().unwrap().iter().map(|d| d["target"].as_u64().unwrap()).collect();
    assert_eq!(targets, [0, 1, 2, 3, 4, 5, 6, 8, 9]);
}

#[test]
fn the_test_miniport_runs() {
    let v = json(&["--miniport", "test", "--count", "200"]);
    assert_eq!(v["miniport"], "test");
    assert_eq!(v["ios"], 200);
    assert_eq!(v["verifier_violations"], 0);
}

#[test]
fn usage_errors_exit_2() {
    for args in [&["--bogus"][..], &["--bs", "1000"], &["--bs", "256K"], &["--workload", "nope"], &["--disk", "tape:1"], &["--hba", "pci"], &["--hba", "uio:x", "--mode", "deterministic"], &["scenario", "nope"]] {
        let out = sim(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out.stderr));
        assert!(!text(&out.stderr).is_empty());
    }
    let help = expect(&["--help"], 0);
    for word in ["--hba", "check-image", "--workload", "--disk", "--qd", "--json", "scenario"] {
        assert!(help.contains(word), "--help does not mention {word}");
    }
}

#[test]
fn a_verifier_violation_fails_with_the_bug_check() {
    // The test miniport's knob that completes a request twice (0xF1/0x1003).
    let out = sim(&["--miniport", "test", "--args", "tagged=1 break=complete_twice", "--count", "50"]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("BUG CHECK 0x1003"), "{err}");
    assert!(err.contains("rule:") && err.contains("doc:") && err.contains("message:"), "{err}");
    let out = sim(&["--miniport", "test", "--args", "tagged=1 break=complete_twice", "--count", "50", "--json"]);
    let v: Value = serde_json::from_str(text(&out.stdout).trim()).unwrap();
    assert!(v["verifier_violations"].as_u64().unwrap() >= 1);
    assert_eq!(v["bugcheck"]["code"], "0x1003");
}

#[test]
fn check_workloads_on_both_layouts() {
    for hba in ["model", "model-vmware"] {
        for w in ["inquiry", "bad-lba", "missing-target"] {
            let v = json(&["--hba", hba, "--disk", "ram:1M", "--disk", "ram:2M", "--workload", w]);
            let checks = v["checks"].as_array().unwrap();
            assert!(checks.len() >= 3, "{hba} {w}: {v}");
            assert!(checks.iter().all(|c| c["ok"] == true), "{hba} {w}: {checks:?}");
        }
    }
    // A target that has a disk is not missing.
    let out = sim(&["--workload", "missing-target", "--target", "0"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("target 0 has a disk"));
}

#[test]
fn buffer_offsets_reach_the_driver() {
    let trace = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("rspvscsi-sim-offset.jsonl");
    let t = trace.to_str().unwrap();
    expect(&["--workload", "write-pattern", "--bs", "512", "--buffer-offset", "4095", "--count", "4", "--disk", "ram:64K", "--trace", t], 0);
    let lines = std::fs::read_to_string(&trace).unwrap();
    // The driver's scatter/gather list starts one byte before a page boundary.
    let one_byte = lines
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["fn"] == "ScsiPortGetPhysicalAddress")
        .filter(|e| e["pa"].as_str().is_some_and(|pa| pa.ends_with("fff")) && e["length"] == 1)
        .count();
    assert!(one_byte >= 4, "no 1-byte first segment in the trace");
}

#[test]
fn resets_under_load_with_the_plain_workload() {
    let v = json(&["--workload", "write-pattern", "--qd", "32", "--reset-bus-every", "50", "--latency-us", "200-2000", "--disk", "ram:2M", "--bs", "4K"]);
    assert!(v["bus_resets_submitted"].as_u64().unwrap() >= 5);
    assert!(v["reissued_after_reset"].as_u64().unwrap() > 0);
    assert_eq!(v["errors"], 0);
}

#[test]
fn the_scenario_set_passes_deterministic() {
    let out = expect(&["scenario"], 0);
    assert!(out.contains("7 of 7 passed"), "{out}");
}

#[test]
fn the_scenario_set_passes_concurrent() {
    let out = expect(&["scenario", "--mode", "concurrent"], 0);
    assert!(out.contains("7 of 7 passed"), "{out}");
}

#[test]
fn scenarios_on_the_vmware_layout_with_json() {
    let out = expect(&["scenario", "bring-up", "reset-under-load", "--hba", "model-vmware", "--json"], 0);
    let v: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["passed"], 2);
    assert!(v["scenarios"].as_array().unwrap().iter().all(|s| s["verifier_violations"] == 0));
    assert!(expect(&["scenario", "list"], 0).contains("reset-under-load"));
}
