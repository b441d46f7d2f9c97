//! The virtual disk against what QEMU 7.2's scsi-hd answered in the cross-check (issue 5 §4):
//! each test pins one behaviour where the model used to differ, with the bytes QEMU returned
//! (from `crates/rspvscsi-sim/probe/qemu-7.2.json`, result IDs in the comments). The disk is the
//! harness's target 0 (8 MiB, 16384 blocks, drive `d0`, no serial) unless a test says otherwise.

#![allow(clippy::cast_possible_truncation)] // test values are small and known

use scsiport_sim::disk::cdb::{build, op};
use scsiport_sim::disk::{
    Disk, DiskConfig, STATUS_CHECK_CONDITION, STATUS_GOOD, ScsiResponse, ScsiTarget, Sense, VecBuffer, report_luns,
};

/// The harness's target 0.
fn d0() -> Disk {
    let d = Disk::ram_with(8 << 20, &DiskConfig { drive_name: Some("d0".into()), ..DiskConfig::default() }).unwrap();
    d.set_unit_attention(None);
    d
}

/// The harness's target 1 (12 MiB, a 40-character serial).
fn d1() -> Disk {
    let serial = "RSPVSCSI-PROBE-SERIAL-0123456789ABCDEFGH".to_string();
    let d = Disk::ram_with(12 << 20, &DiskConfig { drive_name: Some("d1".into()), serial: Some(serial), ..DiskConfig::default() })
        .unwrap();
    d.set_unit_attention(None);
    d
}

fn run_lun(d: &Disk, lun: u8, cdb: &[u8], len: usize) -> (ScsiResponse, Vec<u8>) {
    let mut b = VecBuffer::zeroed(len);
    let r = d.execute(lun, cdb, &mut b);
    (r, b.0)
}

fn run(d: &Disk, cdb: &[u8], len: usize) -> (ScsiResponse, Vec<u8>) {
    run_lun(d, 0, cdb, len)
}

/// Data out (a write-direction buffer holding `data`).
fn run_out(d: &Disk, cdb: &[u8], data: Vec<u8>) -> ScsiResponse {
    d.execute(0, cdb, &mut VecBuffer(data))
}

fn sense(r: &ScsiResponse) -> Option<Sense> {
    (r.status == STATUS_CHECK_CONDITION).then(|| r.sense_code()).flatten()
}

