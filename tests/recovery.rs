//! Recovery: aborts, bus resets under load (every outstanding request completed exactly once,
//! the data that was acknowledged intact), SRB timeouts through `HwScsiResetBus`, resets from
//! another initiator, adapter stop/restart and a PnP stop/start.
#![cfg(target_os = "linux")]

mod common;

use std::time::Duration;

use common::{Config, Rig, SECTOR, patterns, schedules, submit_stripes, sys};
use scsiport_sim::pvscsi::{Effect, FaultAction, Injection, Latency, Trigger, regs};
use scsiport_sim::{Request, Schedule, Ticket};

fn quick_hold(schedule: Schedule) -> Config {
    let mut config = Config::new(schedule);
    config.reset_hold = Some(Duration::from_millis(200));
    config
}

#[test]
fn abort_of_an_outstanding_request_and_of_a_finished_one() {
    for schedule in schedules() {
        let rig = Rig::new(&quick_hold(schedule));
        rig.settle();
        // A request the device sits on forever (a hung back end)...
        rig.device.inject(Injection::lbas(64..72, Effect::Lose).on_target(0));
        let victim = rig.machine.submit(Request::read10(0, 64, 8, 8 * SECTOR)).unwrap();
        let device = rig.device.clone();
        rig.machine.run_until(|_| device.in_flight() == 1).unwrap();
        // ...is aborted: the ABORT_COMMAND succeeds and the victim comes back ABORTED, once.
        let abort = rig.machine.execute(Request::abort(victim)).unwrap();
        assert!(abort.is_success(), "{schedule:?} abort: {abort:?}");
        let victim = rig.machine.wait(victim).unwrap();
        assert_eq!(victim.status(), sys::SRB_STATUS_ABORTED, "{schedule:?} {victim:?}");
        assert!(victim.reached_miniport, "aborted by the driver, not by the port's queue");
        assert_eq!(rig.device.stats().aborts_matched, 1);
        // Aborting something already finished fails, as the docs require.
        let done = rig.machine.submit(Request::read10(0, 0, 1, SECTOR)).unwrap();
        assert!(rig.machine.wait(done).unwrap().is_success());
        let late = rig.machine.execute(Request::abort(done)).unwrap();
        assert_eq!(late.status(), sys::SRB_STATUS_ABORT_FAILED, "{late:?}");
        rig.assert_clean();
    }
}

#[test]
fn bus_reset_under_load_completes_everything_once_and_keeps_acknowledged_data() {
    for schedule in schedules() {
        let rig = Rig::new(&quick_hold(schedule));
        rig.settle();
        // Slow enough that the reset finds many of them in the device even when the test
        // threads share two cores.
        rig.device.set_latency(Latency::range(50_000_000, 100_000_000));
        let writes = submit_stripes(&rig, 48, 1);
        let device = rig.device.clone();
        rig.machine.run_until(|_| device.in_flight() >= 8).unwrap();
        let reset = rig.machine.execute(Request::reset_bus(0)).unwrap();
        assert!(reset.is_success(), "{reset:?}");
        let mut reset_count = 0;
        for (target, lba, ticket) in &writes {
            // `wait` returns each request once; the verifier would have stopped the run on a
            // second completion (0xF1/0x1003).
            let c = rig.machine.wait(*ticket).unwrap();
            match c.status() {
                sys::SRB_STATUS_SUCCESS => {
                    let on_disk = rig.disk(*target).read_sectors(u64::from(*lba), 8).unwrap();
                    assert_eq!(on_disk, patterns(*target, u64::from(*lba), 8, 1), "acknowledged write lost");
                }
                sys::SRB_STATUS_BUS_RESET => reset_count += 1,
                // Sent after the reset: the disk reports it once (06/29/00); a class driver retries.
                sys::SRB_STATUS_ERROR if common::is_unit_attention(&c) => {}
                other => panic!("{schedule:?}: unexpected status {other:#x} after reset"),
            }
        }
        if matches!(schedule, Schedule::Deterministic { .. }) {
            assert!(reset_count > 0, "the reset caught requests in flight");
        }
        // The class driver retries: afterwards every stripe reads back as written.
        rig.settle();
        for (target, lba, ticket) in submit_stripes(&rig, 48, 2) {
            assert!(rig.machine.wait(ticket).unwrap().is_success());
            assert_eq!(rig.read(target, lba, 8).data, patterns(target, u64::from(lba), 8, 2));
        }
        rig.assert_clean();
    }
}

