//! Virtual disk: every opcode, sense data, residuals, unit attention, LUNs other than 0.

#![allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, clippy::many_single_char_names)] // test values are small and known

use scsiport_sim::disk::cdb::{build, op};
use scsiport_sim::disk::{
    DataBuffer, DataFault, Disk, DiskConfig, STATUS_CHECK_CONDITION, STATUS_GOOD, ScsiResponse, ScsiTarget, Sense,
    Transfer, VecBuffer, XferDir,
};

fn disk() -> Disk {
    let d = Disk::ram(1 << 20).unwrap(); // 2048 blocks
    d.set_unit_attention(None);
    d
}

fn run(d: &Disk, cdb: &[u8], len: usize) -> (ScsiResponse, Vec<u8>) {
    let mut b = VecBuffer::zeroed(len);
    let r = d.execute(0, cdb, &mut b);
    (r, b.0)
}

fn check(r: &ScsiResponse) -> Sense {
    assert_eq!(r.status, STATUS_CHECK_CONDITION, "{r:?}");
    assert_eq!(r.sense.len(), 18);
    r.sense_code().unwrap()
}

fn good(r: &ScsiResponse) {
    assert_eq!(r.status, STATUS_GOOD, "{r:?}");
    assert!(r.sense.is_empty());
}

#[test]
fn test_unit_ready_and_power_on_unit_attention() {
    let d = Disk::ram(1 << 20).unwrap();
    assert_eq!(d.unit_attention(), Some(Sense::POWER_ON_RESET));
    let (r, _) = run(&d, &build::test_unit_ready(), 0);
    assert_eq!(check(&r), Sense::POWER_ON_RESET);
    assert_eq!(r.residual, 0);
    let (r, _) = run(&d, &build::test_unit_ready(), 0);
    good(&r);
    assert_eq!(d.unit_attention(), None);
    d.reset();
    // The UA on a data command: residual = CDB length (→ DATARUN on PVSCSI).
    let (r, _) = run(&d, &build::rw10(false, 0, 2), 1024);
    assert_eq!(check(&r), Sense::POWER_ON_RESET);
    assert_eq!((r.transferred, r.residual), (0, 1024));
    assert_eq!(d.stats().unit_attentions, 2);
}

#[test]
fn a_unit_attention_set_or_cleared_between_commands_is_what_the_next_one_sees() {
    // A command learns that none is pending without the disk's lock (`ua_pending`): each way of
    // setting or clearing one must reach the next command.
    let d = disk();
    let read = || run(&d, &build::rw10(false, 0, 1), 512).0;
    good(&read());
    d.set_unit_attention(Some(Sense::REPORTED_LUNS_CHANGED));
    assert_eq!(check(&read()), Sense::REPORTED_LUNS_CHANGED);
    good(&read());
    d.reset();
    assert_eq!(check(&read()), Sense::POWER_ON_RESET);
    d.set_unit_attention(Some(Sense::POWER_ON_RESET));
    d.set_unit_attention(None);
    good(&read());
    let s = d.stats();
    assert_eq!((s.commands, s.check_conditions, s.reads, s.blocks_read, s.unit_attentions), (5, 2, 3, 3, 2));
}

#[test]
fn unit_attention_exemptions() {
    let d = Disk::ram(1 << 20).unwrap();
    let (r, _) = run(&d, &build::inquiry(false, 0, 36), 36);
    good(&r);
    let (r, _) = run(&d, &build::report_luns(16), 16);
    good(&r);
    assert!(d.unit_attention().is_some(), "INQUIRY and REPORT LUNS leave it pending");
    // An unusable CDB is refused before the unit attention is looked at, and its completion
    // clears the attention (QEMU 7.2 `scsi_clear_unit_attention`; disk_qemu_probe.rs).
    let (r, _) = run(&d, &[0x60, 0, 0, 0, 0, 0, 0, 0, 0, 0], 0);
    assert_eq!(check(&r), Sense::INVALID_OPCODE);
    assert!(d.unit_attention().is_none());
    d.reset();
    // REQUEST SENSE is not exempt with autosense (QEMU's default).
    let (r, _) = run(&d, &build::request_sense(18), 18);
    assert_eq!(check(&r), Sense::POWER_ON_RESET);
    assert!(d.unit_attention().is_none());
}

