//! Storport's recovery: SRB timeouts and the multi-tier reset (`KG:multi-tier-reset-in-storport`:
//! "the Storport driver and related higher-level drivers attempt to reset the logical unit. If
//! this fails, Storport attempts to reset the device. Finally, if this approach also fails,
//! Storport resets the bus"), `HwStorResetBus` under the `StartIo` lock
//! (`DDI-storport:nc-storport-hw_reset_bus`), and the queue controls the miniport calls
//! (`KG:storport-queue-management`).
//!
//! The sequence is the page's; its timing is the emulator's (not documented): a request whose
//! `TimeOutValue` passed gets an `SRB_FUNCTION_RESET_LOGICAL_UNIT` for its logical unit at once;
//! when that reset comes back with an error, or leaves a timed-out request of the unit still
//! outstanding, or itself times out, an `SRB_FUNCTION_RESET_DEVICE` for the target follows the
//! same way, and then `HwStorResetBus` for the bus. Each reset SRB gets [`RESET_TIMEOUT_S`],
//! counted from when it is sent: a reset SRB that cannot start in that time (every request the
//! miniport allows, `MaxNumberOfIO`, outstanding and lost with the device) has failed too, and
//! the next tier follows. Else such an adapter would wait for ever, the bus reset that ends it
//! being the last tier.

use std::collections::BTreeSet;
use std::sync::Arc;

use scsiport_sys as sys;

use super::{Escalation as Next, Stage, Tier};
use crate::port::{Adapter, Error, LuAddr, MachineCore, ResetReason, Routine, Scan};
use crate::request::Request;
use crate::trace::J;
use crate::verifier::Rule;

/// `TimeOutValue` of the reset SRBs the port sends (seconds).
pub(crate) const RESET_TIMEOUT_S: u32 = 4;
const RESET_TIMEOUT_NS: u64 = RESET_TIMEOUT_S as u64 * 1_000_000_000;


impl MachineCore {
    /// Storport's timeout check: requests past their `TimeOutValue` start (or advance) the
    /// multi-tier reset of their logical unit; a request `HwStorBuildIo` kept without completing
    /// is a rule break instead (`DDI-storport:nc-storport-hw_buildio`).
    pub(crate) fn stor_run_timeouts(self: &Arc<Self>, ad: &Arc<Adapter>) -> bool {
        let now = self.now();
        let (next, kept) = {
            let mut st = ad.st();
            if !st.may_reset() {
                return false;
            }
            let mut next: Vec<Next> = st.stor.as_mut().map(|s| std::mem::take(&mut s.escalations)).unwrap_or_default();
            let mut timed_out: Vec<(u64, LuAddr, Stage)> = Vec::new();
            for a in st.active.values_mut() {
                if !a.timed_out && a.deadline_ns <= now {
                    a.timed_out = true;
                    timed_out.push((a.preq.id, a.preq.lu(), a.stage));
                }
            }
            // A reset SRB still queued when its time, counted from its submission, is up: failed,
            // as one that started and timed out.
            if let Some(s) = st.stor.as_ref() {
                for (&lu, &(_, id)) in &s.tiers {
                    if st.priority.iter().any(|p| p.id == id && p.submitted_ns.saturating_add(RESET_TIMEOUT_NS) <= now) {
                        timed_out.push((id, lu, Stage::Started));
                    }
                }
            }
            // Every SRB due by now has timed out: none of them is a next deadline.
            st.deadlines.retain(|&(d, _)| d > now);
            if timed_out.is_empty() && next.is_empty() {
                return false;
            }
            st.stats.timeouts += timed_out.len() as u64;
            let kept: Vec<u64> = timed_out.iter().filter(|t| t.2 == Stage::Kept).map(|t| t.0).collect();
            let Some(s) = st.stor.as_mut() else { return false };
            let mut seen = BTreeSet::new();
            for (id, lu, _) in timed_out {
                // The reset SRB itself timed out: the next tier.
                if let Some((&lu_k, &(tier, _))) = s.tiers.iter().find(|(_, (_, r))| *r == id) {
                    s.tiers.remove(&lu_k);
                    next.push(match tier {
                        Tier::LogicalUnit => Next::Send(Tier::Device, lu_k),
                        Tier::Device => Next::ResetBus(lu_k.0),
                    });
                    continue;
                }
                if !s.tiers.contains_key(&lu) && seen.insert(lu) {
                    next.push(Next::Send(Tier::LogicalUnit, lu));
                }
            }
            (next, kept)
        };
        if let Some(&id) = kept.first() {
            self.violation(
                Some(ad.index),
                Rule::StorBuildIoNotCompleted,
                [id, 0, 0],
                format!("srb {id}: HwStorBuildIo returned FALSE and the request was not completed by its timeout"),
            );
            return true;
        }
        for n in next {
            self.stor_escalate(ad, n);
        }
        self.kick_dpc();
        true
    }