#[test]
fn a_hung_request_times_out_and_hw_scsi_reset_bus_recovers() {
    for schedule in schedules() {
        let mut config = quick_hold(schedule);
        config.trace = true;
        let rig = Rig::new(&config);
        rig.settle();
        rig.device.inject(Injection::lbas(0..1, Effect::Lose).on_target(1));
        let hung = rig.machine.submit(Request::read10(1, 0, 1, SECTOR).with_timeout(1)).unwrap();
        let others = submit_stripes(&rig, 8, 5);
        let c = rig.machine.wait(hung).unwrap();
        assert!(c.timed_out, "{c:?}");
        assert_eq!(c.status(), sys::SRB_STATUS_BUS_RESET);
        for (_, _, t) in others {
            let c = rig.machine.wait(t).unwrap();
            let retried = c.status() == sys::SRB_STATUS_ERROR && common::is_unit_attention(&c);
            assert!(matches!(c.status(), sys::SRB_STATUS_SUCCESS | sys::SRB_STATUS_BUS_RESET) || retried, "{c:?}");
        }
        let trace = rig.trace();
        if common::storport() {
            // Storport's first tier: a logical unit reset, which the driver does with the
            // target's RESET_DEVICE; the device completes the hung request with BUSRESET, so the
            // escalation stops there (`DDI-storport:nc-storport-hw_reset_bus` is the last tier).
            assert!(trace.iter().any(|e| e["ev"] == "port" && e["fn"] == "reset_logical_unit"));
            assert!(trace.iter().any(|e| e["ev"] == "call" && e["routine"] == "HwStorBuildIo" && e["function"] == "0x20"));
        } else {
            assert!(trace.iter().any(|e| e["ev"] == "call" && e["routine"] == "HwScsiResetBus"));
        }
        // The reset hold ended with nothing outstanding (0xF1/0x1007 otherwise), and I/O goes on.
        rig.device.clear_injections();
        rig.settle();
        assert!(rig.read(1, 0, 1).is_success());
        rig.assert_clean();
    }
}

/// `SRB_FUNCTION_RESET_DEVICE` names a target: only its `Function`, `TargetId` and `PathId` are
/// valid (`DDI-storport:ns-storport-_scsi_request_block`), so whatever its `Lun` holds must not
/// reach the device's command. Storport's second reset tier; SCSI Port no longer sends it, but the
/// SCSI Port flavour handles it the same way.
#[test]
fn a_target_reset_resets_the_target_whatever_the_srbs_lun_holds() {
    for schedule in schedules() {
        let mut config = quick_hold(schedule);
        config.trace = true;
        let rig = Rig::new(&config);
        rig.settle();
        // A request the device sits on, which the reset cancels.
        rig.device.inject(Injection::lbas(64..72, Effect::Lose).on_target(1));
        let hung = rig.machine.submit(Request::read10(1, 64, 8, 8 * SECTOR)).unwrap();
        let device = rig.device.clone();
        rig.machine.run_until(|_| device.in_flight() == 1).unwrap();
        let before = rig.device.stats().device_resets;
        let reset = rig.machine.execute(Request::reset_device(0, 1).with_lun(5)).unwrap();
        assert!(reset.is_success(), "{schedule:?}: {reset:?}");
        assert_eq!(rig.device.stats().device_resets, before + 1, "{schedule:?}: the device reset target 1");
        // The command's words as written (§4.6): the target, then the LUN, which is 0 for a target.
        let writes: Vec<(String, String)> = rig
            .trace()
            .iter()
            .filter(|e| e["ev"] == "port" && e["fn"].as_str().is_some_and(|f| f.ends_with("WriteRegisterUlong")))
            .map(|e| (e["offset"].as_str().unwrap_or("").to_string(), e["value"].as_str().unwrap_or("").to_string()))
            .collect();
        let command = writes.iter().position(|(offset, value)| offset == "0x0" && value == "0x5").expect("RESET_DEVICE written");
        let words: Vec<&str> = writes[command + 1..].iter().take(3).map(|(_, value)| value.as_str()).collect();
        assert_eq!(words, ["0x1", "0x0", "0x0"], "{schedule:?}: RESET_DEVICE's target and LUN words");
        let hung = rig.machine.wait(hung).unwrap();
        assert_eq!(hung.status(), sys::SRB_STATUS_BUS_RESET, "{schedule:?}: {hung:?}");
        rig.device.clear_injections();
        rig.settle();
        rig.assert_clean();
    }
}

