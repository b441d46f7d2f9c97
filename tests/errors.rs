//! Errors reach the class driver as SCSI Port defines them: sense data by autosense, the
//! device's statuses mapped to SRB statuses, missing targets as selection timeouts, and
//! requests the device would choke on refused before they reach it.
#![cfg(target_os = "linux")]

mod common;

use common::{Config, Rig, SECTOR, is_unit_attention, schedules, sense, sense_triple, sys};
use scsiport_sim::pvscsi::{Effect, Injection, PvscsiLayout};
use scsiport_sim::{Direction, Request, Schedule};

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
        let fast_latencies: Vec<u64> = fast
            .into_iter()
            .map(|t| {
                let c = rig.machine.wait(t).unwrap();
                assert!(c.is_success());
                c.latency_ns
            })
            .collect();
        let c = rig.machine.wait(slow).unwrap();
        assert!(c.is_success());
        assert!(c.latency_ns >= 3_000_000, "{}", c.latency_ns);
        // Submitted together, after the slow one, they finished before it, in less time: every
        // one in the deterministic schedule's virtual time; in the concurrent one, whose clock is
        // the wall's, at least one however loaded the machine.
        let before_slow = fast_latencies.iter().filter(|&&l| l < c.latency_ns).count();
        let need = if matches!(schedule, Schedule::Deterministic { .. }) { fast_latencies.len() } else { 1 };
        assert!(before_slow >= need, "{schedule:?}: {before_slow} of 19 fast reads took less than the slow one's {} ns: {fast_latencies:?}", c.latency_ns);
        rig.assert_clean();
    }
}

/// WRITE(10) or READ(10) with a CDB for `blocks` blocks and a buffer of `bytes`.
fn rw10(write: bool, target: u8, lba: u32, blocks: u16, bytes: usize, fill: u8) -> Request {
    let cdb = scsiport_sim::disk::cdb::build::rw10(write, lba, blocks);
    if write {
        Request::scsi(target, &cdb, Direction::Out, vec![fill; bytes])
    } else {
        Request::scsi(target, &cdb, Direction::In, vec![0; bytes])
    }
}

#[test]
fn transfers_that_do_not_fit_their_buffer_are_refused_or_reported_short() {
    // The device moves what the buffer holds, not what the CDB says (QEMU transfers the whole
    // buffer and reports any difference only as DATARUN, pvscsi-facts.md §6.3): the driver must
    // hold each request to its CDB. Refusals are SRB_STATUS_INVALID_REQUEST; a buffer longer than
    // the transfer gets only the transfer, reported as an underrun (SRB_STATUS_DATA_OVERRUN with
    // the bytes moved, `KG:error-handling-in-scsi-miniport-drivers`).
    for schedule in schedules() {
        let rig = Rig::default_on(schedule);
        rig.settle();
        // The block size, as a class driver learns it first.
        let c = rig.execute(&Request::read_capacity10(0));
        assert!(c.is_success(), "{c:?}");
        let before = rig.disk(0).read_sectors(100, 16).unwrap();
        let requests_before = rig.device.stats().requests;
        let refused = [
            ("WRITE(10) of 8 blocks from 512 bytes", rw10(true, 0, 100, 8, SECTOR, 0x11)),
            ("WRITE(10) of 8 blocks with no buffer", Request::scsi(0, &scsiport_sim::disk::cdb::build::rw10(true, 100, 8), Direction::None, vec![])),
            ("WRITE(10) of 8 blocks, data-out, no bytes", rw10(true, 0, 100, 8, 0, 0x11)),
            ("READ(10) of 2 blocks into 1 block", rw10(false, 0, 100, 2, SECTOR, 0)),
            ("READ(10) of 257 blocks (128.5 KiB)", rw10(false, 0, 0, 257, 257 * SECTOR, 0)),
            ("READ(10) of 513 blocks (256.5 KiB)", rw10(false, 0, 0, 513, 513 * SECTOR, 0)),
            ("WRITE(10) of 257 blocks (128.5 KiB)", rw10(true, 0, 100, 257, 257 * SECTOR, 0x11)),
            ("MODE SELECT(6) of 24 bytes from 12", Request::scsi(0, &[0x15, 0x10, 0, 0, 24, 0], Direction::Out, vec![0; 12])),
        ];
        for (what, req) in refused {
            let c = rig.execute(&req);
            assert_eq!(c.status(), sys::SRB_STATUS_INVALID_REQUEST, "{schedule:?} {what}: {c:?}");
        }
        assert_eq!(rig.device.stats().requests, requests_before, "{schedule:?}: none of them reached the device");
        assert_eq!(rig.disk(0).read_sectors(100, 16).unwrap(), before, "{schedule:?}: nothing written");
        // MaximumTransferLength itself is fine.
        let c = rig.execute(&rw10(false, 0, 0, 256, 256 * SECTOR, 0));
        assert!(c.is_success(), "{schedule:?}: 128 KiB: {c:?}");
        // A WRITE(10) of 1 block from 2 blocks of buffer writes 1 block and says so.
        let c = rig.execute(&rw10(true, 0, 100, 1, 2 * SECTOR, 0x22));
        assert_eq!((c.status(), c.data_transfer_length), (sys::SRB_STATUS_DATA_OVERRUN, 512), "{schedule:?}: {c:?}");
        assert_eq!(rig.disk(0).read_sectors(100, 1).unwrap(), vec![0x22; SECTOR]);
        assert_eq!(rig.disk(0).read_sectors(101, 15).unwrap(), before[SECTOR..], "{schedule:?}: the block after it untouched");
        // So does a READ, and an allocation length under the buffer.
        let c = rig.execute(&rw10(false, 0, 100, 1, 4 * SECTOR, 0));
        assert_eq!((c.status(), c.data_transfer_length), (sys::SRB_STATUS_DATA_OVERRUN, 512), "{schedule:?}: {c:?}");
        assert_eq!(c.data[..SECTOR], vec![0x22; SECTOR][..]);
        let c = rig.execute(&Request::scsi(0, &[0x12, 0, 0, 0, 36, 0], Direction::In, vec![0; 64]));
        assert_eq!((c.status(), c.data_transfer_length), (sys::SRB_STATUS_DATA_OVERRUN, 36), "{schedule:?}: {c:?}");
        rig.assert_clean();
    }
}