#[test]
fn request_sense_returns_pending_sense() {
    let d = disk();
    let (r, b) = run(&d, &build::request_sense(252), 252);
    good(&r);
    assert_eq!((r.transferred, r.residual), (18, 252 - 18));
    assert_eq!(Sense::parse(&b), Some(Sense::NO_SENSE));
    assert_eq!(b[0], 0x70);
    // After a failed command, REQUEST SENSE returns its sense, once.
    let (r, _) = run(&d, &[0x02, 0, 0, 0, 0, 0], 0);
    assert_eq!(check(&r), Sense::INVALID_OPCODE);
    let (_, b) = run(&d, &build::request_sense(18), 18);
    assert_eq!(Sense::parse(&b), Some(Sense::INVALID_OPCODE));
    let (_, b) = run(&d, &build::request_sense(18), 18);
    assert_eq!(Sense::parse(&b), Some(Sense::NO_SENSE));
    // With the SPC (non-autosense) option, a pending unit attention comes back as data.
    let d = Disk::ram_with(1 << 20, &DiskConfig { request_sense_reports_ua: true, ..DiskConfig::default() }).unwrap();
    let (r, b) = run(&d, &build::request_sense(18), 18);
    good(&r);
    assert_eq!(Sense::parse(&b), Some(Sense::POWER_ON_RESET));
    assert!(d.unit_attention().is_none());
    // Truncation to the allocation length.
    let (r, b) = run(&disk(), &build::request_sense(8), 8);
    assert_eq!((r.transferred, b.len()), (8, 8));
}

#[test]
fn standard_inquiry() {
    let d = Disk::ram_with(1 << 20, &DiskConfig { vendor: "RSPV".into(), product: "TESTDISK".into(), revision: "1.0".into(), ..DiskConfig::default() }).unwrap();
    let (r, b) = run(&d, &build::inquiry(false, 0, 96), 96);
    good(&r);
    assert_eq!((r.transferred, r.residual), (96, 0), "QEMU answers as much as allocated (up to 256)");
    assert_eq!(b[4], 91, "additional length of 96 bytes");
    let (r, b) = run(&d, &build::inquiry(false, 0, 36), 36);
    good(&r);
    assert_eq!(b[0], 0x00, "qualifier 0, direct access");
    assert_eq!(b[2], 5);
    assert_eq!(b[3] & 0x0F, 2);
    assert_eq!(b[4], 31, "additional length");
    assert_eq!(b[7] & 0x02, 0x02, "CmdQue");
    assert_eq!(&b[8..16], b"RSPV    ");
    assert_eq!(&b[16..32], b"TESTDISK        ");
    assert_eq!(&b[32..36], b"1.0 ");
    // Allocation length 5: five bytes, no residual against a 5-byte buffer.
    let (r, b) = run(&d, &build::inquiry(false, 0, 5), 5);
    good(&r);
    assert_eq!((r.transferred, r.residual, b[4]), (5, 0, 31));
    // Buffer smaller than the answer: silently truncated.
    let (r, _) = run(&d, &build::inquiry(false, 0, 36), 10);
    assert_eq!((r.transferred, r.residual), (10, 0));
    // A page code without EVPD is an invalid field; CmdDt is ignored (QEMU looks at EVPD only).
    let (r, _) = run(&d, &build::inquiry(false, 0x80, 36), 36);
    assert_eq!(check(&r), Sense::INVALID_FIELD);
    assert_eq!(r.residual, 36);
    let mut c = build::inquiry(false, 0, 36);
    c[1] = 0x02;
    good(&run(&d, &c, 36).0);
}