fn good(r: &ScsiResponse) {
    assert_eq!(r.status, STATUS_GOOD, "{r:?}");
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

/// `data` is `expected` followed by zeros.
fn starts_with_then_zeros(data: &[u8], expected: &str) {
    let e = hex(expected);
    assert_eq!(&data[..e.len()], &e[..], "answer");
    assert!(data[e.len()..].iter().all(|&b| b == 0), "then zeros: {data:02x?}");
}

const VENDOR_PRODUCT_REVISION: &str = "51454d552020202051454d5520484152444449534b202020322e352b";

/// `inq.std.96`, `inq.std.255`, `inq.cmddt`: standard INQUIRY data is as long as the allocation length
/// (up to 256 bytes), its additional length saying so; `CmdDt` is ignored.
#[test]
fn standard_inquiry_is_as_long_as_allocated() {
    let d = d0();
    for (alloc, additional) in [(36u16, 0x1F), (96, 0x5B), (255, 0xFA), (5, 0x1F)] {
        let (r, b) = run(&d, &build::inquiry(false, 0, alloc), usize::from(alloc));
        good(&r);
        assert_eq!((r.transferred, r.residual), (u64::from(alloc), 0), "alloc {alloc}");
        assert_eq!(&b[..5.min(b.len())], &[0, 0, 5, 0x12, additional][..5.min(b.len())]);
        if alloc >= 36 {
            assert_eq!(b[7], 0x12);
            assert_eq!(&b[8..36], &hex(VENDOR_PRODUCT_REVISION)[..]);
        }
    }
    let mut c = build::inquiry(false, 0, 255);
    c[1] = 0x02; // CmdDt
    let (r, b) = run(&d, &c, 255);
    good(&r);
    assert_eq!(b[4], 0xFA);
}

/// `inq.vpd.00`/80/83 and `inq.t1.vpd.*`: page 0x80 only with a serial (its first 36 characters);
/// page 0x83 holds one ASCII designator, the serial's first 20 characters or the drive name; no
/// NAA designator without a WWN; page 0xB2 is listed.
#[test]
fn vpd_identification_follows_the_scsi_hd_properties() {
    let d = d0();
    let (_, b) = run(&d, &build::inquiry(true, 0x00, 255), 255);
    starts_with_then_zeros(&b, "000000050083b0b1b2");
    let (r, _) = run(&d, &build::inquiry(true, 0x80, 255), 255);
    assert_eq!(sense(&r), Some(Sense::INVALID_FIELD));
    let (_, b) = run(&d, &build::inquiry(true, 0x83, 255), 255);
    starts_with_then_zeros(&b, "00830006020000026430");
    assert_eq!((d.serial(), d.device_id(), d.wwn()), (None, Some("d0"), None));

    let d = d1();
    let (_, b) = run(&d, &build::inquiry(true, 0x00, 255), 255);
    starts_with_then_zeros(&b, "00000006008083b0b1b2");
    let (_, b) = run(&d, &build::inquiry(true, 0x80, 255), 255);
    starts_with_then_zeros(&b, "0080002452535056534353492d50524f42452d53455249414c2d3031323334353637383941424344");
    let (_, b) = run(&d, &build::inquiry(true, 0x83, 255), 255);
    starts_with_then_zeros(&b, "008300180200001452535056534353492d50524f42452d5345524941");
}

/// `inq.vpd.b0`, `inq.vpd.b1`, `inq.vpd.b2`, `cap.rc16.*`: scsi-hd's block limits, no rotation rate,
/// thin provisioning with UNMAP and WRITE SAME, LBPME in READ CAPACITY(16), whose PMI rule is
/// that of READ CAPACITY(10).
#[test]
fn block_limits_provisioning_and_read_capacity_16() {
    let d = d0();
    let (_, b) = run(&d, &build::inquiry(true, 0xB0, 255), 255);
    starts_with_then_zeros(&b, "00b0003c01000000003fffff000000000000000000200000000000ff000000080000000000000000003fffff");
    let (_, b) = run(&d, &build::inquiry(true, 0xB1, 255), 255);
    starts_with_then_zeros(&b, "00b1003c");
    assert_eq!(b.len(), 255);
    let (_, b) = run(&d, &build::inquiry(true, 0xB2, 255), 255);
    starts_with_then_zeros(&b, "00b2000400e002");
    let (r, b) = run(&d, &build::read_capacity16(32), 32);
    good(&r);
    starts_with_then_zeros(&b, "0000000000003fff00000200000080");
    let mut c = build::read_capacity16(32);
    c[9] = 1; // LBA 1 ...
    assert_eq!(sense(&run(&d, &c, 32).0), Some(Sense::INVALID_FIELD), "... with PMI 0");
    c[14] = 1;
    good(&run(&d, &c, 32).0);
    // cap.rc16.alloc_big: more than 64 KiB of allocation is refused by scsi-hd's emulation.
    assert_eq!(sense(&run(&d, &build::read_capacity16(70000), 70000).0), Some(Sense::INVALID_FIELD));
}

/// `ms6.3f.dbd0.pc0`, `ms6.3f.dbd1.pc1`, `ms10.05.dbd1.pc0`: no DPOFUA; pages 0x01, 0x04 (with
/// write-precompensation and reduced-current cylinders, step rate and landing zone), 0x05
/// (flexible disk, which scsi-hd has) and 0x08, with QEMU's 16-head 63-sector geometry.
#[test]
fn mode_pages_as_scsi_hd_reports_them() {
    let d = d0();
    let (r, b) = run(&d, &build::mode_sense6(false, 0, 0x3F, 255), 255);
    good(&r);
    starts_with_then_zeros(
        &b,
        "630000080000400000000200010a8000000000000000000004160000101000001000001000c8ffffff00000015180000051e1388103f0200001000100010000101000101010000000000000015180000081204",
    );
    let (_, b) = run(&d, &build::mode_sense6(true, 1, 0x3F, 255), 255);
    starts_with_then_zeros(
        &b,
        "5b000000010a00000000000000000000041600000000000000000000000000000000000000000000051e000000000000000000000000000000000000000000000000000000000000081204",
    );
    let (_, b) = run(&d, &build::mode_sense10(true, 0, 0x05, 512), 512);
    starts_with_then_zeros(&b, "0026000000000000051e1388103f020000100010001000010100010101000000000000001518");
    // Pages scsi-hd does not have.
    for page in [0x00, 0x0A, 0x1C] {
        assert_eq!(sense(&run(&d, &build::mode_sense6(true, 0, page, 255), 255).0), Some(Sense::INVALID_FIELD), "{page:#x}");
    }
}

fn mode_select6(d: &Disk, b1: u8, param: Vec<u8>) -> ScsiResponse {
    let n = param.len() as u8;
    run_out(d, &[op::MODE_SELECT_6, b1, 0, 0, n, 0], param)
}

fn caching(wce: bool, len: u8) -> Vec<u8> {
    let mut p = vec![0u8; 4 + 2 + usize::from(len)];
    p[4] = 0x08;
    p[5] = len;
    p[6] = if wce { 0x04 } else { 0 };
    p
}

/// `msel6.*`, `msel10.same`: MODE SELECT changes WCE and nothing else; PF=1 SP=0 only; the page
/// length and every unchangeable bit must match what MODE SENSE reports.
#[test]
fn mode_select_as_scsi_hd_takes_it() {
    let d = d0();
    good(&mode_select6(&d, 0x10, caching(true, 0x12)));
    good(&mode_select6(&d, 0x10, caching(false, 0x12)));
    let (_, b) = run(&d, &build::mode_sense6(true, 0, 0x08, 255), 255);
    starts_with_then_zeros(&b, "170000000812");
    good(&mode_select6(&d, 0x10, caching(true, 0x12)));
    let (_, b) = run(&d, &build::mode_sense6(true, 0, 0x08, 255), 255);
    starts_with_then_zeros(&b, "17000000081204");
    assert_eq!(sense(&mode_select6(&d, 0x00, caching(true, 0x12))), Some(Sense::INVALID_FIELD), "PF 0");
    assert_eq!(sense(&mode_select6(&d, 0x11, caching(true, 0x12))), Some(Sense::INVALID_FIELD), "SP 1");
    assert_eq!(sense(&mode_select6(&d, 0x10, vec![0, 0, 0])), Some(Sense::INVALID_PARAM_LEN));
    good(&run(&d, &[op::MODE_SELECT_6, 0x10, 0, 0, 0, 0], 0).0);
    let awre0 = [0u8, 0, 0, 0, 0x01, 0x0A, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0].to_vec();
    assert_eq!(sense(&mode_select6(&d, 0x10, awre0)), Some(Sense::INVALID_PARAM), "AWRE is not changeable");
    let mut with_bd = vec![0u8, 0, 0, 8, 0, 0, 0, 0, 0, 0, 2, 0];
    with_bd.extend_from_slice(&caching(true, 0x12)[4..]);
    good(&mode_select6(&d, 0x10, with_bd));
    let mut bd4 = vec![0u8, 0, 0, 4, 0, 0, 2, 0];
    bd4.extend_from_slice(&caching(true, 0x12)[4..]);
    assert_eq!(sense(&mode_select6(&d, 0x10, bd4)), Some(Sense::INVALID_PARAM));
    assert_eq!(sense(&mode_select6(&d, 0x10, caching(true, 0x10))), Some(Sense::INVALID_PARAM), "wrong page length");
    let mut all = caching(true, 0x12);
    all[4] = 0x3F;
    assert_eq!(sense(&mode_select6(&d, 0x10, all)), Some(Sense::INVALID_PARAM));
    assert_eq!(sense(&mode_select6(&d, 0x10, caching(true, 0x12)[..14].to_vec())), Some(Sense::INVALID_PARAM_LEN), "cut short");
    let mut p10 = vec![0u8; 8];
    p10.extend_from_slice(&caching(true, 0x12)[4..]);
    let n = p10.len() as u8;
    good(&run_out(&d, &[op::MODE_SELECT_10, 0x10, 0, 0, 0, 0, 0, 0, n, 0], p10));
}

fn ws10(b1: u8, lba: u32, n: u16) -> [u8; 10] {
    let mut c = build::rw10(false, lba, n);
    c[0] = op::WRITE_SAME_10;
    c[1] = b1;
    c
}

fn unmap_param(descs: &[(u64, u32)]) -> Vec<u8> {
    let dl = (descs.len() * 16) as u16;
    let mut p = Vec::new();
    p.extend_from_slice(&(dl + 6).to_be_bytes());
    p.extend_from_slice(&dl.to_be_bytes());
    p.extend_from_slice(&[0; 4]);
    for &(lba, n) in descs {
        p.extend_from_slice(&lba.to_be_bytes());
        p.extend_from_slice(&n.to_be_bytes());
        p.extend_from_slice(&[0; 4]);
    }
    p
}

fn unmap(d: &Disk, b1: u8, param: Vec<u8>) -> ScsiResponse {
    let n = param.len() as u16;
    let l = n.to_be_bytes();
    run_out(d, &[op::UNMAP, b1, 0, 0, 0, 0, 0, l[0], l[1], 0], param)
}

/// `ws.*`, `unmap.*`: WRITE SAME writes its block over the range (a zero block: zeros), refuses 0
/// blocks, LBDATA/PBDATA/ANCHOR and ranges past the end; with NDOB it completes without writing
/// anything. UNMAP checks its parameter list and ranges and discards nothing (`discard=ignore`).
#[test]
fn write_same_and_unmap() {
    let d = d0();
    let last = 16383u32;
    good(&run_out(&d, &ws10(0, last, 1), vec![0x5A; 512]));
    assert_eq!(d.read_sectors(u64::from(last), 1).unwrap(), vec![0x5A; 512]);
    let mut ndob = [0u8; 16];
    ndob[0] = op::WRITE_SAME_16;
    ndob[1] = 0x09;
    ndob[2..10].copy_from_slice(&u64::from(last).to_be_bytes());
    ndob[10..14].copy_from_slice(&1u32.to_be_bytes());
    good(&run(&d, &ndob, 0).0);
    assert_eq!(d.read_sectors(u64::from(last), 1).unwrap(), vec![0x5A; 512], "NDOB writes nothing in QEMU 7.2");
    good(&run_out(&d, &ws10(0, last - 3, 4), vec![0xA5; 512]));
    assert_eq!(d.read_sectors(u64::from(last - 3), 4).unwrap(), vec![0xA5; 2048]);
    assert_eq!(sense(&run_out(&d, &ws10(0, 0, 0), vec![1; 512])), Some(Sense::INVALID_FIELD), "0 blocks");
    assert_eq!(sense(&run_out(&d, &ws10(0x02, last, 1), vec![1; 512])), Some(Sense::INVALID_FIELD), "LBDATA");
    assert_eq!(sense(&run_out(&d, &ws10(0, last + 1, 1), vec![1; 512])), Some(Sense::LBA_OUT_OF_RANGE));

    good(&unmap(&d, 0, unmap_param(&[(u64::from(last - 3), 4)])));
    assert_eq!(d.read_sectors(u64::from(last - 3), 4).unwrap(), vec![0xA5; 2048], "nothing discarded");
    assert_eq!(sense(&unmap(&d, 1, unmap_param(&[(0, 1)]))), Some(Sense::INVALID_FIELD), "ANCHOR");
    assert_eq!(sense(&unmap(&d, 0, vec![0, 2, 0, 0])), Some(Sense::INVALID_PARAM_LEN));
    let mut p = unmap_param(&[(0, 1)]);
    p[3] = 8;
    assert_eq!(sense(&unmap(&d, 0, p)), Some(Sense::INVALID_PARAM_LEN), "descriptor length not a multiple of 16");
    assert_eq!(sense(&unmap(&d, 0, unmap_param(&[(u64::from(last) + 1, 1)]))), Some(Sense::LBA_OUT_OF_RANGE));
    good(&run(&d, &[op::UNMAP, 0, 0, 0, 0, 0, 0, 0, 0, 0], 0).0);
    let w = Disk::ram_with(1 << 20, &DiskConfig { write_protect: true, ..DiskConfig::default() }).unwrap();
    w.set_unit_attention(None);
    assert_eq!(sense(&unmap(&w, 0, unmap_param(&[(0, 1)]))), Some(Sense::WRITE_PROTECTED));
    assert_eq!(sense(&run_out(&w, &ws10(0, 0, 1), vec![1; 512])), Some(Sense::WRITE_PROTECTED));
}

/// `rs.none.desc`, `rs.err2.desc`, `lun1.rs`: REQUEST SENSE with DESC answers in descriptor format
/// (8 bytes), for nothing pending, for a stored error and for a missing LUN.
#[test]
fn request_sense_in_descriptor_format() {
    let d = d0();
    let (r, b) = run(&d, &[op::REQUEST_SENSE, 1, 0, 0, 252, 0], 252);
    good(&r);
    assert_eq!((r.transferred, r.residual), (8, 244));
    starts_with_then_zeros(&b, "72");
    assert_eq!(sense(&run(&d, &build::rw10(false, 16384, 1), 512).0), Some(Sense::LBA_OUT_OF_RANGE));
    let (_, b) = run(&d, &[op::REQUEST_SENSE, 1, 0, 0, 252, 0], 252);
    starts_with_then_zeros(&b, "720521");
    let (_, b) = run_lun(&d, 1, &[op::REQUEST_SENSE, 1, 0, 0, 252, 0], 252);
    starts_with_then_zeros(&b, "720525");
}

/// `op.*`, `misc.sync16`, `misc.verify10.*`, `rw.read10.len0.end`: the commands scsi-hd accepts as
/// no-ops (SEEK(10) with its range check, RESERVE/RELEASE without 3rd-party bits, PREVENT ALLOW
/// MEDIUM REMOVAL, FORMAT UNIT, VERIFY without BYTCHK and without a range check), the ones it
/// does not know (SYNCHRONIZE CACHE(16)), the CD commands it refuses as invalid fields, and a
/// 0-block READ at one past the last LBA.
#[test]
fn commands_scsi_hd_accepts_and_refuses() {
    let d = d0();
    let c10 = |o: u8, b1: u8, lba: u32| {
        let mut c = build::rw10(false, lba, 0);
        c[0] = o;
        c[1] = b1;
        c
    };
    good(&run(&d, &c10(op::SEEK_10, 0, 16383), 0).0);
    assert_eq!(sense(&run(&d, &c10(op::SEEK_10, 0, 16384), 0).0), Some(Sense::LBA_OUT_OF_RANGE));
    for o in [op::RESERVE_6, op::RELEASE_6] {
        good(&run(&d, &[o, 0, 0, 0, 0, 0], 0).0);
        assert_eq!(sense(&run(&d, &[o, 1, 0, 0, 0, 0], 0).0), Some(Sense::INVALID_FIELD));
    }
    for o in [op::RESERVE_10, op::RELEASE_10] {
        good(&run(&d, &c10(o, 0, 0), 0).0);
        assert_eq!(sense(&run(&d, &c10(o, 2, 0), 0).0), Some(Sense::INVALID_FIELD));
    }
    good(&run(&d, &[op::ALLOW_MEDIUM_REMOVAL, 0, 0, 0, 0, 0], 0).0);
    good(&run(&d, &[op::FORMAT_UNIT, 0, 0, 0, 0, 0], 0).0);
    let mut v = build::rw10(false, 16384, 1);
    v[0] = op::VERIFY_10;
    good(&run(&d, &v, 0).0);
    v[1] = 0x02;
    assert_eq!(sense(&run_out(&d, &v, vec![0; 512])), Some(Sense::INVALID_FIELD), "BYTCHK");
    let mut s16 = [0u8; 16];
    s16[0] = op::SYNCHRONIZE_CACHE_16;
    assert_eq!(sense(&run(&d, &s16, 0).0), Some(Sense::INVALID_OPCODE));
    for cdb in [
        vec![op::GET_CONFIGURATION, 0, 0, 0, 0, 0, 0, 0, 8, 0],
        vec![op::GET_EVENT_STATUS_NOTIFICATION, 1, 0, 0, 0x10, 0, 0, 0, 8, 0],
        vec![op::MECHANISM_STATUS, 0, 0, 0, 0, 0, 0, 0, 0, 8, 0, 0],
        vec![op::READ_DISC_INFORMATION, 0, 0, 0, 0, 0, 0, 0, 34, 0],
        vec![op::READ_DVD_STRUCTURE, 0, 0, 0, 0, 0, 0, 0, 0, 8, 0, 0],
    ] {
        assert_eq!(sense(&run(&d, &cdb, 64).0), Some(Sense::INVALID_FIELD), "{:#x}", cdb[0]);
    }
    for o in [op::REZERO_UNIT, op::LOG_SENSE, op::SEND_DIAGNOSTIC] {
        assert_eq!(sense(&run(&d, &[o, 0, 0, 0, 0, 0, 0, 0, 0, 0], 0).0), Some(Sense::INVALID_OPCODE), "{o:#x}");
    }
    good(&run(&d, &build::rw10(false, 16384, 0), 0).0);
    assert_eq!(sense(&run(&d, &build::rw10(false, 16385, 0), 0).0), Some(Sense::LBA_OUT_OF_RANGE));
}

/// `op.read_toc.*`: scsi-hd answers READ TOC for a disk as for a one-track CD of its size.
#[test]
fn read_toc_on_a_disk() {
    let d = d0();
    let toc = |b1: u8, format: u8, track: u8| run(&d, &[op::READ_TOC, b1, format, 0, 0, 0, track, 0, 128, 0], 128);
    starts_with_then_zeros(&toc(0, 0, 0).1, "0012010100140100000000000016aa0000004000");
    starts_with_then_zeros(&toc(2, 0, 0).1, "0012010100140100000002000016aa0000032822");
    starts_with_then_zeros(&toc(0, 0, 0xAA).1, "000a01010016aa0000004000");
    starts_with_then_zeros(&toc(0, 1, 0).1, "000a0101");
    starts_with_then_zeros(
        &toc(0, 2, 0).1,
        "002e0101011400a000000000010000011400a100000000010000011400a20000000000400001140001",
    );
    starts_with_then_zeros(
        &toc(2, 2, 0).1,
        "002e0101011400a000000000010000011400a100000000010000011400a20000000003282201140001000000000002",
    );
    assert_eq!(sense(&toc(0, 0, 2).0), Some(Sense::INVALID_FIELD));
    assert_eq!(sense(&toc(0, 3, 0).0), Some(Sense::INVALID_FIELD));
}

/// `ua.op.ff`, `ua.huge_xfer`, `ua.gesn`, `ua.rl`: QEMU 7.2 clears a pending unit attention at the
/// completion of any command but INQUIRY, GET CONFIGURATION, GET EVENT STATUS NOTIFICATION and
/// REPORT LUNS (which clears only REPORTED LUNS DATA HAS CHANGED); so a command refused before
/// the attention is looked at (an unusable CDB, a transfer over 2 GiB) takes it away unreported.
#[test]
fn unit_attention_cleared_by_commands_refused_before_it() {
    let d = d0();
    d.reset();
    assert_eq!(sense(&run(&d, &[0xFF, 0, 0, 0, 0, 0], 0).0), Some(Sense::INVALID_OPCODE));
    good(&run(&d, &build::test_unit_ready(), 0).0);
    d.reset();
    let mut huge = build::rw16(false, 0, u32::MAX);
    assert_eq!(sense(&run(&d, &huge, 512).0), Some(Sense::INVALID_FIELD));
    good(&run(&d, &build::test_unit_ready(), 0).0);
    d.reset();
    assert_eq!(sense(&run(&d, &[op::GET_EVENT_STATUS_NOTIFICATION, 1, 0, 0, 0x10, 0, 0, 0, 8, 0], 8).0), Some(Sense::INVALID_FIELD));
    good(&run(&d, &build::inquiry(false, 0, 36), 36).0);
    good(&run(&d, &build::report_luns(16), 16).0);
    assert_eq!(sense(&run(&d, &build::test_unit_ready(), 0).0), Some(Sense::POWER_ON_RESET), "kept by all three");
    // REPORT LUNS does clear a REPORTED LUNS DATA HAS CHANGED attention.
    d.set_unit_attention(Some(Sense::REPORTED_LUNS_CHANGED));
    good(&run(&d, &build::report_luns(16), 16).0);
    assert_eq!(d.unit_attention(), None);
    // A parsable command is told the attention first, whatever it is.
    d.reset();
    huge[0] = op::SYNCHRONIZE_CACHE_16;
    assert_eq!(sense(&run(&d, &huge, 0).0), Some(Sense::POWER_ON_RESET));
}

/// `lun1.inq.vpd.00`, `lun1.rl`: on a LUN that does not exist, QEMU's target emulation lays out the
/// supported-pages page its own way (page code, 0, length 1, page 0x00) and refuses REPORT LUNS
/// with LOGICAL UNIT NOT SUPPORTED.
#[test]
fn foreign_lun_answers() {
    let d = d0();
    let (r, b) = run_lun(&d, 1, &build::inquiry(true, 0, 255), 255);
    good(&r);
    assert_eq!(r.transferred, 4);
    starts_with_then_zeros(&b, "000001");
    assert_eq!(sense(&run_lun(&d, 1, &build::report_luns(256), 256).0), Some(Sense::LUN_NOT_SUPPORTED));
    let (r, b) = run_lun(&d, 1, &build::inquiry(false, 0, 96), 96);
    good(&r);
    assert_eq!(r.transferred, 36, "36 bytes at most");
    starts_with_then_zeros(&b, "7f");
}

/// REPORT LUNS returns whole 8-byte entries of the allocation length (QEMU `r->len = MIN(len,
/// xfer & ~7)`; with the one LUN a disk has, the probe's `rl.20` cannot show it).
#[test]
fn report_luns_cuts_to_whole_entries() {
    let mut b = VecBuffer::zeroed(20);
    let r = report_luns(&build::report_luns(20), 20, &[0, 1], &mut b);
    good(&r);
    assert_eq!((r.transferred, r.residual), (16, 4));
    assert_eq!(&b.0[..4], &16u32.to_be_bytes(), "the list length still counts both");
}