/// A bus reset after which the device will not take its rings again (every `SETUP_RINGS`
/// attempt fails) leaves the HBA out of service: the reset fails, later requests complete with
/// `NO_HBA`, and the failure is logged, once (`KG:scsi-miniport-driver-s-hwscsiresetbus-routine`:
/// a failed bus reset is logged with `ScsiPortLogError`; Storport's `StorPortLogError`).
#[test]
fn a_bus_reset_the_device_does_not_recover_from_is_logged() {
    for schedule in schedules() {
        let mut config = quick_hold(schedule);
        config.trace = true;
        let rig = Rig::new(&config);
        rig.settle();
        rig.device.fail_commands(regs::cmd::SETUP_RINGS, u32::MAX);
        let reset = rig.machine.execute(Request::reset_bus(0)).unwrap();
        assert_eq!(reset.status(), sys::SRB_STATUS_ERROR, "{schedule:?}: {reset:?}");
        let after = rig.machine.execute(Request::read10(0, 0, 1, SECTOR)).unwrap();
        assert_eq!(after.status(), sys::SRB_STATUS_NO_HBA, "{schedule:?}: {after:?}");
        let code = format!("{:#x}", sys::SP_INTERNAL_ADAPTER_ERROR);
        let logged: Vec<_> = rig
            .trace()
            .into_iter()
            .filter(|e| e["ev"] == "port" && e["fn"].as_str().is_some_and(|f| f.ends_with("LogError")))
            .collect();
        assert!(
            matches!(&logged[..], [e] if e["code"] == code.as_str() && e["unique"] == 4),
            "{schedule:?}: one SP_INTERNAL_ADAPTER_ERROR, unique 4: {logged:?}"
        );
        rig.device.fail_commands(regs::cmd::SETUP_RINGS, 0);
        rig.assert_clean();
    }
}

/// The completions the bus resets made themselves, by status: the `RequestComplete`s inside
/// `HwScsiResetBus` / `HwStorResetBus`, or inside the `HwScsiStartIo` / `HwStorStartIo` of an
/// `SRB_FUNCTION_RESET_BUS` request (other than that request's own), however the port passes a
/// reset on.
fn completed_inside_resets(trace: &[serde_json::Value]) -> std::collections::BTreeMap<String, usize> {
    // The `SRB_FUNCTION_RESET_BUS` requests, as the port traced them when they came in.
    let resets: std::collections::BTreeSet<u64> =
        trace.iter().filter(|e| e["ev"] == "srb" && e["function"] == "0x12").filter_map(|e| e["id"].as_u64()).collect();
    // The routine and SRB of the reset being run.
    let mut inside: Option<(String, Option<u64>)> = None;
    let mut statuses = std::collections::BTreeMap::new();
    for e in trace {
        let routine = e["routine"].as_str().unwrap_or("");
        let reset = routine.ends_with("ResetBus") || (routine.ends_with("StartIo") && e["srb"].as_u64().is_some_and(|id| resets.contains(&id)));
        if e["ev"] == "call" && reset && inside.is_none() {
            inside = Some((routine.to_string(), e["srb"].as_u64()));
        } else if let Some((r, srb)) = &inside {
            if e["ev"] == "ret" && routine == r && e["srb"].as_u64() == *srb {
                inside = None;
            } else if e["type"] == "RequestComplete" && (srb.is_none() || e["srb"].as_u64() != *srb) {
                *statuses.entry(e["status"].as_str().unwrap_or("?").to_string()).or_insert(0) += 1;
            }
        }
    }
    statuses
}