#[test]
fn vpd_pages() {
    let d = Disk::ram_with(1 << 20, &DiskConfig { serial: Some("SN-0042".into()), ..DiskConfig::default() }).unwrap();
    d.set_unit_attention(None);
    let (r, b) = run(&d, &build::inquiry(true, 0x00, 255), 255);
    good(&r);
    assert_eq!(&b[..4], &[0, 0x00, 0, 6]);
    assert_eq!(&b[4..10], &[0x00, 0x80, 0x83, 0xB0, 0xB1, 0xB2]);
    let (_, b) = run(&d, &build::inquiry(true, 0x80, 255), 255);
    assert_eq!(&b[..4], &[0, 0x80, 0, 7]);
    assert_eq!(&b[4..11], b"SN-0042");
    assert_eq!(d.serial(), Some("SN-0042"));
    // Device identification: one vendor-specific ASCII designator holding the serial.
    let (r, b) = run(&d, &build::inquiry(true, 0x83, 255), 255);
    good(&r);
    assert_eq!(&b[..4], &[0, 0x83, 0, 4 + 7]);
    assert_eq!(&b[4..8], &[0x02, 0x00, 0x00, 7]);
    assert_eq!(&b[8..15], b"SN-0042");
    let (_, b) = run(&d, &build::inquiry(true, 0xB0, 255), 255);
    assert_eq!(&b[..4], &[0, 0xB0, 0, 0x3C]);
    let (_, b) = run(&d, &build::inquiry(true, 0xB1, 255), 255);
    assert_eq!(u16::from_be_bytes([b[4], b[5]]), 0, "rotation rate not reported (scsi-hd's default)");
    assert_eq!(check(&run(&d, &build::inquiry(true, 0x99, 255), 255).0), Sense::INVALID_FIELD);
    // A world wide name adds an NAA designator.
    let w = Disk::ram_with(1 << 20, &DiskConfig { wwn: Some(0x5000_C500_1234_5678), drive_name: Some("d9".into()), ..DiskConfig::default() }).unwrap();
    w.set_unit_attention(None);
    let (_, b) = run(&w, &build::inquiry(true, 0x83, 255), 255);
    assert_eq!(&b[..4], &[0, 0x83, 0, 6 + 12]);
    assert_eq!(&b[4..10], &[0x02, 0x00, 0x00, 2, b'd', b'9']);
    assert_eq!(&b[10..14], &[0x01, 0x03, 0x00, 0x08]);
    assert_eq!(u64::from_be_bytes(b[14..22].try_into().unwrap()), 0x5000_C500_1234_5678);
    assert_eq!(w.wwn(), Some(0x5000_C500_1234_5678));
}

#[test]
fn read_capacity_10_and_16() {
    let d = disk();
    let (r, b) = run(&d, &build::read_capacity10(), 8);
    good(&r);
    assert_eq!(u32::from_be_bytes(b[0..4].try_into().unwrap()), 2047);
    assert_eq!(u32::from_be_bytes(b[4..8].try_into().unwrap()), 512);
    // PMI = 0 with a non-zero LBA is an invalid field.
    let mut c = build::read_capacity10();
    c[5] = 1;
    assert_eq!(check(&run(&d, &c, 8).0), Sense::INVALID_FIELD);
    c[8] = 1;
    good(&run(&d, &c, 8).0);
    let (r, b) = run(&d, &build::read_capacity16(32), 32);
    good(&r);
    assert_eq!(u64::from_be_bytes(b[0..8].try_into().unwrap()), 2047);
    assert_eq!(u32::from_be_bytes(b[8..12].try_into().unwrap()), 512);
    assert_eq!(b[14], 0x80, "LBPME: UNMAP and WRITE SAME are there");
    assert!(b[12..14].iter().chain(&b[15..]).all(|&x| x == 0));
    let (r, b) = run(&d, &build::read_capacity16(12), 64);
    assert_eq!((r.transferred, r.residual), (12, 52));
    assert_eq!(u32::from_be_bytes(b[8..12].try_into().unwrap()), 512);
    let mut c = build::read_capacity16(32);
    c[1] = 0x11;
    assert_eq!(check(&run(&d, &c, 32).0), Sense::INVALID_FIELD, "another service action");
    // 4096-byte blocks.
    let d4 = Disk::ram_with(1 << 20, &DiskConfig { block_size: 4096, ..DiskConfig::default() }).unwrap();
    d4.set_unit_attention(None);
    let (_, b) = run(&d4, &build::read_capacity10(), 8);
    assert_eq!(u32::from_be_bytes(b[0..4].try_into().unwrap()), 255);
    assert_eq!(u32::from_be_bytes(b[4..8].try_into().unwrap()), 4096);
}

