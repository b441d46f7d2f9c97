//! Timers, SRB timeouts, bus resets and the reset hold, hang detection.

#[allow(clippy::wildcard_imports)]
use super::*;

impl MachineCore {
    pub(crate) fn run_timer(self: &Arc<Self>, ad: &Arc<Adapter>) -> bool {
        // SCSI Port: the interrupt lock; Storport: the StartIo lock (`DDI-storport:nc-storport-hw_timer`).
        let locks = self.routine_locks(ad, Routine::Timer);
        let now = self.now();
        let t = {
            let mut st = ad.st();
            if st.deferred() || st.phase != Phase::Running {
                return false;
            }
            match st.timer {
                Some((f, due)) if due <= now => {
                    st.timer = None;
                    st.stats.timer_calls += 1;
                    f
                }
                _ => return false,
            }
        };
        // SAFETY: the non-NULL PHW_TIMER the miniport passed with RequestTimerCall.
        let f: unsafe extern "win64" fn(PVOID) = unsafe { std::mem::transmute(t) };
        let devext = ad.devext_ptr();
        self.call_held(Some(ad), Routine::Timer, locks.held, &[], || {
            // SAFETY: the miniport's HwScsiTimer (HwStorTimer) under the port's lock.
            unsafe { f(devext) };
            0i32
        });
        drop(locks);
        self.kick_dpc();
        true
    }

    /// SRB timeouts (contract §7.3, inferred model): `HwScsiResetBus(PathId)` under the interrupt
    /// lock, then the reset hold ([`Self::port_reset_bus`], once per bus with a request that
    /// timed out).
    pub(crate) fn run_timeouts(self: &Arc<Self>, ad: &Arc<Adapter>) -> bool {
        if self.port == Port::Storport {
            return self.stor_run_timeouts(ad);
        }
        let _g = ad.intlock();
        let now = self.now();
        let (paths, reset) = {
            let mut st = ad.st();
            if !st.may_reset() {
                return false;
            }
            let mut paths = BTreeSet::new();
            let mut n = 0;
            for a in st.active.values_mut() {
                if !a.timed_out && a.deadline_ns <= now {
                    a.timed_out = true;
                    paths.insert(a.snapshot.PathId);
                    n += 1;
                }
            }
            // Every SRB due by now has timed out: none of them is a next deadline.
            st.deadlines.retain(|&(d, _)| d > now);
            st.stats.timeouts += n;
            (paths, st.hw.and_then(|h| h.0.HwResetBus))
        };
        if paths.is_empty() {
            return false;
        }
        let Some(reset) = reset else { return false };
        for p in paths {
            self.port_reset_bus(ad, reset, p, ResetReason::Timeout);
        }
        self.kick_dpc();
        true
    }

    /// A port-initiated bus reset, the interrupt lock held and outside the deferred-interrupt
    /// window ([`AdapterSt::may_reset`]); the one path for SRB timeouts and for
    /// `Machine::reset_bus`. The trace event, `stats.bus_resets`, the reset hold for the requests
    /// outstanding on the bus now (0x1007 when it ends, contract §7.2), then
    /// `HwScsiResetBus(PathId)`, which must complete them all (contract §3.5).
    pub(crate) fn port_reset_bus(self: &Arc<Self>, ad: &Arc<Adapter>, reset: HwResetBusFn, path: u8, reason: ResetReason) {
        let outstanding = {
            let mut st = ad.st();
            st.stats.bus_resets += 1;
            let n = st.active.values().filter(|a| a.snapshot.PathId == path).count();
            self.begin_hold(&mut st, Some(path));
            n
        };
        match reason {
            ResetReason::Timeout => self.trace(Some(ad.index), "port", &[("fn", J::Static("timeout")), ("path", J::from(path))]),
            ResetReason::Request => self.trace(
                Some(ad.index),
                "port",
                &[("fn", J::Static("reset_bus")), ("path", J::from(path)), ("outstanding", J::from(outstanding))],
            ),
        }
        let devext = ad.devext_ptr();
        self.call(Some(ad), Routine::ResetBus, &[("path", J::from(path))], || {
            // SAFETY: the miniport's HwScsiResetBus under the interrupt lock.
            unsafe { reset(devext, u32::from(path)) }
        });
    }

    /// Queues a port-initiated bus reset for `Machine::reset_bus`; returns its ticket for
    /// [`Adapter::reset_state`].
    pub(crate) fn request_reset(&self, ad: &Adapter, path: u8) -> Result<u64, Error> {
        if let Some(e) = self.halt_error() {
            return Err(e);
        }
        let mut st = ad.st();
        if st.phase != Phase::Running {
            return Err(Error::Usage(format!("adapter {} is not running ({:?})", ad.index, st.phase)));
        }
        if path >= st.caps.buses {
            return Err(Error::Usage(format!("adapter {} has {} bus(es), no bus {path}", ad.index, st.caps.buses)));
        }
        st.reset_tickets += 1;
        let ticket = st.reset_tickets;
        st.reset_requests.push_back((ticket, path));
        ad.resets_wanted.store(true, Ordering::Release);
        drop(st);
        self.kick_dpc();
        Ok(ticket)
    }

