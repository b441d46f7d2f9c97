//! Target `srb`: SRBs as a class driver or a pass-through application may send them, mixed with
//! aborts, resets and honest device faults, through the real driver on the emulator.
//!
//! **Property.** No panic, no bug check and no verifier violation; the device never sees what a
//! correct driver never sends (a direction contradicting the CDB, which QEMU never completes; a
//! DMA outside the driver's buffers; a bad context; a ring overrun). Every request completes
//! exactly once, with a status the SRB documentation gives for its function
//! ([`crate::rig::documented`]). A READ or WRITE the target builds itself is judged further:
//! `SRB_STATUS_SUCCESS` only when it is addressed to a disk, inside it, its `DataTransferLength`
//! is exactly what the CDB moves, at most `MaximumTransferLength`, and its direction agrees with
//! the CDB (a short or long buffer must be refused or reported as an under/overrun); with no
//! fault made during its life it must succeed (or report the disks' unit attention); data it
//! reports as read (`SUCCESS`, or the first `DataTransferLength` bytes of a `DATA_OVERRUN`) is
//! what the sectors can hold ([`crate::shadow`]); whenever the machine is idle, the media hold
//! nothing but what the WRITEs reported can have put there (past a WRITE's CDB only while the
//! driver may not yet know the disk's block size, which a raw READ CAPACITY teaches it and a
//! MODE SELECT makes it forget: it then sends a longer buffer whole, and the device writes all
//! of it; see [`crate::shadow`]).
//!
//! **Input** ([`crate::bytes`]): a [`Setup`] (which also picks the driver's flavour and port:
//! SCSI Port's, or Storport's on the emulator's Storport), then up to [`MAX_OPS`] operations,
//! each an opcode byte and its fields ([`Op`]).

use scsiport_sim::pvscsi::{Effect, Injection};
use scsiport_sim::{Direction, Request, Ticket};
use scsiport_sys as sys;

use crate::Failure;
use crate::bytes::{Field, Reader, Writer};
use crate::rig::{DISK_BLOCKS, Kind, Rig, Setup, capacity_block_length_at};
use crate::shadow::SECTOR;

/// Operations taken from one input (more bytes are ignored).
pub const MAX_OPS: usize = 48;

/// The CDB forms of READ and WRITE.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CdbForm {
    /// READ(6)/WRITE(6): 21-bit LBA, 0 blocks meaning 256.
    Six,
    /// (10): 32-bit LBA, 16-bit blocks.
    Ten,
    /// (12): 32-bit LBA, 32-bit blocks.
    Twelve,
    /// (16): 64-bit LBA, 32-bit blocks.
    Sixteen,
}

/// How the SRB's direction flags relate to the CDB's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dir {
    /// `SRB_FLAGS_DATA_IN` for a read, `DATA_OUT` for a write.
    Natural,
    /// `SRB_FLAGS_NO_DATA_TRANSFER`.
    None,
    /// `SRB_FLAGS_UNSPECIFIED_DIRECTION` (both bits).
    Unspecified,
    /// The other direction.
    Opposite,
}

impl Dir {
    fn from_u8(b: u8) -> Self {
        match b % 8 {
            0..=4 => Self::Natural,
            5 => Self::None,
            6 => Self::Unspecified,
            _ => Self::Opposite,
        }
    }
    fn to_u8(self) -> u8 {
        match self {
            Self::Natural => 0,
            Self::None => 5,
            Self::Unspecified => 6,
            Self::Opposite => 7,
        }
    }
}

/// Fields every request shares.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Common {
    /// Where `DataBuffer` starts in its page (taken modulo 4096).
    pub buffer_offset: u16,
    /// Bit 0 untagged; bits 1–2 queue action (simple, head of queue, ordered, 0x2F).
    pub tagging: u8,
    /// `TimeOutValue`: 0 → 10 s, else 1..=8 s.
    pub timeout: u8,
    /// Extra `SRB_FLAGS_*` a class driver may set: bit 0 `DISABLE_AUTOSENSE`, 1
    /// `NO_QUEUE_FREEZE`, 2 `BYPASS_FROZEN_QUEUE`, 3 `DISABLE_DISCONNECT`, 4
    /// `DISABLE_SYNCH_TRANSFER`, 5 `ADAPTER_CACHE_ENABLE`, 6 a class-driver-reserved bit.
    pub flags: u8,
}

