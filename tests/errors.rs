//! Errors reach the class driver as SCSI Port defines them: sense data by autosense, the
//! device's statuses mapped to SRB statuses, missing targets as selection timeouts, and
//! requests the device would choke on refused before they reach it.
#![cfg(target_os = "linux")]

mod common;

use common::{Config, Rig, SECTOR, is_unit_attention, schedules, sense, sense_triple, sys};
use scsiport_sim::pvscsi::{Effect, Injection, PvscsiLayout};
use scsiport_sim::{Direction, Request};

#[test]
fn bad_lba_returns_illegal_request_sense() {
    for schedule in schedules() {
        let rig = Rig::default_on(schedule);
        rig.settle();
        let blocks = rig.disk(0).blocks();
        let lba = u32::try_from(blocks).unwrap(); // one past the end
        let c = rig.machine.execute(Request::read10(0, lba, 1, SECTOR)).unwrap();
        assert_eq!(c.status(), sys::SRB_STATUS_ERROR, "{c:?}");
        assert_eq!(c.scsi_status, sys::SCSISTAT_CHECK_CONDITION);
        assert_ne!(c.srb_status & sys::SRB_STATUS_AUTOSENSE_VALID, 0, "autosense");
        assert_eq!(sense_triple(&c), Some((sys::SCSI_SENSE_ILLEGAL_REQUEST, sys::SCSI_ADSENSE_ILLEGAL_BLOCK, 0)));
        // A WRITE straddling the end, too.
        let c = rig.machine.execute(Request::write10(0, lba - 1, 2, vec![0xAB; 2 * SECTOR])).unwrap();
        assert_eq!(sense_triple(&c).map(|s| s.0), Some(sys::SCSI_SENSE_ILLEGAL_REQUEST));
        rig.assert_clean();
    }
}

#[test]
fn unknown_opcode_returns_invalid_command_sense() {
    let rig = Rig::default_on(schedules()[0]);
    rig.settle();
    let c = rig.machine.execute(Request::scsi(0, &[0xC7, 0, 0, 0, 0, 0], Direction::None, vec![])).unwrap();
    assert_eq!(c.status(), sys::SRB_STATUS_ERROR);
    assert_eq!(sense_triple(&c), Some((sys::SCSI_SENSE_ILLEGAL_REQUEST, sys::SCSI_ADSENSE_ILLEGAL_COMMAND, 0)));
    rig.assert_clean();
}

#[test]
fn unit_attention_after_power_on_and_after_a_bus_reset() {
    for schedule in schedules() {
        let rig = Rig::default_on(schedule);
        // Power-on: the first media command after bring-up reports the reset (06/29/00).
        let c = rig.machine.execute(Request::test_unit_ready(1)).unwrap();
        assert!(is_unit_attention(&c), "{c:?}");
        assert_eq!(sense_triple(&c).map(|s| s.1), Some(sys::SCSI_ADSENSE_BUS_RESET));
        assert!(rig.machine.execute(Request::test_unit_ready(1)).unwrap().is_success());
        // A class-driver bus reset: both disks report it once.
        let reset = rig.machine.execute(Request::reset_bus(0)).unwrap();
        assert!(reset.is_success(), "{reset:?}");
        for target in [0u8, 1] {
            let c = rig.machine.execute(Request::test_unit_ready(target)).unwrap();
            assert!(is_unit_attention(&c), "target {target} after reset: {c:?}");
            assert!(rig.machine.execute(Request::test_unit_ready(target)).unwrap().is_success());
        }
        rig.assert_clean();
    }
}

#[test]
fn missing_target_is_a_selection_timeout_and_lun1_is_not_a_disk() {
    for schedule in schedules() {
        let rig = Rig::default_on(schedule);
        let c = rig.machine.execute(Request::inquiry(5)).unwrap();
        assert!(c.reached_miniport);
        assert_eq!(c.status(), sys::SRB_STATUS_SELECTION_TIMEOUT, "{c:?}");
        // An existing target answers for a LUN it does not have with qualifier 3.
        let c = rig.machine.execute(Request::inquiry(0).with_lun(1)).unwrap();
        assert!(c.is_success(), "{c:?}");
        assert_eq!(c.data[0], 0x7F);
        rig.assert_clean();
    }
}

#[test]
fn device_statuses_map_to_srb_statuses() {
    let rig = Rig::default_on(schedules()[0]);
    rig.settle();
    let cases = [
        (Effect::Host(0x25), sys::SRB_STATUS_BUS_RESET, 0),
        (Effect::Host(0x11), sys::SRB_STATUS_SELECTION_TIMEOUT, 0),
        (Effect::Host(0x34), sys::SRB_STATUS_PARITY_ERROR, 0),
        (Effect::Host(0x20), sys::SRB_STATUS_ERROR, 0),
        (Effect::Host(0x7777), sys::SRB_STATUS_ERROR, 0),
        (Effect::Status(sys::SCSISTAT_BUSY), sys::SRB_STATUS_ERROR, sys::SCSISTAT_BUSY),
        (Effect::Status(sys::SCSISTAT_RESERVATION_CONFLICT), sys::SRB_STATUS_ERROR, sys::SCSISTAT_RESERVATION_CONFLICT),
    ];
    for (effect, status, scsi_status) in cases {
        rig.device.inject(Injection::next(1, effect).on_target(0));
        let c = rig.machine.execute(Request::read10(0, 8, 1, SECTOR)).unwrap();
        assert_eq!((c.status(), c.scsi_status), (status, scsi_status), "{effect:?}: {c:?}");
        assert_eq!(c.srb_status & sys::SRB_STATUS_AUTOSENSE_VALID, 0, "no sense for {effect:?}");
    }
    // An abort the driver did not ask for (a hot-unplug purge on QEMU): BUSY, which the port
    // retries, so the class driver sees a success.
    rig.device.inject(Injection::next(1, Effect::Host(0x26)).on_target(0));
    let c = rig.machine.execute(Request::read10(0, 8, 1, SECTOR)).unwrap();
    assert!(c.is_success() && c.busy_retries == 1, "{c:?}");
    // CHECK CONDITION with the device's own sense, delivered byte for byte.
    rig.device.inject(Injection::next(1, Effect::Check(sense(sys::SCSI_SENSE_MEDIUM_ERROR, 0x11, 0x04))).on_target(1));
    let c = rig.machine.execute(Request::read10(1, 8, 1, SECTOR)).unwrap();
    assert_eq!(c.status(), sys::SRB_STATUS_ERROR);
    assert_eq!(sense_triple(&c), Some((sys::SCSI_SENSE_MEDIUM_ERROR, 0x11, 0x04)));
    rig.assert_clean();
}

