//! Interrupts: line dispatch, `HwScsiInterrupt`, and the deferred-interrupt callbacks.

#[allow(clippy::wildcard_imports)]
use super::*;

impl MachineCore {
    /// Records a change of the adapter's line level. The level is read, compared and traced under
    /// the adapter's lock (the order `line_wants_service` also takes: adapter, then device), so that
    /// in the concurrent schedule two threads noting the line cannot trace its edges out of order:
    /// a rise stamped before a fall but written after it (`trace_chrome`'s
    /// `concurrent_runs_convert_too` saw about 1 run in 8 fail that way).
    ///
    /// A level equal to the one last noted (`Adapter::line_noted`) is no change and needs no
    /// lock: most calls (after a kick, after a device turn that completed nothing)
    /// find it so. A change another thread is noting meanwhile is noted by it or by the next call.
    pub(crate) fn note_line(&self, ad: &Adapter) {
        if ad.hba.irq_asserted() == ad.line_noted.load(Ordering::Acquire) {
            return;
        }
        self.note_line_locked(ad, &mut ad.st());
    }

    /// [`Self::note_line`] with the adapter's state already locked (`_st`: the lock that orders
    /// the traced edges); returns the level.
    pub(crate) fn note_line_locked(&self, ad: &Adapter, _st: &mut AdapterSt) -> bool {
        let level = ad.hba.irq_asserted();
        if ad.line_noted.load(Ordering::Relaxed) != level {
            ad.line_noted.store(level, Ordering::Release);
            self.trace(Some(ad.index), "irq", &[("level", J::B(level)), ("line", J::U(u64::from(ad.line)))]);
        }
        level
    }

    /// Whether the line needs service: some connected, non-deferred adapter on it asserts.
    pub(crate) fn line_wants_service(&self, line: u32) -> bool {
        self.adapters.iter().any(|a| {
            if a.line != line {
                return false;
            }
            let st = a.st();
            st.connected && !st.deferred() && !st.in_running_config && a.hba.irq_asserted()
        })
    }

    /// Dispatches one interrupt on a (possibly shared) line: each connected adapter's ISR in turn
    /// until one claims it, as a chained level-triggered dispatch does.
    pub(crate) fn dispatch_line(self: &Arc<Self>, line: u32) -> bool {
        let mut order: Vec<Arc<Adapter>> = self.adapters.iter().filter(|a| a.line == line).cloned().collect();
        if self.deterministic && order.len() > 1 {
            let k = usize::try_from(self.rand() % order.len() as u64).unwrap_or(0);
            order.rotate_left(k);
        }
        let mut any = false;
        for ad in order {
            if self.is_halted() {
                return any;
            }
            self.note_line(&ad);
            let Some(isr) = ad.st().isr_to_dispatch() else {
                continue;
            };
            any = true;
            if self.run_isr(&ad, isr, false) {
                break;
            }
        }
        any
    }

