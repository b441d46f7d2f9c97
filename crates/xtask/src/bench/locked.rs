//! Locked instructions per I/O: the atomic read-modify-writes (`lock`-prefixed instructions
//! and `xchg` with memory, which locks without the prefix) and `mfence`s the emulator and the
//! driver (linked in, or the loaded `.sys`) execute per I/O. A sequentially consistent fence is
//! among them: LLVM emits `lock or [rsp], 0` for it.
//!
//! Every uncontended `Mutex` lock and unlock, `Arc` clone and drop and atomic counter is one.
//! Each is a full barrier on x86-64: it waits for the store buffer to drain and nothing after it
//! starts before it ends, so it costs far more wall-clock time than its one instruction in the
//! instruction count. Sampling the release CLI (perf, 4 KiB reads at QD 32) found about a
//! third of the samples on the instruction after one, at about 100 per I/O: the figure that
//! explains why the IOPS ratio is further from its target than the instruction count is.
//! Counted, not timed: callgrind gives every instruction's executions, and the binary's own
//! code says which instructions lock, so the figure is as repeatable as the instruction counts.
//! One artifact, on the loaded `.sys` only: callgrind counts the instruction after a register
//! access that traps (the emulator's MMIO, `scsiport-sim/src/mmio.rs`) twice, in the block the
//! access faulted in and again where the emulator resumes; after a register write that
//! instruction is the write's fence, so the `.sys` shows one locked instruction per trapping
//! write too many (1.0 per I/O on SCSI Port: the kick).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::{Context, Result};
use iced_x86::{Decoder, DecoderOptions, Mnemonic, OpKind};
use object::{Object as _, ObjectSection as _, SectionKind};

use super::callgrind::Profile;

/// The addresses of the locked instructions in the executable sections of the ELF or PE at
/// `path`: as linked, or, with `load_base`, where an image whose sections are addressed from its
/// preferred base (a `.sys`) was loaded instead.
///
/// # Errors
/// When the file cannot be read or is not an object file.
pub fn sites(path: &Path, load_base: Option<u64>) -> Result<BTreeSet<u64>> {
    let data = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let file = object::File::parse(&*data).with_context(|| format!("{} is not an object file", path.display()))?;
    let preferred = file.relative_address_base();
    let mut out = BTreeSet::new();
    for section in file.sections().filter(|s| s.kind() == SectionKind::Text) {
        let code = section.data().with_context(|| format!("reading section {:?}", section.name()))?;
        let at = match load_base {
            Some(base) => section.address().wrapping_sub(preferred).wrapping_add(base),
            None => section.address(),
        };
        out.extend(locked_in(code, at));
    }
    Ok(out)
}

/// The addresses of the locked instructions (and `mfence`s) in `code`, which starts at `ip`.
#[must_use]
pub fn locked_in(code: &[u8], ip: u64) -> Vec<u64> {
    let mut decoder = Decoder::with_ip(64, code, ip, DecoderOptions::NONE);
    let mut out = Vec::new();
    for i in &mut decoder {
        let xchg_with_memory = i.mnemonic() == Mnemonic::Xchg && (0..i.op_count()).any(|n| i.op_kind(n) == OpKind::Memory);
        if i.has_lock_prefix() || xchg_with_memory || i.mnemonic() == Mnemonic::Mfence {
            out.push(i.ip());
        }
    }
    out
}

/// Executions of `sites` in the functions of `profile` whose object is `object` (the CLI as
/// callgrind ran it, or the loaded image's [`super::image::OBJECT`]), by function (where the
/// locking code was inlined, which for a lock or an `Arc` is its caller), for the functions that
/// executed any.
#[must_use]
pub fn by_function(profile: &Profile, object: &str, sites: &BTreeSet<u64>) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for f in profile.functions.iter().filter(|f| f.object == object) {
        let n: u64 = f.self_by_addr.iter().filter(|(a, _)| sites.contains(a)).map(|(_, c)| *c).sum();
        if n > 0 {
            *out.entry(f.name.clone()).or_default() += n;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locked_instructions_and_full_fences_count_and_nothing_else_does() {
        let code = [
            0xF0, 0x48, 0x0F, 0xC1, 0x07, // lock xadd [rdi], rax
            0x48, 0x87, 0x07, // xchg [rdi], rax (locks without the prefix)
            0x48, 0x87, 0xC3, // xchg rbx, rax (registers only)
            0x48, 0x0F, 0xB1, 0x0F, // cmpxchg [rdi], rcx without lock: not atomic
            0xF0, 0x0F, 0xB0, 0x4E, 0x30, // lock cmpxchg [rsi+0x30], cl
            0x48, 0x89, 0x07, // mov [rdi], rax
            0xF0, 0x83, 0x0C, 0x24, 0x00, // lock or dword [rsp], 0: a SeqCst fence
            0x0F, 0xAE, 0xF0, // mfence
            0x0F, 0xAE, 0xF8, // sfence: orders stores only
        ];
        assert_eq!(locked_in(&code, 0x1000), vec![0x1000, 0x1005, 0x100F, 0x1017, 0x101C]);
    }

    #[test]
    fn only_the_named_object_counts_by_function() {
        let text = "version: 1\ncreator: test\npositions: instr line\nevents: Ir\n\
                    ob=/cli\nfn=scsiport_sim::port::Machine::step\n0x10 1 5\n0x20 1 7\n\
                    fn=rspvscsi::device::Device::post\n0x30 1 3\n\
                    ob=/libc.so\nfn=pthread_mutex_lock\n0x10 1 11\n";
        let profile = Profile::parse(text).unwrap();
        let sites: BTreeSet<u64> = [0x10, 0x30].into_iter().collect();
        let by = by_function(&profile, "/cli", &sites);
        assert_eq!(by.into_iter().collect::<Vec<_>>(), [("rspvscsi::device::Device::post".to_string(), 3), ("scsiport_sim::port::Machine::step".to_string(), 5)]);
    }
}
