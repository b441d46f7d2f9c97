//! Test signing on Linux: a local code-signing certificate made with `openssl`, and an
//! Authenticode signature with Debian's `osslsigncode`.
//!
//! A VM in test-signing mode (`bcdedit /set testsigning on`, Secure Boot off) loads a driver whose
//! signature chains to a certificate in its Trusted Root store; the Windows flow does the same
//! with `makecert` and `signtool` ("Test Signing", "Installing a Test Certificate on a Test
//! Computer"). The certificate is made once and kept in `target/xtask/signing/`, so a VM trusts
//! it once for every later build. The catalog (`inf2cat`) stays Windows-only.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::debian::have;

/// The certificate's subject, as the VM's certificate stores will show it.
pub const SUBJECT: &str = "rspvscsi local test signing";

/// The local test certificate.
#[derive(Clone, Debug)]
pub struct TestCert {
    /// Private key (PEM).
    pub key: PathBuf,
    /// Certificate (PEM), for osslsigncode.
    pub pem: PathBuf,
    /// Certificate (DER, `.cer`), for `certutil -addstore` on the VM.
    pub cer: PathBuf,
}

fn run(mut command: Command) -> Result<String> {
    let output = command.output().with_context(|| format!("running {}", command.get_program().display()))?;
    if !output.status.success() {
        bail!("{command:?} failed: {}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// What signing needs that the machine lacks, if anything.
#[must_use]
pub fn missing_tools() -> Vec<&'static str> {
    ["openssl", "osslsigncode"].into_iter().filter(|t| !have(t)).collect()
}

/// The certificate in `dir`, made on first use: RSA 2048, SHA-256, ten years, a code-signing
/// end-entity certificate (EKU 1.3.6.1.5.5.7.3.3, what `makecert -eku` gives the Windows flow's).
///
/// # Errors
/// When `openssl` fails.
pub fn ensure_cert(dir: &Path) -> Result<TestCert> {
    let cert = TestCert { key: dir.join("test-signing.key"), pem: dir.join("test-signing.pem"), cer: dir.join("test-signing.cer") };
    if cert.key.is_file() && cert.pem.is_file() && cert.cer.is_file() && dir.join("test-signing.pfx").is_file() {
        return Ok(cert);
    }
    std::fs::create_dir_all(dir)?;
    let config = dir.join("openssl.cnf");
    std::fs::write(
        &config,
        format!(
            "[req]\nprompt = no\ndistinguished_name = dn\nx509_extensions = ext\n\n[dn]\nCN = {SUBJECT}\n\n\
             [ext]\nbasicConstraints = critical, CA:FALSE\nkeyUsage = critical, digitalSignature\n\
             extendedKeyUsage = codeSigning\nsubjectKeyIdentifier = hash\n"
        ),
    )?;
    let mut req = Command::new("openssl");
    req.args(["req", "-x509", "-newkey", "rsa:2048", "-sha256", "-days", "3650", "-nodes", "-config"])
        .arg(&config)
        .arg("-keyout")
        .arg(&cert.key)
        .arg("-out")
        .arg(&cert.pem);
    run(req)?;
    let mut der = Command::new("openssl");
    der.args(["x509", "-outform", "DER", "-in"]).arg(&cert.pem).arg("-out").arg(&cert.cer);
    run(der)?;
    // The same certificate with its key for `signtool /f`, to sign the catalog on Windows.
    let mut pfx = Command::new("openssl");
    pfx.args(["pkcs12", "-export", "-passout", "pass:", "-inkey"])
        .arg(&cert.key)
        .arg("-in")
        .arg(&cert.pem)
        .arg("-out")
        .arg(dir.join("test-signing.pfx"));
    run(pfx)?;
    Ok(cert)
}

/// Signs `input` into `output` (Authenticode, SHA-256), then verifies the signature against the
/// certificate. osslsigncode recomputes the PE checksum over the signed file.
///
/// # Errors
/// When signing or verification fails.
pub fn sign(cert: &TestCert, description: &str, input: &Path, output: &Path) -> Result<()> {
    let _ = std::fs::remove_file(output);
    let mut s = Command::new("osslsigncode");
    s.args(["sign", "-h", "sha256", "-n", description, "-certs"])
        .arg(&cert.pem)
        .arg("-key")
        .arg(&cert.key)
        .arg("-in")
        .arg(input)
        .arg("-out")
        .arg(output);
    run(s)?;
    verify(cert, output)
}

/// `osslsigncode verify` of `file` against the test certificate.
///
/// # Errors
/// When the signature does not verify.
pub fn verify(cert: &TestCert, file: &Path) -> Result<()> {
    let mut v = Command::new("osslsigncode");
    v.args(["verify", "-CAfile"]).arg(&cert.pem).arg("-in").arg(file);
    let out = run(v)?;
    if !out.contains("Signature verification: ok") {
        bail!("osslsigncode did not verify {}:\n{out}", file.display());
    }
    Ok(())
}
