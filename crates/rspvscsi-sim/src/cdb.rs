//! `rspvscsi-sim cdb`: one SCSI command, as a class driver or an application's pass-through
//! would send it (any CDB, any data direction, any buffer length), through the miniport, and how
//! it ended. For checking that a command completes at all on a real device (the QEMU
//! cross-check's list of commands QEMU mishandles) and what the driver answers.

use scsiport_sim::{Completion, Direction, Request};
use scsiport_sys as sys;

use crate::app::{self, Verdict};
use crate::cli::{CdbArgs, DirArg};
use crate::probe::{PROBE_DISKS, hex};
use crate::rig::{Access, Rig, RigConfig, describe};

/// Bytes from hex digits (spaces allowed).
///
/// # Errors
/// Anything but pairs of hex digits.
pub fn parse_hex(text: &str) -> Result<Vec<u8>, String> {
    let digits: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    if !digits.len().is_multiple_of(2) {
        return Err(format!("{text:?}: an odd number of hex digits"));
    }
    // Digits only: `from_str_radix` would also take a sign ("+1").
    if !digits.iter().all(u8::is_ascii_hexdigit) {
        return Err(format!("{text:?}: not hex"));
    }
    digits
        .chunks(2)
        .map(|pair| {
            std::str::from_utf8(pair)
                .ok()
                .and_then(|s| u8::from_str_radix(s, 16).ok())
                .ok_or_else(|| format!("{text:?}: not hex"))
        })
        .collect()
}

/// The CDB: 1 to 16 bytes in hex.
///
/// # Errors
/// Not hex, or not 1 to 16 bytes.
pub fn parse_cdb(text: &str) -> Result<Vec<u8>, String> {
    let cdb = parse_hex(text)?;
    if cdb.is_empty() || cdb.len() > 16 {
        return Err(format!("CDB {text:?}: 1 to 16 bytes in hex"));
    }
    Ok(cdb)
}

/// An SRB status by name (`SUCCESS`, `INVALID_REQUEST`, ...) or number.
///
/// # Errors
/// Neither a known name nor a number.
pub fn parse_status(text: &str) -> Result<u8, String> {
    let names = [
        ("SUCCESS", sys::SRB_STATUS_SUCCESS),
        ("ABORTED", sys::SRB_STATUS_ABORTED),
        ("ERROR", sys::SRB_STATUS_ERROR),
        ("BUSY", sys::SRB_STATUS_BUSY),
        ("INVALID_REQUEST", sys::SRB_STATUS_INVALID_REQUEST),
        ("SELECTION_TIMEOUT", sys::SRB_STATUS_SELECTION_TIMEOUT),
        ("BUS_RESET", sys::SRB_STATUS_BUS_RESET),
        ("DATA_OVERRUN", sys::SRB_STATUS_DATA_OVERRUN),
        ("MESSAGE_REJECTED", sys::SRB_STATUS_MESSAGE_REJECTED),
    ];
    if let Some((_, v)) = names.iter().find(|(n, _)| n.eq_ignore_ascii_case(text)) {
        return Ok(*v);
    }
    // Digits only: `parse` and `from_str_radix` would also take a sign ("+5").
    let number = match text.strip_prefix("0x") {
        Some(h) if !h.is_empty() && h.bytes().all(|b| b.is_ascii_hexdigit()) => u8::from_str_radix(h, 16).ok(),
        None if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) => text.parse::<u8>().ok(),
        _ => None,
    };
    number.ok_or_else(|| format!("--expect {text:?}: an SRB status name ({}) or number", names.map(|(n, _)| n).join(", ")))
}

fn request(a: &CdbArgs, cdb: &[u8], head: &[u8], target: u8) -> Request {
    let len = a.len as usize;
    let (direction, extra) = match a.dir {
        DirArg::In => (Direction::In, 0),
        DirArg::Out => (Direction::Out, 0),
        DirArg::None => (Direction::None, 0),
        // Both bits: SRB_FLAGS_UNSPECIFIED_DIRECTION.
        DirArg::Unspecified => (Direction::In, sys::SRB_FLAGS_DATA_OUT),
    };
    let mut data = if direction == Direction::Out { vec![a.fill; len] } else { vec![0; len] };
    for (d, h) in data.iter_mut().zip(head) {
        *d = *h;
    }
    let mut req = Request::scsi(target, cdb, direction, data).with_lun(a.lun).with_flags(extra).with_timeout(a.timeout);
    if a.untagged {
        req = req.untagged();
    }
    req
}

fn line(c: &Completion) -> String {
    use std::fmt::Write;
    let mut s = describe(c);
    let _ = write!(s, ", DataTransferLength {}", c.data_transfer_length);
    if !c.data.is_empty() && c.data.iter().any(|b| *b != 0) {
        let n = c.data.len().min(16);
        let _ = write!(s, ", data {}{}", hex(&c.data[..n]), if c.data.len() > n { "…" } else { "" });
    }
    if c.busy_retries > 0 {
        let _ = write!(s, ", {} BUSY retries", c.busy_retries);
    }
    if c.timed_out {
        s.push_str(", timed out");
    }
    s
}