impl Common {
    fn read(r: &mut Reader<'_>) -> Self {
        Self { buffer_offset: r.u16(), tagging: r.u8(), timeout: r.u8(), flags: r.u8() }
    }
    fn write(self, w: &mut Writer) {
        w.u16(self.buffer_offset).u8(self.tagging).u8(self.timeout).u8(self.flags);
    }
    fn apply(self, mut req: Request) -> Request {
        req = req.with_buffer_offset(usize::from(self.buffer_offset));
        if self.tagging & 1 != 0 {
            req = req.untagged();
        }
        req.queue_action = match (self.tagging >> 1) & 3 {
            0 => sys::SRB_SIMPLE_TAG_REQUEST,
            1 => sys::SRB_HEAD_OF_QUEUE_TAG_REQUEST,
            2 => sys::SRB_ORDERED_QUEUE_TAG_REQUEST,
            _ => 0x2F,
        };
        if self.timeout != 0 {
            req = req.with_timeout(u32::from(self.timeout % 8) + 1);
        }
        let bits = [
            sys::SRB_FLAGS_DISABLE_AUTOSENSE,
            sys::SRB_FLAGS_NO_QUEUE_FREEZE,
            sys::SRB_FLAGS_BYPASS_FROZEN_QUEUE,
            sys::SRB_FLAGS_DISABLE_DISCONNECT,
            sys::SRB_FLAGS_DISABLE_SYNCH_TRANSFER,
            sys::SRB_FLAGS_ADAPTER_CACHE_ENABLE,
            0x1000_0000,
        ];
        for (i, bit) in bits.iter().enumerate() {
            if self.flags & (1 << i) != 0 {
                req = req.with_flags(*bit);
            }
        }
        req
    }
}

/// One step of an input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// A READ or WRITE the oracle follows.
    Rw {
        /// WRITE (else READ).
        write: bool,
        /// `< 0xE0`: disk 0 or 1 (low bit); else the low 5 bits (missing targets, 7, ≥ 16).
        target: u8,
        /// `< 0xF0`: LUN 0 on bus 0; else LUN bits 0–1, bus bits 2–3.
        address: u8,
        /// The CDB form.
        form: CdbForm,
        /// Bit 31 set: taken as is; else modulo the disk size + 16.
        lba: u32,
        /// Bit 15 set: the low 15 bits; else modulo 257 (0..=256 blocks, 256 = 128 KiB).
        blocks: u16,
        /// `DataTransferLength` against the CDB's bytes: 0 exact; see [`length_delta`].
        delta: u8,
        /// The SRB's direction.
        dir: Dir,
        /// Shared fields.
        common: Common,
    },
    /// Any SRB: function, address, CDB bytes, direction, length.
    Raw {
        /// `< 0x80`: `EXECUTE_SCSI`; else function code `function - 0x80`.
        function: u8,
        /// Target, LUN (low 3 bits), bus (low 2 bits) as given.
        target: u8,
        /// See `target`.
        lun: u8,
        /// See `target`.
        path: u8,
        /// The CDB (0..=16 bytes; its length is `CdbLength`).
        cdb: Vec<u8>,
        /// `DataTransferLength` (modulo 260 KiB).
        length: u32,
        /// 0 none, 1 in, 2 out, 3 both bits (unspecified).
        dir: u8,
        /// Shared fields.
        common: Common,
    },
    /// `SRB_FUNCTION_ABORT_COMMAND` for the request submitted `index`-th (modulo their count).
    Abort {
        /// Which.
        index: u8,
    },
    /// `SRB_FUNCTION_RESET_BUS`.
    ResetBusSrb {
        /// Bus (0 or 1).
        path: u8,
    },
    /// `SRB_FUNCTION_RESET_DEVICE` (odd `kind`: `RESET_LOGICAL_UNIT`) to a target.
    ResetDeviceSrb {
        /// Target (modulo 20).
        target: u8,
        /// See above.
        kind: u8,
    },
    /// The port's own bus reset (after a timeout), `HwScsiResetBus` with requests outstanding.
    PortResetBus,
    /// Run the machine for this many µs of machine time.
    RunFor {
        /// µs.
        us: u16,
    },
    /// Run until the request submitted `index`-th completes.
    Wait {
        /// Which (modulo their count).
        index: u8,
    },
    /// Run until everything completed and check the media.
    Settle,
    /// An honest device fault on the next requests: a host status, a CHECK CONDITION, a SCSI
    /// status, a delay or a lost request (the port's timeout then resets the bus).
    Inject {
        /// Low bit: target 0 or 1; bit 1: any target.
        target: u8,
        /// Modulo 5: host status, check condition, SCSI status, latency, lost.
        kind: u8,
        /// Chooses the status / sense / latency.
        value: u16,
        /// How many requests (1..=4).
        count: u8,
    },
    /// A reset from the device side: even `kind` a bus reset, odd a reset of target `kind >> 1 & 1`.
    DeviceReset {
        /// See above.
        kind: u8,
    },
}

