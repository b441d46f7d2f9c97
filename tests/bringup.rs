//! Bring-up: the driver loads, finds the HBA in either BAR layout, scans the bus and answers
//! INQUIRY and READ CAPACITY on two targets; dump mode loads too.
#![cfg(target_os = "linux")]

mod common;

use common::{Config, Rig, schedules, sys};
use scsiport_sim::Request;
use scsiport_sim::pvscsi::PvscsiLayout;

#[test]
fn bring_up_finds_both_disks_and_only_them() {
    for schedule in schedules() {
        let rig = Rig::default_on(schedule);
        // SCSI Port's scan (INQUIRY to every target but the initiator ID) found exactly the two
        // disks; the empty targets answered selection timeout.
        assert_eq!(rig.machine.logical_units(0), vec![(0, 0, 0), (0, 1, 0)], "{schedule:?}");
        rig.assert_clean();
    }
}

#[test]
fn inquiry_and_read_capacity_on_two_targets() {
    for schedule in schedules() {
        let rig = Rig::default_on(schedule);
        for target in [0u8, 1] {
            let inquiry = rig.execute(&Request::inquiry(target));
            assert!(inquiry.is_success(), "{inquiry:?}");
            assert_eq!(inquiry.data[0] & 0x1F, sys::DIRECT_ACCESS_DEVICE, "peripheral type");
            assert!(inquiry.data.len() >= 36);
            let capacity = rig.execute(&Request::read_capacity10(target));
            assert!(capacity.is_success(), "{capacity:?}");
            let last_lba = u32::from_be_bytes(capacity.data[0..4].try_into().unwrap());
            let block = u32::from_be_bytes(capacity.data[4..8].try_into().unwrap());
            assert_eq!((u64::from(last_lba) + 1) * u64::from(block), rig.disk(target).capacity_bytes());
            assert_eq!(block, 512);
        }
        rig.assert_clean();
    }
}

#[test]
fn vmware_layout_register_window_at_bar1() {
    // VMware puts an 8-byte I/O BAR first and the 32 KiB MMIO window at BAR1; the driver must
    // pick the window by kind and size, not by index (pvscsi-facts.md §1, Q16).
    for schedule in schedules() {
        let mut config = Config::new(schedule);
        config.layout = PvscsiLayout::Vmware;
        config.trace = true;
        let rig = Rig::new(&config);
        assert_eq!(rig.device.mmio_bar(), 1);
        rig.settle();
        let data = common::patterns(0, 100, 8, 1);
        assert!(rig.write(0, 100, data.clone()).is_success());
        let read = rig.read(0, 100, 8);
        assert!(read.is_success());
        assert_eq!(read.data, data);
        // VMware reports bytes transferred; full transfers stay successes.
        let mapped = rig.trace().into_iter().filter(|e| e["fn"] == common::named("ScsiPortGetDeviceBase").as_str()).count();
        assert_eq!(mapped, 1, "exactly one range mapped: the MMIO window");
        rig.assert_clean();
    }
}

#[test]
fn bring_up_sequence_is_the_documented_one() {
    let mut config = Config::new(common::schedules()[0]);
    config.trace = true;
    let rig = Rig::new(&config);
    let calls: Vec<String> = rig
        .trace()
        .iter()
        .filter(|e| e["ev"] == "call")
        .map(|e| e["routine"].as_str().unwrap().to_owned())
        .take(5)
        .collect();
    // Storport: the passive routine follows HwStorInitialize (the wrapper enables it there and
    // initialises the DPC in it, `DDI-storport:nc-storport-hw_passive_initialize_routine`).
    let expected: &[&str] = if common::storport() {
        &["DriverEntry", "HwStorFindAdapter", "HwStorInitialize", "HwStorPassiveInitializeRoutine", "HwStorAdapterControl"]
    } else {
        &["DriverEntry", "HwScsiFindAdapter", "HwScsiInitialize", "HwScsiAdapterControl", "HwScsiStartIo"]
    };
    assert_eq!(calls, expected, "DriverEntry → FindAdapter → Initialize → QuerySupportedControlTypes → the INQUIRY scan");
    // The uncached extension is requested once, inside HwScsiFindAdapter (HwStorFindAdapter).
    let trace = rig.trace();
    let uncached: Vec<_> = trace.iter().filter(|e| e["fn"] == common::named("ScsiPortGetUncachedExtension").as_str()).collect();
    assert_eq!(uncached.len(), 1);
    assert!(uncached[0]["bytes"].as_u64().unwrap() <= 100 * 1024);
}

