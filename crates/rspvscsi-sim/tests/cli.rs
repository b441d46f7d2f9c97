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
fn a_ramp_leaves_its_requests_and_their_time_out_of_iops() {
    let v = json(&["--workload", "read", "--count", "600", "--ramp", "200", "--qd", "32"]);
    assert_eq!(v["ios"], 600);
    // The ramp ends at the first batch of completions that reaches it.
    let ramp = v["ramp_ios"].as_u64().unwrap();
    assert!((200..600).contains(&ramp), "{v}");
    let (elapsed, ramp_ms) = (v["elapsed_ms"].as_f64().unwrap(), v["ramp_ms"].as_f64().unwrap());
    assert!(ramp_ms > 0.0 && ramp_ms < elapsed, "{v}");
    let steady = f64::from(u32::try_from(600 - ramp).unwrap()) / ((elapsed - ramp_ms) / 1e3);
    let iops = v["iops"].as_f64().unwrap();
    assert!((iops - steady).abs() <= steady * 1e-6, "iops {iops}, the requests after the ramp over their time {steady}");

    // Without one, every request and the whole time.
    let v = json(&["--workload", "read", "--count", "600", "--qd", "32"]);
    assert!(v["ramp_ios"].is_null() && v["ramp_ms"].is_null(), "{v}");
    let whole = 600.0 / (v["elapsed_ms"].as_f64().unwrap() / 1e3);
    assert!((v["iops"].as_f64().unwrap() - whole).abs() <= whole * 1e-6, "{v}");

    // A ramp that leaves nothing to count, or a workload without requests to count, is refused.
    for args in [&["--count", "300", "--ramp", "300"][..], &["--workload", "inquiry", "--ramp", "10"]] {
        let out = sim(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out.stderr));
        assert!(text(&out.stderr).contains("--ramp"), "{}", text(&out.stderr));
    }
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

/// `--no-verifier` is Windows without Driver Verifier for the driver: the double completion of
/// the test above is not looked at (the emulated port ignores the second one), the run ends
/// without a bug check, and every output says nothing was checked.
#[test]
fn without_the_verifier_the_same_bug_goes_unchecked_and_the_run_says_so() {
    let broken = ["--miniport", "test", "--args", "tagged=1 break=complete_twice", "--count", "50"];
    let v = json(&[&broken[..], &["--no-verifier"]].concat());
    assert_eq!(v["verifier"], "off");
    assert_eq!(v["verifier_violations"], 0);
    assert!(v["bugcheck"].is_null(), "{v}");
    assert_eq!(v["ios"], 50);
    assert_eq!(v["mismatches"], 0);
    let out = expect(&[&broken[..], &["--no-verifier"]].concat(), 0);
    assert!(out.contains("verifier off") && out.contains("off (--no-verifier): nothing checked"), "{out}");
    assert!(!out.contains("clean"), "an unchecked run is not clean: {out}");
    assert_eq!(json(&["--count", "20"])["verifier"], "on");
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

/// Runs with stdout going to `stdout` (e.g. /dev/full); returns the exit status and stderr.
fn sim_to(args: &[&str], stdout: std::fs::File) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_rspvscsi-sim")).args(args).stdout(stdout).output().expect("the binary runs");
    (out.status.code(), text(&out.stderr))
}

fn all_zero(path: &std::path::Path) -> bool {
    std::fs::read(path).unwrap().iter().all(|&b| b == 0)
}

#[test]
fn an_image_is_written_only_when_asked() {
    let img = image("unasked.img", 1 << 20);
    let disk = format!("file:{}", img.display());
    // The default workload writes: refused, named, and the image untouched.
    let out = sim(&["--disk", &disk]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(err.contains("--allow-write") && err.contains("unasked.img"), "{err}");
    assert!(all_zero(&img), "the refused run wrote to the image");
    // The scenario set and the probe write too.
    for args in [&["scenario", "--disk", &disk][..], &["probe", "--disk", &disk, "--disk", "ram:12M"]] {
        let out = sim(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out.stderr));
        assert!(text(&out.stderr).contains("--allow-write"));
    }
    assert!(all_zero(&img));
    // A workload that only reads opens the image read-only and says so.
    let out = expect(&["--disk", &disk, "--workload", "read", "--count", "20"], 0);
    assert!(out.contains("(read-only)"), "{out}");
    assert!(all_zero(&img));
    // Asked for: a writing workload named, or --allow-write.
    expect(&["--disk", &disk, "--workload", "mixed", "--count", "50"], 0);
    assert!(!all_zero(&img));
    let img2 = image("asked.img", 1 << 20);
    expect(&["--disk", &format!("file:{}", img2.display()), "--allow-write", "--count", "50"], 0);
    assert!(!all_zero(&img2));
}