/// The ops' opcodes.
const OPS: u8 = 12;

/// `DataTransferLength` of a READ/WRITE against the CDB's `expected` bytes.
#[must_use]
pub fn length_delta(expected: usize, delta: u8) -> usize {
    match delta {
        0..=0xBF => expected,
        0xC0..=0xC7 => expected.saturating_sub(SECTOR),
        0xC8..=0xCF => expected.saturating_sub(1),
        0xD0..=0xD7 => expected + 1,
        0xD8..=0xDF => expected + SECTOR,
        0xE0..=0xE7 => 0,
        0xE8..=0xEF => SECTOR,
        0xF0..=0xF7 => expected / 2,
        _ => expected + 4096 * usize::from(delta & 7) + 17,
    }
}

impl Field for Op {
    fn read_from(r: &mut Reader<'_>) -> Self {
        match r.u8() % OPS {
            code @ (0 | 1) => {
                let target = r.u8();
                let address = r.u8();
                let form = match r.u8() % 4 {
                    0 => CdbForm::Six,
                    1 => CdbForm::Ten,
                    2 => CdbForm::Twelve,
                    _ => CdbForm::Sixteen,
                };
                let (lba, blocks, delta, dir) = (r.u32(), r.u16(), r.u8(), Dir::from_u8(r.u8()));
                Self::Rw { write: code == 1, target, address, form, lba, blocks, delta, dir, common: Common::read(r) }
            }
            2 => {
                let (function, target, lun, path) = (r.u8(), r.u8(), r.u8(), r.u8());
                let cdb = r.bytes(16);
                let (length, dir) = (r.u32(), r.u8());
                Self::Raw { function, target, lun, path, cdb, length, dir, common: Common::read(r) }
            }
            3 => Self::Abort { index: r.u8() },
            4 => Self::ResetBusSrb { path: r.u8() },
            5 => Self::ResetDeviceSrb { target: r.u8(), kind: r.u8() },
            6 => Self::PortResetBus,
            7 => Self::RunFor { us: r.u16() },
            8 => Self::Wait { index: r.u8() },
            9 => Self::Settle,
            10 => Self::Inject { target: r.u8(), kind: r.u8(), value: r.u16(), count: r.u8() },
            _ => Self::DeviceReset { kind: r.u8() },
        }
    }

    fn write_to(&self, w: &mut Writer) {
        match self {
            Self::Rw { write, target, address, form, lba, blocks, delta, dir, common } => {
                w.u8(u8::from(*write)).u8(*target).u8(*address);
                w.u8(match form {
                    CdbForm::Six => 0,
                    CdbForm::Ten => 1,
                    CdbForm::Twelve => 2,
                    CdbForm::Sixteen => 3,
                });
                w.u32(*lba).u16(*blocks).u8(*delta).u8(dir.to_u8());
                common.write(w);
            }
            Self::Raw { function, target, lun, path, cdb, length, dir, common } => {
                w.u8(2).u8(*function).u8(*target).u8(*lun).u8(*path).bytes(cdb).u32(*length).u8(*dir);
                common.write(w);
            }
            Self::Abort { index } => {
                w.u8(3).u8(*index);
            }
            Self::ResetBusSrb { path } => {
                w.u8(4).u8(*path);
            }
            Self::ResetDeviceSrb { target, kind } => {
                w.u8(5).u8(*target).u8(*kind);
            }
            Self::PortResetBus => {
                w.u8(6);
            }
            Self::RunFor { us } => {
                w.u8(7).u16(*us);
            }
            Self::Wait { index } => {
                w.u8(8).u8(*index);
            }
            Self::Settle => {
                w.u8(9);
            }
            Self::Inject { target, kind, value, count } => {
                w.u8(10).u8(*target).u8(*kind).u16(*value).u8(*count);
            }
            Self::DeviceReset { kind } => {
                w.u8(11).u8(*kind);
            }
        }
    }
}

/// A decoded input.
pub type Input = crate::bytes::Input<Setup, Op, MAX_OPS>;

