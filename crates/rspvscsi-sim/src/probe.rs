//! `rspvscsi-sim probe`: a fixed catalogue of requests sent through the driver, and for each the
//! outcome the device made visible: SRB status and flags, SCSI status, sense, `DataTransferLength`
//! at completion and the data returned. Run once against QEMU's real `pvscsi` (in the test guest)
//! and once against the device model configured the same way, the two answers must agree up to
//! the allowlist of `probe_diff.rs` (issue 5 §4, "close the loop").
//!
//! The catalogue only depends on what bring-up found (targets and sizes), so both sides send the
//! same requests. Requests go straight to the machine: a UNIT ATTENTION is recorded, not retried.
//! Besides SCSI commands it reads a few registers with 1-, 2- and 4-byte accesses, the PCI
//! identity and capability list, and the BARs; and it submits a bus reset with requests in flight
//! to see how many the reset catches.
//!
//! Writes go to the last LBA of target 0 only (and to nothing past it); the QEMU harness runs the
//! probe before its pattern scenarios, which rewrite every sector.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

use scsiport_sim::hba::{BarKind, Hba};
use scsiport_sim::{Completion, Direction, Request};
use scsiport_sys as sys;
use serde_json::{Map, Value, json};

use crate::app::{self, Verdict};
use crate::cli::RunArgs;
use crate::rig::{self, Access, Rig, RigConfig};

/// Format version of the probe's JSON (`"probe"` key).
pub const FORMAT: u64 = 1;

/// Disks of a probe machine unless `--disk` says otherwise: the QEMU harness's two disks
/// (tests/qemu/run: sizes, drive names, target 1's serial number).
pub const PROBE_DISKS: [&str; 2] = ["ram:8M,name=d0", "ram:12M,name=d1,serial=RSPVSCSI-PROBE-SERIAL-0123456789ABCDEFGH"];

/// Data answers up to this size are recorded byte for byte; longer ones as length and hash.
const FULL_DATA: usize = 1024;

/// The target the probe treats as missing.
const MISSING_TARGET: u8 = 5;

/// Framing of the JSON in `--output` files, so that a reader can find it in a serial capture and
/// tell a whole copy from a damaged one.
pub const BEGIN: &str = "@@RSPVSCSI-PROBE-BEGIN";
/// End marker.
pub const END: &str = "@@RSPVSCSI-PROBE-END@@";

