//! Storport's I/O path: per-LU and per-adapter queue depths decide when a request goes to the
//! miniport ("if the adapter and a logical unit are both ready to receive a request, the system
//! calls the miniport driver's `HwStorBuildIo` and `HwStorStartIo` routines in that order",
//! `KG:storport-queue-management`); `HwStorBuildIo` runs with no lock, `HwStorStartIo` under the
//! `StartIo` lock, and no `NextRequest` is needed.

use std::sync::Arc;

use scsiport_sys as sys;
use sys::FALSE;

use super::{Stage, StorSt};
use crate::mem::PAGE_SIZE;
use crate::port::{Adapter, AdapterSt, Lu, LuAddr, MachineCore, Phase, Routine};
use crate::request::Request;
use crate::trace::J;
use crate::verifier::Rule;

impl StorSt {
    /// Why Storport could not hand this request to the miniport as it is: longer than
    /// `MaximumTransferLength`, or more pages than `NumberOfPhysicalBreaks` scatter/gather
    /// elements (the class driver splits requests to fit both).
    pub(crate) fn refuses(&self, req: &Request) -> Option<String> {
        let len = req.transfer_len();
        if len == 0 {
            return None;
        }
        if u64::try_from(len).unwrap_or(u64::MAX) > u64::from(self.max_transfer) {
            return Some(format!("{len} bytes > MaximumTransferLength {}", self.max_transfer));
        }
        let pages = (req.buffer_offset % PAGE_SIZE + len).div_ceil(PAGE_SIZE);
        if u64::try_from(pages).unwrap_or(u64::MAX) > u64::from(self.max_breaks) {
            return Some(format!("{pages} pages > NumberOfPhysicalBreaks {}", self.max_breaks));
        }
        None
    }

    /// Whether the adapter as a whole takes a request now: not paused (`StorPortPause`, a link
    /// down, the pause after a reset), not busy (`StorPortBusy`), below `MaxNumberOfIO`.
    fn adapter_ready(&self, outstanding: usize, now: u64) -> bool {
        self.paused_until.is_none_or(|t| t <= now)
            && self.reset_pause_until.is_none_or(|t| t <= now)
            && !self.link_down
            && self.busy_left.is_none()
            && u64::try_from(outstanding).unwrap_or(u64::MAX) < u64::from(self.max_io)
    }
}

/// Marks a thread as inside the submission routines of an adapter while alive.
struct Submitting<'a>(&'a Adapter);

impl<'a> Submitting<'a> {
    fn enter(ad: &'a Adapter) -> Self {
        ad.submitting.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        Self(ad)
    }
}

impl Drop for Submitting<'_> {
    fn drop(&mut self) {
        self.0.submitting.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}

impl MachineCore {
    /// Whether Storport would hand a request to the miniport now.
    pub(crate) fn stor_startable(st: &AdapterSt, s: &StorSt, now: u64) -> bool {
        if st.phase != Phase::Running || st.hold.is_some() || !s.adapter_ready(st.active.len(), now) {
            return false;
        }
        if st.priority.front().is_some_and(|p| p.not_before_ns <= now) {
            return true;
        }
        st.lus.iter().any(|(k, l)| Self::stor_lu_startable(st, *k, l, now))
    }

    /// Whether a logical unit takes its next request: the LU not paused or busy
    /// (`StorPortPauseDevice`, `StorPortDeviceBusy`), below its queue depth, an untagged request
    /// alone.
    pub(crate) fn stor_lu_startable(st: &AdapterSt, k: LuAddr, l: &Lu, now: u64) -> bool {
        let Some(s) = st.stor.as_ref() else { return false };
        let Some(front) = l.queue.front() else { return false };
        if front.not_before_ns > now || (l.frozen && front.req.extra_flags & sys::SRB_FLAGS_BYPASS_FROZEN_QUEUE == 0) {
            return false;
        }
        if s.lu_paused.get(&k).is_some_and(|t| *t > now) || s.lu_busy.contains_key(&k) {
            return false;
        }
        if l.active.is_empty() {
            return true;
        }
        Self::is_tagged(st, front) && !l.active.contains_key(sys::SP_UNTAGGED) && u64::try_from(l.active.len()).unwrap_or(u64::MAX) < u64::from(s.lu_depth)
    }