fn pattern(n: usize, seed: u8) -> Vec<u8> {
    (0..n).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect()
}

#[test]
fn read_write_6_10_12_16() {
    let d = disk();
    let w6 = [op::WRITE_6, 0, 0, 10, 2, 0];
    let mut w12 = [0u8; 12];
    w12[0] = op::WRITE_12;
    w12[2..6].copy_from_slice(&30u32.to_be_bytes());
    w12[6..10].copy_from_slice(&2u32.to_be_bytes());
    let cases: Vec<(Vec<u8>, Vec<u8>, u64)> = vec![
        (w6.to_vec(), [op::READ_6, 0, 0, 10, 2, 0].to_vec(), 10),
        (build::rw10(true, 20, 2).to_vec(), build::rw10(false, 20, 2).to_vec(), 20),
        (w12.to_vec(), { let mut r = w12; r[0] = op::READ_12; r.to_vec() }, 30),
        (build::rw16(true, 40, 2).to_vec(), build::rw16(false, 40, 2).to_vec(), 40),
    ];
    for (i, (w, r, lba)) in cases.iter().enumerate() {
        let data = pattern(1024, i as u8);
        let mut b = VecBuffer(data.clone());
        let resp = d.execute(0, w, &mut b);
        good(&resp);
        assert_eq!((resp.transferred, resp.residual), (1024, 0));
        assert_eq!(d.read_sectors(*lba, 2).unwrap(), data);
        let (resp, back) = run(&d, r, 1024);
        good(&resp);
        assert_eq!(back, data, "case {i}");
    }
    let s = d.stats();
    assert_eq!((s.reads, s.writes, s.blocks_read, s.blocks_written), (4, 4, 8, 8));
    // READ(6) with length 0 moves 256 blocks.
    let (r, _) = run(&d, &[op::READ_6, 0, 0, 0, 0, 0], 256 * 512);
    good(&r);
    assert_eq!(r.transferred, 256 * 512);
    // A zero-length READ(10) is GOOD with nothing moved.
    let (r, _) = run(&d, &build::rw10(false, 0, 0), 512);
    good(&r);
    assert_eq!((r.transferred, r.residual), (0, 0));
}

#[test]
fn lba_out_of_range_and_protect_fields() {
    let d = disk();
    let (r, _) = run(&d, &build::rw10(false, 2047, 2), 1024);
    assert_eq!(check(&r), Sense::LBA_OUT_OF_RANGE);
    assert_eq!((r.transferred, r.residual), (0, 1024));
    // No blocks at one past the end is in range (QEMU `check_lba_range`); two past is not.
    good(&run(&d, &build::rw10(false, 2048, 0), 0).0);
    assert_eq!(check(&run(&d, &build::rw10(false, 2049, 0), 0).0), Sense::LBA_OUT_OF_RANGE);
    assert_eq!(check(&run(&d, &build::rw16(false, u64::MAX, 1), 512).0), Sense::LBA_OUT_OF_RANGE);
    good(&run(&d, &build::rw10(false, 2047, 1), 512).0);
    let mut c = build::rw10(false, 0, 1);
    c[1] = 0x20; // RDPROTECT
    assert_eq!(check(&run(&d, &c, 512).0), Sense::INVALID_FIELD);
}

/// QEMU's block residual rules: the whole buffer moves in whole blocks; residual = CDB − buffer.
#[test]
fn block_transfer_residuals() {
    let d = disk();
    d.write_sectors(0, &pattern(8 * 512, 3)).unwrap();
    let (r, b) = run(&d, &build::rw10(false, 0, 4), 1024);
    good(&r);
    assert_eq!((r.transferred, r.residual), (1024, 1024));
    assert_eq!(b, pattern(8 * 512, 3)[..1024]);
    let (r, b) = run(&d, &build::rw10(false, 0, 1), 2048);
    good(&r);
    assert_eq!((r.transferred, r.residual), (2048, -1536), "reads past the CDB");
    assert_eq!(b, pattern(8 * 512, 3)[..2048]);
    let (r, _) = run(&d, &build::rw10(false, 0, 2), 1000);
    assert_eq!((r.transferred, r.residual), (512, 24), "a partial block is not moved");
    // Near the end of the medium the extra blocks stop at the end.
    let (r, _) = run(&d, &build::rw10(false, 2047, 1), 4096);
    assert_eq!(r.transferred, 512);
}