/// `ADAPTER_RESET` writes every completion the device still had, cancelled or finished, into the
/// old completion ring before it lets go of the rings (pvscsi-facts.md §7). The bus reset drains
/// that ring once more, as Linux's host reset does: requests the device had finished, but whose
/// completions it had not posted, complete inside the reset with their own status and data, not
/// with `SRB_STATUS_BUS_RESET`, which the request the reset cancelled gets.
#[test]
fn a_bus_reset_keeps_the_status_of_what_the_device_had_finished() {
    for schedule in schedules() {
        let mut config = quick_hold(schedule);
        config.trace = true;
        let rig = Rig::new(&config);
        common::reset_finding_unposted_completions(&rig, &format!("{schedule:?}"));
        let inside = completed_inside_resets(&rig.trace());
        assert_eq!(inside.get("0x01").copied(), Some(4), "{schedule:?}: completed inside the reset: {inside:?}");
        rig.settle();
        rig.assert_clean();
    }
}

/// A bus reset sends `ADAPTER_RESET` once, as the host-reset recipe and Linux's host reset do
/// (pvscsi-facts.md §9): the one that cancels what the device holds and leaves its completions
/// in the old ring. Setting the rings up again right after it needs no second reset (the device
/// has no rings and does nothing until `SETUP_RINGS`, §7). A failed `SETUP_RINGS` is still
/// retried from a fresh reset.
#[test]
fn a_bus_reset_resets_the_adapter_once() {
    for schedule in schedules() {
        let rig = Rig::new(&quick_hold(schedule));
        rig.settle();
        for (failed_setups, resets) in [(0, 1), (1, 2)] {
            let what = format!("{schedule:?}, {failed_setups} failed SETUP_RINGS");
            rig.device.fail_commands(regs::cmd::SETUP_RINGS, failed_setups);
            let before = rig.device.stats().adapter_resets;
            let reset = rig.machine.execute(Request::reset_bus(0)).unwrap();
            assert!(reset.is_success(), "{what}: {reset:?}");
            assert_eq!(rig.device.stats().adapter_resets - before, resets, "{what}: ADAPTER_RESET commands of one bus reset");
            let data = patterns(0, 40, 8, 4 + failed_setups);
            assert!(rig.write(0, 40, data.clone()).is_success(), "{what}: a write after the reset");
            assert_eq!(rig.read(0, 40, 8).data, data, "{what}: the data read back after the reset");
        }
        rig.settle();
        rig.assert_clean();
    }
}

#[test]
fn reset_from_another_initiator_completes_requests_with_bus_reset() {
    for schedule in schedules() {
        let mut config = quick_hold(schedule);
        config.latency = Latency::range(500_000, 1_000_000);
        let rig = Rig::new(&config);
        rig.settle();
        rig.device.schedule(Trigger::AfterRequests(10), FaultAction::BusReset);
        let writes = submit_stripes(&rig, 24, 3);
        let mut statuses = std::collections::BTreeMap::new();
        for (_, _, t) in writes {
            *statuses.entry(rig.machine.wait(t).unwrap().status()).or_insert(0) += 1;
        }
        assert!(statuses.keys().all(|s| matches!(*s, sys::SRB_STATUS_SUCCESS | sys::SRB_STATUS_BUS_RESET | sys::SRB_STATUS_ERROR)), "{statuses:?}");
        assert!(statuses.get(&sys::SRB_STATUS_BUS_RESET).copied().unwrap_or(0) > 0, "{schedule:?} {statuses:?}");
        rig.settle();
        rig.assert_clean();
    }
}

