//! The check workloads: bring-up and identification, a bad LBA, a missing target. Each step is
//! a [`Check`] with a verdict and a line saying what was seen.

use scsiport_sim::{Error, Request};
use scsiport_sys as sys;

use crate::pattern::SECTOR;
use crate::rig::{self, INITIATOR_ID, MAX_TARGETS, Rig};

/// One checked expectation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Check {
    /// What was checked.
    pub name: String,
    /// Whether it held.
    pub ok: bool,
    /// What was seen.
    pub detail: String,
}

impl Check {
    fn new(name: impl Into<String>, ok: bool, detail: impl Into<String>) -> Self {
        Self { name: name.into(), ok, detail: detail.into() }
    }
}

/// ILLEGAL REQUEST / LOGICAL BLOCK ADDRESS OUT OF RANGE.
const LBA_OUT_OF_RANGE: (u8, u8, u8) = (sys::SCSI_SENSE_ILLEGAL_REQUEST, sys::SCSI_ADSENSE_ILLEGAL_BLOCK, 0);

fn mib(bytes: u64) -> String {
    #[allow(clippy::cast_precision_loss)]
    let m = bytes as f64 / f64::from(1u32 << 20);
    format!("{m:.1} MiB")
}

/// Bring-up and identification: the driver found the disks (the model's, exactly), and each
/// answers INQUIRY as a disk, READ CAPACITY(10) and (16) alike with 512-byte blocks, and TEST
/// UNIT READY with GOOD once its unit attention is cleared.
///
/// # Errors
/// The machine stopped.
pub fn inquiry(rig: &mut Rig) -> Result<Vec<Check>, Error> {
    let mut out = Vec::new();
    let found: Vec<String> = rig.disks.iter().map(|d| format!("t{}", d.target)).collect();
    match rig.check_discovery() {
        Ok(()) => out.push(Check::new("bus scan", true, format!("disks at {}", found.join(", ")))),
        Err(e) => out.push(Check::new("bus scan", false, e)),
    }
    for d in rig.disks.clone() {
        let t = d.target;
        let inq = rig.execute(&Request::inquiry(t))?;
        let ok = inq.is_success() && inq.data.first() == Some(&0) && inq.data_transfer_length >= 36;
        out.push(Check::new(
            format!("t{t} INQUIRY"),
            ok,
            if ok { format!("direct-access, {} {}", d.vendor, d.product) } else { rig::describe(&inq) },
        ));
        let rc16 = rig.read_capacity16(t)?;
        let rc10 = rig.read_capacity(t)?;
        let ok = rc10 == Some((d.blocks, 512)) && rc16.as_ref().is_some_and(|(b, s, _)| (*b, *s) == (d.blocks, 512));
        out.push(Check::new(
            format!("t{t} READ CAPACITY"),
            ok,
            format!(
                "{} blocks x {} = {} (READ CAPACITY(16): {})",
                d.blocks,
                d.block_size,
                mib(d.bytes()),
                rc16.map_or_else(|| "failed".to_string(), |(b, s, _)| format!("{b} x {s}"))
            ),
        ));
        let tur = rig.execute(&Request::test_unit_ready(t))?;
        out.push(Check::new(format!("t{t} TEST UNIT READY"), tur.is_success(), rig::describe(&tur)));
    }
    if rig.disks.is_empty() {
        out.push(Check::new("disks", false, "the driver found no direct-access disk"));
    }
    Ok(out)
}