#[test]
fn write_protect() {
    let d = Disk::ram_with(1 << 20, &DiskConfig { write_protect: true, ..DiskConfig::default() }).unwrap();
    d.set_unit_attention(None);
    let mut b = VecBuffer(vec![1; 512]);
    let r = d.execute(0, &build::rw10(true, 0, 1), &mut b);
    assert_eq!(check(&r), Sense::WRITE_PROTECTED);
    assert_eq!(d.read_sectors(0, 1).unwrap(), vec![0; 512]);
    let (_, m) = run(&d, &build::mode_sense6(true, 0, 0x08, 255), 255);
    assert_eq!(m[2] & 0x80, 0x80, "WP in the device-specific parameter");
    d.set_write_protect(false);
    good(&d.execute(0, &build::rw10(true, 0, 1), &mut b));
    assert!(!d.write_protected());
}

/// scsi-hd's VERIFY: without BYTCHK it succeeds without reading (or range-checking) anything;
/// with BYTCHK it is an invalid field (QEMU 7.2 `scsi_disk_emulate_command`).
#[test]
fn verify() {
    let d = disk();
    let mut c = [0u8; 10];
    c[0] = op::VERIFY_10;
    c[2..6].copy_from_slice(&4u32.to_be_bytes());
    c[7..9].copy_from_slice(&2u16.to_be_bytes());
    let (r, _) = run(&d, &c, 0);
    good(&r);
    assert_eq!(r.residual, 0);
    c[1] = 0x02; // BYTCHK 1: compare
    let mut b = VecBuffer(vec![9; 1024]);
    let r = d.execute(0, &c, &mut b);
    assert_eq!(check(&r), Sense::INVALID_FIELD);
    assert_eq!((r.transferred, r.residual), (0, 1024), "refused before the data phase");
    c[1] = 0x04; // BYTCHK 2
    assert_eq!(check(&run(&d, &c, 0).0), Sense::INVALID_FIELD);
    let mut c16 = [0u8; 16];
    c16[0] = op::VERIFY_16;
    c16[2..10].copy_from_slice(&5000u64.to_be_bytes());
    c16[10..14].copy_from_slice(&1u32.to_be_bytes());
    good(&run(&d, &c16, 0).0);
    assert_eq!(d.transfer(0, &c16), Transfer::NONE);
}

fn mode_pages(b: &[u8], header: usize, bd: usize, total: usize) -> Vec<u8> {
    let mut codes = Vec::new();
    let mut i = header + bd;
    while i + 1 < total {
        codes.push(b[i] & 0x3F);
        i += 2 + usize::from(b[i + 1]);
    }
    codes
}

