//! The Storport port with the Storport test miniport on the PVSCSI model, in both schedules:
//! bring-up, I/O, the calling pattern (`BuildIo` without a lock, `StartIo` under the `StartIo` lock,
//! the DPC), DPC batching, resets, timeouts and the multi-tier reset, stop/restart and PnP
//! restart, hot-plug, the queue controls, timers, direct register access, determinism.
#![allow(clippy::cast_possible_truncation, clippy::many_single_char_names, clippy::cast_precision_loss)]

mod common;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use scsiport_sim::mem::SimDma;
use scsiport_sim::pvscsi::PvscsiDevice;
use scsiport_sim::{Machine, Port, PortConfig, Request, Schedule, VerifierConfig, stor_test_miniport};
use scsiport_sys as sys;

fn stor_machine(schedule: Schedule, args: &str, disks: u8) -> (Machine, PvscsiDevice, SharedBuf) {
    stor_machine_with(schedule, args, disks, PortConfig::default())
}

fn stor_machine_with(schedule: Schedule, args: &str, disks: u8, cfg: PortConfig) -> (Machine, PvscsiDevice, SharedBuf) {
    let buf = SharedBuf::default();
    let cfg = PortConfig { argument_string: Some(args.to_string()), ..cfg };
    let mut b = Machine::builder().port(Port::Storport).schedule(schedule).port_config(cfg).trace(buf.clone());
    if matches!(schedule, Schedule::Concurrent) {
        b = b.verifier(VerifierConfig { time_scale: 20.0, ..VerifierConfig::default() });
    }
    let dma = SimDma::default();
    let dev = device(&b, &dma, disks, 1);
    let m = b.adapter(Arc::new(dev.clone()), Arc::new(dma)).build();
    (m, dev, buf)
}

fn loaded(schedule: Schedule, args: &str, disks: u8) -> (Machine, PvscsiDevice, SharedBuf) {
    let (m, d, b) = stor_machine(schedule, args, disks);
    m.load_driver(stor_test_miniport::driver_entry).expect("load");
    (m, d, b)
}

fn schedules() -> [Schedule; 2] {
    [det(), Schedule::Concurrent]
}

/// The trace as JSON objects.
fn events(buf: &SharedBuf) -> Vec<serde_json::Value> {
    buf.text().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn field<'a>(e: &'a serde_json::Value, k: &str) -> Option<&'a str> {
    e.get(k).and_then(serde_json::Value::as_str)
}

/// Writes then reads back `n` 4 KiB blocks at depth `n`, spread over `disks` targets; every
/// request succeeds (after the unit attention of a fresh disk) and the data comes back.
fn workload(m: &Machine, n: u32, disks: u8) {
    let _ = m.execute(Request::test_unit_ready(0));
    if disks > 1 {
        let _ = m.execute(Request::test_unit_ready(1));
    }
    let writes: Vec<_> = (0..n)
        .map(|i| {
            let t = (i % u32::from(disks)) as u8;
            (t, i * 8, m.submit(Request::write10(t, i * 8, 8, pattern(i * 8, 8, t))).unwrap())
        })
        .collect();
    for (_, _, w) in &writes {
        let c = m.wait(*w).unwrap();
        assert!(c.is_success(), "write: status {:#x} timed out {}", c.srb_status, c.timed_out);
    }
    let reads: Vec<_> = writes.iter().map(|(t, lba, _)| (*t, *lba, m.submit(Request::read10(*t, *lba, 8, 4096)).unwrap())).collect();
    for (t, lba, r) in reads {
        let c = m.wait(r).unwrap();
        assert!(c.is_success(), "read: status {:#x} timed out {}", c.srb_status, c.timed_out);
        assert!(c.data == pattern(lba, 8, t), "data mismatch at target {t} lba {lba}");
    }
    m.run_until_idle().unwrap();
}

