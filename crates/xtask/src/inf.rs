//! Stamping an `.inx` into the `.inf` of a package, as the WDK's `stampinf` does in the Windows
//! flow (`stampinf -f X.inf -d * -a amd64 -c X.cat -v *`, wdk-build's `rust-driver-makefile.toml`):
//! the architecture decoration `$ARCH$`, `DriverVer` (date and time of day, in UTC) and
//! `CatalogFile` in `[Version]` (the WDK pages "stampinf", "INF `DriverVer` directive", "INF Version
//! Section").

use anyhow::{Result, bail};

/// What goes into the `.inf`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stamp {
    /// `$ARCH$`: `amd64` for `x86_64-pc-windows-msvc`.
    pub arch: &'static str,
    /// `DriverVer` date, (year, month, day).
    pub date: (u32, u32, u32),
    /// `DriverVer` version, four parts.
    pub version: [u16; 4],
    /// `CatalogFile`.
    pub catalog: String,
}

impl Stamp {
    /// `DriverVer`'s value: `mm/dd/yyyy,w.x.y.z`.
    #[must_use]
    pub fn driver_ver(&self) -> String {
        let (year, month, day) = self.date;
        let [major, minor, build, revision] = self.version;
        format!("{month:02}/{day:02}/{year:04},{major}.{minor}.{build}.{revision}")
    }
}

/// `DriverVer`'s version as `stampinf -v *` makes it: the time of day, `hours.minutes.seconds.
/// milliseconds` ("Stampinf Command Options": "a convenient way to increase the version number of
/// the driver" during development). Windows ranks two packages of one date by this version ("How
/// Windows Ranks Drivers"), so a rebuild later the same day replaces the installed package on
/// `pnputil /add-driver … /install`; a fixed version would leave the first one of the day in place.
/// UTC, as [`civil_date`].
#[must_use]
pub fn time_of_day_version(secs: u64, millis: u32) -> [u16; 4] {
    let of_day = secs % 86_400;
    let part = |v: u64| u16::try_from(v).unwrap_or(u16::MAX);
    [part(of_day / 3600), part(of_day / 60 % 60), part(of_day % 60), part(u64::from(millis.min(999)))]
}

/// The civil date (UTC) of `secs` seconds after the Unix epoch.
#[must_use]
pub fn civil_date(secs: u64) -> (u32, u32, u32) {
    // Howard Hinnant's days-to-civil algorithm, in unsigned arithmetic for dates after 1970.
    let days = secs / 86_400 + 719_468;
    let era = days / 146_097;
    let doe = days % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (u32::try_from(year).unwrap_or(u32::MAX), u32::try_from(month).unwrap_or(1), u32::try_from(day).unwrap_or(1))
}

/// Now (UTC) as seconds after the Unix epoch and milliseconds, or `SOURCE_DATE_EPOCH` (with no
/// milliseconds) for a reproducible package: what [`civil_date`] and [`time_of_day_version`] stamp.
#[must_use]
pub fn now() -> (u64, u32) {
    if let Some(secs) = std::env::var("SOURCE_DATE_EPOCH").ok().and_then(|s| s.parse().ok()) {
        return (secs, 0);
    }
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or((0, 0), |d| (d.as_secs(), d.subsec_millis()))
}

fn is_section_header(line: &str) -> Option<&str> {
    let t = line.trim();
    t.strip_prefix('[').and_then(|r| r.split_once(']')).map(|(name, _)| name.trim())
}

fn directive(line: &str) -> Option<&str> {
    let t = line.trim_start();
    if t.starts_with(';') {
        return None;
    }
    t.split_once('=').map(|(key, _)| key.trim())
}

