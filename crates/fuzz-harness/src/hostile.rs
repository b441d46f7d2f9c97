//! Target `hostile`: everything a hostile PVSCSI device writes, with the values and the moments
//! taken from the input — completion and message producer indexes, completion descriptors
//! (made-up, duplicated and stale contexts, statuses, sense and data lengths), ring sizes and
//! the request consumer index in the rings-state page, message descriptors, interrupt status —
//! against the real driver under well-formed READs and WRITEs, aborts and the port's resets.
//!
//! The writes are the model's [`HostileWrite`]s: each is garbage a driver can recognise, never
//! a lie it could not tell from the truth (a made-up context always has a bit set that no
//! driver issues; a real completion keeps its context).
//!
//! **Property.** No panic, no bug check, no verifier violation; the device never DMAs outside
//! the driver's buffers and never gets a context VMware refuses; every request completes exactly
//! once (the port's timeout and bus reset recover what garbage hid) with a documented status;
//! no READ reported good returns anything but what its sectors can hold — not another request's
//! data, not an unfilled buffer — and the media hold only what WRITEs put there. Once the input
//! is done and the machine settled, a WRITE and a READ on every disk succeed: the driver is not
//! wedged.
//!
//! **Input** ([`crate::bytes`]): a [`Setup`] (which also picks the driver's flavour and port:
//! SCSI Port's, or Storport's on the emulator's Storport), then up to [`MAX_OPS`] operations
//! ([`Op`]).

use scsiport_sim::Request;
use scsiport_sim::pvscsi::{HostileAction, HostileWrite};
use scsiport_sys as sys;

use crate::Failure;
use crate::bytes::{Field, Reader, Writer};
use crate::rig::{DISK_BLOCKS, Kind, Rig, Setup, unit_attention};
use crate::shadow::SECTOR;

/// Operations taken from one input.
pub const MAX_OPS: usize = 64;

/// One step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// A well-formed WRITE (else READ) of `blocks % 32 + 1` blocks at `lba % disk`, to target
    /// `target & 1` (when there are two disks).
    Io {
        /// WRITE.
        write: bool,
        /// See above.
        target: u8,
        /// See above.
        lba: u16,
        /// See above.
        blocks: u8,
    },
    /// One hostile write ([`write_of`]).
    Hostile {
        /// Which.
        kind: u8,
        /// Its value.
        value: u64,
    },
    /// Run for this many µs of machine time.
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
    /// Abort the request submitted `index`-th.
    Abort {
        /// Which.
        index: u8,
    },
    /// The port's own bus reset.
    PortResetBus,
}

/// The hostile write of `kind` with `value`: 0–9 the actions of [`HostileAction::ALL`], 10 a
/// data length, 11 a message (type: low 32 bits, target: high), 12 `msgProdIdx`, 13 interrupt
/// status bits.
#[must_use]
pub fn write_of(kind: u8, value: u64) -> HostileWrite {
    let lo = u32::try_from(value & 0xFFFF_FFFF).unwrap_or(0);
    let hi = u32::try_from(value >> 32).unwrap_or(0);
    match kind % 14 {
        k @ 0..=9 => HostileWrite::Action(HostileAction::ALL[usize::from(k)], value),
        10 => HostileWrite::DataLen(value),
        11 => HostileWrite::Message { kind: lo, target: hi },
        12 => HostileWrite::MsgProdIdx(lo),
        _ => HostileWrite::IntrStatus(lo),
    }
}

impl Field for Op {
    fn read_from(r: &mut Reader<'_>) -> Self {
        match r.u8() % 8 {
            c @ (0 | 1) => Self::Io { write: c == 1, target: r.u8(), lba: r.u16(), blocks: r.u8() },
            2 | 3 => Self::Hostile { kind: r.u8(), value: r.u64() },
            5 => Self::Wait { index: r.u8() },
            6 => match r.u8() % 4 {
                0 => Self::Settle,
                1 => Self::PortResetBus,
                _ => Self::Abort { index: r.u8() },
            },
            _ => Self::RunFor { us: r.u16() },
        }
    }

    fn write_to(&self, w: &mut Writer) {
        match self {
            Self::Io { write, target, lba, blocks } => {
                w.u8(u8::from(*write)).u8(*target).u16(*lba).u8(*blocks);
            }
            Self::Hostile { kind, value } => {
                w.u8(2).u8(*kind).u64(*value);
            }
            Self::RunFor { us } => {
                w.u8(4).u16(*us);
            }
            Self::Wait { index } => {
                w.u8(5).u8(*index);
            }
            Self::Settle => {
                w.u8(6).u8(0);
            }
            Self::PortResetBus => {
                w.u8(6).u8(1);
            }
            Self::Abort { index } => {
                w.u8(6).u8(2).u8(*index);
            }
        }
    }
}