/// A 16-byte CDB: opcode, byte 1, then `len` in bytes 10-13.
fn cdb16(op: u8, b1: u8, len: u32) -> [u8; 16] {
    let mut c = [0u8; 16];
    c[0] = op;
    c[1] = b1;
    c[10..14].copy_from_slice(&len.to_be_bytes());
    c
}

#[test]
fn commands_qemu_mishandles_complete_and_leave_it_working() {
    // Each of these, sent as a class driver or a pass-through may send it, would leave QEMU's
    // pvscsi holding a request it never completes (a direction QEMU derives otherwise: its next
    // ADAPTER_RESET then aborts QEMU; a block transfer without a buffer: its DMA waits forever),
    // or would make it report success for work not done (WRITE SAME without a data-out buffer).
    // The driver refuses them with SRB_STATUS_INVALID_REQUEST before the device sees them; the
    // device model reproduces QEMU's handling, so assert_clean would see any that got through.
    // Commands QEMU refuses outright still go to it and end in CHECK CONDITION.
    let block = |n: usize| vec![0x5A; n * SECTOR];
    let refused: Vec<(&str, Request)> = vec![
        ("WRITE ATOMIC(16), data-out", Request::scsi(0, &cdb16(0x9C, 0, 1), Direction::Out, block(1))),
        ("COMPARE AND WRITE of 1 block, data-out", Request::scsi(0, &cdb16(0x89, 0, 1), Direction::Out, block(2))),
        ("SANITIZE (overwrite), data-out", Request::scsi(0, &[0x48, 0x01, 0, 0, 0, 0, 0, 0, 8, 0], Direction::Out, vec![0; 8])),
        ("SECURITY PROTOCOL OUT, data-out", Request::scsi(0, &[0xB5, 0xEF, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0], Direction::Out, vec![0; 512])),
        ("POPULATE TOKEN, data-out", Request::scsi(0, &cdb16(0x83, 0x10, 32), Direction::Out, vec![0; 32])),
        ("WRITE ATTRIBUTE, data-out", Request::scsi(0, &cdb16(0x8D, 0, 16), Direction::Out, vec![0; 16])),
        ("RESERVE(10) with a third-party parameter list, data-out", Request::scsi(0, &[0x56, 0x10, 0, 0, 0, 0, 0, 0, 8, 0], Direction::Out, vec![0; 8])),
        ("opcode 0x24 (a scanner's SET WINDOW to QEMU), data-in", Request::scsi(0, &[0x24, 0, 0, 0, 0, 0, 0, 0, 8, 0], Direction::In, vec![0; 8])),
        ("ATA PASS-THROUGH(16) reading a sector, sent data-out", Request::scsi(0, &[0x85, 0, 0x0E, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0xEC, 0], Direction::Out, block(1))),
        ("WRITE(10) of 8 blocks with no buffer", Request::scsi(0, &scsiport_sim::disk::cdb::build::rw10(true, 64, 8), Direction::None, vec![])),
        ("READ(10) of 8 blocks with no buffer", Request::scsi(0, &scsiport_sim::disk::cdb::build::rw10(false, 64, 8), Direction::In, vec![])),
        ("WRITE SAME(16) with NDOB", Request::scsi(0, &{
            let mut c = cdb16(0x93, 0x01, 1);
            c[9] = 64;
            c
        }, Direction::None, vec![])),
    ];
    for schedule in schedules() {
        let mut config = Config::new(schedule);
        config.reset_hold = Some(std::time::Duration::from_millis(100));
        let rig = Rig::new(&config);
        rig.settle();
        let c = rig.execute(&Request::read_capacity10(0));
        assert!(c.is_success(), "{c:?}");
        assert!(rig.write(0, 64, vec![0xA5; 8 * SECTOR]).is_success());
        let requests = rig.device.stats().requests;
        for (what, req) in &refused {
            let c = rig.machine.execute(req.clone().with_timeout(1)).unwrap();
            assert_eq!(c.status(), sys::SRB_STATUS_INVALID_REQUEST, "{schedule:?} {what}: {c:?}");
        }
        assert_eq!(rig.device.stats().requests, requests, "{schedule:?}: none reached the device");
        assert_eq!(rig.disk(0).read_sectors(64, 8).unwrap(), vec![0xA5; 8 * SECTOR], "{schedule:?}: nothing written");
        // What QEMU refuses itself (a group it does not know, a CDB shorter than its group) goes
        // to it, with no data phase, and ends in INVALID COMMAND OPERATION CODE.
        for (what, cdb, dir, len) in [
            ("vendor opcode 0xC7, data-out", &[0xC7u8, 0, 0, 0, 0, 0][..], Direction::Out, 512),
            ("READ(10) in a 6-byte CDB, data-in", &[0x28, 0, 0, 0, 0, 0][..], Direction::In, 512),
        ] {
            let c = rig.execute(&Request::scsi(0, cdb, dir, vec![0; len]).with_timeout(1));
            assert_eq!(sense_triple(&c), Some((sys::SCSI_SENSE_ILLEGAL_REQUEST, sys::SCSI_ADSENSE_ILLEGAL_COMMAND, 0)), "{schedule:?} {what}: {c:?}");
        }
        // The adapter reset QEMU would not have survived after the first kind.
        rig.machine.reset_bus(0, 0).unwrap();
        rig.settle();
        assert!(rig.read(0, 64, 8).is_success());
        rig.assert_clean();
    }
}

