//! `cargo xtask`: the project's tasks (see the library's documentation).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use xtask::{bench, c_reference, pe, sys};

#[derive(Parser)]
#[command(name = "cargo xtask", about = "rspvscsi's project tasks")]
struct Cli {
    #[command(subcommand)]
    command: Task,
}

#[derive(Clone, Copy, ValueEnum)]
enum Port {
    Scsiport,
    Storport,
}

impl Port {
    fn rules(self) -> &'static pe::PortRules {
        match self {
            Self::Scsiport => &pe::SCSIPORT,
            Self::Storport => &pe::STORPORT,
        }
    }
}

#[derive(Subcommand)]
enum Task {
    /// Build both images for x86_64-pc-windows-msvc (release, LTO): `rspvscsi_storport.sys` (the
    /// Storport flavour) and `rspvscsi.sys` (SCSI Port), each packaged with its stamped INF, PDB and
    /// map under target/x86_64-pc-windows-msvc/release/<name>_package/ and signed with a local
    /// test certificate; print `rspvscsi.sys`'s path as the last line.
    Sys {
        /// Leave the image unsigned (no openssl/osslsigncode needed).
        #[arg(long)]
        no_sign: bool,
        /// Show cargo's output.
        #[arg(long, short)]
        verbose: bool,
        /// Build the C reference miniport (`driver/c-reference/`) with MinGW-w64 instead, unsigned,
        /// into `rspvscsi_c_package/`.
        #[arg(long)]
        c_reference: bool,
    },
    /// Check a driver image against the rules Windows and HLK apply to a miniport, and report
    /// its sections, imports, relocations and interrupt routine. Exits 1 if a rule fails.
    CheckPe {
        /// The .sys.
        image: PathBuf,
        /// The linker's map (default: the image's path with .map).
        #[arg(long)]
        map: Option<PathBuf>,
        /// The port driver whose import rules apply.
        #[arg(long, value_enum, default_value = "scsiport")]
        port: Port,
    },
    /// Measure an I/O's cost (callgrind instructions in the miniport and in the whole program,
    /// completions per interrupt, syscalls, payload copies, IOPS against memcpy) for the
    /// linked-in driver and the .sys; write target/bench/bench.{json,md,svg}.
    Bench(bench::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli.command) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("xtask: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(task: Task) -> anyhow::Result<ExitCode> {
    match task {
        Task::Bench(args) => bench::main(&args),
        Task::Sys { c_reference: true, .. } => {
            let package = c_reference::build(&c_reference::Options::default(), &mut |line| println!("{line}"))?;
            println!("package: {}", package.dir.display());
            println!("{}", package.sys.display());
            Ok(ExitCode::SUCCESS)
        }
        Task::Sys { no_sign, verbose, c_reference: false } => {
            let opts = sys::Options { no_sign, verbose };
            // The SCSI Port image last, so that its path stays the last line.
            for flavor in sys::ALL {
                let package = sys::build(flavor, &opts, &mut |line| println!("{line}"))?;
                println!("package: {}", package.dir.display());
                if let Some(cer) = &package.cer {
                    println!("test certificate: {}", cer.display());
                }
                println!("{}", package.sys.display());
            }
            Ok(ExitCode::SUCCESS)
        }
        Task::CheckPe { image, map: map_path, port } => {
            let bytes = std::fs::read(&image)?;
            let map_path = map_path.unwrap_or_else(|| image.with_extension("map"));
            let parsed = std::fs::read_to_string(&map_path).ok().map(|t| c_reference::parse_any_map(&t));
            if parsed.is_none() {
                println!("(no map at {}: LTO and the interrupt routine are not checked)", map_path.display());
            }
            let report = pe::check(&bytes, parsed.as_ref(), port.rules())?;
            print!("{}", report.render());
            Ok(if report.ok() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
    }
}