#[test]
fn mode_sense_6() {
    let d = disk();
    let (r, b) = run(&d, &build::mode_sense6(false, 0, 0x08, 255), 255);
    good(&r);
    let total = usize::from(b[0]) + 1;
    assert_eq!(total, 4 + 8 + 20);
    assert_eq!(r.transferred as usize, total);
    assert_eq!(b[3], 8, "block descriptor length");
    assert_eq!(u32::from_be_bytes([0, b[5], b[6], b[7]]), 2048, "blocks");
    assert_eq!(u32::from_be_bytes([0, b[9], b[10], b[11]]), 512, "block length");
    assert_eq!(&b[12..14], &[0x08, 0x12]);
    assert_eq!(b[14] & 0x04, 0x04, "WCE");
    // DBD: no block descriptor.
    let (_, b) = run(&d, &build::mode_sense6(true, 0, 0x08, 255), 255);
    assert_eq!((b[0], b[3], b[4]), (23, 0, 0x08));
    // All pages.
    let (r, b) = run(&d, &build::mode_sense6(true, 0, 0x3F, 255), 255);
    good(&r);
    let total = usize::from(b[0]) + 1;
    assert_eq!(mode_pages(&b, 4, 0, total), vec![0x01, 0x04, 0x05, 0x08]);
    // Allocation length truncation keeps the full mode data length.
    let (r, b) = run(&d, &build::mode_sense6(true, 0, 0x3F, 4), 4);
    assert_eq!((r.transferred, usize::from(b[0]) + 1), (4, total));
    // Changeable values: only WCE.
    let (_, b) = run(&d, &build::mode_sense6(true, 1, 0x08, 255), 255);
    assert_eq!(b[6], 0x04);
    assert!(b[7..24].iter().all(|&x| x == 0));
    // Saved values are not supported; unknown pages are invalid.
    assert_eq!(check(&run(&d, &build::mode_sense6(true, 3, 0x08, 255), 255).0), Sense::SAVING_PARAMS_NOT_SUPPORTED);
    assert_eq!(check(&run(&d, &build::mode_sense6(true, 0, 0x2A, 255), 255).0), Sense::INVALID_FIELD);
}

#[test]
fn mode_sense_10() {
    let d = disk();
    let (r, b) = run(&d, &build::mode_sense10(false, 0, 0x3F, 1024), 1024);
    good(&r);
    let total = usize::from(u16::from_be_bytes([b[0], b[1]])) + 2;
    assert_eq!(total, 8 + 8 + 12 + 24 + 32 + 20);
    assert_eq!(r.residual as usize, 1024 - total);
    assert_eq!(u16::from_be_bytes([b[6], b[7]]), 8);
    assert_eq!(mode_pages(&b, 8, 8, total), vec![0x01, 0x04, 0x05, 0x08]);
    assert_eq!(b[3], 0, "no DPOFUA by default (scsi-hd's dpofua=off)");
    let f = Disk::ram_with(1 << 20, &DiskConfig { dpofua: true, ..DiskConfig::default() }).unwrap();
    f.set_unit_attention(None);
    assert_eq!(run(&f, &build::mode_sense10(true, 0, 0x08, 64), 64).1[3], 0x10, "DPOFUA");
}

#[test]
fn report_luns() {
    let d = disk();
    let (r, b) = run(&d, &build::report_luns(64), 64);
    good(&r);
    assert_eq!((r.transferred, r.residual), (16, 48));
    assert_eq!(u32::from_be_bytes(b[0..4].try_into().unwrap()), 8);
    assert!(b[8..16].iter().all(|&x| x == 0), "LUN 0");
    assert_eq!(check(&run(&d, &build::report_luns(8), 8).0), Sense::INVALID_FIELD);
    let mut c = build::report_luns(64);
    c[2] = 3;
    assert_eq!(check(&run(&d, &c, 64).0), Sense::INVALID_FIELD);
}

#[test]
fn synchronize_cache_start_stop_and_unknown_opcodes() {
    let d = disk();
    good(&run(&d, &build::synchronize_cache10(), 0).0);
    // scsi-hd has SYNCHRONIZE CACHE(10) only.
    let mut c = [0u8; 16];
    c[0] = op::SYNCHRONIZE_CACHE_16;
    assert_eq!(check(&run(&d, &c, 0).0), Sense::INVALID_OPCODE);
    assert_eq!(d.stats().flushes, 1);
    good(&run(&d, &[op::START_STOP_UNIT, 0, 0, 0, 0, 0], 0).0);
    good(&run(&d, &[op::START_STOP_UNIT, 0, 0, 0, 1, 0], 0).0);
    good(&run(&d, &build::rw10(false, 0, 1), 512).0);
    let (r, _) = run(&d, &[op::LOG_SENSE, 0, 0, 0, 0, 0, 0, 0, 64, 0], 64);
    assert_eq!(check(&r), Sense::INVALID_OPCODE);
    assert_eq!(r.residual, 64);
    assert_eq!(check(&run(&d, &[0xC0; 16], 0).0), Sense::INVALID_OPCODE, "group 6");
    assert_eq!(check(&run(&d, &[], 0).0), Sense::INVALID_OPCODE);
}