#[test]
fn adapter_stop_and_restart_keep_the_disks_usable() {
    for schedule in schedules() {
        let rig = Rig::default_on(schedule);
        rig.settle();
        let data = patterns(0, 500, 16, 8);
        assert!(rig.write(0, 500, data.clone()).is_success());
        rig.machine.stop_adapter(0).unwrap();
        assert_eq!(rig.device.registers().intr_mask, 0, "stopped adapter leaves interrupts masked");
        rig.machine.restart_adapter(0).unwrap();
        assert_eq!(rig.read(0, 500, 16).data, data);
        let more = patterns(1, 9, 4, 8);
        assert!(rig.write(1, 9, more.clone()).is_success());
        assert_eq!(rig.read(1, 9, 4).data, more);
        // A PnP stop and start: a fresh HwScsiFindAdapter on a fresh device extension.
        rig.machine.pnp_stop_start(0).unwrap();
        assert_eq!(rig.read(0, 500, 16).data, data);
        rig.assert_clean();
    }
}

#[test]
fn port_initiated_reset_completes_every_request_at_the_miniport_once() {
    // SCSI Port's own reset (what follows a timeout): HwScsiResetBus with requests outstanding
    // at the miniport. Each must come back exactly once, with SRB_STATUS_BUS_RESET, before the
    // reset hold ends (0xF1/0x1007 otherwise), and the disks must work afterwards.
    for schedule in schedules() {
        let rig = Rig::new(&quick_hold(schedule));
        rig.settle();
        rig.device.set_latency(Latency::range(50_000_000, 100_000_000));
        let writes = submit_stripes(&rig, 40, 6);
        let device = rig.device.clone();
        rig.machine.run_until(|_| device.in_flight() >= 8).unwrap();
        rig.machine.reset_bus(0, 0).unwrap();
        let mut reset = 0;
        for (target, lba, ticket) in &writes {
            let c = rig.machine.wait(*ticket).unwrap();
            match c.status() {
                sys::SRB_STATUS_BUS_RESET => reset += 1,
                sys::SRB_STATUS_SUCCESS => {
                    assert_eq!(rig.disk(*target).read_sectors(u64::from(*lba), 8).unwrap(), patterns(*target, u64::from(*lba), 8, 6));
                }
                sys::SRB_STATUS_ERROR if common::is_unit_attention(&c) => {}
                other => panic!("{schedule:?}: status {other:#x}"),
            }
        }
        assert!(reset >= 8, "{schedule:?}: only {reset} requests were at the miniport");
        assert_eq!(rig.machine.stats().bus_resets, 1);
        rig.settle();
        for (target, lba, ticket) in submit_stripes(&rig, 40, 7) {
            assert!(rig.machine.wait(ticket).unwrap().is_success());
            assert_eq!(rig.read(target, lba, 8).data, patterns(target, u64::from(lba), 8, 7));
        }
        rig.assert_clean();
    }
}

#[test]
fn a_ring_setup_a_device_side_reset_cut_short_is_made_again() {
    // A reset from the device side in the middle of the driver's SETUP_RINGS, which the
    // concurrent soak met during a bus reset: the rest of the command's 132 words arrive with no
    // command current, COMMAND_STATUS reads all ones, and the rings do not exist. The driver
    // resets the adapter and sets the rings up again; the bus reset still takes, and I/O goes
    // on, where before every later request ended in SRB_STATUS_NO_HBA until the next reset.
    for schedule in schedules() {
        let rig = Rig::new(&quick_hold(schedule));
        rig.settle();
        let setup_rings = scsiport_sim::pvscsi::regs::cmd::SETUP_RINGS;
        rig.device.schedule(Trigger::DuringCommand { code: setup_rings, after_words: 40 }, FaultAction::AdapterReset);
        let stray = rig.device.stats().stray_command_words;
        rig.machine.reset_bus(0, 0).unwrap();
        assert_eq!(rig.machine.stats().bus_resets, 1);
        // The other 92 words of that SETUP_RINGS reached a device with no command.
        let stray = rig.device.stats().stray_command_words - stray;
        assert_eq!(stray, 92, "{schedule:?}: the device did not reset in the middle of SETUP_RINGS");
        rig.settle();
        for (target, lba, t) in submit_stripes(&rig, 16, 12) {
            let c = rig.machine.wait(t).unwrap();
            assert!(c.is_success(), "{schedule:?}: status {:#x}: {c:?}", c.status());
            assert_eq!(rig.read(target, lba, 8).data, patterns(target, u64::from(lba), 8, 12), "{schedule:?}");
        }
        rig.assert_clean();
    }
}