    fn stor_escalate(self: &Arc<Self>, ad: &Arc<Adapter>, next: Next) {
        match next {
            Next::ResetBus(path) => self.stor_port_reset_bus(ad, path, ResetReason::Timeout),
            Next::Send(tier, (path, target, lun)) => {
                let (function, name) = match tier {
                    Tier::LogicalUnit => (sys::SRB_FUNCTION_RESET_LOGICAL_UNIT, "reset_logical_unit"),
                    Tier::Device => (sys::SRB_FUNCTION_RESET_DEVICE, "reset_device"),
                };
                self.trace(
                    Some(ad.index),
                    "port",
                    &[("fn", J::Static(name)), ("path", J::from(path)), ("target", J::from(target)), ("lun", J::from(lun))],
                );
                let req = if function == sys::SRB_FUNCTION_RESET_LOGICAL_UNIT {
                    Request::reset_logical_unit(path, target, lun)
                } else {
                    Request::reset_device(path, target)
                }
                .with_timeout(RESET_TIMEOUT_S);
                // The tier is recorded before the request can start (and complete); while it
                // waits to start, the end of its time is a deadline, so that the timeout check
                // runs then.
                let record = |t: crate::request::Ticket| {
                    let mut st = ad.st();
                    if let Some(s) = st.stor.as_mut() {
                        s.tiers.insert((path, target, lun), (tier, t.0));
                    }
                    if let Some(due) = st.priority.iter().find(|p| p.id == t.0).map(|p| p.submitted_ns.saturating_add(RESET_TIMEOUT_NS)) {
                        st.deadlines.insert((due, t.0));
                    }
                };
                match self.submit_then(ad.index, req, Scan::Port, record) {
                    Ok(_) | Err(Error::BugCheck(_)) => {}
                    Err(_) => self.stor_port_reset_bus(ad, path, ResetReason::Timeout),
                }
            }
        }
    }

    /// After a completion on a Storport adapter: a reset SRB of the multi-tier reset that failed,
    /// or left a timed-out request of its unit outstanding, moves to the next tier.
    pub(crate) fn stor_completed(&self, ad: &Adapter, id: u64, status: u8) {
        {
            let mut st = ad.st();
            let Some((k, tier)) = st.stor.as_ref().and_then(|s| s.tiers.iter().find(|(_, (_, r))| *r == id).map(|(k, (t, _))| (*k, *t))) else {
                return;
            };
            let covers = |a: LuAddr| match tier {
                Tier::LogicalUnit => a == k,
                Tier::Device => a.0 == k.0 && a.1 == k.1,
            };
            let left = st.active.values().any(|a| a.timed_out && covers(a.preq.lu()));
            if let Some(s) = st.stor.as_mut() {
                s.tiers.remove(&k);
            }
            if sys::SRB_STATUS(status) == sys::SRB_STATUS_SUCCESS && !left {
                return;
            }
            let next = match tier {
                Tier::LogicalUnit => Next::Send(Tier::Device, k),
                Tier::Device => Next::ResetBus(k.0),
            };
            if let Some(s) = st.stor.as_mut() {
                s.escalations.push(next);
            }
        }
        self.kick_dpc();
    }