    /// Calls one adapter's ISR and applies the interrupt rules. Returns whether it claimed.
    pub(crate) fn run_isr(self: &Arc<Self>, ad: &Arc<Adapter>, isr: unsafe extern "win64" fn(PVOID) -> BOOLEAN, polled: bool) -> bool {
        let idx = Some(ad.index);
        let _g = ad.intlock();
        {
            // Decided on before the lock was ours: meanwhile a window may have opened, or the
            // adapter been stopped, which disconnects its interrupt (`MachineCore::stop`) and,
            // for a PnP stop, frees its device extension right after.
            let st = ad.st();
            let live = if polled { st.phase == Phase::Running } else { st.connected && !st.in_running_config };
            if st.deferred() || !live {
                return false;
            }
        }
        // Counted before the line is sampled, so that a raise between the two is seen one way
        // or the other.
        let raises_before = ad.hba.irq_raises();
        let asserted_before = ad.hba.irq_asserted();
        let quiet_before = ad.hba.next_event_ns().is_none();
        let devext = ad.devext_ptr();
        let held = self.port_held(ad, Routine::Interrupt);
        let overlapped = self.port == Port::Storport && ad.submitting.load(Ordering::Acquire) > 0;
        let r = self.call_held(Some(ad), Routine::Interrupt, held, &[], || {
            // SAFETY: the miniport's HwScsiInterrupt with its device extension, under the
            // interrupt lock.
            unsafe { isr(devext) }
        });
        // Raised while the ISR ran (after the sample above): the claim may be for that.
        let raised_during = ad.hba.irq_raises() != raises_before;
        ad.hba.end_of_interrupt();
        let asserted_after = ad.hba.irq_asserted();
        let mut st = ad.st();
        if overlapped {
            st.stats.overlapped_submissions += 1;
        }
        let enable = st.enable_request.take();
        let threshold = self.verifier.storm_threshold;
        let mut problem: Option<(Rule, String)> = None;
        if r == FALSE {
            st.stats.spurious_interrupts += 1;
            if enable.is_some() {
                problem = Some((Rule::EnableWithoutMask, "HwScsiInterrupt requested CallEnableInterrupts and returned FALSE".into()));
            } else if asserted_before && asserted_after && !polled {
                st.storm += 1;
                if st.storm >= threshold {
                    problem = Some((Rule::InterruptStorm, format!("{} returned FALSE {} times while its line stayed asserted", Routine::Interrupt.name_in(self.port), st.storm)));
                }
            }
        } else {
            st.stats.interrupts += 1;
            st.storm = 0;
            if !asserted_before && !raised_during && !polled && (self.deterministic || quiet_before) {
                problem = Some((Rule::IsrClaimedForeign, format!("{} returned TRUE but its HBA's line was not asserted", Routine::Interrupt.name_in(self.port))));
            }
            if let Some(cb) = enable {
                if asserted_after && !polled {
                    problem = Some((
                        Rule::EnableWithoutMask,
                        "HwScsiInterrupt requested CallEnableInterrupts but the HBA's interrupt line is still asserted".into(),
                    ));
                } else {
                    st.defer = Defer::EnablePending(cb);
                    // The DPC is queued now; it runs once the CPU drops below DISPATCH_LEVEL and
                    // the DPCs ahead of it ran (the latency model).
                    st.dpc_due_ns = self.now().saturating_add(self.draw(&self.cfg.dpc_latency_ns));
                }
            } else if asserted_after && !polled {
                st.unclear += 1;
                // Deterministic: a device completion during a stall in the ISR can re-assert the
                // line legitimately once; a stuck line is re-dispatched at once and counts up.
                if (self.deterministic && st.unclear >= 3) || st.unclear >= threshold {
                    problem = Some((Rule::IsrDidNotClear, format!("{} returned TRUE but the HBA's line is still asserted", Routine::Interrupt.name_in(self.port))));
                }
            } else {
                st.unclear = 0;
            }
        }
        drop(st);
        if let Some((rule, msg)) = problem {
            self.violation(idx, rule, [devext as u64, 0, 0], msg);
        }
        self.note_line(ad);
        self.kick_dpc();
        r != FALSE
    }

    /// Dump mode: the port polls `HwScsiInterrupt`.
    pub(crate) fn poll(self: &Arc<Self>, ad: &Arc<Adapter>) -> bool {
        let Some(isr) = ad.st().isr() else { return false };
        self.run_isr(ad, isr, true)
    }

    /// The deferred half of the interrupt protocol (contract §4.3): the enable callback outside
    /// the interrupt lock "as a DPC", then the disable callback under it.
    ///
    /// On a Storport machine: the miniport's DPC routine instead; in the concurrent schedule a
    /// thread of its own runs those (`MachineCore::run_stor_dpc`), so that they overlap
    /// `HwStorStartIo` on this one.
    pub(crate) fn run_dpc(self: &Arc<Self>, ad: &Arc<Adapter>) -> bool {
        if self.port == Port::Storport {
            return self.deterministic && self.run_stor_dpc(ad);
        }
        let idx = Some(ad.index);
        let cb = {
            let mut st = ad.st();
            match st.defer {
                Defer::EnablePending(cb) => {
                    st.defer = Defer::EnableRunning;
                    st.disable_request = None;
                    st.disable_requests = 0;
                    cb
                }
                _ => return false,
            }
        };
        // SAFETY: `cb` is the non-NULL PHW_INTERRUPT the miniport passed with CallEnableInterrupts.
        let enable: unsafe extern "win64" fn(PVOID) -> BOOLEAN = unsafe { std::mem::transmute(cb) };
        let devext = ad.devext_ptr();
        if ad.hba.irq_asserted() {
            // The ISR dismissed the interrupt instead of masking the HBA, and it fired again
            // inside the deferral window (contract §4.3: interrupts must stay off until the
            // disable callback).
            self.violation(
                Some(ad.index),
                Rule::EnableWithoutMask,
                [devext as u64, 0, 0],
                "the HBA interrupted again before HwScsiEnableInterruptsCallback ran: its interrupts were not masked".into(),
            );
            return true;
        }
        let call_enable = || {
            self.call(Some(ad), Routine::EnableCallback, &[], || {
                // SAFETY: the miniport's enable callback with its device extension, outside the
                // interrupt lock, as a DPC would run it.
                unsafe { enable(devext) }
            });
        };
        if self.cfg.adversarial {
            let running = AtomicBool::new(true);
            std::thread::scope(|s| {
                let me = Arc::clone(self);
                let ad2 = Arc::clone(ad);
                let running = &running;
                let adversary = s.spawn(move || {
                    // Keep trying while the enable callback runs.
                    while running.load(Ordering::Acquire) && !me.is_halted() {
                        me.adversarial_start(&ad2);
                        std::thread::yield_now();
                    }
                });
                call_enable();
                running.store(false, Ordering::Release);
                // Joined by hand: the scope's own wait ends when the closure returns, before the
                // thread has run its thread-locals' destructors and exited, so the allocations
                // glibc made for them would still be live afterwards (LeakSanitizer, under the
                // fuzz targets, reported them as leaks of the input that happened to be running).
                if let Err(panic) = adversary.join() {
                    std::panic::resume_unwind(panic);
                }
            });
        } else {
            // No scope: it allocates its shared state and counts threads with atomics, for
            // every interrupt.
            call_enable();
        }
        let disable = {
            let mut st = ad.st();
            st.stats.enable_callbacks += 1;
            st.disable_request.take()
        };
        let Some(dcb) = disable else {
            ad.st().defer = Defer::None;
            self.violation(idx, Rule::EnableWithoutDisable, [devext as u64, 0, 0], "HwScsiEnableInterruptsCallback returned without CallDisableInterrupts".into());
            return true;
        };
        ad.st().defer = Defer::DisablePending(dcb);
        // SAFETY: the non-NULL PHW_INTERRUPT passed with CallDisableInterrupts.
        let disable_fn: unsafe extern "win64" fn(PVOID) -> BOOLEAN = unsafe { std::mem::transmute(dcb) };
        {
            let _g = ad.intlock();
            self.call(Some(ad), Routine::DisableCallback, &[], || {
                // SAFETY: the miniport's disable callback under the interrupt lock.
                unsafe { disable_fn(devext) }
            });
            // Still under the lock: no ISR can have masked the HBA again since.
            let masked = ad.hba.interrupts_unmasked() == Some(false);
            let mut st = ad.st();
            st.stats.disable_callbacks += 1;
            st.defer = Defer::None;
            drop(st);
            if masked {
                self.violation(idx, Rule::DisableLeftMasked, [devext as u64, 0, 0], "HwScsiDisableInterruptsCallback left the HBA's interrupts masked".into());
            }
            if !self.deterministic {
                // The window has closed and the interrupt lock is still held: a bus reset asked
                // for meanwhile runs now, before the interrupt thread can open the next window
                // (the deterministic loop runs it as its next event instead).
                self.requested_resets_locked(ad);
            }
        }
        self.note_line(ad);
        self.kick_irq();
        self.kick_dpc();
        true
    }