/// The `.inf` text for `inx` with `stamp` applied. `DriverVer` and `CatalogFile` are replaced
/// in `[Version]`, or added at its end when missing.
///
/// # Errors
/// When the `.inx` has no `[Version]` section.
pub fn stamp(inx: &str, stamp: &Stamp) -> Result<String> {
    let inx = inx.replace("$ARCH$", stamp.arch);
    let mut out: Vec<String> = Vec::new();
    let mut in_version = false;
    let mut saw_version = false;
    let mut wrote_driver_ver = false;
    let mut wrote_catalog = false;
    let driver_ver = format!("DriverVer   = {}", stamp.driver_ver());
    let catalog = format!("CatalogFile = {}", stamp.catalog);
    for line in inx.lines() {
        if let Some(name) = is_section_header(line) {
            if in_version {
                close_version(&mut out, &mut wrote_driver_ver, &driver_ver, &mut wrote_catalog, &catalog);
            }
            in_version = name.eq_ignore_ascii_case("Version");
            saw_version |= in_version;
            out.push(line.to_string());
            continue;
        }
        match directive(line) {
            Some(key) if in_version && key.eq_ignore_ascii_case("DriverVer") => {
                out.push(driver_ver.clone());
                wrote_driver_ver = true;
            }
            Some(key) if in_version && key.eq_ignore_ascii_case("CatalogFile") => {
                out.push(catalog.clone());
                wrote_catalog = true;
            }
            _ => out.push(line.to_string()),
        }
    }
    if in_version {
        close_version(&mut out, &mut wrote_driver_ver, &driver_ver, &mut wrote_catalog, &catalog);
    }
    if !saw_version {
        bail!("the .inx has no [Version] section");
    }
    let mut text = out.join("\n");
    text.push('\n');
    Ok(text)
}

fn close_version(out: &mut Vec<String>, wrote_driver_ver: &mut bool, driver_ver: &str, wrote_catalog: &mut bool, catalog: &str) {
    // Insert before the blank lines that end the section.
    let at = out.iter().rposition(|l| !l.trim().is_empty()).map_or(out.len(), |i| i + 1);
    if !*wrote_catalog {
        out.insert(at, catalog.to_string());
        *wrote_catalog = true;
    }
    if !*wrote_driver_ver {
        out.insert(at, driver_ver.to_string());
        *wrote_driver_ver = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_stamp() -> Stamp {
        Stamp { arch: "amd64", date: (2026, 12, 3), version: [0, 1, 0, 0], catalog: "rspvscsi.cat".into() }
    }

    #[test]
    fn stamps_arch_driver_ver_and_catalog() {
        let inx = "[Version]\nSignature = \"$WINDOWS NT$\"\nCatalogFile = old.cat\nDriverVer =\n\n[Manufacturer]\n%M% = Models, NT$ARCH$.10.0...16299\n[Models.NT$ARCH$.10.0...16299]\n";
        let inf = stamp(inx, &sample_stamp()).unwrap();
        assert!(inf.contains("DriverVer   = 12/03/2026,0.1.0.0\n"), "{inf}");
        assert!(inf.contains("CatalogFile = rspvscsi.cat\n"), "{inf}");
        assert!(!inf.contains("old.cat"));
        assert!(inf.contains("Models, NTamd64.10.0...16299") && inf.contains("[Models.NTamd64.10.0...16299]"));
        assert!(!inf.contains("$ARCH$"));
        assert!(inf.contains("$WINDOWS NT$"), "only $ARCH$ is a stampinf variable");
    }

    #[test]
    fn adds_missing_directives_to_version_only() {
        let inx = "[Version]\nSignature = \"$WINDOWS NT$\"\n\n[Strings]\nDriverVer = not this one\n";
        let inf = stamp(inx, &sample_stamp()).unwrap();
        let version = inf.split("[Strings]").next().unwrap();
        assert!(version.contains("DriverVer   = 12/03/2026,0.1.0.0"), "{inf}");
        assert!(version.contains("CatalogFile = rspvscsi.cat"), "{inf}");
        assert!(inf.contains("DriverVer = not this one"), "other sections untouched");
        assert!(stamp("[Strings]\n", &sample_stamp()).is_err());
    }

    #[test]
    fn dates_and_versions() {
        assert_eq!(civil_date(0), (1970, 1, 1));
        assert_eq!(civil_date(951_782_400), (2000, 2, 29));
        assert_eq!(civil_date(1_796_256_000), (2026, 12, 3));
        // 2026-12-03 17:29:12 UTC, and 23:59:59.999 just before the date changes.
        assert_eq!(time_of_day_version(1_796_256_000 + 17 * 3600 + 29 * 60 + 12, 345), [17, 29, 12, 345]);
        assert_eq!(time_of_day_version(1_796_256_000 + 86_399, 999), [23, 59, 59, 999]);
        assert_eq!(civil_date(1_796_256_000 + 86_399), (2026, 12, 3));
    }
}
