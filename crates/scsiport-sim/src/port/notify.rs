//! `ScsiPortNotification`, as the C shim forwards it, and `ScsiPortCompleteRequest`.

#[allow(clippy::wildcard_imports)]
use super::*;

impl MachineCore {
    #[allow(clippy::too_many_lines)]
    pub(crate) fn notification(self: &Arc<Self>, ad: &Arc<Adapter>, routine: Routine, ty: i32, args: [usize; 4]) {
        let idx = Some(ad.index);
        let name = match ty {
            sys::RequestComplete => "RequestComplete",
            sys::NextRequest => "NextRequest",
            sys::NextLuRequest => "NextLuRequest",
            sys::ResetDetected => "ResetDetected",
            sys::CallDisableInterrupts => "CallDisableInterrupts",
            sys::CallEnableInterrupts => "CallEnableInterrupts",
            sys::RequestTimerCall => "RequestTimerCall",
            sys::BusChangeDetected => "BusChangeDetected",
            sys::WMIEvent => "WMIEvent",
            sys::WMIReregister => "WMIReregister",
            _ => "unsupported",
        };
        if routine == Routine::FindAdapter {
            self.violation(idx, Rule::NotificationInFindAdapter, [u64::from(ty.cast_unsigned()), 0, 0], format!("{name} from HwScsiFindAdapter"));
        }
        match ty {
            sys::RequestComplete => self.complete_srb(ad, args[0], None, Some(routine)),
            sys::NextRequest => {
                self.trace(idx, "port", &[("fn", J::Static("ScsiPortNotification")), ("type", J::Static(name))]);
                let mut st = ad.st();
                st.ready = true;
                drop(st);
                self.kick_dpc();
            }
            sys::NextLuRequest => {
                #[allow(clippy::cast_possible_truncation)]
                let lu = (args[0] as u8, args[1] as u8, args[2] as u8);
                self.trace(
                    idx,
                    "port",
                    &[
                        ("fn", J::Static("ScsiPortNotification")),
                        ("type", J::Static(name)),
                        ("path", J::from(lu.0)),
                        ("target", J::from(lu.1)),
                        ("lun", J::from(lu.2)),
                    ],
                );
                let mut st = ad.st();
                let allowed = st.caps.tagged || st.caps.multi;
                st.ready = true;
                let untagged_active = st.lus.get_mut(&lu).is_some_and(|l| {
                    l.ready_for_more = true;
                    l.active.contains_key(sys::SP_UNTAGGED)
                });
                drop(st);
                let devext = ad.devext.load(Ordering::Relaxed) as u64;
                if !allowed {
                    self.violation(idx, Rule::NextLuNotAllowed, [devext, 0, 0], "NextLuRequest without TaggedQueuing or MultipleRequestPerLu".into());
                } else if untagged_active {
                    self.violation(
                        idx,
                        Rule::NextLuWithUntaggedActive,
                        [devext, u64::from(lu.0) << 16 | u64::from(lu.1) << 8 | u64::from(lu.2), 0],
                        format!("NextLuRequest({}, {}, {}) while an untagged request is active there", lu.0, lu.1, lu.2),
                    );
                }
                self.kick_dpc();
            }
            sys::ResetDetected => {
                self.trace(idx, "port", &[("fn", J::Static("ScsiPortNotification")), ("type", J::Static(name))]);
                let mut st = ad.st();
                st.stats.resets_detected += 1;
                self.begin_hold(&mut st, None);
            }
            sys::CallEnableInterrupts => {
                self.trace(idx, "port", &[("fn", J::Static("ScsiPortNotification")), ("type", J::Static(name))]);
                let mut st = ad.st();
                let problem = if args[0] == 0 {
                    Some("CallEnableInterrupts with a NULL callback")
                } else if routine != Routine::Interrupt {
                    Some("CallEnableInterrupts outside HwScsiInterrupt")
                } else if self.cfg.dump_mode {
                    Some("CallEnableInterrupts in dump mode (no deferral is possible)")
                } else if st.enable_request.is_some() || st.deferred() {
                    Some("CallEnableInterrupts while one is already pending")
                } else {
                    st.enable_request = Some(args[0]);
                    None
                };
                drop(st);
                if let Some(p) = problem {
                    self.violation(idx, Rule::CallEnableOutsideIsr, [args[0] as u64, 0, 0], p.into());
                }
            }
            sys::CallDisableInterrupts => {
                self.trace(idx, "port", &[("fn", J::Static("ScsiPortNotification")), ("type", J::Static(name))]);
                let mut st = ad.st();
                st.disable_requests += 1;
                let problem = if args[0] == 0 {
                    Some("CallDisableInterrupts with a NULL callback")
                } else if routine != Routine::EnableCallback {
                    Some("CallDisableInterrupts outside HwScsiEnableInterruptsCallback")
                } else if st.disable_requests > 1 {
                    Some("CallDisableInterrupts twice in one enable callback")
                } else {
                    st.disable_request = Some(args[0]);
                    None
                };
                drop(st);
                if let Some(p) = problem {
                    self.violation(idx, Rule::CallDisableOutsideEnable, [args[0] as u64, 0, 0], p.into());
                }
            }
            sys::RequestTimerCall => {
                let us = args[1] as u64;
                self.trace(
                    idx,
                    "port",
                    &[("fn", J::Static("ScsiPortNotification")), ("type", J::Static(name)), ("us", J::U(us))],
                );
                if args[0] == 0 && us != 0 {
                    self.violation(idx, Rule::TimerMisuse, [0, us, 0], "RequestTimerCall without a HwScsiTimer routine".into());
                    return;
                }
                let mut st = ad.st();
                st.timer = if us == 0 { None } else { Some((args[0], self.now().saturating_add(us * 1000))) };
                drop(st);
                self.kick_dpc();
            }
            sys::BusChangeDetected => {
                self.trace(
                    idx,
                    "port",
                    &[("fn", J::Static("ScsiPortNotification")), ("type", J::Static(name)), ("path", J::U(args[0] as u64))],
                );
                // The port re-enumerates that bus (`DDI:nf-srb-scsiportnotification`).
                #[allow(clippy::cast_possible_truncation)]
                ad.st().rescan.insert(args[0] as u8);
                self.kick_dpc();
            }
            sys::WMIEvent | sys::WMIReregister => {
                self.trace(
                    idx,
                    "port",
                    &[("fn", J::Static("ScsiPortNotification")), ("type", J::Static(name)), ("arg", J::U(args[0] as u64))],
                );
            }
            _ => {
                self.trace(idx, "port", &[("fn", J::Static("ScsiPortNotification")), ("type", J::I(i64::from(ty)))]);
                self.violation(idx, Rule::UnsupportedNotification, [u64::from(ty.cast_unsigned()), 0, 0], format!("ScsiPortNotification type {ty} is not a SCSI Port notification"));
            }
        }
    }