/// The CDB of a READ or WRITE.
#[must_use]
pub fn block_cdb(write: bool, form: CdbForm, lba: u64, blocks: u32) -> Vec<u8> {
    match form {
        CdbForm::Six => {
            let l = u32::try_from(lba & 0x1F_FFFF).unwrap_or(0).to_be_bytes();
            vec![if write { 0x0A } else { 0x08 }, l[1], l[2], l[3], u8::try_from(blocks & 0xFF).unwrap_or(0), 0]
        }
        CdbForm::Ten => {
            let l = u32::try_from(lba & 0xFFFF_FFFF).unwrap_or(0).to_be_bytes();
            let b = u16::try_from(blocks & 0xFFFF).unwrap_or(0).to_be_bytes();
            vec![if write { 0x2A } else { 0x28 }, 0, l[0], l[1], l[2], l[3], 0, b[0], b[1], 0]
        }
        CdbForm::Twelve => {
            let l = u32::try_from(lba & 0xFFFF_FFFF).unwrap_or(0).to_be_bytes();
            let b = blocks.to_be_bytes();
            vec![if write { 0xAA } else { 0xA8 }, 0, l[0], l[1], l[2], l[3], b[0], b[1], b[2], b[3], 0, 0]
        }
        CdbForm::Sixteen => {
            let mut c = vec![if write { 0x8A } else { 0x88 }, 0];
            c.extend_from_slice(&lba.to_be_bytes());
            c.extend_from_slice(&blocks.to_be_bytes());
            c.extend_from_slice(&[0, 0]);
            c
        }
    }
}

/// The (LBA, blocks) a CDB built by [`block_cdb`] really names (READ(6) with 0 blocks is 256).
#[must_use]
pub fn effective(form: CdbForm, lba: u64, blocks: u32) -> (u64, u64) {
    match form {
        CdbForm::Six => (lba & 0x1F_FFFF, match blocks & 0xFF {
            0 => 256,
            n => u64::from(n),
        }),
        CdbForm::Ten => (lba & 0xFFFF_FFFF, u64::from(blocks & 0xFFFF)),
        CdbForm::Twelve => (lba & 0xFFFF_FFFF, u64::from(blocks)),
        CdbForm::Sixteen => (lba, u64::from(blocks)),
    }
}

/// Opcodes that may change the medium: a raw command with one makes the oracle forget the
/// target until the next settle.
fn may_write(opcode: u8) -> bool {
    matches!(opcode, 0x04 | 0x0A | 0x2A | 0xAA | 0x8A | 0x2E | 0xAE | 0x8E | 0x41 | 0x93 | 0x42 | 0x3B | 0x3F | 0x9C | 0x89 | 0x07)
}

/// What the run did, for the corpus test.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// Requests completed, by `SRB_STATUS`.
    pub statuses: std::collections::BTreeMap<u8, u64>,
    /// Operations run.
    pub ops: usize,
    /// Disks whose block size the oracle held the driver to know at the end (a READ CAPACITY
    /// taught it).
    pub block_size_known: Vec<u8>,
}

/// Runs one input and checks the property.
pub fn run(data: &[u8]) -> Result<Report, Failure> {
    let input = Input::decode(data);
    let mut rig = Rig::new(&input.setup)?;
    for (i, op) in input.ops.iter().enumerate() {
        step(&mut rig, op).map_err(|f| f.at(i, op))?;
        rig.collect().map_err(|f| f.at(i, op))?;
    }
    rig.settle().map_err(|f| f.context("at the end"))?;
    let block_size_known = rig.shadow.targets().into_iter().filter(|t| rig.shadow.block_size_known(*t)).collect();
    Ok(Report { statuses: rig.statuses.clone(), ops: input.ops.len(), block_size_known })
}

fn pick(rig: &Rig, index: u8) -> Option<Ticket> {
    if rig.tickets.is_empty() { None } else { rig.tickets.get(usize::from(index) % rig.tickets.len()).copied() }
}

