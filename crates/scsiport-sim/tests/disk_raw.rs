//! Raw image backing: LBA × block size is the file offset, checked by reading the file itself.

#![allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, clippy::many_single_char_names)] // test values are small and known

use std::fs;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use scsiport_sim::disk::cdb::build;
use scsiport_sim::disk::{Disk, DiskConfig, STATUS_GOOD, ScsiTarget, Sense, VecBuffer, parse_size};

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rspvscsi-disk-{}-{name}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir.join("disk.img")
}

#[test]
fn raw_image_round_trip() {
    let path = tmp("roundtrip");
    // What `qemu-img create -f raw disk.img 4M` makes: a sparse file of that size.
    fs::File::create(&path).unwrap().set_len(4 << 20).unwrap();
    let d = Disk::open_raw(&path).unwrap();
    d.set_unit_attention(None);
    assert_eq!(d.blocks(), 8192);
    let data: Vec<u8> = (0..3 * 512).map(|i| (i % 253) as u8).collect();
    let mut b = VecBuffer(data.clone());
    let r = d.execute(0, &build::rw10(true, 5, 3), &mut b);
    assert_eq!(r.status, STATUS_GOOD);
    // The file holds the data at LBA × 512.
    let mut f = fs::File::open(&path).unwrap();
    f.seek(SeekFrom::Start(5 * 512)).unwrap();
    let mut back = vec![0u8; 3 * 512];
    f.read_exact(&mut back).unwrap();
    assert_eq!(back, data);
    assert_eq!(fs::metadata(&path).unwrap().len(), 4 << 20, "the file does not grow");
    // Bytes written into the file directly are what READ returns.
    let mut f = fs::OpenOptions::new().write(true).open(&path).unwrap();
    f.seek(SeekFrom::Start(100 * 512)).unwrap();
    f.write_all(&[0xA5; 512]).unwrap();
    drop(f);
    let mut b = VecBuffer::zeroed(512);
    let r = d.execute(0, &build::rw16(false, 100, 1), &mut b);
    assert_eq!(r.status, STATUS_GOOD);
    assert_eq!(b.0, vec![0xA5; 512]);
    assert_eq!(d.read_sectors(5, 3).unwrap(), data);
    // SYNCHRONIZE CACHE syncs the file.
    assert_eq!(d.execute(0, &build::synchronize_cache10(), &mut VecBuffer::default()).status, STATUS_GOOD);
    let _ = fs::remove_dir_all(path.parent().unwrap());
}

#[test]
fn raw_image_with_4k_blocks() {
    let path = tmp("4k");
    let d = Disk::create_raw(&path, 1 << 20, &DiskConfig { block_size: 4096, ..DiskConfig::default() }).unwrap();
    d.set_unit_attention(None);
    assert_eq!(d.blocks(), 256);
    let mut b = VecBuffer(vec![0x3C; 4096]);
    assert_eq!(d.execute(0, &build::rw10(true, 7, 1), &mut b).status, STATUS_GOOD);
    let bytes = fs::read(&path).unwrap();
    assert_eq!(&bytes[7 * 4096..8 * 4096], &[0x3C; 4096][..]);
    assert!(bytes[..7 * 4096].iter().all(|&x| x == 0));
    let _ = fs::remove_dir_all(path.parent().unwrap());
}

#[test]
fn capacity_is_whole_blocks_and_huge_images_work() {
    let path = tmp("odd");
    fs::File::create(&path).unwrap().set_len(10 * 512 + 100).unwrap();
    assert_eq!(Disk::open_raw(&path).unwrap().blocks(), 10, "a partial tail block is not used");
    fs::File::create(&path).unwrap().set_len(100).unwrap();
    assert!(Disk::open_raw(&path).is_err(), "no whole block");
    // A sparse 3 TiB image: READ CAPACITY(10) saturates, (16) gives the real size.
    let big = 3u64 << 40;
    if fs::File::create(&path).unwrap().set_len(big).is_ok() {
        let d = Disk::open_raw(&path).unwrap();
        d.set_unit_attention(None);
        let mut b = VecBuffer::zeroed(8);
        d.execute(0, &build::read_capacity10(), &mut b);
        assert_eq!(u32::from_be_bytes(b.0[0..4].try_into().unwrap()), u32::MAX);
        let mut b = VecBuffer::zeroed(32);
        d.execute(0, &build::read_capacity16(32), &mut b);
        assert_eq!(u64::from_be_bytes(b.0[0..8].try_into().unwrap()), big / 512 - 1);
        let mut w = VecBuffer(vec![7; 512]);
        assert_eq!(d.execute(0, &build::rw16(true, big / 512 - 1, 1), &mut w).status, STATUS_GOOD);
        assert_eq!(d.read_sectors(big / 512 - 1, 1).unwrap(), vec![7; 512]);
    }
    let _ = fs::remove_dir_all(path.parent().unwrap());
}

