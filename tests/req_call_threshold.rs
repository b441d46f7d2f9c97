//! The request-call threshold (pvscsi-facts.md §4.8): on VMware's layout the driver turns it on
//! and skips the kicks the device says it does not need, with every request still completed and
//! its data intact; on QEMU's, which does not know the command, it kicks every request.
#![cfg(target_os = "linux")]

mod common;

use common::{Config, Rig, patterns, schedules};
use scsiport_sim::pvscsi::PvscsiLayout;
use scsiport_sim::{Request, Ticket};

/// 64 writes at queue depth 32 on two targets, then each read back.
fn io_at_depth(rig: &Rig) {
    let submit = |generation: u32| -> Vec<(u8, u32, Ticket)> {
        (0..64u32)
            .map(|i| {
                let target = u8::try_from(i % 2).unwrap();
                let lba = i * 8;
                let data = patterns(target, u64::from(lba), 8, generation);
                (target, lba, rig.machine.submit(Request::write10(target, lba, 8, data)).unwrap())
            })
            .collect()
    };
    for (target, lba, ticket) in submit(3) {
        assert!(rig.machine.wait(ticket).unwrap().is_success(), "write {target}/{lba}");
    }
    let reads: Vec<_> = (0..64u32)
        .map(|i| {
            let target = u8::try_from(i % 2).unwrap();
            (target, i * 8, rig.machine.submit(Request::read10(target, i * 8, 8, 8 * common::SECTOR)).unwrap())
        })
        .collect();
    for (target, lba, ticket) in reads {
        let c = rig.machine.wait(ticket).unwrap();
        assert!(c.is_success(), "read {target}/{lba}: {c:?}");
        assert_eq!(c.data, patterns(target, u64::from(lba), 8, 3), "data of {target}/{lba}");
    }
}

#[test]
fn vmware_coalesces_kicks() {
    for schedule in schedules() {
        let mut config = Config::new(schedule);
        config.layout = PvscsiLayout::Vmware;
        let rig = Rig::new(&config);
        rig.settle();
        io_at_depth(&rig);
        rig.assert_clean();
        let s = rig.device.stats();
        assert!(s.requests_polled > 0, "{schedule:?}: no request was left to the device: {s:?}");
        assert!(s.kicks < s.requests, "{schedule:?}: every request kicked: {s:?}");
    }
}

#[test]
fn qemu_gets_a_kick_per_request() {
    for schedule in schedules() {
        let rig = Rig::new(&Config::new(schedule));
        rig.settle();
        io_at_depth(&rig);
        rig.assert_clean();
        let s = rig.device.stats();
        assert_eq!(s.requests_polled, 0, "{schedule:?}");
        assert!(s.kicks >= s.requests, "{schedule:?}: a request without its kick: {s:?}");
    }
}