#[test]
fn images_that_are_not_raw_disks_are_usage_errors() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("rspvscsi-sim-cli");
    let odd = image("odd.img", 1000 * 512 + 100);
    let good = image("good.img", 64 * 1024);
    let missing = dir.join("no-such.img");
    let cases: Vec<(Vec<String>, &str)> = vec![
        (vec![format!("file:{}", odd.display())], "not a whole number of 512-byte sectors"),
        (vec![format!("file:{}", missing.display())], "No such file"),
        (vec![format!("file:{}", dir.display())], "is a directory"),
        (vec![format!("file:{}", good.display()), format!("file:{}", good.display())], "same file"),
    ];
    for (disks, why) in cases {
        let mut args = vec!["--workload", "verify-pattern"];
        for d in &disks {
            args.extend(["--disk", d]);
        }
        let out = sim(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out.stderr));
        assert!(text(&out.stderr).contains(why), "{args:?}: {}", text(&out.stderr));
    }
    // A hard link is the same file too.
    let link = dir.join("good-link.img");
    let _ = std::fs::remove_file(&link);
    std::fs::hard_link(&good, &link).unwrap();
    let (a, b) = (format!("file:{}", good.display()), format!("file:{}", link.display()));
    assert_eq!(sim(&["--workload", "write-pattern", "--disk", &a, "--disk", &b]).status.code(), Some(2));
    // The trace must not overwrite an image.
    let t = good.to_str().unwrap();
    assert_eq!(sim(&["--workload", "inquiry", "--disk", &a, "--trace", t]).status.code(), Some(2));
    // check-image: the same refusals.
    for f in [&odd, &missing, &dir] {
        let out = sim(&["check-image", "--seed", "1", f.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(2), "{}: {}", f.display(), text(&out.stderr));
    }
}

