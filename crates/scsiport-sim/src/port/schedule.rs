//! The deterministic schedule's event loop.

#[allow(clippy::wildcard_imports)]
use super::*;
use smallvec::SmallVec;

/// Every adapter's state and the interrupt-latency table, held by this thread
/// ([`MachineCore::hold_adapters`]).
pub(crate) struct AdaptersHeld<'a> {
    _adapters: state_lock::HeldAll<'a, AdapterSt, Arc<Adapter>>,
    _irq_due: state_lock::HeldAll<'a, sorted::SortedMap<u32, u64>, state_lock::StateLock<sorted::SortedMap<u32, u64>>>,
}

/// What `Machine::run_until` keeps across its deterministic steps: the adapters' states and
/// `irq_due` ([`AdaptersHeld`]) and each adapter's device model ([`crate::hba::Hba::hold`]).
/// Released by the thread that took it: not `Send`, as the holds inside are not.
pub(crate) struct StepsHeld<'a> {
    _adapters: AdaptersHeld<'a>,
    devices: &'a [Arc<Adapter>],
}

impl Drop for StepsHeld<'_> {
    fn drop(&mut self) {
        for ad in self.devices.iter().rev() {
            ad.hba.release();
        }
    }
}

impl MachineCore {
    /// [`Self::hold_adapters`] and each adapter's device model: for a run of steps.
    pub(crate) fn hold_for_steps(&self) -> Option<StepsHeld<'_>> {
        let adapters = self.hold_adapters()?;
        for ad in &self.adapters {
            ad.hba.hold();
        }
        Some(StepsHeld { _adapters: adapters, devices: &self.adapters })
    }

    /// Holds every adapter's state and `irq_due` for this thread until the result is dropped
    /// (`state_lock.rs`): its looks meanwhile are nested acquisitions without a barrier, and
    /// other threads wait. For the deterministic schedule, whose steps run on one thread; `None`
    /// in adversarial mode, whose second thread reaches the state while a step waits for it in
    /// a routine, and when this thread holds them already (a step inside `Machine::run_until`'s
    /// hold: `irq_due` is taken last, so holding it means holding them all).
    pub(crate) fn hold_adapters(&self) -> Option<AdaptersHeld<'_>> {
        (!self.irq_due.held_here() && !self.cfg.adversarial).then(|| AdaptersHeld {
            _adapters: state_lock::HeldAll::new(&self.adapters),
            _irq_due: state_lock::HeldAll::new(std::slice::from_ref(&self.irq_due)),
        })
    }

    /// One step of the deterministic event loop: pick one runnable action (seeded), or advance
    /// the virtual clock to the next event.
    pub(crate) fn det_step(self: &Arc<Self>) -> Step {
        self.det_step_until(u64::MAX)
    }

    /// As [`Self::det_step`], but the clock never moves past `limit`.
    #[allow(clippy::too_many_lines)]
    pub(crate) fn det_step_until(self: &Arc<Self>, limit: u64) -> Step {
        // The step's lists live on the stack: an adapter contributes a few actions and one line,
        // so a step neither allocates nor shares them (a nested step has its own).
        let mut actions: SmallVec<[Action; 16]> = SmallVec::new();
        let mut lines: SmallVec<[u32; 4]> = SmallVec::new();
        // Adapters with a stall being timed, by index: a step that acts ends their stall.
        let mut stalled: SmallVec<[usize; 4]> = SmallVec::new();
        // Adapters whose stall without `NextRequest` is being timed: (index, (since, deadline)).
        let mut hangs: SmallVec<[(usize, (u64, u64)); 4]> = SmallVec::new();
        if self.is_halted() {
            return Step::Idle;
        }
        // The step holds every adapter's state for its whole run (unless `Machine::run_until`
        // holds them already), so that its many looks at one are nested acquisitions without a
        // barrier.
        let _held = self.hold_adapters();
        // A bus reset the upper edge asked for (`Machine::reset_bus`) is the next event wherever
        // the port may reset: at once, or right after the deferred-interrupt window closes.
        for ad in &self.adapters {
            if self.run_requested_resets(ad) {
                return Step::Progress;
            }
        }
        let now = self.now();
        let mut next: Option<u64> = None;
        let at = |t: u64, next: &mut Option<u64>| {
            if t > now {
                *next = Some(next.map_or(t, |n| n.min(t)));
            }
        };
        for ad in &self.adapters {
            if let Some(t) = ad.hba.next_event_ns() {
                if t <= now {
                    actions.push(Action::Device(ad.index));
                } else {
                    at(t, &mut next);
                }
            }
            // The line's level, noted and used under one look at the device.
            let mut st = ad.st();
            if st.stalled_since.is_some() {
                stalled.push(ad.index);
            }
            let asserted = self.note_line_locked(ad, &mut st);
            if self.cfg.dump_mode && st.phase == Phase::Running && !st.active.is_empty() {
                if st.next_poll_ns <= now {
                    actions.push(Action::Poll(ad.index));
                } else {
                    at(st.next_poll_ns, &mut next);
                }
            }
            if st.connected && !st.deferred() && asserted {
                lines.push(ad.line);
            }
            if matches!(st.defer, Defer::EnablePending(_)) {
                if st.dpc_due_ns <= now {
                    actions.push(Action::Dpc(ad.index));
                } else {
                    at(st.dpc_due_ns, &mut next);
                }
            }
            if let Some(s) = &st.stor {
                // Storport: a queued DPC whose latency has passed; pauses ending; a reset step
                // decided at a completion.
                if s.due_dpc(now).is_some() {
                    actions.push(Action::Dpc(ad.index));
                }
                s.next_events(|t| at(t, &mut next));
                if !s.escalations.is_empty() && st.may_reset() {
                    actions.push(Action::Timeout(ad.index));
                }
            }
            if self.startable(&st, now, false) {
                actions.push(Action::Start(ad.index));
            } else if st.phase == Phase::Running && st.ready && !st.deferred() && st.hold.is_none() {
                for l in st.lus.values() {
                    if let Some(f) = l.queue.front() {
                        at(f.not_before_ns, &mut next);
                    }
                }
            }
            if let Some((_, due)) = st.timer {
                if due <= now && !st.deferred() {
                    actions.push(Action::Timer(ad.index));
                } else {
                    at(due, &mut next);
                }
            }
            // The first deadline of the SRBs that have not timed out: a timeout due now (outside
            // the deferred window), else the next deadline still to come.
            if st.phase == Phase::Running
                && let Some(&(first, _)) = st.deadlines.first()
            {
                if first > now {
                    at(first, &mut next);
                } else if !st.deferred() {
                    actions.push(Action::Timeout(ad.index));
                } else if let Some(&(later, _)) = st.deadlines.at_or_after(&(now.saturating_add(1), 0)).next() {
                    at(later, &mut next);
                }
            }
            if !st.rescan.is_empty() && st.phase == Phase::Running {
                actions.push(Action::Rescan(ad.index));
            }
            if let Some(h) = &st.hold {
                if h.until_ns <= now {
                    actions.push(Action::HoldEnd(ad.index));
                } else {
                    at(h.until_ns, &mut next);
                }
            }
            // Hang detection, under this look too (judged below, when the step finds nothing to
            // do). A stall noted now ends with the step if it acts, as one noted before does.
            if let Some(timing) = self.hang_timing(&mut st, now) {
                hangs.push((ad.index, timing));
                if !stalled.contains(&ad.index) {
                    stalled.push(ad.index);
                }
            }
        }
        {
            // Interrupt latency: a line is dispatched once it has wanted service for its draw.
            // A line that stopped wanting service (cleared, masked, deferred) forgets its draw.
            // In line order, each line once.
            lines.sort_unstable();
            lines.dedup();
            // Most steps find no line asserted and no draw to forget: they need not lock.
            if !lines.is_empty() || self.irq_due_lines.load(Ordering::Acquire) != 0 {
                let mut due = self.irq_due.lock();
                if !due.is_empty() {
                    due.retain(|l, _| lines.binary_search(l).is_ok());
                }
                self.irq_due_isrs(&mut due, &lines, now, &mut actions, &mut |t| at(t, &mut next));
            }
        }
        if actions.is_empty() {
            for &(i, timing) in &hangs {
                if let Some(d) = self.adapters.get(i).and_then(|ad| self.hang_verdict(ad, timing, now)) {
                    at(d.max(now + 1), &mut next);
                }
            }
            if self.is_halted() {
                return Step::Idle;
            }
            return match (next, &self.vclock) {
                (Some(t), Some(c)) if now < limit => {
                    c.advance_to(t.min(limit));
                    Step::Progress
                }
                _ => Step::Idle,
            };
        }
        for ad in stalled.iter().filter_map(|&i| self.adapters.get(i)) {
            ad.st().stalled_since = None;
        }
        let pick = usize::try_from(self.rand() % actions.len() as u64).unwrap_or(0);
        let Some(action) = actions.get(pick).copied() else { return Step::Idle };
        if let Action::Isr(l) = action {
            // Still asserted afterwards (not ours, a storm): a new dispatch, a new latency.
            let mut due = self.irq_due.lock();
            due.remove(&l);
            self.irq_due_lines.store(due.len(), Ordering::Release);
            drop(due);
            self.dispatch_line(l);
            return Step::Progress;
        }
        let (Action::Device(i) | Action::Poll(i) | Action::Dpc(i) | Action::Start(i) | Action::Timer(i)
        | Action::Timeout(i) | Action::HoldEnd(i) | Action::Rescan(i)) = action
        else {
            return Step::Progress;
        };
        let Some(ad) = self.adapters.get(i) else { return Step::Progress };
        match action {
            Action::Device(_) => {
                ad.run_device(now);
                self.note_line(ad);
            }
            Action::Poll(_) => {
                ad.st().next_poll_ns = now + self.cfg.dump_poll_ns;
                self.poll(ad);
            }
            Action::Dpc(_) => {
                self.run_dpc(ad);
            }
            Action::Start(_) => {
                self.try_start(ad);
            }
            Action::Timer(_) => {
                self.run_timer(ad);
            }
            Action::Timeout(_) => {
                self.run_timeouts(ad);
            }
            Action::HoldEnd(_) => {
                self.run_hold_end(ad);
            }
            Action::Rescan(_) => {
                self.run_rescan(ad);
            }
            Action::Isr(_) => {}
        }
        Step::Progress
    }

    /// The ISR dispatches of `lines` (asserted, sorted, each once) that are due: a line's draw of
    /// the interrupt latency is made when it is first seen asserted and kept in `due` until it is
    /// dispatched or stops wanting service; a draw still to come is passed to `later`.
    fn irq_due_isrs(
        &self,
        due: &mut sorted::SortedMap<u32, u64>,
        lines: &[u32],
        now: u64,
        actions: &mut SmallVec<[Action; 16]>,
        later: &mut dyn FnMut(u64),
    ) {
        for &l in lines {
            let t = if let Some(&t) = due.get(&l) {
                t
            } else {
                let t = now.saturating_add(self.draw(&self.cfg.interrupt_latency_ns));
                due.insert(l, t);
                t
            };
            if t <= now {
                actions.push(Action::Isr(l));
            } else {
                later(t);
            }
        }
        self.irq_due_lines.store(due.len(), Ordering::Release);
    }
}
