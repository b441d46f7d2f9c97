//! PnP and power: `ScsiStopAdapter`, restart, PnP stop/start.

#[allow(clippy::wildcard_imports)]
use super::*;

impl MachineCore {
    pub(crate) fn adapter_control(self: &Arc<Self>, ad: &Arc<Adapter>, ty: i32, locked: bool) -> Result<(), Error> {
        let g = if locked { Some(ad.intlock()) } else { None };
        let r = self.adapter_control_held(ad, ty, locked);
        drop(g);
        r
    }

    /// [`Self::adapter_control`] with the interrupt lock held by the caller (`locked`) or not.
    fn adapter_control_held(self: &Arc<Self>, ad: &Arc<Adapter>, ty: i32, locked: bool) -> Result<(), Error> {
        let Some(control) = ad.st().adapter_control_fn() else { return Ok(()) };
        let name = match ty {
            sys::ScsiStopAdapter => "ScsiStopAdapter",
            sys::ScsiRestartAdapter => "ScsiRestartAdapter",
            sys::ScsiSetBootConfig => "ScsiSetBootConfig",
            sys::ScsiSetRunningConfig => "ScsiSetRunningConfig",
            _ => "ScsiQuerySupportedControlTypes",
        };
        let devext = ad.devext_ptr();
        // Storport issues ScsiStopAdapter and ScsiRestartAdapter at DIRQL holding the interrupt
        // lock (`DDI-storport:nc-storport-hw_adapter_control`).
        let held = if locked && self.port == Port::Storport { stor::HELD_INTERRUPT } else { 0 };
        let r = self.call_held(Some(ad), Routine::AdapterControl, held, &[("control", J::Static(name))], || {
            // SAFETY: the miniport's HwScsiAdapterControl; Parameters is NULL for these types.
            unsafe { control(devext, ty, std::ptr::null_mut()) }
        });
        if r != sys::ScsiAdapterControlSuccess {
            self.violation(Some(ad.index), Rule::ControlNotSuccess, [u64::from(r.cast_unsigned()), u64::from(ty.cast_unsigned()), 0], format!("{name} returned {r}"));
        }
        self.halt_error().map_or(Ok(()), Err)
    }

    #[allow(clippy::unused_self)]
    pub(crate) fn supports(&self, ad: &Adapter, ty: i32) -> bool {
        ad.st().supports(ty)
    }

    /// `ScsiStopAdapter` (contract §3.7): no outstanding requests, a FLUSH first when `CachesData`,
    /// then, in one hold of the interrupt lock, the interrupt disconnected and the call.
    ///
    /// One hold, and no deferral window open in it: the interrupt thread decides to dispatch
    /// before it takes the lock, and the enable callback runs outside the lock. An ISR that was
    /// waiting for the lock while `ScsiStopAdapter` ran, a timer due meanwhile, or a window the
    /// ISR opened after the port last saw the adapter idle, would otherwise call the miniport on
    /// a stopped adapter, and after a PnP stop on a device extension the port frees as soon as
    /// `stop` returns (`reinit` gives `HwScsiFindAdapter` a fresh one), a use after free that
    /// would look like issue 12's heap corruption (glibc's "unsorted double linked list
    /// corrupted"): the wrapper's lock flag and parked requests are the extension's first bytes,
    /// where a freed block keeps its free-list links.
    pub(crate) fn stop(self: &Arc<Self>, ad: &Arc<Adapter>) -> Result<(), Error> {
        if !self.supports(ad, sys::ScsiStopAdapter) {
            return Err(Error::Usage("the miniport does not support ScsiStopAdapter".into()));
        }
        let (caches, luns) = {
            let st = ad.st();
            (st.caps.caches_data, st.lus.iter().filter(|(_, l)| l.exists).map(|(k, _)| *k).collect::<Vec<_>>())
        };
        if caches {
            for (p, t, l) in luns {
                let tk = self.submit(ad.index, Request::flush(t).with_path(p).with_lun(l), Scan::Wait)?;
                self.wait_det_or_conc(tk)?;
            }
        }
        loop {
            crate::machine::wait_idle(self)?;
            let _g = ad.intlock();
            {
                let mut st = ad.st();
                // The ISR may have opened a window (or a request come) since wait_idle looked.
                if st.deferred() || st.has_active() || st.queued() > 0 {
                    continue;
                }
                // Disconnected first: an ISR waiting for the lock finds it so (`run_isr`).
                st.connected = false;
            }
            self.adapter_control_held(ad, sys::ScsiStopAdapter, true)?;
            let mut st = ad.st();
            st.phase = Phase::Stopped;
            st.timer = None;
            // The memory monitor guards what waits for its run (arena.rs).
            let overwrites = st.pool.as_mut().map(|a| a.flush(self.verifier.enabled && self.verifier.memory_monitor)).unwrap_or_default();
            drop(st);
            self.report_overwrites(ad, overwrites);
            return Ok(());
        }
    }

    /// Restart after a power-management stop (contract §3.7): `ScsiSetRunningConfig` with the
    /// interrupt disconnected, then `ScsiRestartAdapter`, or `HwScsiFindAdapter` + `HwScsiInitialize`
    /// when the miniport has no restart.
    pub(crate) fn restart(self: &Arc<Self>, ad: &Arc<Adapter>) -> Result<(), Error> {
        if ad.st().phase != Phase::Stopped {
            return Err(Error::Usage("adapter is not stopped".into()));
        }
        if self.supports(ad, sys::ScsiSetRunningConfig) {
            ad.st().in_running_config = true;
            let r = self.adapter_control(ad, sys::ScsiSetRunningConfig, false);
            ad.st().in_running_config = false;
            r?;
            if ad.hba.irq_asserted() {
                self.violation(
                    Some(ad.index),
                    Rule::InterruptWhileDisconnected,
                    [0, 0, 0],
                    "the HBA asserted its interrupt during ScsiSetRunningConfig (interrupt not connected)".into(),
                );
                return Err(self.halt_error().unwrap_or_else(|| Error::Load("SetRunningConfig".into())));
            }
        }
        if self.supports(ad, sys::ScsiRestartAdapter) {
            {
                let mut st = ad.st();
                st.connected = self.adapter_connects(&st);
                st.phase = Phase::Initializing;
            }
            self.adapter_control(ad, sys::ScsiRestartAdapter, true)?;
            let mut st = ad.st();
            st.phase = Phase::Running;
            st.ready = true;
            drop(st);
            self.kick();
            Ok(())
        } else {
            self.reinit(ad)
        }
    }

    pub(crate) fn adapter_connects(&self, st: &AdapterSt) -> bool {
        !self.cfg.dump_mode && st.isr().is_some()
    }

    /// A full PnP stop/start: stop, then `HwScsiFindAdapter`, `HwScsiInitialize` and the control
    /// query again with a fresh device extension.
    pub(crate) fn reinit(self: &Arc<Self>, ad: &Arc<Adapter>) -> Result<(), Error> {
        if self.port == Port::Storport {
            return self.stor_reinit(ad);
        }
        let hw = ad.st().hw.ok_or_else(|| Error::Usage("not loaded".into()))?;
        {
            let mut st = ad.st();
            for l in st.lus.values_mut() {
                l.ext = None;
            }
        }
        self.find_adapter(ad, hw)?;
        self.initialize(ad)?;
        self.query_controls(ad)
    }
}
