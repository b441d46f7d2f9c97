//! The shipping image and the linked-in driver behave alike: the same deterministic run gives
//! the same trace, event by event (`scsiport_sim::trace_diff`), over a workload that goes
//! through every routine — bring-up, tagged I/O at queue depth 32 with batched interrupts,
//! errors, an abort, a port-initiated bus reset under load, hot-plug and an adapter
//! stop/restart.
//!
//! The allowlist is empty on purpose: the trace carries no host address and no host time in the
//! deterministic schedule (TRACE.md), and both drivers are the same source; whatever differs is a
//! difference in behaviour (calling convention, the emulated register path, codegen).

mod common;

use common::*;
use scsiport_sim::trace_diff::{Allowlist, diff, parse_trace};
use scsiport_sim::{Request, Schedule};

fn run(driver: Driver, seed: u64) -> Vec<serde_json::Map<String, serde_json::Value>> {
    let mut config = Config::new(Schedule::Deterministic { seed });
    config.trace = true;
    config.driver = driver;
    let rig = Rig::new(&config);
    rig.settle();
    // Tagged I/O at depth 32, then read back.
    let tickets: Vec<_> = (0..32u32)
        .map(|i| rig.machine.submit(Request::write10(u8::try_from(i % 2).unwrap(), i * 16, 8, patterns(u8::try_from(i % 2).unwrap(), u64::from(i) * 16, 8, 1))).unwrap())
        .collect();
    for t in tickets {
        assert!(rig.machine.wait(t).unwrap().is_success());
    }
    for i in 0..8u32 {
        let c = rig.read(0, i * 32, 8);
        assert_eq!(c.data, patterns(0, u64::from(i) * 32, 8, 1));
    }
    // Errors: a bad LBA, a missing target.
    assert!(!rig.execute(&Request::read10(0, 0xFFFF_FF00, 1, SECTOR)).is_success());
    assert!(!rig.machine.execute(Request::inquiry(5)).unwrap().is_success());
    // A bus reset with requests outstanding, then I/O again.
    let busy: Vec<_> = (0..16u32).map(|i| rig.machine.submit(Request::read10(1, i * 8, 8, 8 * SECTOR)).unwrap()).collect();
    rig.machine.reset_bus(0, 0).unwrap();
    for t in busy {
        let _ = rig.machine.wait(t).unwrap();
    }
    rig.settle();
    // Hot-plug: a disk added to target 2, seen after the rescan.
    rig.device.attach(2, scsiport_sim::disk::Disk::ram(1 << 20).unwrap()).unwrap();
    rig.machine.run_until(|m| m.logical_units(0).contains(&(0, 2, 0))).unwrap();
    // Stop and restart the adapter.
    rig.machine.stop_adapter(0).unwrap();
    rig.machine.restart_adapter(0).unwrap();
    rig.settle();
    let c = rig.read(1, 0, 8);
    assert!(c.is_success());
    rig.assert_clean();
    let text: Vec<String> = rig.trace().iter().map(ToString::to_string).collect();
    parse_trace(&text.join("\n")).unwrap()
}

#[test]
fn the_image_and_the_linked_in_driver_give_the_same_trace() {
    if let Err(reason) = image_bytes() {
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr().lock(), "SKIPPED: rspvscsi.sys cannot be built here: {reason}");
        return;
    }
    let allow = Allowlist::default();
    let linked = run(Driver::Linked, 0x00C0_FFEE);
    let image = run(Driver::Image, 0x00C0_FFEE);
    let report = diff(&linked, &image, &allow, 8);
    eprintln!("{}", report.render());
    // The workload went through every routine and the notable notifications.
    let has = |key: &str, value: &str| linked.iter().any(|e| e.get(key).and_then(|v| v.as_str()) == Some(value));
    for routine in [
        "HwScsiFindAdapter",
        "HwScsiInitialize",
        "HwScsiStartIo",
        "HwScsiInterrupt",
        "HwScsiEnableInterruptsCallback",
        "HwScsiDisableInterruptsCallback",
        "HwScsiResetBus",
        "HwScsiAdapterControl",
    ] {
        assert!(has("routine", routine), "the workload called {routine}");
    }
    for notification in ["RequestComplete", "NextRequest", "CallEnableInterrupts", "CallDisableInterrupts", "BusChangeDetected"] {
        assert!(has("type", notification), "the workload saw {notification}");
    }
    assert!(report.is_empty(), "the .sys behaves differently from the linked-in driver:\n{}", report.render());

    // The comparison can tell runs apart: another seed schedules events differently.
    let other = run(Driver::Image, 0x00C0_FFEF);
    assert!(!diff(&linked, &other, &allow, 8).is_empty(), "a different run must not compare equal");
}
