//! The srb target's oracle against the driver's two ways of sending a READ or WRITE whose
//! buffer is longer than its CDB's blocks (driver/device.rs `plan`): before the driver knows the
//! target's block size (it learns it from a READ CAPACITY answer, forgets it at a MODE SELECT)
//! the buffer goes whole, and QEMU's PVSCSI (and the device model) writes every whole block of
//! it, past the CDB's range; once it knows, only the CDB's blocks go. Both end
//! `SRB_STATUS_DATA_OVERRUN`, and the property must hold for both.
#![cfg(target_os = "linux")]

use fuzz_harness::rig::Setup;
use fuzz_harness::srb::{self, CdbForm, Common, Dir, Input, Op};
use scsiport_sys as sys;

fn write(form: CdbForm, lba: u32, blocks: u16, delta: u8) -> Op {
    Op::Rw { write: true, target: 0, address: 0, form, lba, blocks, delta, dir: Dir::Natural, common: Common::default() }
}

fn read(lba: u32, blocks: u16) -> Op {
    Op::Rw { write: false, target: 0, address: 0, form: CdbForm::Ten, lba, blocks, delta: 0, dir: Dir::Natural, common: Common::default() }
}

fn raw(cdb: &[u8], length: u32, dir: u8) -> Op {
    Op::Raw { function: 0, target: 0, lun: 0, path: 0, cdb: cdb.to_vec(), length, dir, common: Common::default() }
}

const READ_CAPACITY_10: [u8; 10] = [0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0];
const READ_CAPACITY_16: [u8; 16] = [0x9E, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 32, 0, 0];
const MODE_SELECT_6: [u8; 6] = [0x15, 0x10, 0, 0, 0, 0];

fn run(ops: Vec<Op>) -> srb::Report {
    let input = Input { setup: Setup::default(), ops };
    match srb::run(&input.encode()) {
        Ok(report) => report,
        Err(f) => panic!("{input:?}: {f}"),
    }
}

fn overruns(report: &srb::Report) -> u64 {
    report.statuses.get(&sys::SRB_STATUS_DATA_OVERRUN).copied().unwrap_or(0)
}

#[test]
fn a_write_sent_whole_before_the_block_size_is_known_may_write_past_its_cdb() {
    // One block with two blocks' buffer (delta 0xD8: the CDB's bytes + 512), in every form, in
    // the middle of the disk and at its end (where the device stops at the last sector); each
    // followed by a settle (the medium is compared with the oracle) and a READ of the sector
    // past the CDB.
    for form in [CdbForm::Six, CdbForm::Ten, CdbForm::Twelve, CdbForm::Sixteen] {
        for lba in [8u32, 511] {
            let report = run(vec![write(form, lba, 1, 0xD8), Op::Settle, read(lba + 1, 1), Op::Settle]);
            assert_eq!(overruns(&report), 1, "{form:?} at {lba}: {report:?}");
        }
    }
    // In flight with a READ of the sector past it, and with an overlapping WRITE that succeeds.
    let report = run(vec![write(CdbForm::Ten, 20, 1, 0xD8), read(21, 1), write(CdbForm::Ten, 21, 1, 0), Op::Settle, read(21, 1)]);
    assert_eq!(overruns(&report), 1, "{report:?}");
}

#[test]
fn after_read_capacity_only_the_cdbs_blocks_are_written() {
    for (cdb, length) in [(&READ_CAPACITY_10[..], 8), (&READ_CAPACITY_16[..], 32)] {
        let report = run(vec![raw(cdb, length, 1), Op::Wait { index: 0 }, write(CdbForm::Ten, 8, 1, 0xD8), Op::Settle, read(9, 1)]);
        assert_eq!(overruns(&report), 1, "{cdb:02x?}: {report:?}");
        assert_eq!(report.block_size_known, vec![0], "{cdb:02x?}: the oracle holds the driver to the block size it learned");
    }
    // A READ CAPACITY(16) whose buffer cannot hold the block length teaches nothing.
    let report = run(vec![raw(&READ_CAPACITY_16, 11, 1), Op::Wait { index: 0 }, write(CdbForm::Ten, 8, 1, 0xD8), Op::Settle]);
    assert!(report.block_size_known.is_empty(), "{report:?}");
}

#[test]
fn mode_select_makes_the_block_size_unknown_again() {
    let report = run(vec![
        raw(&READ_CAPACITY_10, 8, 1),
        Op::Wait { index: 0 },
        raw(&MODE_SELECT_6, 0, 0),
        Op::Wait { index: 1 },
        write(CdbForm::Ten, 8, 1, 0xD8),
        Op::Settle,
        read(9, 1),
    ]);
    assert_eq!(overruns(&report), 1, "{report:?}");
    assert!(report.block_size_known.is_empty(), "{report:?}");
}