fn step_rw(rig: &mut Rig, op: &Op) -> Result<(), Failure> {
    let Op::Rw { write, target, address, form, lba, blocks, delta, dir, common } = op else { return Ok(()) };
    let target = if *target < 0xE0 { target & 1 } else { target & 0x1F };
    let (lun, path) = if *address < 0xF0 { (0, 0) } else { (address & 3, (address >> 2) & 3) };
    let disk_blocks = rig.shadow.blocks(target);
    let lba = if lba & 0x8000_0000 != 0 { u64::from(*lba) } else { u64::from(*lba) % (DISK_BLOCKS + 16) };
    let blocks = if blocks & 0x8000 != 0 { u32::from(blocks & 0x7FFF) } else { u32::from(*blocks) % 257 };
    let cdb = block_cdb(*write, *form, lba, blocks);
    let (lba, blocks) = effective(*form, lba, blocks);
    let expected = usize::try_from(blocks).unwrap_or(usize::MAX).saturating_mul(SECTOR);
    let length = length_delta(expected, *delta).min(1 << 20);
    let natural = if *write { Direction::Out } else { Direction::In };
    let (direction, both) = match dir {
        Dir::Natural => (natural, false),
        Dir::None => (Direction::None, false),
        Dir::Unspecified => (natural, true),
        Dir::Opposite => (if *write { Direction::In } else { Direction::Out }, false),
    };
    let addressed = disk_blocks.is_some() && lun == 0 && path == 0;
    let in_range = disk_blocks.is_some_and(|n| lba.checked_add(blocks).is_some_and(|end| end <= n));
    let (data, generation) = if direction == Direction::Out { rig.write_data(target, lba, length) } else { (vec![0; length], 0) };
    if *write && direction != Direction::Out && addressed {
        // A WRITE whose buffer the port will not fill: whatever reaches the disk is
        // zeros or garbage, which the oracle cannot follow.
        rig.shadow.unknown_write(target);
    }
    let token = (!*write && addressed).then(|| rig.shadow.read_submitted(target, lba, blocks.min(DISK_BLOCKS)));
    let mut req = Request::scsi(target, &cdb, direction, data).with_lun(lun).with_path(path);
    if both {
        req = req.with_flags(sys::SRB_FLAGS_DATA_IN | sys::SRB_FLAGS_DATA_OUT);
    }
    req = common.apply(req);
    let what = format!(
        "{} {:?} of {blocks} blocks at LBA {lba} to {path}:{target}:{lun}, {length} bytes, {dir:?} direction, buffer offset {}",
        if *write { "WRITE" } else { "READ" },
        form,
        req.buffer_offset
    );
    let kind = Kind::Block {
        write: *write,
        addressed,
        lba,
        blocks,
        in_range,
        direction_ok: matches!(dir, Dir::Natural | Dir::Unspecified),
        token,
    };
    let id = rig.submit(req, kind, what)?;
    if *write && addressed && direction == Direction::Out {
        rig.shadow.write_submitted(id, target, lba, blocks, length, generation);
    }
    Ok(())
}

fn step_raw(rig: &mut Rig, op: &Op) -> Result<(), Failure> {
    let Op::Raw { function, target, lun, path, cdb, length, dir, common } = op else { return Ok(()) };
    let function = function.checked_sub(0x80).unwrap_or(sys::SRB_FUNCTION_EXECUTE_SCSI);
    let (target, lun, path) = (*target, lun & 7, path & 3);
    let length = usize::try_from(*length % (260 * 1024)).unwrap_or(0);
    let direction = match dir & 3 {
        0 => Direction::None,
        1 | 3 => Direction::In,
        _ => Direction::Out,
    };
    let data = if direction == Direction::Out { rig.write_data(target, 0, length).0 } else { vec![0; length] };
    if function == sys::SRB_FUNCTION_EXECUTE_SCSI && cdb.first().is_some_and(|op| may_write(*op)) {
        rig.shadow.unknown_write(target);
    }
    let mut req = Request::scsi(target, cdb, direction, data).with_lun(lun).with_path(path);
    req.function = function;
    if dir & 3 == 3 {
        req = req.with_flags(sys::SRB_FLAGS_DATA_IN | sys::SRB_FLAGS_DATA_OUT);
    }
    req = common.apply(req);
    let kind = match function {
        // What may change what the driver knows of a disk's block size (see crate::shadow):
        // a READ CAPACITY to a disk is followed only at LUN 0 on bus 0 (the driver learns from
        // any LUN: the oracle then believes it may not know, which is looser, never wrong); a
        // MODE SELECT to any LUN or bus of the target makes it forget.
        sys::SRB_FUNCTION_EXECUTE_SCSI => match capacity_block_length_at(cdb) {
            Some(at) if rig.shadow.blocks(target).is_some() && lun == 0 && path == 0 => {
                Kind::Capacity { at, token: rig.shadow.capacity_submitted(target) }
            }
            _ if matches!(cdb.first(), Some(0x15 | 0x55)) => {
                rig.shadow.mode_select_submitted(target);
                Kind::ModeSelect
            }
            _ => Kind::Scsi,
        },
        sys::SRB_FUNCTION_ABORT_COMMAND => Kind::Abort,
        sys::SRB_FUNCTION_RESET_BUS => Kind::ResetBus,
        sys::SRB_FUNCTION_RESET_DEVICE | sys::SRB_FUNCTION_RESET_LOGICAL_UNIT => Kind::ResetDevice,
        sys::SRB_FUNCTION_FLUSH | sys::SRB_FUNCTION_SHUTDOWN => Kind::Flush,
        sys::SRB_FUNCTION_POWER => Kind::Power,
        _ => Kind::Other,
    };
    if matches!(kind, Kind::ResetBus | Kind::ResetDevice) {
        rig.faults += 1;
    }
    let what = format!("SRB function {function:#04x} CDB {cdb:02x?} to {path}:{target}:{lun}, {length} bytes, direction {}", dir & 3);
    rig.submit(req, kind, what).map(drop)
}

