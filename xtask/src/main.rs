//! `cargo xtask`: the project's own tasks (the Rust convention: an `xtask` crate run through a
//! cargo alias, so nothing needs installing by hand).
//!
//! - `cargo xtask test [ARGS...]`: sets up the test environment (and headless Chromium for the
//!   replay report's browser test: Debian's `chromium`, installed with apt-get when missing),
//!   then runs the whole suite, `cargo test --workspace --no-fail-fast [ARGS...]`, with the
//!   environment first on `PATH`.
//! - `cargo xtask setup`: sets up the test environment only, and prints the `PATH` entry.
//!
//! The test environment is a Python virtual environment under `target/test-venv`, made from the
//! pinned `xtask/requirements-test.txt` (moto's server, cargo-lambda, zig, aws-sam-translator and
//! everything they pull in, at exact versions). It is rebuilt when that file changes (its text is
//! kept in the environment as a stamp), and reused otherwise. It needs only `python3` with the
//! standard `venv` module (or `TAGWATCH_PYTHON` naming another interpreter) and access to the
//! package index.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

/// The stamp file inside the environment: the requirements text it was built from.
const STAMP: &str = "tagwatch-requirements.txt";

/// What a task failed on, said so that the reader knows what to do.
#[derive(Debug)]
struct TaskError(String);

impl std::fmt::Display for TaskError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let (task, rest) = match args.split_first() {
        Some((t, rest)) => (t.to_string_lossy().to_string(), rest.to_vec()),
        None => (String::new(), Vec::new()),
    };
    let result = match task.as_str() {
        "test" => test(&rest),
        "setup" => setup().map(|env| {
            println!("{}", env.bin.display());
            ExitCode::SUCCESS
        }),
        _ => {
            eprintln!(
                "usage: cargo xtask test [CARGO TEST ARGS...]   set up the test tools, run the whole suite\n       cargo xtask setup                         set up the test tools only (prints their bin directory)"
            );
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("cargo xtask {task}: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The workspace root (this crate's parent directory).
fn root() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.parent().unwrap_or(here).to_path_buf()
}

/// A ready test environment.
struct TestEnv {
    /// The virtual environment.
    dir: PathBuf,
    /// Its executables' directory (first on `PATH` for the tests).
    bin: PathBuf,
}

fn bin_dir(venv: &Path) -> PathBuf {
    if cfg!(windows) {
        venv.join("Scripts")
    } else {
        venv.join("bin")
    }
}

fn exe(name: &str) -> String {
    if cfg!(windows) {
        format!("{name}.exe")
    } else {
        name.to_string()
    }
}

/// Runs a command to completion; an error names it and what it printed.
fn run(what: &str, cmd: &mut Command) -> Result<(), TaskError> {
    let out = cmd
        .output()
        .map_err(|e| TaskError(format!("{what}: cannot start {:?}: {e}", cmd.get_program())))?;
    if out.status.success() {
        return Ok(());
    }
    Err(TaskError(format!(
        "{what} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )))
}

/// Creates (or reuses) the virtual environment from the pinned requirements.
fn setup() -> Result<TestEnv, TaskError> {
    let root = root();
    let requirements = root.join("xtask").join("requirements-test.txt");
    let wanted = std::fs::read_to_string(&requirements)
        .map_err(|e| TaskError(format!("cannot read {}: {e}", requirements.display())))?;
    let dir = root.join("target").join("test-venv");
    let bin = bin_dir(&dir);
    let stamp = dir.join(STAMP);
    let tools = ["moto_server", "cargo-lambda"];
    let ready = std::fs::read_to_string(&stamp).is_ok_and(|s| s == wanted)
        && tools.iter().all(|t| bin.join(exe(t)).is_file());
    if ready {
        return Ok(TestEnv { dir, bin });
    }
    let python = std::env::var_os("TAGWATCH_PYTHON").unwrap_or_else(|| "python3".into());
    eprintln!(
        "cargo xtask: creating the test environment {} from {} (once; about a minute)",
        dir.display(),
        requirements.display()
    );
    run(
        "creating the virtual environment (needs python3 with the venv module, or TAGWATCH_PYTHON)",
        Command::new(&python)
            .args(["-m", "venv", "--clear"])
            .arg(&dir),
    )?;
    let venv_python = bin.join(exe("python"));
    run(
        "installing the pinned test tools",
        Command::new(&venv_python)
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "--no-input",
                "-r",
            ])
            .arg(&requirements),
    )?;
    for t in tools {
        if !bin.join(exe(t)).is_file() {
            return Err(TaskError(format!(
                "{} has no {t} after installing {}",
                bin.display(),
                requirements.display()
            )));
        }
    }
    std::fs::write(&stamp, &wanted)
        .map_err(|e| TaskError(format!("cannot write {}: {e}", stamp.display())))?;
    Ok(TestEnv { dir, bin })
}

/// `PATH` with the environment's executables first.
fn path_with(bin: &Path) -> Result<OsString, TaskError> {
    let mut parts = vec![bin.to_path_buf()];
    if let Some(path) = std::env::var_os("PATH") {
        parts.extend(std::env::split_paths(&path));
    }
    std::env::join_paths(parts).map_err(|e| TaskError(format!("cannot build PATH: {e}")))
}

/// Whether a command answers `--version`.
fn answers(cmd: &str) -> bool {
    Command::new(cmd)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Headless Chromium for the replay report's browser test: `TAGWATCH_CHROMIUM`, or `chromium` on
/// `PATH`, or Debian's `chromium` package installed with apt-get (as root, which CI and these
/// machines are; elsewhere the error says what to install).
fn chromium() -> Result<(), TaskError> {
    if std::env::var_os("TAGWATCH_CHROMIUM").is_some() || answers("chromium") {
        return Ok(());
    }
    if !answers("apt-get") {
        return Err(TaskError(
            "the replay report test needs headless Chromium: install your distribution's \
             `chromium` package, or set TAGWATCH_CHROMIUM to a Chromium binary"
                .to_string(),
        ));
    }
    eprintln!("cargo xtask: installing Debian's chromium for the report test (once)");
    run(
        "apt-get update (installing chromium needs root)",
        Command::new("apt-get").args(["update", "-qq"]),
    )?;
    run(
        "apt-get install chromium",
        Command::new("apt-get")
            .args([
                "install",
                "-y",
                "-qq",
                "--no-install-recommends",
                "chromium",
            ])
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )?;
    if answers("chromium") {
        Ok(())
    } else {
        Err(TaskError(
            "apt-get installed chromium, but `chromium --version` does not answer".to_string(),
        ))
    }
}

fn test(args: &[OsString]) -> Result<ExitCode, TaskError> {
    let env = setup()?;
    chromium()?;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(root())
        .args(["test", "--workspace", "--no-fail-fast"])
        .args(args)
        .env("PATH", path_with(&env.bin)?)
        .env("VIRTUAL_ENV", &env.dir)
        .status()
        .map_err(|e| TaskError(format!("cannot start cargo test: {e}")))?;
    Ok(match status.code() {
        Some(0) => ExitCode::SUCCESS,
        Some(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        None => ExitCode::FAILURE,
    })
}