#[test]
fn an_adapter_reset_from_the_device_side_is_recovered_without_an_interrupt_storm() {
    // The device forgets its rings under load (a reset the driver did not ask for). Requests the
    // device held come back into the old ring; those sent afterwards are ignored until the
    // port's timeout makes the driver reset and set up the rings again. No interrupt storm
    // (0xF1/0x1131) on the way: the line must not stay up with nothing in INTR_STATUS.
    for schedule in schedules() {
        let mut config = quick_hold(schedule);
        config.latency = Latency::range(200_000, 400_000);
        let rig = Rig::new(&config);
        rig.settle();
        rig.device.schedule(Trigger::AfterRequests(12), FaultAction::AdapterReset);
        let writes: Vec<(u8, u32, Ticket)> = (0..32u32)
            .map(|i| {
                let target = u8::try_from(i % 2).unwrap();
                let lba = (i / 2) * 8;
                let data = patterns(target, u64::from(lba), 8, 9);
                (target, lba, rig.machine.submit(Request::write10(target, lba, 8, data).with_timeout(1)).unwrap())
            })
            .collect();
        for (target, lba, t) in writes {
            let c = rig.machine.wait(t).unwrap();
            match c.status() {
                sys::SRB_STATUS_SUCCESS => {
                    assert_eq!(rig.disk(target).read_sectors(u64::from(lba), 8).unwrap(), patterns(target, u64::from(lba), 8, 9));
                }
                sys::SRB_STATUS_BUS_RESET => {}
                sys::SRB_STATUS_ERROR if common::is_unit_attention(&c) => {}
                other => panic!("{schedule:?}: status {other:#x}: {c:?}"),
            }
        }

        rig.settle();
        for (target, lba, t) in submit_stripes(&rig, 16, 10) {
            assert!(rig.machine.wait(t).unwrap().is_success());
            assert_eq!(rig.read(target, lba, 8).data, patterns(target, u64::from(lba), 8, 10));
        }
        rig.assert_clean();
    }
}

#[test]
fn with_every_slot_outstanding_and_lost_the_timeouts_still_recover() {
    // The device loses as many requests as the miniport takes at once (its 64 slots, which is
    // Storport's MaxNumberOfIO too). SCSI Port resets the bus when they time out. Storport first
    // sends a logical unit reset, which cannot start while the adapter is full: it must count as
    // failed when its own time is up, and the next tiers follow down to HwStorResetBus
    // (`KG:multi-tier-reset-in-storport`); before, the machine waited for ever (a QD 64 soak,
    // seed 400, with device-side adapter resets).
    for schedule in schedules() {
        let mut config = quick_hold(schedule);
        config.trace = true;
        let rig = Rig::new(&config);
        rig.settle();
        rig.device.inject(Injection::next(64, Effect::Lose));
        let lost: Vec<Ticket> = (0..64u32)
            .map(|i| rig.machine.submit(Request::read10(u8::try_from(i % 2).unwrap(), i * 8, 1, SECTOR).with_timeout(1)).unwrap())
            .collect();
        let mut timed_out = 0;
        for t in lost {
            // Each ends in the bus reset; in the concurrent schedule some before their own
            // time is up, the reset made for an earlier one.
            let c = rig.machine.wait(t).unwrap();
            assert_eq!(c.status(), sys::SRB_STATUS_BUS_RESET, "{schedule:?}: {c:?}");
            timed_out += usize::from(c.timed_out);
        }
        assert!(timed_out > 0, "{schedule:?}");
        let trace = rig.trace();
        let resets_bus = trace.iter().any(|e| e["ev"] == "call" && (e["routine"] == "HwScsiResetBus" || e["routine"] == "HwStorResetBus"));
        assert!(resets_bus, "{schedule:?}: no bus reset");
        if common::storport() {
            for tier in ["reset_logical_unit", "reset_device"] {
                assert!(trace.iter().any(|e| e["ev"] == "port" && e["fn"] == tier), "{schedule:?}: no {tier}");
            }
        }
        rig.device.clear_injections();
        rig.settle();
        assert!(rig.read(1, 0, 1).is_success());
        rig.assert_clean();
    }
}