fn step(rig: &mut Rig, op: &Op) -> Result<(), Failure> {
    match op {
        Op::Rw { .. } => step_rw(rig, op),
        Op::Raw { .. } => step_raw(rig, op),
        Op::Abort { index } => {
            let Some(victim) = pick(rig, *index) else { return Ok(()) };
            rig.faults += 1;
            rig.aborted.insert(victim.0);
            rig.submit(Request::abort(victim), Kind::Abort, format!("ABORT of request {}", victim.0)).map(drop)
        }
        Op::ResetBusSrb { path } => {
            rig.faults += 1;
            rig.submit(Request::reset_bus(path & 1), Kind::ResetBus, format!("RESET_BUS of bus {}", path & 1)).map(drop)
        }
        Op::ResetDeviceSrb { target, kind } => {
            rig.faults += 1;
            let mut req = Request::reset_bus(0);
            req.function = if kind & 1 == 0 { sys::SRB_FUNCTION_RESET_DEVICE } else { sys::SRB_FUNCTION_RESET_LOGICAL_UNIT };
            req.target = target % 20;
            rig.submit(req, Kind::ResetDevice, format!("RESET_DEVICE of target {}", target % 20)).map(drop)
        }
        Op::PortResetBus => {
            rig.faults += 1;
            rig.machine.reset_bus(0, 0).map_err(|e| Failure::new(format!("the port's bus reset failed: {e}")))
        }
        Op::RunFor { us } => rig
            .machine
            .run_for(std::time::Duration::from_micros(u64::from(*us)))
            .map_err(|e| Failure::new(format!("running: {e}"))),
        Op::Wait { index } => match pick(rig, *index) {
            Some(t) => rig.wait(t.0),
            None => Ok(()),
        },
        Op::Settle => rig.settle(),
        Op::Inject { target, kind, value, count } => {
            rig.faults += 1;
            let effect = match kind % 5 {
                0 => {
                    // The failures among the host statuses (pvscsi-facts.md §6.1): an injection
                    // moves no data, so a status that means success (SUCCESS, LINKED_COMMAND_*,
                    // DATA_UNDERRUN, DATARUN) would be a lie an honest device does not tell.
                    const HOST: [u16; 18] = [
                        0x11, 0x13, 0x14, 0x17, 0x1A, 0x1B, 0x1C, 0x1D, 0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27, 0x30, 0x34,
                    ];
                    Effect::Host(HOST[usize::from(*value) % HOST.len()])
                }
                1 => Effect::Check(scsiport_sim::disk::Sense::new(
                    u8::try_from(value & 0x0F).unwrap_or(0),
                    u8::try_from(value >> 8).unwrap_or(0),
                    u8::try_from((value >> 4) & 0x0F).unwrap_or(0),
                )),
                2 => {
                    const SCSI: [u8; 5] = [0x08, 0x18, 0x28, 0x30, 0x40];
                    Effect::Status(SCSI[usize::from(*value) % SCSI.len()])
                }
                3 => Effect::Latency(u64::from(*value) * 100_000),
                _ => Effect::Lose,
            };
            let count = u64::from(count % 4) + 1;
            rig.injections += count;
            let mut injection = Injection::next(count, effect);
            if target & 2 == 0 {
                injection = injection.on_target(target & 1);
            }
            let _ = rig.device.inject(injection);
            Ok(())
        }
        Op::DeviceReset { kind } => {
            rig.faults += 1;
            if kind & 1 == 0 {
                rig.device.bus_reset();
            } else {
                rig.device.device_reset((kind >> 1) & 1);
            }
            Ok(())
        }
    }
}