    /// A port-initiated bus reset on Storport: the adapter's queues paused, `HwStorResetBus`
    /// under the `StartIo` lock, which must complete the requests `HwStorStartIo` received for the
    /// bus "during this routine" (`DDI-storport:nc-storport-hw_reset_bus`), then the pause of
    /// `BusResetHoldTime`.
    pub(crate) fn stor_port_reset_bus(self: &Arc<Self>, ad: &Arc<Adapter>, path: u8, reason: ResetReason) {
        let Some(reset) = ad.st().stor.as_ref().and_then(|s| s.hw.0.HwResetBus) else { return };
        let locks = self.routine_locks(ad, Routine::ResetBus);
        let before: Vec<(usize, u64)> = {
            let mut st = ad.st();
            st.stats.bus_resets += 1;
            st.active.iter().filter(|(_, a)| a.snapshot.PathId == path && a.stage == Stage::Started).map(|(s, a)| (*s, a.preq.id)).collect()
        };
        match reason {
            ResetReason::Timeout => self.trace(Some(ad.index), "port", &[("fn", J::Static("timeout")), ("path", J::from(path))]),
            ResetReason::Request => self.trace(
                Some(ad.index),
                "port",
                &[("fn", J::Static("reset_bus")), ("path", J::from(path)), ("outstanding", J::from(before.len()))],
            ),
        }
        let devext = ad.devext_ptr();
        self.call_held(Some(ad), Routine::ResetBus, locks.held, &[("path", J::from(path))], || {
            // SAFETY: the miniport's HwStorResetBus under the `StartIo` lock.
            unsafe { reset(devext, u32::from(path)) }
        });
        drop(locks);
        let now = self.now();
        let left: Vec<u64> = {
            let mut st = ad.st();
            if let Some(s) = st.stor.as_mut() {
                s.reset_pause_until = Some(now.saturating_add(u64::from(s.bus_reset_hold_us) * 1000));
            }
            before.iter().filter(|(s, _)| st.active.contains_key(s)).map(|(_, id)| *id).collect()
        };
        if !left.is_empty() {
            self.violation(
                Some(ad.index),
                Rule::StorResetBusLeftRequests,
                [u64::from(path), left.len() as u64, 0],
                format!("HwStorResetBus({path}) returned with {} request(s) of the bus still outstanding (srb {left:?})", left.len()),
            );
        }
        self.kick_dpc();
    }

    /// The bus resets `Machine::reset_bus` asked for, on Storport.
    pub(crate) fn stor_requested_resets(self: &Arc<Self>, ad: &Arc<Adapter>) -> bool {
        let mut ran = false;
        while !self.is_halted() {
            let (ticket, path) = {
                let st = ad.st();
                if !st.may_reset() {
                    break;
                }
                // As on SCSI Port: a reset meets the requests at the miniport, not the instant
                // before the port starts one.
                if !st.has_active() && self.startable(&st, self.now(), false) {
                    break;
                }
                let Some(&(ticket, path)) = st.reset_requests.front() else { break };
                (ticket, path)
            };
            self.stor_port_reset_bus(ad, path, ResetReason::Request);
            ad.st().reset_requests.retain(|(t, _)| *t != ticket);
            ad.reset_ran();
            ran = true;
        }
        if ran {
            self.kick_dpc();
        }
        ran
    }

    /// `StorPortPause`, `StorPortResume`, `StorPortBusy`, `StorPortReady` and their per-device
    /// forms (`KG:storport-queue-management`): `device` names the logical unit for the latter.
    pub(crate) fn stor_queue_control(&self, ad: &Adapter, what: &'static str, device: Option<LuAddr>, value: u32) -> bool {
        let now = self.now();
        let mut fields = vec![("fn", J::Static(what)), ("value", J::from(value))];
        if let Some((p, t, l)) = device {
            fields.extend([("path", J::from(p)), ("target", J::from(t)), ("lun", J::from(l))]);
        }
        self.trace(Some(ad.index), "port", &fields);
        let mut st = ad.st();
        let outstanding = u32::try_from(st.active.len()).unwrap_or(u32::MAX);
        let lu_outstanding = device.map_or(0, |k| st.lus.get(&k).map_or(0, |l| u32::try_from(l.active.len()).unwrap_or(u32::MAX)));
        let Some(s) = st.stor.as_mut() else { return false };
        let until = now.saturating_add(u64::from(value) * 1_000_000_000);
        match (what, device) {
            ("StorPortPause", None) => s.paused_until = Some(until),
            ("StorPortResume", None) => s.paused_until = None,
            // "If RequestsToComplete is greater than the number of currently outstanding
            // requests, the Storport driver will complete all outstanding requests".
            ("StorPortBusy", None) => s.busy_left = Some(value.min(outstanding)).filter(|n| *n > 0),
            ("StorPortReady", None) => s.busy_left = None,
            ("StorPortPauseDevice", Some(k)) => {
                s.lu_paused.insert(k, until);
            }
            ("StorPortResumeDevice", Some(k)) => {
                s.lu_paused.remove(&k);
            }
            ("StorPortDeviceBusy", Some(k)) => {
                let n = value.min(lu_outstanding);
                if n > 0 {
                    s.lu_busy.insert(k, n);
                }
            }
            ("StorPortDeviceReady", Some(k)) => {
                s.lu_busy.remove(&k);
            }
            _ => return false,
        }
        drop(st);
        self.kick_dpc();
        true
    }
}