#[test]
fn foreign_luns() {
    let d = disk();
    let mut b = VecBuffer::zeroed(96);
    let r = d.execute(3, &build::inquiry(false, 0, 96), &mut b);
    good(&r);
    assert_eq!((r.transferred, b.0[0]), (36, 0x7F));
    let r = d.execute(3, &build::inquiry(true, 0x00, 96), &mut b);
    good(&r);
    assert_eq!(&b.0[..5], &[0, 0, 1, 0, 0], "QEMU's layout: page code, 0, length, the page");
    assert_eq!(check(&d.execute(3, &build::inquiry(true, 0x80, 96), &mut b)), Sense::INVALID_FIELD);
    let r = d.execute(3, &build::request_sense(18), &mut b);
    good(&r);
    assert_eq!(Sense::parse(&b.0), Some(Sense::LUN_NOT_SUPPORTED));
    assert_eq!(check(&d.execute(3, &build::test_unit_ready(), &mut b)), Sense::LUN_NOT_SUPPORTED);
    assert_eq!(check(&d.execute(3, &build::rw10(false, 0, 1), &mut b)), Sense::LUN_NOT_SUPPORTED);
    assert_eq!(check(&d.execute(3, &build::report_luns(16), &mut b)), Sense::LUN_NOT_SUPPORTED);
    // Unit attention is reported before the LUN is looked at (QEMU orders it so).
    d.reset();
    assert_eq!(check(&d.execute(3, &build::test_unit_ready(), &mut b)), Sense::POWER_ON_RESET);
}

#[test]
fn transfer_directions() {
    let d = disk();
    assert_eq!(d.transfer(0, &build::rw10(false, 0, 2)), Transfer { len: 1024, dir: XferDir::FromDevice });
    assert_eq!(d.transfer(0, &build::rw10(true, 0, 2)), Transfer { len: 1024, dir: XferDir::ToDevice });
    assert_eq!(d.transfer(0, &build::test_unit_ready()), Transfer::NONE);
    assert_eq!(d.transfer(0, &build::inquiry(false, 0, 36)).dir, XferDir::FromDevice);
    assert_eq!(d.transfer(0, &[op::MODE_SELECT_6, 0x10, 0, 0, 12, 0]).dir, XferDir::ToDevice);
    assert_eq!(d.transfer(0, &[0x28, 0, 0]), Transfer::NONE, "short CDB");
}

/// A data buffer that faults part-way: the disk stops and reports the fault.
struct Faulty(u64);

impl DataBuffer for Faulty {
    fn len(&self) -> u64 {
        self.0
    }
    fn read_at(&mut self, offset: u64, out: &mut [u8]) -> Result<(), DataFault> {
        if offset >= 512 { Err(DataFault { offset }) } else { out.fill(0xCC); Ok(()) }
    }
    fn write_at(&mut self, offset: u64, _data: &[u8]) -> Result<(), DataFault> {
        Err(DataFault { offset })
    }
}

#[test]
fn data_faults_stop_the_transfer() {
    let d = disk();
    let r = d.execute(0, &build::rw10(false, 0, 1), &mut Faulty(512));
    assert_eq!(r.fault, Some(DataFault { offset: 0 }));
    assert_eq!(r.transferred, 0);
    let r = d.execute(0, &build::inquiry(false, 0, 36), &mut Faulty(36));
    assert!(r.fault.is_some());
}

#[test]
fn large_write_crosses_the_chunk_size() {
    let d = Disk::ram(8 << 20).unwrap();
    d.set_unit_attention(None);
    let data = pattern(1 << 20, 5);
    let mut b = VecBuffer(data.clone());
    let r = d.execute(0, &build::rw10(true, 100, 2048), &mut b);
    good(&r);
    assert_eq!(r.transferred, 1 << 20);
    let (r, back) = run(&d, &build::rw10(false, 100, 2048), 1 << 20);
    good(&r);
    assert_eq!(back, data);
}