#[test]
fn bring_up_io_and_the_calling_pattern_in_both_schedules() {
    for schedule in schedules() {
        let (m, _d, buf) = loaded(schedule, "qd=8", 2);
        assert_eq!(m.logical_units(0), vec![(0, 0, 0), (0, 1, 0)], "{schedule:?}");
        workload(&m, 64, 2);
        assert!(m.violations().is_empty(), "{schedule:?}: {:#?}", m.violations());
        let s = m.stats();
        assert!(s.build_io_calls >= 128 && s.start_io_calls >= 128, "{schedule:?}: {s:?}");
        assert!(s.dpc_calls > 0 && s.completions_in_dpc >= 128, "{schedule:?}: {s:?}");
        // Dropping the machine joins its threads: the trace is complete.
        drop(m);
        let ev = events(&buf);
        // Load order: DriverEntry → StorPortInitialize, FindAdapter, Initialize, the passive
        // routine (where the DPC is initialised), the control query, then the scan.
        let calls: Vec<&str> = ev.iter().filter(|e| field(e, "ev") == Some("call")).filter_map(|e| field(e, "routine")).collect();
        let first = |r: &str| calls.iter().position(|c| *c == r).unwrap_or(usize::MAX);
        assert!(first("DriverEntry") < first("HwStorFindAdapter"));
        assert!(first("HwStorFindAdapter") < first("HwStorInitialize"));
        assert!(first("HwStorInitialize") < first("HwStorPassiveInitializeRoutine"));
        assert!(first("HwStorPassiveInitializeRoutine") < first("HwStorAdapterControl"));
        assert!(first("HwStorAdapterControl") < first("HwStorBuildIo"));
        // Every HwStorStartIo follows the HwStorBuildIo of its request.
        let mut built = std::collections::BTreeSet::new();
        for e in &ev {
            if field(e, "ev") == Some("call") {
                let srb = e.get("srb").and_then(serde_json::Value::as_u64);
                match field(e, "routine") {
                    Some("HwStorBuildIo") => {
                        built.insert(srb.unwrap());
                    }
                    Some("HwStorStartIo") => assert!(built.contains(&srb.unwrap()), "{schedule:?}: StartIo before BuildIo: {e}"),
                    _ => {}
                }
            }
        }
        // The DPC takes the StartIo lock around its completions and gives it back.
        let acquired = ev.iter().filter(|e| field(e, "fn") == Some("StorPortAcquireSpinLock")).count();
        let released = ev.iter().filter(|e| field(e, "fn") == Some("StorPortReleaseSpinLock")).count();
        assert!(acquired > 0 && acquired == released, "{schedule:?}: {acquired} {released}");
        assert!(!buf.text().contains("NextRequest"), "{schedule:?}: Storport needs no NextRequest");
    }
}

#[test]
fn deterministic_runs_are_reproducible() {
    let run = || {
        let (m, _d, buf) = loaded(Schedule::Deterministic { seed: 99 }, "qd=16", 2);
        workload(&m, 48, 2);
        m.flush_trace();
        buf.text()
    };
    let (a, b) = (run(), run());
    assert!(a.len() > 10_000);
    assert!(a == b, "two deterministic runs differ");
}

#[test]
fn dpcs_batch_completions_at_queue_depth_32() {
    let (m, _d, _buf) = loaded(det(), "qd=32", 2);
    workload(&m, 256, 2);
    let s = m.stats();
    let per_dpc = s.completions_per_dpc();
    eprintln!("QD 32: {} completions in {} DPCs ({per_dpc:.2} per DPC), {} interrupts", s.completions_in_dpc, s.dpc_calls, s.interrupts);
    assert!(per_dpc > 1.5, "{s:?}");
    assert!(s.dpc_calls < s.interrupts, "one DPC serves several interrupts: {s:?}");
    assert!(m.violations().is_empty(), "{:#?}", m.violations());
}

#[test]
fn the_isr_and_the_dpc_run_while_another_thread_is_in_build_io_or_start_io() {
    // Full duplex: nothing serialises the ISR or the DPC with the submission routines. A
    // BuildIo that waits 900 µs (legal there) leaves a window the device's completions land in.
    let (m, _d, _buf) = loaded(Schedule::Concurrent, "qd=16 buildio_stall=900", 2);
    let mut overlapped = 0;
    for _ in 0..20 {
        workload(&m, 32, 2);
        overlapped = m.stats().overlapped_submissions;
        if overlapped > 0 {
            break;
        }
    }
    assert!(overlapped > 0, "{:?}", m.stats());
    assert!(m.violations().is_empty(), "{:#?}", m.violations());
    // The deterministic schedule runs one routine at a time.
    let (m, _d, _buf) = loaded(det(), "qd=16 buildio_stall=900", 2);
    workload(&m, 32, 2);
    assert_eq!(m.stats().overlapped_submissions, 0);
}