    /// Adversarial mode: `StartIo` on another thread while the enable callback runs.
    pub(crate) fn adversarial_start(self: &Arc<Self>, ad: &Arc<Adapter>) {
        let _g = ad.intlock();
        let now = self.now();
        let saved = {
            let mut st = ad.st();
            let saved = st.defer;
            st.defer = Defer::None;
            if !self.startable(&st, now, false) {
                st.defer = saved;
                return;
            }
            saved
        };
        self.start_locked(ad);
        let mut st = ad.st();
        if st.defer == Defer::None {
            st.defer = saved;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pvscsi::PvscsiConfig;
    use crate::{Machine, test_miniport};

    /// The interrupt thread decides to dispatch (`dispatch_line`: connected, not deferred) before
    /// it takes the interrupt lock; if `ScsiStopAdapter` had the lock meanwhile, the ISR must not
    /// run afterwards: the adapter is stopped and, after a PnP stop, its device extension is freed
    /// as soon as `stop` returns (issue 12's heap corruption). Here the dispatch that lost the race
    /// is made by hand, right after the stop, in the deterministic schedule.
    #[test]
    fn an_isr_dispatch_decided_before_scsi_stop_adapter_does_not_run_after_it() {
        let b = Machine::builder().schedule(crate::Schedule::Deterministic { seed: 3 }).argument_string("qd=4 tagged=1");
        let (m, _) = crate::port::test_rig(b, PvscsiConfig::default(), test_miniport::driver_entry);
        let _ = m.execute(Request::read10(0, 0, 1, 512)).unwrap();
        let ad = Arc::clone(&m.core().adapters[0]);
        let isr = ad.st().isr().unwrap();
        let calls = |m: &Machine| {
            let s = m.stats();
            s.interrupts + s.spurious_interrupts
        };
        // Running and connected: the ISR runs (and, the line being quiet, claims nothing).
        let before = calls(&m);
        assert!(!m.core().run_isr(&ad, isr, false));
        assert_eq!(calls(&m), before + 1);
        m.stop_adapter(0).unwrap();
        assert!(!ad.st().connected);
        assert!(!m.core().run_isr(&ad, isr, false));
        assert_eq!(calls(&m), before + 1, "HwScsiInterrupt ran on a stopped adapter");
        assert!(m.bugcheck().is_none());
        // After the restart it runs again.
        m.restart_adapter(0).unwrap();
        assert!(!m.core().run_isr(&ad, isr, false));
        assert_eq!(calls(&m), before + 2);
    }
}