#[test]
fn read_only_image_is_write_protected() {
    let path = tmp("ro");
    fs::File::create(&path).unwrap().set_len(1 << 20).unwrap();
    let d = Disk::open_raw_with(&path, &DiskConfig { write_protect: true, ..DiskConfig::default() }).unwrap();
    d.set_unit_attention(None);
    let r = d.execute(0, &build::rw10(true, 0, 1), &mut VecBuffer(vec![1; 512]));
    assert_eq!(r.sense_code(), Some(Sense::WRITE_PROTECTED));
    // A file the process cannot write opens write-protected, and refuses writes as such.
    fs::set_permissions(&path, fs::Permissions::from_mode(0o444)).unwrap();
    let opens_write_protected = || {
        let Ok(d) = Disk::open_raw(&path) else { return false };
        d.set_unit_attention(None);
        let r = d.execute(0, &build::rw10(true, 0, 1), &mut VecBuffer(vec![1; 512]));
        fs::OpenOptions::new().write(true).open(&path).is_err() && d.write_protected() && r.sense_code() == Some(Sense::WRITE_PROTECTED)
    };
    assert!(unprivileged(opens_write_protected), "a 0444 image, opened by a user who cannot write it");
    // The same file, writable again, opens writable.
    fs::set_permissions(&path, fs::Permissions::from_mode(0o666)).unwrap();
    assert!(unprivileged(|| Disk::open_raw(&path).is_ok_and(|d| !d.write_protected())), "a 0666 image");
    let _ = fs::remove_dir_all(path.parent().unwrap());
}

/// Runs `check` as a user without privileges: in this process when it is one, else (root, as CI
/// may run, passes every permission check) in a forked child that has become `nobody` (uid and
/// gid 65534) first. The child does nothing else before `_exit`, and a panic there is a `false`,
/// not a second run of the test harness.
fn unprivileged(check: impl FnOnce() -> bool) -> bool {
    const NOBODY: libc::uid_t = 65534;
    // SAFETY: no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return check();
    }
    // SAFETY: the child runs only `check` (glibc's allocator is safe to use after fork) and
    // leaves with `_exit`, running no destructor and no atexit handler of the parent's.
    match unsafe { libc::fork() } {
        -1 => panic!("fork: {}", std::io::Error::last_os_error()),
        0 => {
            // Groups first, then the group, then the user (after which neither could change).
            // SAFETY: an empty list; this child process's credentials only.
            let groups = unsafe { libc::setgroups(0, std::ptr::null()) } == 0;
            // SAFETY: as above.
            let gid = groups && unsafe { libc::setgid(NOBODY) } == 0;
            // SAFETY: as above.
            let dropped = gid && unsafe { libc::setuid(NOBODY) } == 0;
            let ok = dropped && std::panic::catch_unwind(std::panic::AssertUnwindSafe(check)).unwrap_or(false);
            // SAFETY: ends the child at once.
            unsafe { libc::_exit(i32::from(!ok)) }
        }
        child => {
            let mut status = 0;
            // SAFETY: `child` is our child; `status` is a valid out-pointer.
            assert_eq!(unsafe { libc::waitpid(child, &raw mut status, 0) }, child);
            libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0
        }
    }
}

#[test]
fn specs_and_sizes() {
    assert_eq!(parse_size("64M").unwrap(), 64 << 20);
    assert_eq!(parse_size("1G").unwrap(), 1 << 30);
    assert_eq!(parse_size("2GiB").unwrap(), 2 << 30);
    assert_eq!(parse_size("512k").unwrap(), 512 << 10);
    assert_eq!(parse_size("4096").unwrap(), 4096);
    assert!(parse_size("12X").is_err());
    assert!(parse_size("").is_err());
    let d = Disk::from_spec("ram:2M", &DiskConfig::default()).unwrap();
    assert_eq!(d.capacity_bytes(), 2 << 20);
    let path = tmp("spec");
    fs::File::create(&path).unwrap().set_len(1 << 20).unwrap();
    let d = Disk::from_spec(&format!("file:{}", path.display()), &DiskConfig::default()).unwrap();
    assert_eq!(d.blocks(), 2048);
    assert!(d.describe().contains("file:"));
    assert!(Disk::from_spec("nvme:0", &DiskConfig::default()).is_err());
    assert!(Disk::from_spec("file:/nonexistent/x.img", &DiskConfig::default()).is_err());
    assert!(Disk::ram_with(1 << 20, &DiskConfig { block_size: 1000, ..DiskConfig::default() }).is_err());
    assert!(Disk::ram(100).is_err());
    let d = Disk::ram(1 << 20).unwrap();
    assert!(d.read_sectors(2047, 2).is_err());
    assert!(d.write_sectors(0, &[0; 100]).is_err());
    let _ = fs::remove_dir_all(path.parent().unwrap());
}