#[test]
fn port_initiated_bus_reset_completes_what_the_miniport_holds() {
    for schedule in schedules() {
        let (m, _d, buf) = loaded(schedule, "qd=16", 2);
        workload(&m, 8, 2);
        let busy: Vec<_> = (0..16u32).map(|i| m.submit(Request::read10((i % 2) as u8, i * 8, 8, 4096)).unwrap()).collect();
        m.reset_bus(0, 0).unwrap();
        let mut reset = 0;
        for t in busy {
            let c = m.wait(t).unwrap();
            // Started after the reset: the disk's unit attention (CHECK CONDITION, sense key 6).
            let unit_attention = c.scsi_status == 2 && c.sense.get(2).is_some_and(|k| k & 0x0F == 6);
            assert!(
                c.is_success() || c.status() == sys::SRB_STATUS_BUS_RESET || unit_attention,
                "{schedule:?}: status {:#x} scsi {:#x}",
                c.srb_status,
                c.scsi_status
            );
            reset += usize::from(c.status() == sys::SRB_STATUS_BUS_RESET);
        }
        m.run_until_idle().unwrap();
        assert!(m.stats().bus_resets >= 1, "{schedule:?}");
        m.flush_trace();
        let t = buf.text();
        assert!(t.contains("\"routine\":\"HwStorResetBus\"") && t.contains("\"fn\":\"reset_bus\""), "{schedule:?}");
        if matches!(schedule, Schedule::Deterministic { .. }) {
            assert!(reset > 0, "the deterministic reset meets requests at the miniport");
        }
        workload(&m, 8, 2);
        assert!(m.violations().is_empty(), "{schedule:?}: {:#?}", m.violations());
    }
}

#[test]
fn a_timeout_resets_the_logical_unit_first() {
    for schedule in schedules() {
        let (m, _d, buf) = loaded(schedule, "break=drop_io", 1);
        let _ = m.execute(Request::test_unit_ready(0));
        let c = m.execute(Request::read10(0, 0, 1, 512).with_timeout(1)).unwrap();
        assert_eq!(c.status() & 0x3F, sys::SRB_STATUS_BUS_RESET, "{schedule:?}: {c:?}");
        assert!(c.timed_out, "{c:?}");
        m.run_until_idle().unwrap();
        m.flush_trace();
        let t = buf.text();
        assert!(t.contains("\"fn\":\"reset_logical_unit\""), "{schedule:?}");
        assert!(!t.contains("HwStorResetBus"), "{schedule:?}: the LU reset was enough");
        assert_eq!(m.stats().timeouts, 1);
        workload(&m, 8, 1);
        assert!(m.violations().is_empty(), "{schedule:?}: {:#?}", m.violations());
    }
}

#[test]
fn reset_tiers_escalate_to_the_bus_when_the_lower_ones_do_nothing() {
    for schedule in schedules() {
        let (m, _d, buf) = loaded(schedule, "break=drop_io resetsrb=0", 1);
        let _ = m.execute(Request::test_unit_ready(0));
        let c = m.execute(Request::read10(0, 0, 1, 512).with_timeout(1)).unwrap();
        assert_eq!(c.status() & 0x3F, sys::SRB_STATUS_BUS_RESET, "{schedule:?}: {c:?}");
        m.run_until_idle().unwrap();
        m.flush_trace();
        let t = buf.text();
        let lu = t.find("\"fn\":\"reset_logical_unit\"").unwrap();
        let dev = t.find("\"fn\":\"reset_device\"").unwrap();
        let bus = t.find("\"routine\":\"HwStorResetBus\"").unwrap();
        assert!(lu < dev && dev < bus, "{schedule:?}: logical unit, then device, then bus");
        workload(&m, 4, 1);
        assert!(m.violations().is_empty(), "{schedule:?}: {:#?}", m.violations());
    }
}