/// A decoded input.
pub type Input = crate::bytes::Input<Setup, Op, MAX_OPS>;

/// What the run did, for the corpus test.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// Requests completed, by `SRB_STATUS`.
    pub statuses: std::collections::BTreeMap<u8, u64>,
    /// Hostile writes the device made.
    pub hostile: u64,
}

/// Runs one input and checks the property.
pub fn run(data: &[u8]) -> Result<Report, Failure> {
    let input = Input::decode(data);
    let mut rig = Rig::new(&input.setup)?;
    rig.hostile = true;
    for (i, op) in input.ops.iter().enumerate() {
        step(&mut rig, op).map_err(|f| f.at(i, op))?;
        rig.collect().map_err(|f| f.at(i, op))?;
        if std::env::var_os("RSPVSCSI_FUZZ_VERBOSE").is_some() {
            eprintln!("op {i} {op:?}: {}", rig.ring_indexes());
        }
    }
    rig.settle().map_err(|f| f.context("settling after the input"))?;
    // Hostile writes still queued (they wait for requests to ride on) run on their own now.
    rig.machine.run_for(std::time::Duration::from_millis(1)).map_err(|e| Failure::new(format!("running: {e}")))?;
    rig.settle().map_err(|f| f.context("settling after the input"))?;
    let hostile = rig.device.stats().hostile_actions;
    calm(&mut rig).map_err(|f| f.context("after the hostile device calmed down"))?;
    Ok(Report { statuses: rig.statuses.clone(), hostile })
}

fn io(rig: &mut Rig, write: bool, target: u8, lba: u64, blocks: u64) -> Result<u64, Failure> {
    let len = usize::try_from(blocks).unwrap_or(0) * SECTOR;
    let cdb_blocks = u16::try_from(blocks).unwrap_or(1);
    let lba32 = u32::try_from(lba).unwrap_or(0);
    let what = format!("{} of {blocks} blocks at LBA {lba} of target {target}", if write { "WRITE(10)" } else { "READ(10)" });
    if write {
        let (data, generation) = rig.write_data(target, lba, len);
        let id = rig.submit(
            Request::write10(target, lba32, cdb_blocks, data).with_timeout(2),
            Kind::Block { write: true, addressed: true, lba, blocks, in_range: true, direction_ok: true, token: None },
            what,
        )?;
        rig.shadow.write_submitted(id, target, lba, blocks, len, generation);
        Ok(id)
    } else {
        let token = Some(rig.shadow.read_submitted(target, lba, blocks));
        rig.submit(
            Request::read10(target, lba32, cdb_blocks, len).with_timeout(2),
            Kind::Block { write: false, addressed: true, lba, blocks, in_range: true, direction_ok: true, token },
            what,
        )
    }
}

fn step(rig: &mut Rig, op: &Op) -> Result<(), Failure> {
    match op {
        Op::Io { write, target, lba, blocks } => {
            let targets = rig.shadow.targets();
            let target = targets.get(usize::from(*target) % targets.len().max(1)).copied().unwrap_or(0);
            let blocks = u64::from(blocks % 32) + 1;
            let lba = u64::from(*lba) % (DISK_BLOCKS - blocks + 1);
            io(rig, *write, target, lba, blocks).map(drop)
        }
        Op::Hostile { kind, value } => {
            rig.faults += 1;
            rig.device.hostile_write(write_of(*kind, *value));
            Ok(())
        }
        Op::RunFor { us } => rig
            .machine
            .run_for(std::time::Duration::from_micros(u64::from(*us)))
            .map_err(|e| Failure::new(format!("running: {e}"))),
        Op::Wait { index } => match rig.tickets.get(usize::from(*index) % rig.tickets.len().max(1)).copied() {
            Some(t) => rig.wait(t.0),
            None => Ok(()),
        },
        Op::Settle => rig.settle(),
        Op::Abort { index } => {
            let Some(victim) = rig.tickets.get(usize::from(*index) % rig.tickets.len().max(1)).copied() else { return Ok(()) };
            rig.faults += 1;
            rig.aborted.insert(victim.0);
            rig.submit(Request::abort(victim), Kind::Abort, format!("ABORT of request {}", victim.0)).map(drop)
        }
        Op::PortResetBus => {
            rig.faults += 1;
            rig.machine.reset_bus(0, 0).map_err(|e| Failure::new(format!("the port's bus reset failed: {e}")))
        }
    }
}