/// Seeds: small inputs that reach each part of the driver.
#[must_use]
#[allow(clippy::too_many_lines)] // one list
pub fn seeds() -> Vec<(&'static str, Input)> {
    let c = Common::default();
    let rw = |write, target, lba, blocks, delta, dir| Op::Rw {
        write,
        target,
        address: 0,
        form: CdbForm::Ten,
        lba,
        blocks,
        delta,
        dir,
        common: c,
    };
    let raw = |cdb: &[u8], length, dir| Op::Raw { function: 0, target: 0, lun: 0, path: 0, cdb: cdb.to_vec(), length, dir, common: c };
    let setup = Setup::default();
    let mut out = vec![
        ("write-read", Input { setup, ops: vec![rw(true, 0, 8, 8, 0, Dir::Natural), Op::Settle, rw(false, 0, 8, 8, 0, Dir::Natural), rw(false, 1, 0, 1, 0, Dir::Natural)] }),
        (
            "overlapping-queue",
            Input {
                setup,
                ops: (0..12).map(|i| rw(i % 3 != 0, i & 1, u32::from(i) * 3, 8, 0, Dir::Natural)).chain([Op::Settle]).collect(),
            },
        ),
        (
            "short-and-long-buffers",
            Input {
                setup: Setup { vmware: true, ..setup },
                ops: vec![
                    rw(true, 0, 0, 8, 0xE8, Dir::Natural),
                    rw(false, 0, 0, 8, 0xD8, Dir::Natural),
                    rw(false, 0, 0, 8, 0xC0, Dir::Natural),
                    rw(true, 0, 16, 0, 0xE8, Dir::Natural),
                    rw(true, 0, 32, 257, 0, Dir::Natural),
                    Op::Settle,
                ],
            },
        ),
        (
            "directions",
            Input {
                setup,
                ops: vec![
                    rw(true, 0, 40, 2, 0, Dir::Opposite),
                    rw(false, 0, 40, 2, 0, Dir::None),
                    rw(true, 0, 44, 2, 0, Dir::Unspecified),
                    raw(&[0x9C, 0, 0, 0, 0, 0, 0, 0, 0, 0x40, 0, 0, 0, 1, 0, 0], 512, 2),
                    raw(&[0x12, 0, 0, 0, 96, 0], 96, 1),
                    raw(&[0x12, 0, 0, 0, 96, 0], 96, 3),
                    raw(&[0xC1, 1, 2, 3], 512, 2),
                    Op::Settle,
                ],
            },
        ),
        (
            "abort-and-resets",
            Input {
                setup,
                ops: vec![
                    Op::Inject { target: 0, kind: 3, value: 50, count: 2 },
                    rw(true, 0, 100, 16, 0, Dir::Natural),
                    rw(false, 0, 100, 16, 0, Dir::Natural),
                    Op::Abort { index: 0 },
                    Op::RunFor { us: 500 },
                    Op::PortResetBus,
                    rw(true, 1, 10, 4, 0, Dir::Natural),
                    Op::ResetBusSrb { path: 0 },
                    Op::ResetDeviceSrb { target: 1, kind: 0 },
                    Op::DeviceReset { kind: 0 },
                    Op::Settle,
                    rw(false, 0, 100, 16, 0, Dir::Natural),
                ],
            },
        ),
        (
            "device-faults",
            Input {
                setup: Setup { sense_len: 96, ..setup },
                ops: vec![
                    Op::Inject { target: 0, kind: 0, value: 4, count: 1 },
                    rw(false, 0, 0, 1, 0, Dir::Natural),
                    Op::Inject { target: 0, kind: 1, value: 0x1103, count: 1 },
                    rw(false, 0, 0, 1, 0, Dir::Natural),
                    Op::Inject { target: 1, kind: 2, value: 0, count: 1 },
                    rw(false, 1, 0, 1, 0, Dir::Natural),
                    Op::Inject { target: 0, kind: 4, value: 0, count: 1 },
                    rw(true, 0, 4, 1, 0, Dir::Natural),
                    Op::Wait { index: 3 },
                    Op::Settle,
                ],
            },
        ),
        (
            "addressing-and-functions",
            Input {
                setup,
                ops: vec![
                    Op::Rw { write: false, target: 0xE5, address: 0, form: CdbForm::Sixteen, lba: 0, blocks: 1, delta: 0, dir: Dir::Natural, common: c },
                    Op::Rw { write: false, target: 0, address: 0xF1, form: CdbForm::Six, lba: 0, blocks: 1, delta: 0, dir: Dir::Natural, common: c },
                    Op::Rw { write: false, target: 0, address: 0xF4, form: CdbForm::Twelve, lba: 0, blocks: 1, delta: 0, dir: Dir::Natural, common: c },
                    Op::Rw { write: false, target: 0, address: 0, form: CdbForm::Ten, lba: 0x8000_0000, blocks: 1, delta: 0, dir: Dir::Natural, common: c },
                    // IO_CONTROL, WMI, FLUSH, RESET_LOGICAL_UNIT, an abort naming nothing, an
                    // undefined function.
                    Op::Raw { function: 0x82, target: 0, lun: 0, path: 0, cdb: vec![], length: 64, dir: 3, common: c },
                    Op::Raw { function: 0x97, target: 0, lun: 0, path: 0, cdb: vec![], length: 0, dir: 0, common: c },
                    Op::Raw { function: 0x88, target: 0, lun: 0, path: 0, cdb: vec![], length: 0, dir: 0, common: c },
                    Op::Raw { function: 0xA0, target: 1, lun: 0, path: 0, cdb: vec![], length: 0, dir: 0, common: c },
                    Op::Raw { function: 0x90, target: 0, lun: 0, path: 0, cdb: vec![], length: 0, dir: 0, common: c },
                    Op::Raw { function: 0xE5, target: 0, lun: 0, path: 0, cdb: vec![], length: 0, dir: 0, common: c },
                    raw(&[], 0, 0),
                    Op::Settle,
                ],
            },
        ),
        (
            // A WRITE with a buffer longer than its CDB before the driver knows the block size
            // (sent whole: the device writes past the CDB), after a READ CAPACITY(10) (the CDB's
            // blocks alone), after a MODE SELECT (whole again) and after a READ CAPACITY(16).
            "block-size",
            Input {
                setup,
                ops: vec![
                    rw(true, 0, 60, 1, 0xD8, Dir::Natural),
                    raw(&[0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0], 8, 1),
                    Op::Wait { index: 1 },
                    rw(true, 0, 64, 1, 0xD8, Dir::Natural),
                    raw(&[0x15, 0x10, 0, 0, 0, 0], 0, 0),
                    Op::Wait { index: 3 },
                    rw(true, 0, 68, 1, 0xD8, Dir::Natural),
                    raw(&[0x9E, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 32, 0, 0], 32, 1),
                    Op::Wait { index: 5 },
                    rw(true, 0, 72, 1, 0xD8, Dir::Natural),
                    Op::Settle,
                    rw(false, 0, 60, 14, 0, Dir::Natural),
                ],
            },
        ),
        (
            "offsets-tags-flags",
            Input {
                setup: Setup { adversarial: true, ..setup },
                ops: vec![
                    Op::Rw {
                        write: true,
                        target: 0,
                        address: 0,
                        form: CdbForm::Ten,
                        lba: 200,
                        blocks: 17,
                        delta: 0,
                        dir: Dir::Natural,
                        common: Common { buffer_offset: 4095, tagging: 2, timeout: 3, flags: 0x7F },
                    },
                    Op::Rw {
                        write: false,
                        target: 0,
                        address: 0,
                        form: CdbForm::Ten,
                        lba: 200,
                        blocks: 17,
                        delta: 0,
                        dir: Dir::Natural,
                        common: Common { buffer_offset: 1, tagging: 5, timeout: 0, flags: 1 },
                    },
                    Op::Settle,
                ],
            },
        ),
    ];
    // The Storport flavour behind the same device: HwStorBuildIo / HwStorStartIo, its DPC and
    // its locks instead of SCSI Port's.
    let storport = crate::rig::on_storport(&out, &[
        ("write-read", "storport-write-read"),
        ("overlapping-queue", "storport-overlapping-queue"),
        ("short-and-long-buffers", "storport-short-and-long-buffers"),
        ("directions", "storport-directions"),
        ("abort-and-resets", "storport-abort-and-resets"),
        ("device-faults", "storport-device-faults"),
        ("addressing-and-functions", "storport-addressing-and-functions"),
        ("offsets-tags-flags", "storport-offsets-tags-flags"),
        ("block-size", "storport-block-size"),
    ]);
    out.extend(storport);
    // Storport's own SRB functions, which SCSI Port never sends: POWER (completed SUCCESS, a
    // documented ending the oracle did not know until Storport was fuzzed), PNP, and the dump
    // pointers of a crash-dump stack.
    out.push((
        "storport-functions",
        Input {
            setup: Setup { storport: true, ..setup },
            ops: [0xA4, 0xA5, 0xA6, 0xA7]
                .into_iter()
                .map(|function| Op::Raw { function, target: 0, lun: 0, path: 0, cdb: vec![], length: 0, dir: 0, common: c })
                .chain([Op::Settle])
                .collect(),
        },
    ));
    out
}