#[test]
fn stop_restart_and_pnp_restart_keep_the_device_extension() {
    for schedule in schedules() {
        let (m, _d, buf) = loaded(schedule, "qd=8 caches=1", 1);
        workload(&m, 8, 1);
        m.stop_adapter(0).unwrap();
        m.restart_adapter(0).unwrap();
        workload(&m, 8, 1);
        m.pnp_stop_start(0).unwrap();
        workload(&m, 8, 1);
        assert!(m.violations().is_empty(), "{schedule:?}: {:#?}", m.violations());
        m.flush_trace();
        let t = buf.text();
        for needle in ["\"control\":\"ScsiStopAdapter\"", "\"control\":\"ScsiRestartAdapter\"", "\"opcode\":\"0x00\""] {
            assert!(t.contains(needle), "{schedule:?}: {needle}");
        }
        // FLUSH before each stop (CachesData).
        assert!(t.matches("\"function\":\"0x08\"").count() >= 2, "{schedule:?}");
        // The PnP restart ran HwStorFindAdapter again with the device extension as it was.
        assert!(t.contains("\"text\":\"generation 1\"") && t.contains("\"text\":\"generation 2\""), "{schedule:?}");
        assert_eq!(t.matches("\"routine\":\"HwStorPassiveInitializeRoutine\"").count(), 4, "{schedule:?}: call and ret, twice");
    }
}

#[test]
fn bus_change_re_enumerates() {
    for schedule in schedules() {
        let (m, dev, _buf) = loaded(schedule, "break=bus_change", 1);
        assert_eq!(m.logical_units(0), vec![(0, 0, 0)]);
        dev.attach(3, scsiport_sim::disk::Disk::ram(1 << 20).unwrap()).unwrap();
        let _ = m.execute(Request::test_unit_ready(0));
        let _ = m.execute(Request::read10(0, 0, 1, 512));
        m.run_until(|m| m.logical_units(0).contains(&(0, 3, 0))).unwrap();
        assert!(m.violations().is_empty(), "{schedule:?}: {:#?}", m.violations());
    }
}

#[test]
fn pause_holds_requests_until_resume_or_its_timeout() {
    // StorPortPause(2 s) in the first READ's StartIo: the next READ waits out the pause.
    let (m, _d, _buf) = loaded(det(), "pause=2", 1);
    let _ = m.execute(Request::test_unit_ready(0));
    let t0 = m.now_ns();
    let a = m.submit(Request::read10(0, 0, 1, 512)).unwrap();
    let b = m.submit(Request::read10(0, 8, 1, 512)).unwrap();
    assert!(m.wait(a).unwrap().is_success());
    let cb = m.wait(b).unwrap();
    assert!(cb.is_success());
    assert!(m.now_ns() - t0 >= 2_000_000_000, "held for the pause: {} ns", m.now_ns() - t0);
    // With StorPortResume at the first completion, it does not wait.
    let (m, _d, _buf) = loaded(det(), "pause=2 resume=1", 1);
    let _ = m.execute(Request::test_unit_ready(0));
    let t0 = m.now_ns();
    let a = m.submit(Request::read10(0, 0, 1, 512)).unwrap();
    let b = m.submit(Request::read10(0, 8, 1, 512)).unwrap();
    assert!(m.wait(a).unwrap().is_success() && m.wait(b).unwrap().is_success());
    assert!(m.now_ns() - t0 < 100_000_000, "resumed: {} ns", m.now_ns() - t0);
    assert!(m.violations().is_empty(), "{:#?}", m.violations());
}