/// With the device honest again: a WRITE then a READ of it on every disk succeed and return
/// the data, after at most a few retries as a class driver makes them: of a unit attention, and
/// of a request the port timed out (garbage the device wrote with nothing in flight, such as a
/// producer index, is noticed only by the next request, which the port's timeout and bus reset
/// then recover).
fn calm(rig: &mut Rig) -> Result<(), Failure> {
    for target in rig.shadow.targets() {
        for write in [true, false] {
            let mut tries = 0;
            loop {
                let id = io(rig, write, target, 8, 4)?;
                let before = rig.statuses.get(&sys::SRB_STATUS_SUCCESS).copied().unwrap_or(0);
                let c = rig.machine.wait(scsiport_sim::Ticket(id));
                let c = c.map_err(|e| Failure::new(format!("target {target}: a request after calm never completed: {e}")))?;
                let retry = unit_attention(&c) || c.timed_out || c.status() == sys::SRB_STATUS_BUS_RESET;
                let seen = format!("SrbStatus {:#04x}, ScsiStatus {:#04x}, timed out {}", c.srb_status, c.scsi_status, c.timed_out);
                rig.judge(&c)?;
                if rig.statuses.get(&sys::SRB_STATUS_SUCCESS).copied().unwrap_or(0) > before {
                    break;
                }
                tries += 1;
                if !retry || tries > 4 {
                    return Err(Failure::new(format!(
                        "target {target}: the driver does not recover once the device is honest: {} ended {seen}",
                        if write { "WRITE" } else { "READ" }
                    )));
                }
            }
        }
    }
    rig.settle()
}

/// Seeds: each kind of hostile write on a small workload.
#[must_use]
pub fn seeds() -> Vec<(&'static str, Input)> {
    let setup = Setup::default();
    let io = |write, target, lba, blocks| Op::Io { write, target, lba, blocks };
    let mut out = Vec::new();
    let names = [
        "cmp-prod-idx",
        "unknown-context",
        "duplicate-context",
        "stale-context",
        "sense-len",
        "data-len-huge",
        "garbage-status",
        "ring-sizes",
        "req-cons-idx",
        "spurious-interrupt",
        "data-len",
        "message",
        "msg-prod-idx",
        "intr-status",
    ];
    let values = [0x0000_0000_0000_0003, 0x101, 0, 0, 0x20, 7, 0x0002_0000, 0x1F, 5, 0, 100, 0x0000_0003_0000_0001, 9, 0x4];
    for (k, (name, value)) in names.iter().zip(values).enumerate() {
        let kind = u8::try_from(k).unwrap_or(0);
        out.push((
            *name,
            Input {
                setup,
                ops: vec![
                    io(true, 0, 0, 8),
                    io(true, 1, 16, 4),
                    Op::Settle,
                    io(false, 0, 0, 8),
                    io(false, 1, 16, 4),
                    Op::Hostile { kind, value },
                    io(false, 0, 4, 8),
                    Op::RunFor { us: 300 },
                    io(true, 0, 2, 2),
                    Op::Settle,
                ],
            },
        ));
    }
    out.push((
        "mixed-vmware",
        Input {
            setup: Setup { vmware: true, adversarial: true, ..setup },
            ops: vec![
                io(true, 0, 100, 31),
                io(false, 0, 100, 31),
                Op::Hostile { kind: 10, value: 1000 },
                Op::Hostile { kind: 2, value: 0 },
                io(false, 1, 7, 1),
                Op::Hostile { kind: 0, value: 0x0000_0100_0000_0001 },
                Op::Abort { index: 1 },
                Op::RunFor { us: 1000 },
                Op::PortResetBus,
                Op::Wait { index: 0 },
                io(false, 0, 100, 31),
                Op::Settle,
            ],
        },
    ));
    // The Storport flavour under the same device: its DPC drains the rings instead of SCSI
    // Port's enable callback, behind its own locks.
    let storport = crate::rig::on_storport(&out, &[
        ("cmp-prod-idx", "storport-cmp-prod-idx"),
        ("duplicate-context", "storport-duplicate-context"),
        ("stale-context", "storport-stale-context"),
        ("spurious-interrupt", "storport-spurious-interrupt"),
        ("intr-status", "storport-intr-status"),
        ("mixed-vmware", "storport-mixed-vmware"),
    ]);
    out.extend(storport);
    out
}