    /// Runs the bus resets the upper edge asked for, if the port may reset now.
    /// Inline: every deterministic step asks, and nearly always nobody wants a reset.
    #[inline]
    pub(crate) fn run_requested_resets(self: &Arc<Self>, ad: &Arc<Adapter>) -> bool {
        ad.resets_wanted.load(Ordering::Acquire) && self.run_wanted_resets(ad)
    }

    fn run_wanted_resets(self: &Arc<Self>, ad: &Arc<Adapter>) -> bool {
        {
            let st = ad.st();
            if st.reset_requests.is_empty() {
                ad.resets_wanted.store(false, Ordering::Release);
                return false;
            }
        }
        if self.port == Port::Storport {
            return self.stor_requested_resets(ad);
        }
        let _g = ad.intlock();
        self.requested_resets_locked(ad)
    }

    /// As [`Self::run_requested_resets`], the interrupt lock held.
    pub(crate) fn requested_resets_locked(self: &Arc<Self>, ad: &Arc<Adapter>) -> bool {
        let mut ran = false;
        while !self.is_halted() {
            let (ticket, path, reset) = {
                let st = ad.st();
                if !st.may_reset() {
                    break;
                }
                // When the miniport holds nothing but the port can start a request right now, the
                // reset waits for that StartIo (and runs as soon as it has returned). Otherwise it
                // would land on exactly the moment a callback has just emptied the miniport, or
                // before the port started anything that was just submitted; a reset after a
                // timeout on a busy bus meets the requests the miniport holds.
                if !st.has_active() && self.startable(&st, self.now(), false) {
                    break;
                }
                let Some(reset) = st.hw.and_then(|h| h.0.HwResetBus) else { break };
                let Some(&(ticket, path)) = st.reset_requests.front() else { break };
                (ticket, path, reset)
            };
            self.port_reset_bus(ad, reset, path, ResetReason::Request);
            // Done once `HwScsiResetBus` has returned: off the queue (by ticket, in case its
            // caller gave up meanwhile).
            ad.st().reset_requests.retain(|(t, _)| *t != ticket);
            ad.reset_ran();
            ran = true;
        }
        if ran {
            self.kick_dpc();
        }
        ran
    }

    pub(crate) fn run_hold_end(&self, ad: &Adapter) -> bool {
        let now = self.now();
        let mut st = ad.st();
        let Some(h) = st.hold.as_ref() else { return false };
        if h.until_ns > now {
            return false;
        }
        let left: Vec<u64> = h.ids.iter().copied().filter(|id| st.active.values().any(|a| a.preq.id == *id)).collect();
        st.hold = None;
        drop(st);
        if !left.is_empty() {
            let devext = ad.devext.load(Ordering::Relaxed) as u64;
            self.violation(
                Some(ad.index),
                Rule::ResetHoldOutstanding,
                [ad.index as u64, devext, 0],
                format!("the reset hold ended with {} request(s) still outstanding (srb {:?})", left.len(), left),
            );
        }
        self.kick_dpc();
        true
    }

    /// Hang detection for a missing `NextRequest` (contract §10 line 15).
    pub(crate) fn hang_check(&self, ad: &Adapter) -> Option<u64> {
        let now = self.now();
        let timing = self.hang_timing(&mut ad.st(), now)?;
        self.hang_verdict(ad, timing, now)
    }

    /// The timing half of [`Self::hang_check`], on the adapter's state as the caller has it
    /// locked (the deterministic step's scan): notes the start of a stall (requests waiting, none
    /// outstanding, no `NextRequest`) or forgets one that ended; `(since, deadline)` of one being
    /// timed.
    pub(crate) fn hang_timing(&self, st: &mut AdapterSt, now: u64) -> Option<(u64, u64)> {
        if self.port == Port::Storport {
            // Storport has no NextRequest to miss.
            return None;
        }
        let waiting = st.phase == Phase::Running
            && !st.ready
            && st.active.is_empty()
            && !st.deferred()
            && st.hold.is_none()
            && st.timer.is_none()
            && self.startable(st, now, true);
        if !waiting {
            st.stalled_since = None;
            return None;
        }
        let since = *st.stalled_since.get_or_insert(now);
        Some((since, since.saturating_add(self.verifier.hang_threshold_ns)))
    }

    /// The verdict half of [`Self::hang_check`]: the violation once the stall has lasted past
    /// its deadline, else the deadline.
    pub(crate) fn hang_verdict(&self, ad: &Adapter, (since, deadline): (u64, u64), now: u64) -> Option<u64> {
        if now >= deadline && self.verifier.checks(Rule::MissingNextRequest) {
            let q = ad.st().queued();
            self.violation(
                Some(ad.index),
                Rule::MissingNextRequest,
                [q as u64, (now - since) / 1000, 0],
                format!("{q} request(s) waiting, none outstanding, and no NextRequest for {} ms", (now - since) / 1_000_000),
            );
            return None;
        }
        Some(deadline)
    }
}