#[test]
fn output_that_cannot_be_written_fails_the_run() {
    let full = || std::fs::OpenOptions::new().write(true).open("/dev/full").unwrap();
    let out = sim(&["--count", "200", "--trace", "/dev/full"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("--trace /dev/full") && text(&out.stderr).contains("No space left"), "{}", text(&out.stderr));
    assert!(!text(&out.stdout).contains("PASS"), "{}", text(&out.stdout));
    for args in [&["--count", "200", "--json"][..], &["--count", "200"], &["scenario", "bring-up", "--json"], &["scenario", "bring-up"], &["probe"]] {
        let (code, err) = sim_to(args, full());
        assert_eq!(code, Some(1), "{args:?}: {err}");
        assert!(err.contains("writing the report to stdout failed"), "{args:?}: {err}");
    }
    let img = image("full-check.img", 4096);
    let (code, _) = sim_to(&["check-image", "--seed", "1", img.to_str().unwrap()], full());
    assert_eq!(code, Some(1));
}

#[test]
fn every_stale_sector_of_an_interrupted_write_pattern_is_listed() {
    let img = image("interrupted.img", 1 << 20); // 2048 sectors
    let disk = format!("file:{}", img.display());
    let p = img.to_str().unwrap();
    // Stopped after 3 of 16 requests of 64 KiB: sectors 384.. were never written.
    let w = json(&["--disk", &disk, "--workload", "write-pattern", "--seed", "3", "--count", "3", "--qd", "1"]);
    assert_eq!(w["unwritten_extents"], serde_json::json!([{"target": 0, "lba": 384, "sectors": 1664, "kind": "not-written"}]));
    // Scatter some damage in the written part: 12 separate sectors, more than a list shows.
    let f = OpenOptions::new().write(true).open(&img).unwrap();
    for i in 0..12u64 {
        f.write_all_at(b"x", (i * 20 + 5) * 512 + 100).unwrap();
    }
    drop(f);
    let out = sim(&["--disk", &disk, "--workload", "verify-pattern", "--seed", "3", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_str(text(&out.stdout).trim()).unwrap();
    let extents = v["mismatch_extents"].as_array().unwrap();
    let stale: u64 = extents.iter().map(|e| e["sectors"].as_u64().unwrap()).sum();
    assert_eq!(stale, 1664 + 12, "{extents:?}");
    assert!(extents.iter().any(|e| e["lba"] == 384 && e["sectors"] == 1664 && e["kind"] == "zero"), "{extents:?}");
    assert_eq!(extents.iter().filter(|e| e["kind"] == "corrupt").count(), 12);
    let err = text(&out.stderr);
    assert!(err.contains("more errors") || err.contains("more mismatches"), "{err}");
    assert!(err.contains("… 3 more (all in --json: mismatch_extents)"), "{err}");
    // check-image lists the same, complete.
    let out = sim(&["check-image", "--seed", "3", "--json", p]);
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_str(text(&out.stdout).trim()).unwrap();
    assert_eq!(v["extents"].as_array().unwrap().len(), 13);
    assert!(text(&out.stderr).contains("… 3 more (all in --json: extents)"), "{}", text(&out.stderr));
}

#[test]
fn a_write_run_ends_durable_and_says_so() {
    let img = image("durable.img", 1 << 20);
    let disk = format!("file:{}", img.display());
    let trace = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("rspvscsi-sim-durable.jsonl");
    let t = trace.to_str().unwrap();
    let v = json(&["--disk", &disk, "--disk", "ram:1M", "--workload", "write-pattern", "--trace", t]);
    assert_eq!(v["synchronize_cache"], serde_json::json!([{"target": 0, "ok": true, "detail": "SRB status 0x01"}, {"target": 1, "ok": true, "detail": "SRB status 0x01"}]));
    assert_eq!(v["fsync"][0]["image"], img.to_str().unwrap());
    assert_eq!(v["fsync"][0]["ok"], true);
    // Through the driver: SYNCHRONIZE CACHE(10) to each target, after the last write.
    let events: Vec<Value> = std::fs::read_to_string(&trace).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let srbs: Vec<&Value> = events.iter().filter(|e| e["ev"] == "srb").collect();
    let syncs: Vec<usize> = srbs.iter().enumerate().filter(|(_, e)| e["opcode"] == "0x35").map(|(i, _)| i).collect();
    assert_eq!(syncs.len(), 2, "one SYNCHRONIZE CACHE per disk");
    let last_write = srbs.iter().rposition(|e| e["opcode"] == "0x2a").unwrap();
    assert!(syncs.iter().all(|&i| i > last_write));
    let out = expect(&["--disk", &disk, "--workload", "write", "--count", "10"], 0);
    assert!(out.contains("made durable") && out.contains("SYNCHRONIZE CACHE t0 ok") && out.contains("fsync"), "{out}");
    // A run that only reads has nothing to make durable.
    let v = json(&["--disk", &disk, "--workload", "verify-pattern", "--seed", "1", "--count", "1"]);
    assert!(v["synchronize_cache"].is_null());
}

#[test]
fn nonsense_is_refused() {
    let img = image("nonsense.img", 4096);
    let p = img.to_str().unwrap();
    let cases: [&[&str]; 13] = [
        &["--latency-us", "100-10"],
        &["--latency-us", "x"],
        &["--reset-bus-every", "0"],
        &["--count", "0"],
        &["--seconds", "0"],
        &["--qd", "0"],
        &["--target", "3"],
        &["--workload", "missing-target", "--target", "16"],
        &["--workload", "inquiry", "--bs", "4K"],
        &["--workload", "bad-lba", "--count", "5"],
        &["--workload", "inquiry", "--reset-bus-every", "5"],
        &["--hba", "uio:0000:00:03.0", "--latency-us", "5"],
        &["check-image", "--seed", "1", "--sectors", "0", p],
    ];
    for args in cases {
        let out = sim(args);
        assert_eq!(out.status.code(), Some(2), "{args:?} was accepted: {}{}", text(&out.stdout), text(&out.stderr));
    }
}

#[test]
fn the_header_comes_first_while_the_run_is_going() {
    use std::io::{BufRead, BufReader};
    let mut child = Command::new(env!("CARGO_BIN_EXE_rspvscsi-sim"))
        .args(["--seconds", "60", "--no-progress"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let running = child.try_wait().unwrap().is_none();
    let _ = child.kill();
    let _ = child.wait();
    assert!(first.starts_with("rspvscsi-sim: rspvscsi miniport (linked in) on"), "{first}");
    assert!(running, "the header came only after the run ended");
}

#[test]
fn a_short_soak_makes_every_fault_in_both_schedules() {
    let v = json(&["soak", "--seeds", "2", "--steps", "2500", "--fault-every", "8"]);
    assert_eq!(v["result"], "pass", "{v}");
    let runs = v["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 4);
    for mode in ["deterministic", "concurrent"] {
        assert_eq!(runs.iter().filter(|r| r["mode"] == mode).count(), 2);
    }
    assert_eq!(v["steps"], 10_000);
    assert_eq!(v["steps"].as_u64(), Some(v["ios_submitted"].as_u64().unwrap() + v["faults_made"].as_u64().unwrap()));
    for (kind, n) in v["faults"].as_object().unwrap() {
        assert!(n.as_u64().unwrap() > 0, "no {kind} fault was made: {v}");
    }
    assert_eq!(v["faults"].as_object().unwrap().len(), 14);
    assert!(v["sectors_verified"].as_u64().unwrap() > 10_000);
    assert!(v["failed_as_expected"].as_u64().unwrap() > 0, "the faults failed nothing");
    // The deterministic runs replay exactly.
    let again = json(&["soak", "--seeds", "1", "--steps", "2500", "--fault-every", "8", "--mode", "deterministic"]);
    let first = runs.iter().find(|r| r["mode"] == "deterministic" && r["seed"] == 1).unwrap();
    for key in ["ios", "reads", "writes", "faults", "statuses", "sectors_verified", "machine_ms"] {
        assert_eq!(again["runs"][0][key], first[key], "{key}");
    }
}

#[test]
fn a_soak_in_the_full_quarantine_keeps_every_completed_srb() {
    let v = json(&["soak", "--quarantine", "--seeds", "1", "--steps", "600", "--fault-every", "8"]);
    assert_eq!(v["result"], "pass", "{v}");
    for run in v["runs"].as_array().unwrap() {
        // Every completion the run judged went through one SRB at least; none was released.
        assert!(run["quarantined"].as_u64().unwrap() >= run["ios"].as_u64().unwrap(), "{run}");
        assert_eq!(run["quarantine_released"], 0, "{run}");
        assert!(run["reproduce"].as_str().unwrap().ends_with(" --quarantine"), "{run}");
    }
    // Without it (and without SCSIPORT_SIM_QUARANTINE=all), nothing is counted.
    if std::env::var_os("SCSIPORT_SIM_QUARANTINE").is_none() {
        let plain = json(&["soak", "--seeds", "1", "--steps", "100", "--mode", "deterministic"]);
        assert_eq!(plain["quarantined"], 0, "{plain}");
    }
}

#[test]
fn a_soak_failure_comes_with_the_command_that_reproduces_it() {
    let args = ["soak", "--miniport", "test", "--args", "tagged=1 break=complete_twice", "--seeds", "1", "--mode", "deterministic", "--steps", "300", "--faults", "none"];
    let out = sim(&args);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("BUG CHECK 0x1003"), "{err}");
    let line = err.lines().find_map(|l| l.trim().strip_prefix("reproduce: ")).unwrap_or_else(|| panic!("no reproduce line: {err}"));
    assert_eq!(line, "rspvscsi-sim soak --mode deterministic --seed 1 --seeds 1 --steps 300 --faults none --miniport test --args 'tagged=1 break=complete_twice'");
    let step = |e: &str| e.lines().find(|l| l.contains("FAIL:")).map(|l| l.split(" step ").nth(1).unwrap_or("").split(':').next().unwrap_or("").to_string());
    // The command, run as given, fails the same way at the same step.
    let replay = sim(&["soak", "--mode", "deterministic", "--seed", "1", "--seeds", "1", "--steps", "300", "--faults", "none", "--miniport", "test", "--args", "tagged=1 break=complete_twice"]);
    assert_eq!(replay.status.code(), Some(1));
    assert_eq!(step(&text(&replay.stderr)), step(&err));
    assert!(out.stdout.ends_with(b"FAIL\n"), "{}", text(&out.stdout));
}

/// `--driver PATH.sys`: the shipping image instead of the linked-in driver, with the same
/// workloads, and the header says which driver ran. Skipped (with a line) where the image cannot
/// be built; a failure in CI.
#[test]
fn the_driver_image_runs_like_the_linked_in_driver() {
    if let Some(reason) = xtask::sys::unavailable_reason() {
        assert!(!xtask::in_ci(), "RSPVSCSI_CI=1 but rspvscsi.sys cannot be built: {reason}");
        let _ = std::io::Write::write_all(&mut std::io::stderr().lock(), format!("SKIPPED: rspvscsi.sys cannot be built here: {reason}\n").as_bytes());
        return;
    }
    let package = xtask::sys::build(&xtask::sys::SCSIPORT, &xtask::sys::Options::default(), &mut |_| {}).expect("cargo xtask sys");
    let sys = package.sys.to_str().unwrap();
    let out = expect(&["--driver", sys, "--count", "300"], 0);
    assert!(out.lines().next().unwrap().starts_with("rspvscsi-sim: rspvscsi.sys miniport (PE image"), "{out}");
    assert!(out.contains("result                  PASS"), "{out}");
    // The same deterministic run gives the same figures as the linked-in driver's.
    let image = json(&["--driver", sys, "--count", "300", "--mode", "deterministic"]);
    let linked = json(&["--count", "300", "--mode", "deterministic"]);
    for key in ["ios", "interrupts", "completions_per_interrupt", "errors", "mismatches"] {
        assert_eq!(image[key], linked[key], "{key}: image {} vs linked {}", image[key], linked[key]);
    }
    assert_eq!(image["miniport"], "rspvscsi.sys");
    assert_eq!(linked["miniport"], "rspvscsi");
    // The scenario set and the soak take it too.
    expect(&["scenario", "--driver", sys, "--mode", "concurrent"], 0);
    expect(&["soak", "--driver", sys, "--steps", "2000", "--seeds", "1"], 0);
}

#[test]
fn a_driver_that_is_no_image_is_refused() {
    let dir = std::env::temp_dir().join(format!("rspvscsi-sim-driver-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let not_pe = dir.join("not.sys");
    std::fs::write(&not_pe, b"MZ but nothing more").unwrap();
    // Missing and not a file: usage errors; present but not an image: the loader says why.
    let err = text(&sim(&["--driver", "/nonexistent/x.sys"]).stderr);
    assert_eq!(sim(&["--driver", "/nonexistent/x.sys"]).status.code(), Some(2), "{err}");
    assert_eq!(sim(&["--driver", dir.to_str().unwrap()]).status.code(), Some(2));
    assert_eq!(sim(&["soak", "--driver", "/nonexistent/x.sys"]).status.code(), Some(2));
    let out = sim(&["--driver", not_pe.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(format!("{}{}", text(&out.stdout), text(&out.stderr)).contains("not a loadable PE image"));
    // It replaces the linked-in driver; the test miniport is another choice.
    assert_eq!(sim(&["--driver", not_pe.to_str().unwrap(), "--miniport", "test"]).status.code(), Some(2));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Where the CLI tests keep their files.
fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("rspvscsi-sim-cli");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// The C reference image (`cargo xtask sys --c-reference`), or `None` with a line where it
/// cannot be built (never under `RSPVSCSI_CI=1`).
fn c_reference() -> Option<PathBuf> {
    if let Some(reason) = xtask::c_reference::unavailable_reason() {
        assert!(!xtask::in_ci(), "RSPVSCSI_CI=1 but rspvscsi_c.sys cannot be built: {reason}");
        eprintln!("SKIPPED: rspvscsi_c.sys cannot be built here: {reason}");
        return None;
    }
    let package = xtask::c_reference::build(&xtask::c_reference::Options::default(), &mut |_| {}).expect("cargo xtask sys --c-reference");
    Some(package.sys)
}

/// `trace-diff`: the C reference and the Rust driver, traced through the CLI on the same seed
/// and workload with the device's DMA, agree under driver/c-reference/trace.allow; another seed
/// and a trace with one completion status changed are reported, with the first difference, its
/// context and the summary; exit statuses 0, 1 and 2.
#[test]
fn trace_diff_finds_the_c_reference_and_the_rust_driver_alike_and_tells_runs_apart() {
    let Some(sys) = c_reference() else { return };
    let allow = concat!(env!("CARGO_MANIFEST_DIR"), "/../../driver/c-reference/trace.allow");
    let (c, rust, other) = (scratch("td-c.jsonl"), scratch("td-rust.jsonl"), scratch("td-other.jsonl"));
    let run = |trace: &PathBuf, extra: &[&str]| {
        let mut args = vec!["--mode", "deterministic", "--seed", "5", "--count", "200", "--qd", "8", "--trace-dma", "--trace", trace.to_str().unwrap()];
        args.extend_from_slice(extra);
        expect(&args, 0);
    };
    run(&c, &["--driver", sys.to_str().unwrap()]);
    run(&rust, &[]);
    let (c, rust) = (c.to_str().unwrap(), rust.to_str().unwrap());
    let same = expect(&["trace-diff", "--allow", allow, rust, c], 0);
    assert!(same.contains("the traces agree"), "{same}");
    let dma = std::fs::read_to_string(c).unwrap().lines().filter(|l| l.contains(r#""ev":"dma""#)).count();
    assert!(dma > 400, "the traces carry the device's DMA: {dma} events");

    // Negative control 1: another seed is another run.
    expect(&["--mode", "deterministic", "--seed", "6", "--count", "200", "--qd", "8", "--trace-dma", "--trace", other.to_str().unwrap()], 0);
    let differ = expect(&["trace-diff", "--labels", "seed 5,seed 6", rust, other.to_str().unwrap()], 1);
    for part in ["first difference: seed 5 event #", "before it, in both:", "differences by kind of event (seed 5 / seed 6):", "summary: "] {
        assert!(differ.contains(part), "no {part:?} in\n{differ}");
    }
    assert!(!differ.contains("the traces agree"), "{differ}");

    // Negative control 2: one completion's status changed in the C trace (a driver that
    // completed one request with another status) is found, at that event, by its key.
    let text = std::fs::read_to_string(c).unwrap();
    let at = text.lines().position(|l| l.contains(r#""type":"RequestComplete""#) && l.contains(r#""status":"0x01""#)).unwrap();
    let edited: Vec<String> = text.lines().enumerate().map(|(i, l)| if i == at { l.replace(r#""status":"0x01""#, r#""status":"0x04""#) } else { l.to_string() }).collect();
    let edited_path = scratch("td-edited.jsonl");
    std::fs::write(&edited_path, edited.join("\n") + "\n").unwrap();
    let one = expect(&["trace-diff", "--allow", allow, rust, edited_path.to_str().unwrap()], 1);
    assert!(one.contains(&format!("td-rust.jsonl event #{at} (seq {})", at + 1)), "{one}");
    assert!(one.contains("differing keys: status"), "{one}");
    assert!(one.contains("port ScsiPortNotification RequestComplete") && one.contains(" 1 differ"), "{one}");
}

#[test]
fn trace_diff_refuses_what_it_cannot_read() {
    let good = scratch("td-good.jsonl");
    std::fs::write(&good, "{\"seq\":1,\"ev\":\"call\",\"routine\":\"DriverEntry\"}\n").unwrap();
    let g = good.to_str().unwrap();
    assert_eq!(sim(&["trace-diff", g, g]).status.code(), Some(0));
    assert_eq!(sim(&["trace-diff", g, "/nonexistent/b.jsonl"]).status.code(), Some(2));
    let junk = scratch("td-junk.jsonl");
    std::fs::write(&junk, "not json\n").unwrap();
    let out = sim(&["trace-diff", g, junk.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("td-junk.jsonl"), "{}", text(&out.stderr));
    // An allowlist entry must say why.
    let allow = scratch("td-bad.allow");
    std::fs::write(&allow, "field pa:\n").unwrap();
    let out = sim(&["trace-diff", "--allow", allow.to_str().unwrap(), g, g]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("reason"), "{}", text(&out.stderr));
    assert_eq!(sim(&["trace-diff", g]).status.code(), Some(2), "two files");
}

/// `trace-export --chrome`: a run's trace as Chrome trace-event JSON with the deferred
/// interrupt path on its tracks and every request a flow.
#[test]
fn trace_export_writes_a_chrome_timeline() {
    let (trace, out) = (scratch("te.jsonl"), scratch("te.json"));
    expect(&["--mode", "deterministic", "--count", "100", "--qd", "8", "--trace", trace.to_str().unwrap()], 0);
    expect(&["trace-export", "--chrome", trace.to_str().unwrap(), "-o", out.to_str().unwrap()], 0);
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let events = doc["traceEvents"].as_array().unwrap();
    let slices = |name: &str| events.iter().filter(|e| e["ph"] == "X" && e["name"] == name).count();
    assert!(slices("HwScsiStartIo") >= 100 && slices("HwScsiInterrupt") > 0 && slices("HwScsiEnableInterruptsCallback") > 0 && slices("HwScsiDisableInterruptsCallback") > 0);
    let flows = |ph: &str| events.iter().filter(|e| e["ph"] == ph && e["cat"] == "request").count();
    assert!(flows("s") >= 100 && flows("s") == flows("f"), "{} starts, {} ends", flows("s"), flows("f"));
    let tracks: Vec<&str> = events.iter().filter(|e| e["name"] == "thread_name").filter_map(|e| e["args"]["name"].as_str()).collect();
    for t in ["StartIo", "ISR", "DPC"] {
        assert!(tracks.contains(&t), "{tracks:?}");
    }
    // To stdout as well; a format must be named.
    let printed: Value = serde_json::from_str(expect(&["trace-export", "--chrome", trace.to_str().unwrap()], 0).trim()).unwrap();
    assert_eq!(printed, doc);
    assert_eq!(sim(&["trace-export", trace.to_str().unwrap()]).status.code(), Some(2));
    assert_eq!(sim(&["trace-export", "--chrome", "/nonexistent/t.jsonl"]).status.code(), Some(2));
}

/// `--time-scale` multiplies the verifier's routine time limits: 600 ms of CPU time in
/// `HwScsiStartIo` is 0x1002 at the 0.5 s limit in the concurrent schedule, and passes with the
/// limits multiplied by 4; the factor is bounded.
#[test]
fn time_scale_widens_the_routine_time_limits() {
    let slow = ["--miniport", "test", "--args", "tagged=1 qd=8 break=busy_startio", "--mode", "concurrent", "--count", "20"];
    let out = sim(&slow);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("BUG CHECK 0x1002"), "{}", text(&out.stderr));
    let mut scaled = slow.to_vec();
    scaled.extend(["--time-scale", "4"]);
    let out = sim(&scaled);
    assert!(!text(&out.stderr).contains("0x1002"), "{}", text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    for bad in ["0.5", "1001", "x"] {
        assert_eq!(sim(&["--time-scale", bad]).status.code(), Some(2), "--time-scale {bad}");
    }
}

/// `--port storport`: the Storport flavour on the emulator's Storport, with the default run, the
/// JSON, the scenario set in both modes, the other workloads, the test miniport and the soak.
#[test]
fn the_storport_flavour_runs_everything_on_storport() {
    let out = expect(&["--port", "storport"], 0);
    assert!(out.lines().next().unwrap().contains("rspvscsi miniport (linked in) on Storport"), "{out}");
    for row in ["DPCs", "completions each", "verifier                clean", "result                  PASS"] {
        assert!(out.contains(row), "no {row:?} in\n{out}");
    }
    let v = json(&["--port", "storport", "--count", "300"]);
    assert_eq!((v["ios"].as_u64(), v["errors"].as_u64(), v["mismatches"].as_u64()), (Some(300), Some(0), Some(0)));
    assert!(v["dpcs"].as_u64().unwrap() > 0 && v["completions_per_dpc"].as_f64().unwrap() >= 1.0, "{v}");
    // SCSI Port has no DPCs: the key is there, and zero.
    assert_eq!(json(&["--count", "100"])["dpcs"], 0);
    for mode in ["deterministic", "concurrent"] {
        let out = expect(&["scenario", "--port", "storport", "--mode", mode], 0);
        assert!(out.contains("7 of 7 passed"), "{mode}: {out}");
    }
    for workload in [&["--workload", "read", "--count", "200"][..], &["--workload", "bad-lba"], &["--workload", "missing-target", "--target", "5"], &["--workload", "inquiry"]] {
        let mut args = vec!["--port", "storport"];
        args.extend_from_slice(workload);
        expect(&args, 0);
    }
    let img = image("storport-pattern.img", 2 << 20);
    let disk = format!("file:{}", img.display());
    expect(&["--port", "storport", "--disk", &disk, "--workload", "write-pattern", "--seed", "5"], 0);
    expect(&["--port", "storport", "--disk", &disk, "--workload", "verify-pattern", "--seed", "5"], 0);
    expect(&["check-image", "--seed", "5", img.to_str().unwrap()], 0);
    expect(&["--port", "storport", "--miniport", "test", "--count", "200"], 0);
    expect(&["soak", "--port", "storport", "--steps", "2000", "--seeds", "1"], 0);
}

/// `rspvscsi_storport.sys` runs under `--port storport` as the linked-in Storport flavour does,
/// and each image is refused by the other port's loader (its imports are not there).
#[test]
fn the_storport_image_runs_like_the_linked_in_storport_flavour() {
    if let Some(reason) = xtask::sys::unavailable_reason() {
        assert!(!xtask::in_ci(), "RSPVSCSI_CI=1 but rspvscsi_storport.sys cannot be built: {reason}");
        let _ = std::io::Write::write_all(&mut std::io::stderr().lock(), format!("SKIPPED: rspvscsi_storport.sys cannot be built here: {reason}\n").as_bytes());
        return;
    }
    let package = xtask::sys::build(&xtask::sys::STORPORT, &xtask::sys::Options::default(), &mut |_| {}).expect("cargo xtask sys");
    let sys = package.sys.to_str().unwrap();
    let out = expect(&["--port", "storport", "--driver", sys, "--count", "300"], 0);
    assert!(out.lines().next().unwrap().starts_with("rspvscsi-sim: rspvscsi_storport.sys miniport (PE image"), "{out}");
    let image = json(&["--port", "storport", "--driver", sys, "--count", "300", "--mode", "deterministic"]);
    let linked = json(&["--port", "storport", "--count", "300", "--mode", "deterministic"]);
    for key in ["ios", "interrupts", "dpcs", "completions_per_dpc", "errors", "mismatches"] {
        assert_eq!(image[key], linked[key], "{key}: image {} vs linked {}", image[key], linked[key]);
    }
    expect(&["scenario", "--port", "storport", "--driver", sys, "--mode", "concurrent"], 0);
    // A Storport image on SCSI Port, and the SCSI Port image on Storport: refused at load.
    let refused = sim(&["--driver", sys, "--count", "10"]);
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused.stdout));
    let scsi = xtask::sys::build(&xtask::sys::SCSIPORT, &xtask::sys::Options::default(), &mut |_| {}).expect("cargo xtask sys");
    let refused = sim(&["--port", "storport", "--driver", scsi.sys.to_str().unwrap(), "--count", "10"]);
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused.stdout));
}