/// READs past the end of every disk: one block just past the last LBA, two blocks straddling
/// it, and a READ(16) far beyond. Each must end in `SRB_STATUS_ERROR` with CHECK CONDITION and
/// autosense ILLEGAL REQUEST / LBA OUT OF RANGE (05/21/00); afterwards the disk still reads.
/// Reads only: a patterned disk stays patterned.
///
/// # Errors
/// The machine stopped.
pub fn bad_lba(rig: &mut Rig) -> Result<Vec<Check>, Error> {
    let mut out = Vec::new();
    for d in rig.disks.clone() {
        let t = d.target;
        let cases = [
            (format!("t{t} READ at LBA {} (one past the end)", d.blocks), rig::rw_request(t, d.blocks, 1, None)),
            (format!("t{t} READ of 2 at LBA {} (straddles the end)", d.blocks - 1), rig::rw_request(t, d.blocks - 1, 2, None)),
            (format!("t{t} READ(16) at LBA 2^40"), Request::read16(t, 1 << 40, 1, SECTOR)),
        ];
        for (name, req) in cases {
            let c = rig.execute(&req)?;
            let ok = c.status() == sys::SRB_STATUS_ERROR
                && c.scsi_status == sys::SCSISTAT_CHECK_CONDITION
                && c.srb_status & sys::SRB_STATUS_AUTOSENSE_VALID != 0
                && rig::sense_triple(&c) == Some(LBA_OUT_OF_RANGE);
            let detail = if ok { format!("CHECK CONDITION, {}", rig::describe(&c)) } else { format!("expected sense 05/21/00, got {}", rig::describe(&c)) };
            out.push(Check::new(name, ok, detail));
        }
        let c = rig.execute(&rig::rw_request(t, 0, 1, None))?;
        out.push(Check::new(format!("t{t} READ at LBA 0 afterwards"), c.is_success(), rig::describe(&c)));
    }
    if rig.disks.is_empty() {
        out.push(Check::new("disks", false, "the driver found no direct-access disk"));
    }
    Ok(out)
}

/// The first target ID with nothing on it (not the initiator's).
#[must_use]
pub fn free_target(rig: &Rig) -> Option<u8> {
    let lus = rig.machine.logical_units(0);
    (0..MAX_TARGETS).find(|&t| t != INITIATOR_ID && !lus.iter().any(|&(p, tt, _)| p == 0 && tt == t) && !rig.disks.iter().any(|d| d.target == t))
}

/// Commands to a target with no device: INQUIRY, TEST UNIT READY and READ must each end in
/// `SRB_STATUS_SELECTION_TIMEOUT` (or, if the device answers for the ID, INQUIRY must say
/// "no logical unit" and the others fail); the real disks still answer afterwards.
///
/// # Errors
/// The machine stopped.
pub fn missing_target(rig: &mut Rig, target: Option<u8>) -> Result<Vec<Check>, Error> {
    let mut out = Vec::new();
    let Some(t) = target.or_else(|| free_target(rig)) else {
        out.push(Check::new("missing target", false, "every target ID is in use"));
        return Ok(out);
    };
    if t == INITIATOR_ID || t >= MAX_TARGETS {
        out.push(Check::new(format!("t{t}"), false, format!("target {t} is the initiator or beyond the {MAX_TARGETS} the driver scans")));
        return Ok(out);
    }
    if rig.disks.iter().any(|d| d.target == t) {
        out.push(Check::new(format!("t{t}"), false, format!("target {t} has a disk; pick a free one with --target")));
        return Ok(out);
    }
    let inq = rig.execute(&Request::inquiry(t))?;
    let selection_timeout = inq.status() == sys::SRB_STATUS_SELECTION_TIMEOUT;
    // Peripheral qualifier 3: "not capable of supporting a device at this logical unit".
    let no_lu = inq.is_success() && inq.data.first().is_some_and(|b| b >> 5 == 3);
    out.push(Check::new(
        format!("t{t} INQUIRY"),
        selection_timeout || no_lu,
        if selection_timeout {
            "selection timeout".to_string()
        } else if no_lu {
            "no logical unit (peripheral qualifier 3)".to_string()
        } else {
            format!("expected selection timeout, got {}", rig::describe(&inq))
        },
    ));
    for (name, req) in [("TEST UNIT READY", Request::test_unit_ready(t)), ("READ", Request::read10(t, 0, 1, SECTOR))] {
        let c = rig.execute(&req)?;
        let ok = if selection_timeout { c.status() == sys::SRB_STATUS_SELECTION_TIMEOUT } else { !c.is_success() };
        out.push(Check::new(format!("t{t} {name}"), ok, rig::describe(&c)));
    }
    for d in rig.disks.clone() {
        let c = rig.execute(&Request::test_unit_ready(d.target))?;
        out.push(Check::new(format!("t{} TEST UNIT READY afterwards", d.target), c.is_success(), rig::describe(&c)));
    }
    Ok(out)
}