#[test]
fn srb_status_busy_and_storport_busy_hold_the_queue() {
    // Storport sends up to 8; the miniport keeps 2 at the device and answers the rest BUSY,
    // calling StorPortBusy(1): Storport retries them, and sends nothing until a completion.
    for schedule in schedules() {
        let (m, _d, buf) = stor_machine_with(schedule, "qd=8 slots=2 busy=1", 1, PortConfig::default().without_latency());
        m.load_driver(stor_test_miniport::driver_entry).unwrap();
        let _ = m.execute(Request::test_unit_ready(0));
        let ts: Vec<_> = (0..16u32).map(|i| m.submit(Request::read10(0, i, 1, 512)).unwrap()).collect();
        for t in ts {
            let c = m.wait(t).unwrap();
            assert!(c.is_success(), "{schedule:?}: status {:#x}", c.srb_status);
        }
        m.run_until_idle().unwrap();
        assert!(m.stats().busy_retries > 0, "{schedule:?}: {:?}", m.stats());
        assert!(m.violations().is_empty(), "{schedule:?}: {:#?}", m.violations());
        drop(m);
        let ev = events(&buf);
        let busy = ev.iter().position(|e| field(e, "fn") == Some("StorPortBusy")).expect("StorPortBusy");
        if matches!(schedule, Schedule::Deterministic { .. }) {
            // After StorPortBusy(1), the next HwStorStartIo comes after a completion.
            let after = &ev[busy + 1..];
            let start = after.iter().position(|e| field(e, "ev") == Some("call") && field(e, "routine") == Some("HwStorStartIo")).unwrap();
            let done = after.iter().position(|e| field(e, "type") == Some("RequestComplete") && field(e, "status") != Some("0x05")).unwrap();
            assert!(done < start, "StartIo while busy");
        }
    }
}

#[test]
fn timer_runs_under_the_start_io_lock_and_re_arms() {
    for schedule in schedules() {
        let (m, _d, buf) = loaded(schedule, "timer=1", 1);
        m.run_for(Duration::from_millis(55)).unwrap();
        workload(&m, 4, 1);
        assert!(m.stats().timer_calls >= 3, "{schedule:?}: {:?}", m.stats());
        m.flush_trace();
        assert!(buf.text().contains("\"routine\":\"HwStorTimer\""));
        assert!(m.violations().is_empty(), "{schedule:?}: {:#?}", m.violations());
    }
}

#[test]
fn direct_register_accesses_are_emulated_as_storport_h_makes_them() {
    for schedule in schedules() {
        let (m, _d, buf) = loaded(schedule, "direct=1", 1);
        workload(&m, 8, 1);
        let s = m.stats();
        assert!(s.registers_emulated > 0 && s.registers_emulated == s.register_accesses, "{schedule:?}: {s:?}");
        m.flush_trace();
        assert!(buf.text().contains("\"fn\":\"StorPortWriteRegisterUlong\""));
        assert!(m.violations().is_empty(), "{schedule:?}: {:#?}", m.violations());
    }
}

#[test]
fn buffers_are_mapped_as_map_buffers_says() {
    // STOR_MAP_ALL_BUFFERS_INCLUDING_READ_WRITE: a READ's buffer may be read (no 0xD1).
    let (m, _d, _buf) = loaded(det(), "map=3 break=deref_databuffer", 1);
    workload(&m, 4, 1);
    assert!(m.violations().is_empty(), "{:#?}", m.violations());
}

#[test]
fn abort_goes_to_the_miniport_only_with_the_feature() {
    for (args, reaches) in [("abort=1", true), ("", false)] {
        let (m, _d, buf) = loaded(det(), args, 1);
        let _ = m.execute(Request::test_unit_ready(0));
        let started = m.stats().start_io_calls;
        let t = m.submit(Request::read10(0, 0, 64, 32768)).unwrap();
        m.run_until(|m| m.stats().start_io_calls > started).unwrap();
        let a = m.submit(Request::abort(t)).unwrap();
        let ca = m.wait(a).unwrap();
        let _ = m.wait(t).unwrap();
        m.flush_trace();
        assert_eq!(buf.text().contains("\"function\":\"0x10\",\"opcode\":\"0x00\",\"target\""), reaches, "{args}: {ca:?}");
        if !reaches {
            assert_eq!(ca.status(), sys::SRB_STATUS_ABORT_FAILED);
        }
        assert!(m.violations().is_empty(), "{args}: {:#?}", m.violations());
    }
}

#[test]
fn requests_beyond_the_declared_limits_are_refused_at_the_port() {
    let (m, _d, buf) = loaded(det(), "", 1);
    let c = m.execute(Request::read10(0, 0, 1024, 512 * 1024)).unwrap();
    assert_eq!(c.status(), sys::SRB_STATUS_INVALID_REQUEST);
    assert!(!c.reached_miniport);
    m.flush_trace();
    assert!(buf.text().contains("\"fn\":\"transfer_limits\""));
}
