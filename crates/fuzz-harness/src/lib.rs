//! The properties the fuzz targets of `crates/fuzz` check, one module per target, and the input
//! format each decodes.
//!
//! A target in `crates/fuzz/fuzz_targets/` is one line: it hands libFuzzer's bytes to `run` of
//! its module here and aborts on an `Err`. The same `run` replays every seed and every
//! reproducer in `crates/fuzz/seeds/<target>/` in `tests/corpus.rs`, on stable Rust, in every
//! `cargo test --workspace`, so the corpus and the properties are checked even where nobody
//! fuzzes. Each module's documentation states its property.
//!
//! | target | module | input surface |
//! | --- | --- | --- |
//! | `srb` | [`srb`] | SRBs from a class driver or pass-through, with aborts, resets and device faults |
//! | `hostile` | [`hostile`] | everything a hostile PVSCSI device writes |
//! | `pe_load` | [`pe_load`] | the PE loader's image parsing |
//! | `cli` | [`cli`] | the CLI's option parsers, disk images, probe answers and the allowlist |

#![allow(clippy::missing_errors_doc, clippy::missing_panics_doc)] // a test harness: its errors are the findings

pub mod bytes;
#[cfg(target_os = "linux")]
pub mod cli;
#[cfg(target_os = "linux")]
pub mod hostile;
#[cfg(target_os = "linux")]
pub mod pe_load;
#[cfg(target_os = "linux")]
pub mod rig;
pub mod shadow;
#[cfg(target_os = "linux")]
pub mod srb;

/// A broken property: what went wrong, and where in the input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// The description.
    pub message: String,
    /// Whether the harness itself could not set up (not a finding about the code under test).
    pub setup: bool,
}

impl Failure {
    /// A broken property.
    #[must_use]
    pub fn new(message: impl Into<String>) -> Self {
        Self { message: message.into(), setup: false }
    }

    /// The harness could not set up.
    #[must_use]
    pub fn setup(message: impl Into<String>) -> Self {
        Self { message: message.into(), setup: true }
    }

    /// Prefixed with the operation it happened at.
    #[must_use]
    pub fn at(self, index: usize, op: &impl std::fmt::Debug) -> Self {
        Self { message: format!("op {index} ({op:?}): {}", self.message), ..self }
    }

    /// Prefixed with a context.
    #[must_use]
    pub fn context(self, context: &str) -> Self {
        Self { message: format!("{context}: {}", self.message), ..self }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failure {}

/// The input as the target named `target` decodes it, for a reader; `None` for an unknown
/// target.
#[cfg(target_os = "linux")]
#[must_use]
pub fn describe(target: &str, data: &[u8]) -> Option<String> {
    Some(match target {
        "srb" => format!("{:#?}", srb::Input::decode(data)),
        "hostile" => format!("{:#?}", hostile::Input::decode(data)),
        "pe_load" => format!("a file of {} bytes", data.len()),
        "cli" => format!("{:?}", cli::Input::decode(data)),
        _ => return None,
    })
}

/// Runs one input of the target named `target`: what the run did, or the broken property;
/// `None` for an unknown target.
#[cfg(target_os = "linux")]
#[must_use]
pub fn replay(target: &str, data: &[u8]) -> Option<Result<String, Failure>> {
    Some(match target {
        "srb" => srb::run(data).map(|r| format!("{r:?}")),
        "hostile" => hostile::run(data).map(|r| format!("{r:?}")),
        "pe_load" => pe_load::run(data).map(|r| format!("{r:?}")),
        "cli" => cli::run(data).map(|r| format!("{r:?}")),
        _ => return None,
    })
}