    /// Starts one request if Storport would: builds its SRB and scatter/gather list, calls
    /// `HwStorBuildIo` with no lock and, if it returns TRUE, `HwStorStartIo` under the `StartIo`
    /// lock. Returns whether the miniport was called.
    pub(crate) fn stor_try_start(self: &Arc<Self>, ad: &Arc<Adapter>) -> bool {
        let now = self.now();
        let (srb, id, fields, build_io, start_io) = {
            let mut st = ad.st();
            let Some(s) = st.stor.as_ref() else { return false };
            if !Self::stor_startable(&st, s, now) {
                return false;
            }
            let (build_io, start_io) = (s.hw.0.HwBuildIo, s.hw.0.HwStartIo);
            let Some(start_io) = start_io else { return false };
            let Some(preq) = Self::pick_request(&mut st, now, Self::stor_lu_startable) else { return false };
            match self.build_srb(ad, &mut st, preq) {
                Ok((srb, id, fields)) => (srb, id, fields, build_io, start_io),
                Err(msg) => {
                    drop(st);
                    self.trace(Some(ad.index), "port", &[("fn", J::Static("emulator")), ("error", J::Str(msg))]);
                    return false;
                }
            }
        };
        let devext = ad.devext_ptr();
        let key = srb as usize;
        let _submitting = Submitting::enter(ad);
        if let Some(build) = build_io {
            let r = self.call(Some(ad), Routine::BuildIo, &fields, || {
                // SAFETY: the miniport's HwStorBuildIo with its device extension and an SRB the
                // port built, no lock held.
                unsafe { build(devext, srb) }
            });
            let mut st = ad.st();
            st.stats.build_io_calls += 1;
            let completed = !st.active.contains_key(&key);
            if r == FALSE {
                if let Some(a) = st.active.get_mut(&key) {
                    // Not completed yet: the miniport keeps it and must complete it before its
                    // timeout (`DDI-storport:nc-storport-hw_buildio`).
                    a.stage = Stage::Kept;
                }
                return true;
            }
            drop(st);
            if completed {
                self.violation(
                    Some(ad.index),
                    Rule::StorBuildIoCompletedTrue,
                    [key as u64, 0, 0],
                    format!("HwStorBuildIo completed srb {id} and returned TRUE: Storport would pass a completed request to HwStorStartIo"),
                );
                return true;
            }
        }
        if self.is_halted() {
            return true;
        }
        let locks = self.routine_locks(ad, Routine::StartIo);
        {
            let mut st = ad.st();
            match st.active.get_mut(&key) {
                Some(a) => a.stage = Stage::Started,
                // Completed meanwhile (from another routine, by a misbehaving miniport).
                None => return true,
            }
        }
        // The request was traced in full at HwStorBuildIo's call; HwStorStartIo names it.
        let start_fields = if build_io.is_some() { vec![("srb", J::U(id))] } else { fields };
        let r = self.call_held(Some(ad), Routine::StartIo, locks.held, &start_fields, || {
            // SAFETY: the miniport's HwStorStartIo with its device extension and the SRB
            // HwStorBuildIo passed on, under the `StartIo` lock.
            unsafe { start_io(devext, srb) }
        });
        drop(locks);
        ad.st().stats.start_io_calls += 1;
        if r == FALSE {
            // "Otherwise, it returns FALSE" (`DDI-storport:nc-storport-hw_startio`): documented,
            // so not a rule break; what Storport does then is not, and the request stays with the
            // miniport.
            self.trace(Some(ad.index), "port", &[("fn", J::Static("start_io_false")), ("srb", J::U(id))]);
        }
        true
    }
}