/// Runs the command and says how it ended. Fails when it did not end with one of `--expect`
/// (when given), when its data-in does not start with `--expect-data` (when given), or on a
/// verifier violation.
#[must_use]
pub fn run(a: &CdbArgs) -> Verdict {
    let cdb = match parse_cdb(&a.cdb) {
        Ok(c) => c,
        Err(e) => return app::usage(&e),
    };
    let head = match a.data.as_deref().map(parse_hex).transpose() {
        Ok(h) => h.unwrap_or_default(),
        Err(e) => return app::usage(&format!("--data {e}")),
    };
    if head.len() > a.len as usize {
        return app::usage("--data is longer than --len");
    }
    let expect_data = match a.expect_data.as_deref().map(parse_hex).transpose() {
        Ok(d) => d,
        Err(e) => return app::usage(&format!("--expect-data {e}")),
    };
    let expect: Result<Vec<u8>, String> = a.expect.iter().map(|s| parse_status(s)).collect();
    let expect = match expect {
        Ok(e) => e,
        Err(e) => return app::usage(&e),
    };
    // Any CDB may write: an image is opened only when that was asked for.
    let access = if a.run.allow_write { Access::Write } else { Access::WriteUnasked("a cdb command (any CDB may write)".into()) };
    let config = match RigConfig::from_args(&a.run, &PROBE_DISKS, &access) {
        Ok(c) => c,
        Err(e) => return app::usage(&e),
    };
    let mut rig = match Rig::new(&config) {
        Ok(r) => r,
        Err(e) => {
            app::report_rig_error(&e, a.run.json);
            return Verdict::Fail;
        }
    };
    let target = a.run.target.unwrap_or(0);
    let req = request(a, &cdb, &head, target);
    let what = format!("t{target} lun {} cdb {} dir {:?} len {}", a.lun, hex(&cdb), a.dir, a.len);
    // Like a class driver: a UNIT ATTENTION (the device's report of the bring-up reset) is
    // answered by sending the command again.
    let c = match rig.execute(&req) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("rspvscsi-sim cdb: {what}: FAIL: {e}");
            return Verdict::Fail;
        }
    };
    let status_ok = expect.is_empty() || expect.contains(&c.status());
    let data_ok = expect_data.as_ref().is_none_or(|d| c.data.starts_with(d));
    let ok = status_ok && data_ok;
    let complaint = match (status_ok, data_ok) {
        (true, true) => "",
        (false, _) => " (not what --expect says)",
        (true, false) => " (data not what --expect-data says)",
    };
    println!("rspvscsi-sim cdb: {what}: {}{complaint}", line(&c));
    // The device is still usable afterwards: TEST UNIT READY on the same target.
    let after = rig.execute(&Request::test_unit_ready(target));
    let after_ok = after.as_ref().is_ok_and(Completion::is_success);
    match &after {
        Ok(c) => println!("rspvscsi-sim cdb: TEST UNIT READY afterwards: {}", describe(c)),
        Err(e) => println!("rspvscsi-sim cdb: TEST UNIT READY afterwards: {e}"),
    }
    rig.machine.flush_trace();
    let violations = rig.machine.violations();
    for v in &violations {
        eprintln!("rspvscsi-sim cdb: verifier: {:#x} {:?}: {}", v.code, v.rule, v.message);
    }
    // On the model: what QEMU would not have survived (a request it never completes, then the
    // assertion at the next adapter reset).
    let faults = rig.device_faults();
    for f in &faults {
        eprintln!("rspvscsi-sim cdb: device: {f}");
    }
    if ok && after_ok && violations.is_empty() && faults.is_empty() && !c.timed_out { Verdict::Pass } else { Verdict::Fail }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cdbs_and_statuses() {
        assert_eq!(parse_cdb("9c 00 0000"), Ok(vec![0x9C, 0, 0, 0]));
        assert!(parse_cdb("").is_err());
        assert!(parse_cdb("9").is_err());
        assert!(parse_cdb("zz").is_err());
        assert!(parse_cdb(&"00".repeat(17)).is_err());
        assert_eq!(parse_status("invalid_request"), Ok(0x06));
        assert_eq!(parse_status("0x12"), Ok(0x12));
        assert_eq!(parse_status("1"), Ok(1));
        assert!(parse_status("nope").is_err());
    }

    #[test]
    fn a_sign_is_not_a_digit() {
        // `u8::from_str_radix` and `str::parse` take a leading '+'; the fuzz target `cli` found
        // "+1 2a" accepted as the CDB 01 2a.
        assert!(parse_cdb("+1 2a").is_err());
        assert!(parse_hex("2a+1").is_err());
        assert!(parse_hex("-1").is_err());
        assert!(parse_status("+5").is_err());
        assert!(parse_status("0x+5").is_err());
        assert_eq!(parse_status("0x0A"), Ok(0x0A));
    }
}