/// Bring-up resets the adapter once: first thing, since whatever ran before may have left it
/// active, before the `GET_MAX_TARGETS` query. The rings are then set up without a second reset
/// (the query leaves nothing behind, and the device does nothing until `SETUP_RINGS`,
/// pvscsi-facts.md §7, §9).
#[test]
fn bring_up_resets_the_adapter_once() {
    for schedule in schedules() {
        let rig = Rig::default_on(schedule);
        assert_eq!(rig.device.stats().adapter_resets, 1, "{schedule:?}: ADAPTER_RESET commands of the bring-up");
        rig.assert_clean();
    }
}

#[test]
fn crash_dump_mode_loads_and_does_io_without_deferral() {
    if common::storport() {
        // The Storport flavour has no crash-dump mode (the wrapper does not cover it; README).
        return;
    }
    // In dump mode the dump stack polls the ISR with interrupts off: the driver must complete
    // inline and never ask for CallEnableInterrupts; its uncached extension stays under 32 KiB.
    let mut config = Config::new(common::schedules()[0]);
    config.dump_mode = true;
    config.trace = true;
    let rig = Rig::new(&config);
    rig.settle();
    let data = common::patterns(1, 7, 16, 3);
    assert!(rig.write(1, 7, data.clone()).is_success());
    assert_eq!(rig.read(1, 7, 16).data, data);
    let trace = rig.trace();
    assert!(trace.iter().all(|e| e["type"] != "CallEnableInterrupts"));
    let uncached = trace.iter().find(|e| e["fn"] == "ScsiPortGetUncachedExtension").unwrap();
    assert!(uncached["bytes"].as_u64().unwrap() < 32 * 1024);
    rig.assert_clean();
}

#[test]
fn hot_plug_messages_turn_into_a_bus_rescan() {
    // PVSCSI posts DEV_ADDED / DEV_REMOVED on its message ring (pvscsi-facts.md §5.6); the driver
    // set the ring up, takes the MSG interrupt through the same deferred path, and reports
    // BusChangeDetected, on which SCSI Port re-enumerates the bus.
    for schedule in schedules() {
        let mut config = Config::new(schedule);
        config.trace = true;
        let rig = Rig::new(&config);
        assert_eq!(rig.machine.logical_units(0), vec![(0, 0, 0), (0, 1, 0)]);
        rig.device.attach(3, scsiport_sim::disk::Disk::ram(1 << 20).unwrap()).unwrap();
        rig.machine.run_until(|m| m.logical_units(0).contains(&(0, 3, 0))).unwrap();
        let c = rig.execute(&Request::read_capacity10(3));
        assert!(c.is_success(), "{c:?}");
        rig.device.detach(1);
        rig.machine.run_until(|m| !m.logical_units(0).contains(&(0, 1, 0))).unwrap();
        let trace = rig.trace();
        let changes = trace.iter().filter(|e| e["type"] == "BusChangeDetected").count();
        assert!(changes >= 2, "one BusChangeDetected per hot-plug event ({changes})");
        rig.assert_clean();
    }
}

/// In the `sys_*` suites the driver under test is the `.sys` itself: every register access of
/// its code faulted and was emulated; in the others none was.
#[test]
fn the_driver_under_test_is_the_one_the_suite_names() {
    for schedule in schedules() {
        let rig = Rig::default_on(schedule);
        rig.settle();
        let stats = rig.machine.stats();
        assert!(stats.register_accesses > 0);
        if common::runs_the_image() {
            let image = rig.machine.image().expect("a loaded image");
            assert_eq!(image.name(), common::image_name());
            assert_eq!(stats.registers_emulated, stats.register_accesses, "every access of the .sys is direct, and emulated");
            eprintln!("{schedule:?}: {} register accesses, all emulated; image at {:#x}, {} relocations", stats.register_accesses, image.base(), image.relocations());
        } else {
            assert!(rig.machine.image().is_none());
            assert_eq!(stats.registers_emulated, 0, "the linked-in driver uses the accessor routines");
        }
        rig.assert_clean();
    }
}
