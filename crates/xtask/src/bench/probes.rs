//! The counts valgrind does not give: system calls (strace) and bytes moved by `memcpy`,
//! `memmove` and `memset` (an `LD_PRELOAD` shim compiled here with the system C compiler).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

/// Calls at least this large are payload-sized: a 512-byte sector is the smallest transfer.
pub const COPY_MIN: usize = 512;

/// The shim: it counts calls and bytes of the three routines for sizes of at least
/// [`COPY_MIN`], forwards to libc's, and writes `name calls bytes` lines to `$COPYCOUNT_OUT` at
/// exit. Counters are atomic (the concurrent schedule has threads); before the real routines
/// are looked up (inside `dlsym` itself) a byte loop serves.
const SHIM_C: &str = r#"
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#define MIN_BYTES __MIN__
enum { CPY, MOVE, SET, N };
static unsigned long long calls[N], bytes[N];
static const char *names[N] = { "memcpy", "memmove", "memset" };
static void *(*real_memcpy)(void *, const void *, size_t);
static void *(*real_memmove)(void *, const void *, size_t);
static void *(*real_memset)(void *, int, size_t);

static void count(int which, size_t n) {
    if (n >= MIN_BYTES) {
        __atomic_fetch_add(&calls[which], 1, __ATOMIC_RELAXED);
        __atomic_fetch_add(&bytes[which], (unsigned long long)n, __ATOMIC_RELAXED);
    }
}

__attribute__((constructor)) static void copycount_init(void) {
    real_memcpy = dlsym(RTLD_NEXT, "memcpy");
    real_memmove = dlsym(RTLD_NEXT, "memmove");
    real_memset = dlsym(RTLD_NEXT, "memset");
}

void *memcpy(void *d, const void *s, size_t n) {
    count(CPY, n);
    if (real_memcpy) return real_memcpy(d, s, n);
    unsigned char *o = d; const unsigned char *i = s;
    while (n--) *o++ = *i++;
    return d;
}

void *memmove(void *d, const void *s, size_t n) {
    count(MOVE, n);
    if (real_memmove) return real_memmove(d, s, n);
    unsigned char *o = d; const unsigned char *i = s;
    if (o < i) { while (n--) *o++ = *i++; } else { while (n--) o[n] = i[n]; }
    return d;
}

void *memset(void *d, int c, size_t n) {
    count(SET, n);
    if (real_memset) return real_memset(d, c, n);
    unsigned char *o = d;
    while (n--) *o++ = (unsigned char)c;
    return d;
}

__attribute__((destructor)) static void copycount_fini(void) {
    const char *path = getenv("COPYCOUNT_OUT");
    if (!path) return;
    FILE *f = fopen(path, "w");
    if (!f) return;
    for (int k = 0; k < N; k++) fprintf(f, "%s %llu %llu\n", names[k], calls[k], bytes[k]);
    fclose(f);
}
"#;

/// Compiles the shim into `dir` with `cc`.
///
/// # Errors
/// When there is no C compiler or it fails.
pub fn build_shim(dir: &Path) -> Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let src = dir.join("copycount.c");
    let lib = dir.join("copycount.so");
    std::fs::write(&src, SHIM_C.replace("__MIN__", &COPY_MIN.to_string()))?;
    let cc = std::env::var_os("CC").unwrap_or_else(|| "cc".into());
    let out = Command::new(&cc)
        .args(["-O2", "-shared", "-fPIC", "-o"])
        .arg(&lib)
        .arg(&src)
        .arg("-ldl")
        .output()
        .with_context(|| format!("running the C compiler {}", cc.to_string_lossy()))?;
    if !out.status.success() {
        bail!("compiling the copy-counting shim failed:\n{}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(lib)
}

/// Per routine: (calls, bytes) of at least [`COPY_MIN`] bytes.
pub type Copies = BTreeMap<String, (u64, u64)>;

/// Reads the shim's output.
///
/// # Errors
/// On a malformed line.
pub fn parse_copies(text: &str) -> Result<Copies> {
    let mut out = Copies::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let t: Vec<&str> = line.split_whitespace().collect();
        let [name, calls, bytes] = t.as_slice() else { bail!("copy count line {line:?}") };
        out.insert((*name).to_string(), (calls.parse()?, bytes.parse()?));
    }
    Ok(out)
}

/// Reads `strace -c`'s summary table: calls by system call name.
///
/// # Errors
/// When no table is found.
pub fn parse_strace_summary(text: &str) -> Result<BTreeMap<String, u64>> {
    let mut out = BTreeMap::new();
    let mut seen_header = false;
    for line in text.lines() {
        let t: Vec<&str> = line.split_whitespace().collect();
        if t.first() == Some(&"%") {
            seen_header = true;
            continue;
        }
        if !seen_header || t.len() < 5 || line.trim_start().starts_with('-') {
            continue;
        }
        let Some(name) = t.last() else { continue };
        if *name == "total" {
            continue;
        }
        // "% time, seconds, usecs/call, calls, [errors], syscall": errors may be blank.
        let Some(calls) = t.get(3).and_then(|c| c.parse::<u64>().ok()) else { continue };
        *out.entry((*name).to_string()).or_default() += calls;
    }
    if !seen_header {
        bail!("no strace summary table in:\n{text}");
    }
    Ok(out)
}

/// Whether `tool` runs (`tool --version`).
#[must_use]
pub fn have(tool: &str) -> bool {
    Command::new(tool).arg("--version").output().is_ok_and(|o| o.status.success())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_strace_summaries() {
        let text = "\
% time     seconds  usecs/call     calls    errors syscall
------ ----------- ----------- --------- --------- ------------------
 38.12    0.049748           3     14061           futex
 23.17    0.030229          12      2412           munmap
  0.00    0.000000           0         1         1 access
------ ----------- ----------- --------- --------- ------------------
100.00    0.130493           5     16474         1 total
";
        let m = parse_strace_summary(text).unwrap();
        assert_eq!(m.len(), 3);
        assert_eq!(m["futex"], 14061);
        assert_eq!(m["access"], 1);
        assert!(parse_strace_summary("nothing here").is_err());
    }

    #[test]
    fn reads_copy_counts() {
        let m = parse_copies("memcpy 3 12288\nmemmove 0 0\nmemset 1 4096\n").unwrap();
        assert_eq!(m["memcpy"], (3, 12288));
        assert_eq!(m["memset"], (1, 4096));
        assert!(parse_copies("memcpy x\n").is_err());
    }
}