/// FNV-1a, 64 bits: the hash of long data answers and of the framed JSON.
#[must_use]
pub fn fnv1a(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

/// Lower-case hex, no separators.
#[must_use]
pub fn hex(data: &[u8]) -> String {
    let mut s = String::with_capacity(data.len() * 2);
    for b in data {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// One request of the catalogue.
struct Case {
    id: String,
    what: String,
    req: Request,
}

impl Case {
    fn new(id: impl Into<String>, what: impl Into<String>, req: Request) -> Self {
        Self { id: id.into(), what: what.into(), req }
    }
}

/// A step of the probe.
enum Step {
    /// Send a request and record the completion.
    Cmd(Case),
    /// `SRB_FUNCTION_RESET_BUS`, recorded like a command.
    BusReset(String),
    /// Register reads.
    Registers,
    /// PCI identity, capabilities, BARs.
    Pci,
    /// A bus reset with `n` READs in flight.
    ResetUnderLoad(usize),
}

/// An `EXECUTE_SCSI` request: CDB, direction and buffer length (data-in buffers are zeroed;
/// data-out buffers carry `out`).
fn scsi(target: u8, cdb: &[u8], dir: Direction, len: usize) -> Request {
    Request::scsi(target, cdb, dir, vec![0; len])
}

fn scsi_in(target: u8, cdb: &[u8], len: usize) -> Request {
    scsi(target, cdb, if len == 0 { Direction::None } else { Direction::In }, len)
}

fn scsi_none(target: u8, cdb: &[u8]) -> Request {
    scsi(target, cdb, Direction::None, 0)
}

fn be16(v: u16) -> [u8; 2] {
    v.to_be_bytes()
}

fn be32(v: u32) -> [u8; 4] {
    v.to_be_bytes()
}

fn cdb10(op: u8, b1: u8, lba: u32, len: u16) -> [u8; 10] {
    let l = be32(lba);
    let n = be16(len);
    [op, b1, l[0], l[1], l[2], l[3], 0, n[0], n[1], 0]
}

fn cdb16(op: u8, b1: u8, lba: u64, len: u32) -> [u8; 16] {
    let mut c = [0u8; 16];
    c[0] = op;
    c[1] = b1;
    c[2..10].copy_from_slice(&lba.to_be_bytes());
    c[10..14].copy_from_slice(&be32(len));
    c
}

fn inquiry(b1: u8, page: u8, alloc: u16) -> [u8; 6] {
    let a = be16(alloc);
    [0x12, b1, page, a[0], a[1], 0]
}

fn mode_sense6(dbd: bool, pc: u8, page: u8, sub: u8, alloc: u8) -> [u8; 6] {
    [0x1A, if dbd { 0x08 } else { 0 }, (pc << 6) | page, sub, alloc, 0]
}

fn mode_sense10(b1: u8, pc: u8, page: u8, sub: u8, alloc: u16) -> [u8; 10] {
    let a = be16(alloc);
    [0x5A, b1, (pc << 6) | page, sub, 0, 0, 0, a[0], a[1], 0]
}

fn report_luns(select: u8, alloc: u32) -> [u8; 12] {
    let a = be32(alloc);
    [0xA0, 0, select, 0, 0, 0, a[0], a[1], a[2], a[3], 0, 0]
}

const TUR: [u8; 6] = [0, 0, 0, 0, 0, 0];
const RC10: [u8; 10] = [0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0];

fn rc16(alloc: u32) -> [u8; 16] {
    let mut c = [0u8; 16];
    c[0] = 0x9E;
    c[1] = 0x10;
    c[10..14].copy_from_slice(&be32(alloc));
    c
}

/// What the probe writes to the last LBA of target 0 (and reads back).
fn written_sector() -> Vec<u8> {
    (0..512u32).map(|i| u8::try_from((i * 7 + 3) & 0xFF).unwrap_or(0)).collect()
}

/// The catalogue for disks at `t0` (`n0` blocks of 512 bytes) and, if there is one, `t1`.
#[allow(clippy::too_many_lines)] // a flat list reads best
fn catalogue(t0: u8, n0: u64, t1: Option<u8>) -> Vec<Step> {
    const BS: usize = 512;
    let mut s: Vec<Step> = Vec::new();
    let mut cmd = |id: &str, what: &str, req: Request| s.push(Step::Cmd(Case::new(id, what, req)));
    let last = u32::try_from(n0 - 1).unwrap_or(u32::MAX);
    let end = u32::try_from(n0).unwrap_or(u32::MAX);

    // ---- INQUIRY
    for alloc in [36u16, 96, 255, 5] {
        cmd(&format!("inq.std.{alloc}"), &format!("standard INQUIRY, allocation length {alloc}"), scsi_in(t0, &inquiry(0, 0, alloc), usize::from(alloc)));
    }
    cmd("inq.std.alloc0", "standard INQUIRY, allocation length 0 (no data phase)", scsi_in(t0, &inquiry(0, 0, 0), 0));
    cmd("inq.std.36.buf64", "standard INQUIRY, allocation length 36, into a 64-byte buffer", scsi_in(t0, &inquiry(0, 0, 36), 64));
    for page in [0x00u8, 0x80, 0x83, 0xB0, 0xB1, 0xB2, 0x87] {
        cmd(&format!("inq.vpd.{page:02x}"), &format!("INQUIRY EVPD page {page:#04x}, allocation length 255"), scsi_in(t0, &inquiry(1, page, 255), 255));
    }
    if let Some(t1) = t1 {
        for page in [0x00u8, 0x80, 0x83] {
            cmd(&format!("inq.t1.vpd.{page:02x}"), &format!("INQUIRY EVPD page {page:#04x} of target 1 (which has a serial number)"), scsi_in(t1, &inquiry(1, page, 255), 255));
        }
    }
    cmd("inq.vpd.00.alloc4", "INQUIRY EVPD page 0x00, allocation length 4", scsi_in(t0, &inquiry(1, 0, 4), 4));
    cmd("inq.page_without_evpd", "INQUIRY page 0x80 without EVPD: invalid field", scsi_in(t0, &inquiry(0, 0x80, 255), 255));
    cmd("inq.cmddt", "INQUIRY with CmdDt set", scsi_in(t0, &inquiry(2, 0, 255), 255));
    cmd("inq.reserved_bit", "INQUIRY with reserved bit 4 of byte 1 set", scsi_in(t0, &inquiry(0x10, 0, 36), 36));
    cmd("inq.control_byte", "INQUIRY with a non-zero CONTROL byte (0x04)", {
        let mut c = inquiry(0, 0, 36);
        c[5] = 0x04;
        scsi_in(t0, &c, 36)
    });

    // ---- capacity
    cmd("cap.rc10", "READ CAPACITY(10)", scsi_in(t0, &RC10, 8));
    if let Some(t1) = t1 {
        cmd("cap.rc10.t1", "READ CAPACITY(10) of target 1", scsi_in(t1, &RC10, 8));
    }
    cmd("cap.rc10.pmi0_lba1", "READ CAPACITY(10) with LBA 1 and PMI 0", scsi_in(t0, &cdb10(0x25, 0, 1, 0), 8));
    cmd("cap.rc10.pmi1_lba1", "READ CAPACITY(10) with LBA 1 and PMI 1", scsi_in(t0, &{
        let mut c = cdb10(0x25, 0, 1, 0);
        c[8] = 1;
        c
    }, 8));
    for alloc in [32u32, 12, 64] {
        cmd(&format!("cap.rc16.{alloc}"), &format!("READ CAPACITY(16), allocation length {alloc}"), scsi_in(t0, &rc16(alloc), alloc as usize));
    }
    cmd("cap.rc16.pmi0_lba1", "READ CAPACITY(16) with LBA 1 and PMI 0", scsi_in(t0, &{
        let mut c = rc16(32);
        c[9] = 1;
        c
    }, 32));
    cmd("cap.rc16.pmi1_lba1", "READ CAPACITY(16) with LBA 1 and PMI 1", scsi_in(t0, &{
        let mut c = rc16(32);
        c[9] = 1;
        c[14] = 1;
        c
    }, 32));
    cmd("cap.rc16.alloc_big", "READ CAPACITY(16), allocation length 70000", scsi_in(t0, &rc16(70000), 70000));
    cmd("cap.sai_other", "SERVICE ACTION IN(16) with service action 0x11", scsi_in(t0, &{
        let mut c = rc16(32);
        c[1] = 0x11;
        c
    }, 32));

    // ---- MODE SENSE
    for page in [0x3Fu8, 0x01, 0x04, 0x05, 0x08, 0x0A, 0x1C, 0x00] {
        for dbd in [false, true] {
            for pc in 0..3u8 {
                let tag = format!("{page:02x}.dbd{}.pc{pc}", u8::from(dbd));
                cmd(&format!("ms6.{tag}"), &format!("MODE SENSE(6) page {page:#04x}, DBD {}, PC {pc}", u8::from(dbd)), scsi_in(t0, &mode_sense6(dbd, pc, page, 0, 255), 255));
                cmd(&format!("ms10.{tag}"), &format!("MODE SENSE(10) page {page:#04x}, DBD {}, PC {pc}", u8::from(dbd)), scsi_in(t0, &mode_sense10(if dbd { 0x08 } else { 0 }, pc, page, 0, 512), 512));
            }
        }
    }
    cmd("ms6.3f.pc3", "MODE SENSE(6) all pages, saved values", scsi_in(t0, &mode_sense6(false, 3, 0x3F, 0, 255), 255));
    cmd("ms10.3f.pc3", "MODE SENSE(10) all pages, saved values", scsi_in(t0, &mode_sense10(0, 3, 0x3F, 0, 512), 512));
    for alloc in [4u8, 12] {
        cmd(&format!("ms6.3f.alloc{alloc}"), &format!("MODE SENSE(6) all pages, allocation length {alloc}"), scsi_in(t0, &mode_sense6(false, 0, 0x3F, 0, alloc), usize::from(alloc)));
    }
    for alloc in [8u16, 16] {
        cmd(&format!("ms10.3f.alloc{alloc}"), &format!("MODE SENSE(10) all pages, allocation length {alloc}"), scsi_in(t0, &mode_sense10(0, 0, 0x3F, 0, alloc), usize::from(alloc)));
    }
    cmd("ms10.3f.llbaa", "MODE SENSE(10) all pages with LLBAA", scsi_in(t0, &mode_sense10(0x10, 0, 0x3F, 0, 512), 512));
    cmd("ms6.3f.sub_ff", "MODE SENSE(6) all pages and subpages (0x3F/0xFF)", scsi_in(t0, &mode_sense6(false, 0, 0x3F, 0xFF, 255), 255));
    cmd("ms6.08.sub_01", "MODE SENSE(6) caching page, subpage 0x01", scsi_in(t0, &mode_sense6(false, 0, 0x08, 0x01, 255), 255));

    // ---- REQUEST SENSE
    cmd("rs.none.18", "REQUEST SENSE with nothing pending, allocation length 18", scsi_in(t0, &[0x03, 0, 0, 0, 18, 0], 18));
    cmd("rs.none.252", "REQUEST SENSE with nothing pending, allocation length 252", scsi_in(t0, &[0x03, 0, 0, 0, 252, 0], 252));
    cmd("rs.none.8", "REQUEST SENSE with nothing pending, allocation length 8", scsi_in(t0, &[0x03, 0, 0, 0, 8, 0], 8));
    cmd("rs.none.desc", "REQUEST SENSE with nothing pending, descriptor format", scsi_in(t0, &[0x03, 1, 0, 0, 252, 0], 252));
    cmd("rs.err.read", "READ(10) one past the end (the error REQUEST SENSE then reports)", scsi_in(t0, &cdb10(0x28, 0, end, 1), BS));
    cmd("rs.err.sense", "REQUEST SENSE right after that error", scsi_in(t0, &[0x03, 0, 0, 0, 252, 0], 252));
    cmd("rs.err.again", "REQUEST SENSE once more", scsi_in(t0, &[0x03, 0, 0, 0, 252, 0], 252));
    cmd("rs.err2.read", "READ(10) one past the end again", scsi_in(t0, &cdb10(0x28, 0, end, 1), BS));
    cmd("rs.err2.desc", "REQUEST SENSE in descriptor format after it", scsi_in(t0, &[0x03, 1, 0, 0, 252, 0], 252));
    cmd("rs.err3.read", "READ(10) one past the end a third time", scsi_in(t0, &cdb10(0x28, 0, end, 1), BS));
    cmd("rs.err3.tur", "TEST UNIT READY after it (does a good completion clear the sense?)", scsi_none(t0, &TUR));
    cmd("rs.err3.sense", "REQUEST SENSE after that", scsi_in(t0, &[0x03, 0, 0, 0, 252, 0], 252));

    // ---- REPORT LUNS
    cmd("rl.16", "REPORT LUNS, allocation length 16", scsi_in(t0, &report_luns(0, 16), 16));
    cmd("rl.256", "REPORT LUNS, allocation length 256", scsi_in(t0, &report_luns(0, 256), 256));
    cmd("rl.8", "REPORT LUNS, allocation length 8 (under 16)", scsi_in(t0, &report_luns(0, 8), 8));
    cmd("rl.24", "REPORT LUNS, allocation length 24", scsi_in(t0, &report_luns(0, 24), 24));
    cmd("rl.20", "REPORT LUNS, allocation length 20 (not a multiple of 8)", scsi_in(t0, &report_luns(0, 20), 20));
    cmd("rl.select2", "REPORT LUNS, SELECT REPORT 2", scsi_in(t0, &report_luns(2, 256), 256));
    cmd("rl.select3", "REPORT LUNS, SELECT REPORT 3", scsi_in(t0, &report_luns(3, 256), 256));

    // ---- no-data commands
    cmd("misc.tur", "TEST UNIT READY", scsi_none(t0, &TUR));
    cmd("misc.tur.reserved", "TEST UNIT READY with reserved bits set in byte 1", scsi_none(t0, &[0, 0x1F, 0, 0, 0, 0]));
    cmd("misc.sync10", "SYNCHRONIZE CACHE(10) of the whole medium", scsi_none(t0, &cdb10(0x35, 0, 0, 0)));
    cmd("misc.sync10.immed", "SYNCHRONIZE CACHE(10) with IMMED", scsi_none(t0, &cdb10(0x35, 0x02, 0, 0)));
    cmd("misc.sync10.range", "SYNCHRONIZE CACHE(10) of 8 blocks at LBA 8", scsi_none(t0, &cdb10(0x35, 0, 8, 8)));
    cmd("misc.sync10.past", "SYNCHRONIZE CACHE(10) at one past the end", scsi_none(t0, &cdb10(0x35, 0, end, 1)));
    cmd("misc.sync16", "SYNCHRONIZE CACHE(16) of the whole medium", scsi_none(t0, &cdb16(0x91, 0, 0, 0)));
    cmd("misc.ssu.start", "START STOP UNIT, START", scsi_none(t0, &[0x1B, 0, 0, 0, 0x01, 0]));
    cmd("misc.ssu.stop", "START STOP UNIT, stop", scsi_none(t0, &[0x1B, 0, 0, 0, 0x00, 0]));
    cmd("misc.ssu.stop.tur", "TEST UNIT READY after the stop", scsi_none(t0, &TUR));
    cmd("misc.ssu.stop.read", "READ(10) of LBA 0 after the stop", scsi_in(t0, &cdb10(0x28, 0, 0, 1), BS));
    cmd("misc.ssu.load", "START STOP UNIT, LOEJ and START", scsi_none(t0, &[0x1B, 0, 0, 0, 0x03, 0]));
    cmd("misc.ssu.immed", "START STOP UNIT with IMMED, START", scsi_none(t0, &[0x1B, 0x01, 0, 0, 0x01, 0]));
    cmd("misc.ssu.pc", "START STOP UNIT with POWER CONDITION 1 (active)", scsi_none(t0, &[0x1B, 0, 0, 0, 0x10, 0]));
    cmd("misc.verify10", "VERIFY(10) BYTCHK 0 of 8 blocks at LBA 0", scsi_none(t0, &cdb10(0x2F, 0, 0, 8)));
    cmd("misc.verify10.last", "VERIFY(10) BYTCHK 0 of the last block", scsi_none(t0, &cdb10(0x2F, 0, last, 1)));
    cmd("misc.verify10.past", "VERIFY(10) BYTCHK 0 one past the end", scsi_none(t0, &cdb10(0x2F, 0, end, 1)));
    cmd("misc.verify10.len0", "VERIFY(10) BYTCHK 0 of no blocks", scsi_none(t0, &cdb10(0x2F, 0, 0, 0)));
    cmd("misc.verify16", "VERIFY(16) BYTCHK 0 of 8 blocks at LBA 0", scsi_none(t0, &cdb16(0x8F, 0, 0, 8)));
    cmd("misc.verify10.bytchk1", "VERIFY(10) BYTCHK 1 of LBA 0 against zeros", scsi(t0, &cdb10(0x2F, 0x02, 0, 1), Direction::Out, BS));
    cmd("misc.verify10.bytchk1.mis", "VERIFY(10) BYTCHK 1 of LBA 0 against 0xFF bytes", Request::scsi(t0, &cdb10(0x2F, 0x02, 0, 1), Direction::Out, vec![0xFF; BS]));

    // ---- READ and WRITE at the edges
    cmd("rw.write10.last", "WRITE(10) of the last block", Request::scsi(t0, &cdb10(0x2A, 0, last, 1), Direction::Out, written_sector()));
    cmd("rw.read10.last", "READ(10) of the last block (what was just written)", scsi_in(t0, &cdb10(0x28, 0, last, 1), BS));
    cmd("rw.read10.past", "READ(10) one past the end", scsi_in(t0, &cdb10(0x28, 0, end, 1), BS));
    cmd("rw.read10.straddle", "READ(10) of 2 blocks from the last one", scsi_in(t0, &cdb10(0x28, 0, last, 2), 2 * BS));
    cmd("rw.write10.past", "WRITE(10) one past the end", Request::scsi(t0, &cdb10(0x2A, 0, end, 1), Direction::Out, written_sector()));
    cmd("rw.write10.straddle", "WRITE(10) of 2 blocks from the last one", Request::scsi(t0, &cdb10(0x2A, 0, last, 2), Direction::Out, [written_sector(), written_sector()].concat()));
    cmd("rw.read10.last.after", "READ(10) of the last block after the refused writes", scsi_in(t0, &cdb10(0x28, 0, last, 1), BS));
    cmd("rw.read16.huge", "READ(16) at LBA 2^40", scsi_in(t0, &cdb16(0x88, 0, 1 << 40, 1), BS));
    cmd("rw.read16.max", "READ(16) at LBA 2^64-1 (the end overflows)", scsi_in(t0, &cdb16(0x88, 0, u64::MAX, 1), BS));
    cmd("rw.read16.last", "READ(16) of the last block", scsi_in(t0, &cdb16(0x88, 0, n0 - 1, 1), BS));
    cmd("rw.read16.huge_len", "READ(16) of 2^32-1 blocks (a transfer over 2 GiB) into a 1-block buffer", scsi_in(t0, &cdb16(0x88, 0, 0, u32::MAX), BS));
    cmd("rw.read10.len0", "READ(10) of no blocks at LBA 0", scsi_none(t0, &cdb10(0x28, 0, 0, 0)));
    cmd("rw.read10.len0.end", "READ(10) of no blocks at one past the end", scsi_none(t0, &cdb10(0x28, 0, end, 0)));
    cmd("rw.read10.len0.past", "READ(10) of no blocks at two past the end", scsi_none(t0, &cdb10(0x28, 0, end + 1, 0)));
    cmd("rw.write10.len0", "WRITE(10) of no blocks at LBA 0", scsi_none(t0, &cdb10(0x2A, 0, 0, 0)));
    cmd("rw.read6", "READ(6) of 1 block at LBA 0", scsi_in(t0, &[0x08, 0, 0, 0, 1, 0], BS));
    cmd("rw.read12", "READ(12) of 1 block at LBA 0", scsi_in(t0, &[0xA8, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0], BS));
    cmd("rw.read10.fua", "READ(10) with FUA of LBA 0", scsi_in(t0, &cdb10(0x28, 0x08, 0, 1), BS));
    cmd("rw.read10.rdprotect", "READ(10) with RDPROTECT 1", scsi_in(t0, &cdb10(0x28, 0x20, 0, 1), BS));
    cmd("rw.read10.short_buffer", "READ(10) of 2 blocks into a 1-block buffer", scsi_in(t0, &cdb10(0x28, 0, 0, 2), BS));
    cmd("rw.read10.long_buffer", "READ(10) of 1 block (second to last) into a 2-block buffer", scsi_in(t0, &cdb10(0x28, 0, last - 1, 1), 2 * BS));
    cmd("rw.read10.in6", "READ(10) opcode in a 6-byte CDB", scsi_none(t0, &[0x28, 0, 0, 0, 0, 0]));

    // ---- WRITE SAME, UNMAP (advertised by VPD 0xB2), on the last blocks only
    let fill = |b: u8, n: usize| vec![b; n * BS];
    let ws = |op: u8, b1: u8, lba: u64, n: u32| -> Vec<u8> {
        if op == 0x41 { cdb10(op, b1, u32::try_from(lba).unwrap_or(u32::MAX), u16::try_from(n).unwrap_or(u16::MAX)).to_vec() } else { cdb16(op, b1, lba, n).to_vec() }
    };
    let last64 = n0 - 1;
    cmd("ws.10.last", "WRITE SAME(10) of 0x5A bytes to the last block", Request::scsi(t0, &ws(0x41, 0, last64, 1), Direction::Out, fill(0x5A, 1)));
    cmd("ws.10.last.read", "READ(10) of the last block after it", scsi_in(t0, &cdb10(0x28, 0, last, 1), BS));
    cmd("ws.16.ndob", "WRITE SAME(16) with NDOB and UNMAP (no data-out buffer) of the last block", scsi_none(t0, &ws(0x93, 0x09, last64, 1)));
    cmd("ws.16.ndob.read", "READ(10) of the last block after it", scsi_in(t0, &cdb10(0x28, 0, last, 1), BS));
    cmd("ws.16.zero", "WRITE SAME(16) of a zero block to the last block", Request::scsi(t0, &ws(0x93, 0, last64, 1), Direction::Out, fill(0, 1)));
    cmd("ws.16.zero.read", "READ(10) of the last block after it", scsi_in(t0, &cdb10(0x28, 0, last, 1), BS));
    cmd("ws.10.multi", "WRITE SAME(10) of 0xA5 bytes to the last 4 blocks", Request::scsi(t0, &ws(0x41, 0, last64 - 3, 4), Direction::Out, fill(0xA5, 1)));
    cmd("ws.10.multi.read", "READ(10) of the last 4 blocks after it", scsi_in(t0, &cdb10(0x28, 0, last - 3, 4), 4 * BS));
    cmd("ws.10.nb0", "WRITE SAME(10) of 0 blocks (the whole medium in SBC)", Request::scsi(t0, &ws(0x41, 0, 0, 0), Direction::Out, fill(0x5A, 1)));
    cmd("ws.10.lbdata", "WRITE SAME(10) with LBDATA", Request::scsi(t0, &ws(0x41, 0x02, last64, 1), Direction::Out, fill(0x5A, 1)));
    cmd("ws.10.past", "WRITE SAME(10) one past the end", Request::scsi(t0, &ws(0x41, 0, n0, 1), Direction::Out, fill(0x5A, 1)));
    let unmap_param = |hdr_desc_len: u16, descs: &[(u64, u32)]| -> Vec<u8> {
        let mut p = Vec::new();
        p.extend_from_slice(&be16(hdr_desc_len + 6));
        p.extend_from_slice(&be16(hdr_desc_len));
        p.extend_from_slice(&[0; 4]);
        for &(lba, n) in descs {
            p.extend_from_slice(&lba.to_be_bytes());
            p.extend_from_slice(&be32(n));
            p.extend_from_slice(&[0; 4]);
        }
        p
    };
    let unmap = |b1: u8, param: Vec<u8>| -> Request {
        let n = u16::try_from(param.len()).unwrap_or(u16::MAX);
        let l = be16(n);
        Request::scsi(t0, &[0x42, b1, 0, 0, 0, 0, 0, l[0], l[1], 0], if param.is_empty() { Direction::None } else { Direction::Out }, param)
    };
    cmd("unmap.last", "UNMAP of the last 4 blocks", unmap(0, unmap_param(16, &[(last64 - 3, 4)])));
    cmd("unmap.last.read", "READ(10) of the last 4 blocks after it", scsi_in(t0, &cdb10(0x28, 0, last - 3, 4), 4 * BS));
    cmd("unmap.anchor", "UNMAP with ANCHOR", unmap(1, unmap_param(16, &[(last64, 1)])));
    cmd("unmap.short", "UNMAP with a 4-byte parameter list", unmap(0, vec![0, 2, 0, 0]));
    cmd("unmap.desc_len8", "UNMAP whose block descriptor length is 8 (not a multiple of 16)", unmap(0, {
        let mut p = unmap_param(16, &[(last64, 1)]);
        p[3] = 8;
        p
    }));
    cmd("unmap.past", "UNMAP of one block past the end", unmap(0, unmap_param(16, &[(n0, 1)])));
    cmd("unmap.len0", "UNMAP with no parameter list", unmap(0, Vec::new()));

    // ---- MODE SELECT (the caching page's WCE is the one changeable bit)
    let caching = |wce: bool, len: u8| -> Vec<u8> {
        let mut p = vec![0u8; usize::from(len) + 2];
        p[0] = 0x08;
        p[1] = len;
        if wce {
            p[2] = 0x04;
        }
        p
    };
    let msel6 = |b1: u8, param: Vec<u8>| -> Request {
        let n = u8::try_from(param.len()).unwrap_or(u8::MAX);
        Request::scsi(t0, &[0x15, b1, 0, 0, n, 0], if param.is_empty() { Direction::None } else { Direction::Out }, param)
    };
    let hdr6 = |bd: &[u8], page: &[u8]| -> Vec<u8> { [&[0u8, 0, 0, u8::try_from(bd.len()).unwrap_or(0)][..], bd, page].concat() };
    let bd = |blocks: u32, bs: u32| -> Vec<u8> { [&be32(blocks)[..], &be32(bs)[..]].concat() };
    cmd("msel6.same", "MODE SELECT(6) of the caching page as it is (WCE 1)", msel6(0x10, hdr6(&[], &caching(true, 0x12))));
    cmd("msel6.wce0", "MODE SELECT(6) of the caching page with WCE 0", msel6(0x10, hdr6(&[], &caching(false, 0x12))));
    cmd("msel6.wce0.sense", "MODE SENSE(6) of the caching page after it", scsi_in(t0, &mode_sense6(true, 0, 0x08, 0, 255), 255));
    cmd("msel6.wce1", "MODE SELECT(6) of the caching page with WCE 1 again", msel6(0x10, hdr6(&[], &caching(true, 0x12))));
    cmd("msel6.wce1.sense", "MODE SENSE(6) of the caching page after it", scsi_in(t0, &mode_sense6(true, 0, 0x08, 0, 255), 255));
    cmd("msel6.pf0", "MODE SELECT(6) with PF 0", msel6(0, hdr6(&[], &caching(true, 0x12))));
    cmd("msel6.sp", "MODE SELECT(6) with SP 1", msel6(0x11, hdr6(&[], &caching(true, 0x12))));
    cmd("msel6.short", "MODE SELECT(6) with a 3-byte parameter list", msel6(0x10, vec![0, 0, 0]));
    cmd("msel6.len0", "MODE SELECT(6) with no parameter list", msel6(0x10, Vec::new()));
    cmd("msel6.awre0", "MODE SELECT(6) of the error recovery page with AWRE cleared (not changeable)", msel6(0x10, hdr6(&[], &[0x01, 0x0A, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])));
    cmd("msel6.bd", "MODE SELECT(6) with a block descriptor (512-byte blocks) and the caching page", msel6(0x10, hdr6(&bd(0, 512), &caching(true, 0x12))));
    cmd("msel6.bd4", "MODE SELECT(6) with a 4-byte block descriptor", msel6(0x10, hdr6(&[0, 0, 2, 0], &caching(true, 0x12))));
    cmd("msel6.page_len", "MODE SELECT(6) of the caching page with page length 0x10", msel6(0x10, hdr6(&[], &caching(true, 0x10))));
    cmd("msel6.all_pages", "MODE SELECT(6) of page 0x3F", msel6(0x10, hdr6(&[], &{
        let mut p = caching(true, 0x12);
        p[0] = 0x3F;
        p
    })));
    cmd("msel6.truncated", "MODE SELECT(6) of the caching page cut short", msel6(0x10, hdr6(&[], &caching(true, 0x12)[..10])));
    cmd("msel10.same", "MODE SELECT(10) of the caching page as it is", {
        let param = [&[0u8, 0, 0, 0, 0, 0, 0, 0][..], &caching(true, 0x12)].concat();
        let l = be16(u16::try_from(param.len()).unwrap_or(0));
        Request::scsi(t0, &[0x55, 0x10, 0, 0, 0, 0, 0, l[0], l[1], 0], Direction::Out, param)
    });

    // ---- opcodes
    cmd("op.02", "unknown opcode 0x02 (6-byte group)", scsi_none(t0, &[0x02, 0, 0, 0, 0, 0]));
    cmd("op.59", "unknown opcode 0x59 (10-byte group)", scsi_none(t0, &cdb10(0x59, 0, 0, 0)));
    cmd("op.c0", "vendor-specific opcode 0xC0", scsi_none(t0, &[0xC0, 0, 0, 0, 0, 0]));
    cmd("op.ff", "opcode 0xFF", scsi_none(t0, &[0xFF, 0, 0, 0, 0, 0]));
    cmd("op.log_sense", "LOG SENSE of the supported pages", scsi_in(t0, &[0x4D, 0, 0x40, 0, 0, 0, 0, 0, 64, 0], 64));
    cmd("op.seek10", "SEEK(10) to LBA 0", scsi_none(t0, &cdb10(0x2B, 0, 0, 0)));
    cmd("op.seek10.last", "SEEK(10) to the last LBA", scsi_none(t0, &cdb10(0x2B, 0, last, 0)));
    cmd("op.seek10.past", "SEEK(10) to one past the end", scsi_none(t0, &cdb10(0x2B, 0, end, 0)));
    cmd("op.rezero", "REZERO UNIT", scsi_none(t0, &[0x01, 0, 0, 0, 0, 0]));
    cmd("op.reserve6.3rdpty", "RESERVE(6) with the third-party bit", scsi_none(t0, &[0x16, 0x01, 0, 0, 0, 0]));
    cmd("op.reserve10", "RESERVE(10)", scsi_none(t0, &cdb10(0x56, 0, 0, 0)));
    cmd("op.release10", "RELEASE(10)", scsi_none(t0, &cdb10(0x57, 0, 0, 0)));
    cmd("op.release10.3rdpty", "RELEASE(10) with the third-party bit", scsi_none(t0, &cdb10(0x57, 0x02, 0, 0)));
    cmd("op.format_unit", "FORMAT UNIT without parameter data", scsi_none(t0, &[0x04, 0, 0, 0, 0, 0]));
    cmd("misc.sync16.immed", "SYNCHRONIZE CACHE(16) with IMMED", scsi_none(t0, &cdb16(0x91, 0x02, 0, 0)));
    cmd("op.reserve6", "RESERVE(6)", scsi_none(t0, &[0x16, 0, 0, 0, 0, 0]));
    cmd("op.release6", "RELEASE(6)", scsi_none(t0, &[0x17, 0, 0, 0, 0, 0]));
    cmd("op.prevent_allow", "PREVENT ALLOW MEDIUM REMOVAL (allow)", scsi_none(t0, &[0x1E, 0, 0, 0, 0, 0]));
    cmd("op.pr_in", "PERSISTENT RESERVE IN, READ KEYS", scsi_in(t0, &[0x5E, 0, 0, 0, 0, 0, 0, 0, 8, 0], 8));
    cmd("op.read_defect10", "READ DEFECT DATA(10)", scsi_in(t0, &[0x37, 0, 0x18, 0, 0, 0, 0, 0, 8, 0], 8));
    cmd("op.read_buffer", "READ BUFFER, descriptor mode", scsi_in(t0, &[0x3C, 0x03, 0, 0, 0, 0, 0, 0, 4, 0], 4));
    cmd("op.send_diag", "SEND DIAGNOSTIC, self test", scsi_none(t0, &[0x1D, 0x04, 0, 0, 0, 0]));
    cmd("op.report_opcodes", "REPORT SUPPORTED OPERATION CODES (MAINTENANCE IN)", scsi_in(t0, &[0xA3, 0x0C, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0], 512));
    cmd("op.get_config", "GET CONFIGURATION (an MMC command)", scsi_in(t0, &[0x46, 0, 0, 0, 0, 0, 0, 0, 8, 0], 8));
    cmd("op.gesn", "GET EVENT STATUS NOTIFICATION, polled, media class", scsi_in(t0, &[0x4A, 1, 0, 0, 0x10, 0, 0, 0, 8, 0], 8));
    cmd("op.read_toc", "READ TOC, format 0", scsi_in(t0, &[0x43, 0, 0, 0, 0, 0, 0, 0, 12, 0], 12));
    cmd("op.read_toc.msf", "READ TOC, format 0, MSF addresses", scsi_in(t0, &[0x43, 2, 0, 0, 0, 0, 0, 0, 64, 0], 64));
    cmd("op.read_toc.leadout", "READ TOC, format 0, from the lead-out (track 0xAA)", scsi_in(t0, &[0x43, 0, 0, 0, 0, 0, 0xAA, 0, 64, 0], 64));
    cmd("op.read_toc.track2", "READ TOC, format 0, from track 2", scsi_in(t0, &[0x43, 0, 0, 0, 0, 0, 2, 0, 64, 0], 64));
    cmd("op.read_toc.f1", "READ TOC, format 1 (sessions)", scsi_in(t0, &[0x43, 0, 1, 0, 0, 0, 0, 0, 64, 0], 64));
    cmd("op.read_toc.f2", "READ TOC, format 2 (raw TOC)", scsi_in(t0, &[0x43, 0, 2, 0, 0, 0, 0, 0, 128, 0], 128));
    cmd("op.read_toc.f2.msf", "READ TOC, format 2, MSF addresses", scsi_in(t0, &[0x43, 2, 2, 0, 0, 0, 0, 0, 128, 0], 128));
    cmd("op.read_toc.f3", "READ TOC, format 3", scsi_in(t0, &[0x43, 0, 3, 0, 0, 0, 0, 0, 64, 0], 64));
    cmd("op.mech_status", "MECHANISM STATUS", scsi_in(t0, &[0xBD, 0, 0, 0, 0, 0, 0, 0, 0, 8, 0, 0], 8));
    cmd("op.read_disc_info", "READ DISC INFORMATION", scsi_in(t0, &[0x51, 0, 0, 0, 0, 0, 0, 0, 34, 0], 34));
    cmd("op.read_dvd", "READ DVD STRUCTURE", scsi_in(t0, &[0xAD, 0, 0, 0, 0, 0, 0, 0, 0, 8, 0, 0], 8));
    cmd("op.get_lba_status", "GET LBA STATUS (SERVICE ACTION IN(16) 0x12)", scsi_in(t0, &{
        let mut c = rc16(32);
        c[1] = 0x12;
        c
    }, 32));

    // ---- another LUN of an existing target, a missing target
    cmd("lun1.inq.std", "standard INQUIRY to LUN 1 of target 0", scsi_in(t0, &inquiry(0, 0, 36), 36).with_lun(1));
    cmd("lun1.inq.std.96", "standard INQUIRY to LUN 1, allocation length 96", scsi_in(t0, &inquiry(0, 0, 96), 96).with_lun(1));
    cmd("lun1.inq.vpd.00", "INQUIRY EVPD 0x00 to LUN 1", scsi_in(t0, &inquiry(1, 0, 255), 255).with_lun(1));
    cmd("lun1.inq.vpd.80", "INQUIRY EVPD 0x80 to LUN 1", scsi_in(t0, &inquiry(1, 0x80, 255), 255).with_lun(1));
    cmd("lun1.tur", "TEST UNIT READY to LUN 1", scsi_none(t0, &TUR).with_lun(1));
    cmd("lun1.rs", "REQUEST SENSE to LUN 1", scsi_in(t0, &[0x03, 0, 0, 0, 252, 0], 252).with_lun(1));
    cmd("lun1.rc10", "READ CAPACITY(10) to LUN 1", scsi_in(t0, &RC10, 8).with_lun(1));
    cmd("lun1.rl", "REPORT LUNS to LUN 1", scsi_in(t0, &report_luns(0, 256), 256).with_lun(1));
    cmd("lun1.read10", "READ(10) of LBA 0 to LUN 1", scsi_in(t0, &cdb10(0x28, 0, 0, 1), BS).with_lun(1));
    cmd("lun1.ms6", "MODE SENSE(6) to LUN 1", scsi_in(t0, &mode_sense6(false, 0, 0x3F, 0, 255), 255).with_lun(1));
    cmd("lun1.op.ff", "opcode 0xFF to LUN 1", scsi_none(t0, &[0xFF, 0, 0, 0, 0, 0]).with_lun(1));
    cmd("missing.inq", "standard INQUIRY to a target with no device", scsi_in(MISSING_TARGET, &inquiry(0, 0, 36), 36));
    cmd("missing.tur", "TEST UNIT READY to a target with no device", scsi_none(MISSING_TARGET, &TUR));
    cmd("missing.read10", "READ(10) to a target with no device", scsi_in(MISSING_TARGET, &cdb10(0x28, 0, 0, 1), BS));

    // ---- unit attention after a bus reset: which commands report it, which leave it pending
    let ua: Vec<(&str, &str, Request)> = vec![
        ("inq", "standard INQUIRY", scsi_in(t0, &inquiry(0, 0, 36), 36)),
        ("inq.vpd.80", "INQUIRY EVPD 0x80", scsi_in(t0, &inquiry(1, 0x80, 255), 255)),
        ("rl", "REPORT LUNS", scsi_in(t0, &report_luns(0, 256), 256)),
        ("rs", "REQUEST SENSE", scsi_in(t0, &[0x03, 0, 0, 0, 252, 0], 252)),
        ("tur", "TEST UNIT READY", scsi_none(t0, &TUR)),
        ("rc10", "READ CAPACITY(10)", scsi_in(t0, &RC10, 8)),
        ("ms6", "MODE SENSE(6) caching page", scsi_in(t0, &mode_sense6(false, 0, 0x08, 0, 255), 255)),
        ("read10", "READ(10) of LBA 0", scsi_in(t0, &cdb10(0x28, 0, 0, 1), BS)),
        ("op.ff", "opcode 0xFF", scsi_none(t0, &[0xFF, 0, 0, 0, 0, 0])),
        ("huge_xfer", "READ(16) of 2^32-1 blocks (invalid field)", scsi_in(t0, &cdb16(0x88, 0, 0, u32::MAX), BS)),
        ("sync16", "SYNCHRONIZE CACHE(16)", scsi_none(t0, &cdb16(0x91, 0, 0, 0))),
        ("msel6", "MODE SELECT(6) of the caching page as it is", Request::scsi(t0, &[0x15, 0x10, 0, 0, 24, 0], Direction::Out, {
            let mut p = vec![0u8; 24];
            p[4] = 0x08;
            p[5] = 0x12;
            p[6] = 0x04;
            p
        })),
        ("rs.desc", "REQUEST SENSE in descriptor format", scsi_in(t0, &[0x03, 1, 0, 0, 252, 0], 252)),
        ("gesn", "GET EVENT STATUS NOTIFICATION (exempt, and refused by a disk)", scsi_in(t0, &[0x4A, 1, 0, 0, 0x10, 0, 0, 0, 8, 0], 8)),
        ("lun1.inq", "INQUIRY to LUN 1", scsi_in(t0, &inquiry(0, 0, 36), 36).with_lun(1)),
        ("lun1.tur", "TEST UNIT READY to LUN 1", scsi_none(t0, &TUR).with_lun(1)),
    ];
    for (tag, what, req) in ua {
        s.push(Step::BusReset(format!("ua.{tag}.reset")));
        s.push(Step::Cmd(Case::new(format!("ua.{tag}.cmd"), format!("{what} first after a bus reset"), req)));
        s.push(Step::Cmd(Case::new(format!("ua.{tag}.tur"), "TEST UNIT READY after that", scsi_none(t0, &TUR))));
        s.push(Step::Cmd(Case::new(format!("ua.{tag}.rs"), "REQUEST SENSE after that", scsi_in(t0, &[0x03, 0, 0, 0, 252, 0], 252))));
    }
    s.push(Step::BusReset("ua.twice.reset".into()));
    s.push(Step::Cmd(Case::new("ua.twice.tur1", "TEST UNIT READY after a bus reset", scsi_none(t0, &TUR))));
    s.push(Step::Cmd(Case::new("ua.twice.tur2", "TEST UNIT READY once more", scsi_none(t0, &TUR))));
    if let Some(t1) = t1 {
        s.push(Step::Cmd(Case::new("ua.t1.tur1", "TEST UNIT READY of target 1 (reset many times, never asked)", scsi_none(t1, &TUR))));
        s.push(Step::Cmd(Case::new("ua.t1.tur2", "TEST UNIT READY of target 1 once more", scsi_none(t1, &TUR))));
    }

    // ---- registers, PCI, a reset under load
    s.push(Step::Registers);
    s.push(Step::Pci);
    s.push(Step::ResetUnderLoad(16));
    if let Some(t1) = t1 {
        s.push(Step::Cmd(Case::new("load.t1.tur", "TEST UNIT READY of target 1 after the reset under load", scsi_none(t1, &TUR))));
    }
    s
}

fn srb_name(status: u8) -> String {
    match status {
        sys::SRB_STATUS_PENDING => "PENDING".into(),
        sys::SRB_STATUS_SUCCESS => "SUCCESS".into(),
        sys::SRB_STATUS_ABORTED => "ABORTED".into(),
        sys::SRB_STATUS_ERROR => "ERROR".into(),
        sys::SRB_STATUS_BUSY => "BUSY".into(),
        sys::SRB_STATUS_INVALID_REQUEST => "INVALID_REQUEST".into(),
        sys::SRB_STATUS_NO_DEVICE => "NO_DEVICE".into(),
        sys::SRB_STATUS_TIMEOUT => "TIMEOUT".into(),
        sys::SRB_STATUS_SELECTION_TIMEOUT => "SELECTION_TIMEOUT".into(),
        sys::SRB_STATUS_COMMAND_TIMEOUT => "COMMAND_TIMEOUT".into(),
        sys::SRB_STATUS_MESSAGE_REJECTED => "MESSAGE_REJECTED".into(),
        sys::SRB_STATUS_BUS_RESET => "BUS_RESET".into(),
        sys::SRB_STATUS_REQUEST_SENSE_FAILED => "REQUEST_SENSE_FAILED".into(),
        sys::SRB_STATUS_DATA_OVERRUN => "DATA_OVERRUN".into(),
        sys::SRB_STATUS_INVALID_LUN => "INVALID_LUN".into(),
        sys::SRB_STATUS_INVALID_TARGET_ID => "INVALID_TARGET_ID".into(),
        sys::SRB_STATUS_BAD_FUNCTION => "BAD_FUNCTION".into(),
        other => format!("{other:#04x}"),
    }
}

fn dir_name(d: Direction) -> &'static str {
    match d {
        Direction::None => "none",
        Direction::In => "in",
        Direction::Out => "out",
    }
}

/// The record of one completion.
fn record(case: &Case, c: &Completion) -> Value {
    let mut m = Map::new();
    m.insert("id".into(), json!(case.id));
    m.insert("what".into(), json!(case.what));
    m.insert("target".into(), json!(case.req.target));
    m.insert("lun".into(), json!(case.req.lun));
    m.insert("cdb".into(), json!(hex(&case.req.cdb)));
    m.insert("dir".into(), json!(dir_name(case.req.direction)));
    m.insert("len".into(), json!(case.req.data.len()));
    m.insert("srb".into(), json!(srb_name(c.status())));
    m.insert("srb_flags".into(), json!(format!("{:#04x}", c.srb_status & !0x3F)));
    m.insert("scsi_status".into(), json!(format!("{:#04x}", c.scsi_status)));
    m.insert(
        "sense".into(),
        rig::sense_triple(c).map_or(Value::Null, |(k, a, q)| json!(format!("{k:02x}/{a:02x}/{q:02x}"))),
    );
    m.insert("sense_len".into(), json!(c.sense.len()));
    m.insert("sense_data".into(), json!(hex(&c.sense)));
    m.insert("dtl".into(), json!(c.data_transfer_length));
    if case.req.direction == Direction::In {
        if c.data.len() <= FULL_DATA {
            m.insert("data".into(), json!(hex(&c.data)));
        } else {
            m.insert("data_len".into(), json!(c.data.len()));
            m.insert("data_hash".into(), json!(format!("fnv1a64:{:016x}", fnv1a(&c.data))));
        }
    }
    Value::Object(m)
}

/// The registers read: name, offset in the MMIO BAR, access size.
const REGISTERS: &[(&str, u64, u8)] = &[
    ("command_status", 0x0008, 4),
    ("command_status.b0", 0x0008, 1),
    ("command_status.w0", 0x0008, 2),
    ("last_sts_0", 0x0100, 4),
    ("intr_status", 0x100C, 4),
    ("intr_status.b1", 0x100D, 1),
    ("intr_mask", 0x2010, 4),
    ("intr_mask.b0", 0x2010, 1),
    ("intr_mask.b1", 0x2011, 1),
    ("intr_mask.b2", 0x2012, 1),
    ("intr_mask.b3", 0x2013, 1),
    ("intr_mask.w0", 0x2010, 2),
    ("intr_mask.w2", 0x2012, 2),
    ("command", 0x0000, 4),
    ("command_data", 0x0004, 4),
    ("kick_non_rw_io", 0x3014, 4),
    ("debug", 0x3018, 4),
    ("kick_rw_io", 0x4018, 4),
    ("unused_0x5000", 0x5000, 4),
    ("msix_table", 0x6000, 4),
    ("msix_pba", 0x7000, 4),
    ("last_word", 0x7FFC, 4),
];

/// The register window: the first memory BAR of at least 32 KiB, as the driver picks it.
fn mmio_bar(hba: &dyn Hba) -> Option<u8> {
    hba.bars().into_iter().find(|b| b.kind == BarKind::Memory && b.len >= 0x8000).map(|b| b.index)
}

fn registers(hba: &dyn Hba) -> Vec<Value> {
    let Some(bar) = mmio_bar(hba) else {
        return vec![json!({"id": "reg.window", "what": "the register BAR", "value": "none"})];
    };
    REGISTERS
        .iter()
        .map(|&(name, off, size)| {
            let v = hba.read(bar, off, size);
            json!({
                "id": format!("reg.{name}"),
                "what": format!("{size}-byte read at {off:#06x} of the register BAR (idle, interrupts enabled)"),
                "value": format!("{v:#010x}"),
            })
        })
        .collect()
}

fn cfg_u8(b: &[u8; 256], at: usize) -> u8 {
    b.get(at).copied().unwrap_or(0)
}

fn cfg_u16(b: &[u8; 256], at: usize) -> u16 {
    u16::from_le_bytes([cfg_u8(b, at), cfg_u8(b, at + 1)])
}

fn pci(hba: &dyn Hba) -> Vec<Value> {
    let mut b = [0u8; 256];
    let n = hba.config_read(0, &mut b);
    let mut out = Vec::new();
    let mut put = |id: &str, what: &str, v: String| out.push(json!({"id": format!("pci.{id}"), "what": what, "value": v}));
    put("config_bytes", "bytes of configuration space readable", n.to_string());
    put("vendor_device", "vendor and device ID", format!("{:04x}:{:04x}", cfg_u16(&b, 0), cfg_u16(&b, 2)));
    put("command", "command register", format!("{:#06x}", cfg_u16(&b, 4)));
    put("status.cap_list", "status register: capability list bit", format!("{}", cfg_u16(&b, 6) >> 4 & 1));
    put("revision", "revision ID", format!("{:#04x}", cfg_u8(&b, 8)));
    put("class", "class code", format!("{:02x}{:02x}{:02x}", cfg_u8(&b, 11), cfg_u8(&b, 10), cfg_u8(&b, 9)));
    put("cache_line", "cache line size", format!("{:#04x}", cfg_u8(&b, 0x0C)));
    put("latency_timer", "latency timer", format!("{:#04x}", cfg_u8(&b, 0x0D)));
    put("header_type", "header type", format!("{:#04x}", cfg_u8(&b, 0x0E)));
    put("subsystem", "subsystem vendor and ID", format!("{:04x}:{:04x}", cfg_u16(&b, 0x2C), cfg_u16(&b, 0x2E)));
    put("rom", "expansion ROM base register", format!("{:#010x}", u32::from_le_bytes([b[0x30], b[0x31], b[0x32], b[0x33]])));
    put("interrupt_line", "interrupt line register", format!("{}", cfg_u8(&b, 0x3C)));
    put("interrupt_pin", "interrupt pin", format!("{}", cfg_u8(&b, 0x3D)));
    let mut caps = Vec::new();
    let mut at = usize::from(cfg_u8(&b, 0x34) & 0xFC);
    let mut msi = None;
    let mut express = None;
    while at >= 0x40 && caps.len() < 16 {
        let id = cfg_u8(&b, at);
        caps.push(format!("{id:02x}@{at:02x}"));
        if id == 0x05 {
            msi = Some(cfg_u16(&b, at + 2));
        }
        if id == 0x10 {
            express = Some(at);
        }
        at = usize::from(cfg_u8(&b, at + 1) & 0xFC);
    }
    put("capabilities", "capability list (ID@offset)", caps.join(" "));
    if let Some(at) = express {
        put("express", "PCI Express capability, 0x3C bytes", hex(b.get(at..at + 0x3C).unwrap_or(&[])));
    }
    put("msi_control", "MSI message control", msi.map_or_else(|| "none".into(), |m| format!("{m:#06x}")));
    for bar in hba.bars() {
        let kind = match bar.kind {
            BarKind::Memory => "mem",
            BarKind::Io => "io",
        };
        put(&format!("bar{}", bar.index), "kind and length of an implemented BAR", format!("{kind} {:#x}", bar.len));
        put(&format!("bar{}.base", bar.index), "address assigned to the BAR", format!("{:#x}", bar.base));
    }
    out
}

/// Submits `n` READs of 64 KiB to target `t`; once the first has completed (so the others have
/// reached the device, or are about to), a bus reset; records how the others ended. Which of
/// them the reset catches is timing (allowlisted); that each ends exactly once, in success, in
/// `BUS_RESET` or in the reset's unit attention (when it reached the device after the reset), is
/// not.
fn reset_under_load(rig: &mut Rig, t: u8, blocks: u64, n: usize) -> Result<Vec<Value>, String> {
    let per = 128u64;
    let mut tickets = Vec::new();
    for i in 0..n as u64 {
        let lba = u32::try_from((i * per) % blocks.saturating_sub(per).max(1)).unwrap_or(0);
        let req = scsi_in(t, &cdb10(0x28, 0, lba, 128), 64 * 1024);
        tickets.push(rig.machine.submit(req).map_err(|e| e.to_string())?);
    }
    let mut tickets = tickets.into_iter();
    let first = tickets.next().map(|t| rig.machine.wait(t)).transpose().map_err(|e| e.to_string())?;
    let reset = rig.machine.execute(Request::reset_bus(0)).map_err(|e| e.to_string())?;
    let mut statuses = Vec::new();
    let mut unexpected = Vec::new();
    let mut caught = 0;
    for t in tickets {
        let c = rig.machine.wait(t).map_err(|e| e.to_string())?;
        match c.status() {
            sys::SRB_STATUS_BUS_RESET => caught += 1,
            sys::SRB_STATUS_SUCCESS => {}
            _ if rig::is_unit_attention(&c) => {}
            _ => unexpected.push(rig::describe(&c)),
        }
        statuses.push(srb_name(c.status()));
    }
    statuses.sort();
    statuses.dedup();
    // Target 0 is usable again once its unit attention (if a READ did not take it) is cleared.
    let ready = rig.execute(&scsi_none(t, &TUR)).map_err(|e| e.to_string())?;
    Ok(vec![
        json!({"id": "load.first", "what": "the first of the READs", "srb": first.map_or_else(|| "none".into(), |c| srb_name(c.status()))}),
        json!({"id": "load.reset", "what": "SRB_FUNCTION_RESET_BUS with READs in flight", "srb": srb_name(reset.status())}),
        json!({"id": "load.outcomes", "what": "every READ ended once, in SUCCESS, BUS_RESET or the reset's UNIT ATTENTION", "value": if unexpected.is_empty() { "ok".to_string() } else { unexpected.join("; ") }}),
        json!({"id": "load.caught", "what": format!("of the other {} 64 KiB READs, how many the reset completed with BUS_RESET", n.saturating_sub(1)), "value": caught}),
        json!({"id": "load.statuses", "what": "the statuses those READs ended with", "value": statuses.join(" ")}),
        json!({"id": "load.t0.ready", "what": "TEST UNIT READY of target 0 afterwards (unit attention retried)", "srb": srb_name(ready.status())}),
    ])
}

/// Lets the machine come to rest before the registers are read: nothing outstanding, and the
/// driver's deferred interrupt processing done (it masks the device in its ISR and unmasks it
/// after completing requests, which a real device lets the probe catch in between).
fn settle(rig: &Rig, hba: &dyn Hba) -> Result<(), String> {
    rig.machine.run_until_idle().map_err(|e| e.to_string())?;
    let Some(bar) = mmio_bar(hba) else { return Ok(()) };
    for _ in 0..1000 {
        if hba.read(bar, 0x2010, 4) != 0 {
            break;
        }
        rig.machine.run_for(std::time::Duration::from_millis(1)).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Runs the catalogue on `rig`. `Err` if the machine stopped.
fn run_catalogue(rig: &mut Rig) -> Result<Vec<Value>, String> {
    let Some(d0) = rig.disks.first().cloned() else { return Err("the driver found no disk".into()) };
    if d0.block_size != 512 {
        return Err(format!("target {} has {}-byte blocks; the probe wants 512", d0.target, d0.block_size));
    }
    let t1 = rig.disks.get(1).map(|d| d.target);
    let mut out = Vec::new();
    for step in catalogue(d0.target, d0.blocks, t1) {
        match step {
            Step::Cmd(case) => {
                let c = rig.machine.execute(case.req.clone()).map_err(|e| format!("{}: {e}", case.id))?;
                out.push(record(&case, &c));
            }
            Step::BusReset(id) => {
                let c = rig.machine.execute(Request::reset_bus(0)).map_err(|e| format!("{id}: {e}"))?;
                out.push(json!({"id": id, "what": "SRB_FUNCTION_RESET_BUS", "srb": srb_name(c.status())}));
            }
            Step::Registers => {
                let hba = rig.machine.hba(0).ok_or("no adapter")?;
                settle(rig, &*hba)?;
                out.extend(registers(&*hba));
            }
            Step::Pci => {
                let hba = rig.machine.hba(0).ok_or("no adapter")?;
                out.extend(pci(&*hba));
            }
            Step::ResetUnderLoad(n) => out.extend(reset_under_load(rig, d0.target, d0.blocks, n)?),
        }
    }
    Ok(out)
}

/// The probe's whole answer.
fn document(rig: &Rig, results: &[Value]) -> Value {
    let disks: Vec<Value> = rig
        .disks
        .iter()
        .map(|d| json!({"target": d.target, "blocks": d.blocks, "block_size": d.block_size, "vendor": d.vendor, "product": d.product}))
        .collect();
    json!({
        "probe": FORMAT,
        "hba": rig.hba_description(),
        "mode": rig.config.mode_name(),
        "disks": disks,
        "results": results,
    })
}

/// The framed form of a document, as `--output` writes it.
#[must_use]
pub fn framed(doc: &str) -> String {
    format!("\n{BEGIN} len={} fnv1a64={:016x}@@\n{doc}\n{END}\n", doc.len(), fnv1a(doc.as_bytes()))
}

/// Finds the framed document in `text` (e.g. a serial capture) and checks its length and hash;
/// text without a frame is taken as the document itself.
///
/// # Errors
/// A frame that is cut short or damaged.
pub fn unframe(text: &str) -> Result<String, String> {
    let Some(start) = text.rfind(BEGIN) else { return Ok(text.to_string()) };
    let rest = &text[start + BEGIN.len()..];
    let (header, body) = rest.split_once('\n').ok_or("probe frame: no line after the header")?;
    let field = |name: &str| -> Option<&str> {
        header.split_whitespace().find_map(|w| w.strip_prefix(name)).map(|v| v.trim_end_matches('@'))
    };
    let len: usize = field("len=").and_then(|v| v.parse().ok()).ok_or("probe frame: no len= in the header")?;
    let hash = field("fnv1a64=").ok_or("probe frame: no fnv1a64= in the header")?;
    // A tty may have turned "\n" into "\r\n"; the document itself is one line.
    let body = body.replace('\r', "");
    let doc = body.get(..len).ok_or_else(|| format!("probe frame: cut short ({} of {len} bytes)", body.len()))?;
    if !body[len..].trim_start().starts_with(END) {
        return Err("probe frame: no end marker after the document".into());
    }
    let want = format!("{:016x}", fnv1a(doc.as_bytes()));
    if want != hash {
        return Err(format!("probe frame: hash {want} does not match the header's {hash}"));
    }
    Ok(doc.to_string())
}

/// Puts a terminal into raw mode, so that what is written reaches the other end unchanged.
fn make_raw(f: &std::fs::File) {
    use std::os::fd::AsRawFd;
    let fd = f.as_raw_fd();
    // SAFETY: `termios` is plain data; `tcgetattr` fills it or fails (then it is not used).
    let mut t: libc::termios = unsafe { std::mem::zeroed() };
    // SAFETY: `fd` is an open descriptor for the duration of the call; `t` is a valid termios.
    if unsafe { libc::tcgetattr(fd, &raw mut t) } != 0 {
        return; // not a terminal
    }
    // SAFETY: `t` is a valid termios.
    unsafe { libc::cfmakeraw(&raw mut t) };
    // SAFETY: as for tcgetattr.
    unsafe { libc::tcsetattr(fd, libc::TCSANOW, &raw const t) };
}

fn write_output(path: &Path, doc: &str) -> Result<(), String> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(!path.starts_with("/dev"))
        .open(path)
        .map_err(|e| format!("--output {}: {e}", path.display()))?;
    make_raw(&f);
    f.write_all(framed(doc).as_bytes()).and_then(|()| f.flush()).map_err(|e| format!("--output {}: {e}", path.display()))?;
    // Let a serial port drain before the program (and perhaps the VM) ends.
    // SAFETY: `tcdrain` on any descriptor is harmless; on a non-terminal it fails with ENOTTY.
    unsafe { libc::tcdrain(std::os::fd::AsRawFd::as_raw_fd(&f)) };
    Ok(())
}

/// A short line per result for the terminal.
fn table(doc: &Value) -> String {
    let mut s = String::new();
    for r in doc["results"].as_array().into_iter().flatten() {
        let id = r["id"].as_str().unwrap_or("?");
        if let Some(v) = r.get("value") {
            let _ = writeln!(s, "  {id:<28} {}", v.as_str().map_or_else(|| v.to_string(), str::to_string));
            continue;
        }
        let mut line = format!("  {id:<28} {}", r["srb"].as_str().unwrap_or("?"));
        if let Some(st) = r["scsi_status"].as_str().filter(|s| *s != "0x00") {
            let _ = write!(line, " scsi {st}");
        }
        if let Some(k) = r["sense"].as_str() {
            let _ = write!(line, " sense {k}");
        }
        if let Some(d) = r.get("dtl") {
            let _ = write!(line, " dtl {d}");
        }
        if let Some(d) = r["data"].as_str() {
            let mut shown = d;
            while let Some(x) = shown.strip_suffix("00") {
                shown = x;
            }
            let shown = if shown.len() > 32 { format!("{}…", &shown[..32]) } else { shown.to_string() };
            let _ = write!(line, " data {shown}");
        } else if let Some(h) = r["data_hash"].as_str() {
            let _ = write!(line, " data {} bytes {h}", r["data_len"]);
        }
        s.push_str(&line);
        s.push('\n');
    }
    s
}

/// `rspvscsi-sim probe`: runs the catalogue on a fresh machine and prints (or writes) the answers.
#[must_use]
pub fn run(args: &RunArgs, output: Option<&Path>) -> Verdict {
    let access = if args.allow_write { Access::Write } else { Access::WriteUnasked("the probe (WRITE, WRITE SAME and UNMAP at the last LBAs)".into()) };
    let config = match RigConfig::from_args(args, &PROBE_DISKS, &access) {
        Ok(c) => c,
        Err(e) => return app::usage(&e),
    };
    let mut rig = match Rig::new(&config) {
        Ok(r) => r,
        Err(e) => {
            app::report_rig_error(&e, args.json);
            return Verdict::Fail;
        }
    };
    let results = run_catalogue(&mut rig);
    if let Some(e) = rig.finish_trace() {
        eprintln!("rspvscsi-sim probe: FAIL: {e}");
        return Verdict::Fail;
    }
    let violations: Vec<String> = rig.machine.violations().iter().map(|v| format!("{:#x} {:?}: {}", v.code, v.rule, v.message)).collect();
    let results = match results {
        Ok(r) => r,
        Err(e) => {
            eprintln!("rspvscsi-sim probe: FAIL: {e}");
            for v in &violations {
                eprintln!("  verifier: {v}");
            }
            return Verdict::Fail;
        }
    };
    let n = results.len();
    let doc = document(&rig, &results);
    let text = doc.to_string();
    if let Some(path) = output
        && let Err(e) = write_output(path, &text)
    {
        eprintln!("rspvscsi-sim probe: {e}");
        return Verdict::Fail;
    }
    let shown = if args.json { format!("{text}\n") } else { format!("rspvscsi-sim probe: {} ({} results)\n{}", rig.hba_description(), n, table(&doc)) };
    if let Err(e) = app::emit(&shown) {
        eprintln!("rspvscsi-sim probe: FAIL: {e}");
        return Verdict::Fail;
    }
    if violations.is_empty() {
        Verdict::Pass
    } else {
        for v in &violations {
            eprintln!("rspvscsi-sim probe: verifier: {v}");
        }
        Verdict::Fail
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_damage_shows() {
        let doc = r#"{"probe":1,"results":[]}"#;
        let f = framed(doc);
        assert_eq!(unframe(&f).unwrap(), doc);
        let noisy = format!("boot noise\r\n{}\r\nmore", f.replace('\n', "\r\n"));
        assert_eq!(unframe(&noisy).unwrap(), doc);
        assert!(unframe(&f.replace("\"probe\":1", "\"probe\":2")).is_err());
        assert!(unframe(&f[..f.len() - 30]).is_err());
        assert_eq!(unframe(doc).unwrap(), doc, "an unframed document is taken as is");
    }

    #[test]
    fn the_catalogue_has_unique_ids() {
        let mut ids: Vec<String> = catalogue(0, 16384, Some(1))
            .into_iter()
            .filter_map(|s| match s {
                Step::Cmd(c) => Some(c.id),
                Step::BusReset(id) => Some(id),
                _ => None,
            })
            .collect();
        let n = ids.len();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), n);
    }
}