#[test]
fn autosense_honours_the_request_sense_buffer_and_disable_autosense() {
    // A class driver with a 255-byte sense buffer gets what the device wrote (18 bytes fixed
    // format); autosense disabled gets none.
    let mut config = Config::new(schedules()[0]);
    config.targets = vec![0];
    let rig = Rig::new(&config);
    rig.settle();
    let lba = u32::try_from(rig.disk(0).blocks()).unwrap();
    let c = rig.machine.execute(Request::read10(0, lba, 1, SECTOR)).unwrap();
    assert_eq!(c.sense.len(), 18);
    let c = rig
        .machine
        .execute(Request::read10(0, lba, 1, SECTOR).with_flags(sys::SRB_FLAGS_DISABLE_AUTOSENSE))
        .unwrap();
    assert_eq!(c.status(), sys::SRB_STATUS_ERROR);
    assert_eq!(c.srb_status & sys::SRB_STATUS_AUTOSENSE_VALID, 0);
    assert!(c.sense.is_empty());
    rig.assert_clean();
}

#[test]
fn contradicting_direction_is_refused_before_the_device_sees_it() {
    // QEMU never completes a request whose direction flag contradicts its CDB
    // (pvscsi-facts.md Q4): the driver refuses it instead of hanging the LU.
    let rig = Rig::default_on(schedules()[0]);
    rig.settle();
    let read10 = [0x28, 0, 0, 0, 0, 8, 0, 0, 1, 0];
    let c = rig.machine.execute(Request::scsi(0, &read10, Direction::Out, vec![0; SECTOR])).unwrap();
    assert_eq!(c.status(), sys::SRB_STATUS_INVALID_REQUEST);
    let requests_before = rig.device.stats().requests;
    let c = rig.machine.execute(Request::read10(0, 8, 1, SECTOR)).unwrap();
    assert!(c.is_success());
    assert_eq!(rig.device.stats().requests, requests_before + 1, "only the valid request reached the device");
    rig.assert_clean();
}

#[test]
fn vmware_reports_short_answers_as_underruns() {
    // VMware fills in the bytes transferred: a request for 255 bytes of the supported-VPD-pages
    // page that gets a dozen is an underrun, SRB_STATUS_DATA_OVERRUN with the real length. QEMU
    // cannot say (dataLen 0, DATARUN): a success with the length left alone.
    let vpd_pages_255 = [0x12, 0x01, 0x00, 0, 255, 0];
    for (layout, status, length) in [
        (PvscsiLayout::Vmware, sys::SRB_STATUS_DATA_OVERRUN, None),
        (PvscsiLayout::Qemu, sys::SRB_STATUS_SUCCESS, Some(255)),
    ] {
        let mut config = Config::new(schedules()[0]);
        config.layout = layout;
        let rig = Rig::new(&config);
        let c = rig.machine.execute(Request::scsi(0, &vpd_pages_255, Direction::In, vec![0; 255])).unwrap();
        assert_eq!(c.status(), status, "{layout:?}: {c:?}");
        assert_eq!(c.data[1], 0x00, "page 0x00");
        let answered = 4 + u32::from(c.data[3]);
        assert_eq!(c.data_transfer_length, length.unwrap_or(answered), "{layout:?}: {c:?}");
        rig.assert_clean();
    }
}

#[test]
fn slow_completions_complete_out_of_order() {
    for schedule in schedules() {
        let rig = Rig::default_on(schedule);
        rig.settle();
        rig.device.inject(Injection::lbas(0..8, Effect::Latency(3_000_000)).on_target(0));
        let slow = rig.machine.submit(Request::read10(0, 0, 8, 8 * SECTOR)).unwrap();
        let fast: Vec<_> = (1..20u32).map(|i| rig.machine.submit(Request::read10(0, i * 8, 8, 8 * SECTOR)).unwrap()).collect();
        let mut fast_done = 0;
        for t in fast {
            let c = rig.machine.wait(t).unwrap();
            assert!(c.is_success());
            fast_done += 1;
        }
        let c = rig.machine.wait(slow).unwrap();
        assert!(c.is_success());
        assert!(c.latency_ns >= 3_000_000, "{}", c.latency_ns);
        assert_eq!(fast_done, 19);
        rig.assert_clean();
    }
}