#[test]
fn the_driver_and_the_device_model_derive_every_transfer_alike() {
    // Two readings of QEMU's `scsi_req_xfer` / `scsi_cmd_xfer_mode`: the driver's, which decides
    // what it refuses, and the model's, which decides what it would never complete. They must
    // agree on every opcode, or a regression in one would hide behind the other.
    use rspvscsi::cdb::{self, Length};
    use scsiport_sim::disk::{XferDir, cdb::parse};
    let mut compared = 0;
    for opcode in 0..=255u8 {
        for b1 in [0x00, 0x01, 0x02, 0x06, 0x09, 0x10, 0x30] {
            for (b2, fill) in [(0x00, 0x00), (0x0E, 0x03), (0x06, 0x41), (0x16, 0xFF)] {
                let mut cdb = [fill; 16];
                cdb[0] = opcode;
                cdb[1] = b1;
                cdb[2] = b2;
                let len = cdb::group_length(opcode).unwrap_or(16);
                let cdb = &cdb[..len];
                let driver = cdb::transfer(cdb);
                let bytes = match driver.len {
                    Length::Bytes(n) => n,
                    Length::Blocks(n) => n * 512,
                };
                let dir = match driver.dir {
                    cdb::Direction::None => XferDir::None,
                    cdb::Direction::In => XferDir::FromDevice,
                    cdb::Direction::Out => XferDir::ToDevice,
                };
                let model = parse(cdb, 512).map_or((0, XferDir::None), |p| (p.xfer.len, p.xfer.dir));
                assert_eq!((bytes, dir), model, "CDB {cdb:02x?}");
                compared += 1;
            }
        }
    }
    assert_eq!(compared, 256 * 7 * 4);
}


/// Before the driver knows a disk's block size (READ CAPACITY teaches it), it cannot hold a READ
/// or WRITE's buffer to its CDB, and sends the buffer whole. QEMU then moves the whole buffer
/// and reports the residual as DATARUN (pvscsi-facts.md §6.3), the VMware model likewise with
/// the bytes it moved: the buffer and the CDB disagreed, which must not come back as a success
/// (the srb fuzz target: a READ(6) of one block into 1,024 bytes completed SUCCESS with 1,024).
#[test]
fn a_read_whose_buffer_disagrees_with_its_cdb_before_the_block_size_is_known_is_no_success() {
    for layout in [PvscsiLayout::Qemu, PvscsiLayout::Vmware] {
        for schedule in schedules() {
            let mut config = Config::new(schedule);
            config.layout = layout;
            let rig = Rig::new(&config);
            let medium = rig.disk(0).read_sectors(0, 2).unwrap();
            // READ(6) of one block into two blocks' worth, READ(10) of one into three. (A buffer
            // shorter than the CDB's blocks at 512 bytes each is refused outright, known or not.)
            for (cdb, len) in [(vec![0x08u8, 0, 0, 0, 1, 0], 1024), (scsiport_sim::disk::cdb::build::rw10(false, 0, 1).to_vec(), 1536)] {
                let c = rig.execute(&Request::scsi(0, &cdb, Direction::In, vec![0; len]));
                assert_eq!(c.status(), sys::SRB_STATUS_DATA_OVERRUN, "{layout:?} {schedule:?} {cdb:02x?} into {len}: length {}", c.data_transfer_length);
                let n = usize::try_from(c.data_transfer_length).unwrap().min(len);
                assert_eq!(c.data[..n.min(512)], medium[..n.min(512)], "{layout:?} {schedule:?} {cdb:02x?}: the data");
            }
            rig.assert_clean();
        }
    }
}