    /// Starts the reset hold: `StartIo` pauses; when it ends every request outstanding now must be
    /// complete (0x1007, contract §7.2).
    pub(crate) fn begin_hold(&self, st: &mut AdapterSt, path: Option<u8>) {
        let ids: BTreeSet<u64> =
            st.active.values().filter(|a| path.is_none_or(|p| a.snapshot.PathId == p)).map(|a| a.preq.id).collect();
        let until = self.now().saturating_add(self.cfg.reset_hold_ns);
        match st.hold.as_mut() {
            Some(h) => {
                h.until_ns = until;
                h.ids.extend(ids);
            }
            None => st.hold = Some(Hold { until_ns: until, ids }),
        }
        self.kick_dpc();
    }

    /// `ScsiPortCompleteRequest`: completes every active request matching the address
    /// (`DDI:nf-srb-scsiportcompleterequest`).
    pub(crate) fn complete_matching(self: &Arc<Self>, ad: &Arc<Adapter>, routine: Routine, p: u8, t: u8, l: u8, status: u8) {
        let mut srbs: Vec<(u64, usize)> = ad
            .st()
            .active
            .iter()
            .filter(|(_, a)| {
                (p == sys::SP_UNTAGGED || a.snapshot.PathId == p)
                    && (t == sys::SP_UNTAGGED || a.snapshot.TargetId == t)
                    && (l == sys::SP_UNTAGGED || a.snapshot.Lun == l)
            })
            .map(|(s, a)| (a.preq.id, *s))
            .collect();
        // In request order, not address order: SRB addresses differ from run to run, and the
        // deterministic schedule's trace must not.
        srbs.sort_unstable();
        for (_, s) in srbs {
            self.complete_srb(ad, s, Some(status), Some(routine));
        }
    }
}
