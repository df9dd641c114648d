//! `losskit`: lists the shipped losses, evaluates one and its gradients on a JSON case, or
//! shows the pair weights of a pairs loss on a synthetic batch (as a table or a PNG plot).
//!
//! Every problem (a bad argument, an unreadable or malformed case, an input the loss
//! refuses) ends the program with exit status 2 and exactly one line on stderr.

mod eval;
mod failure;
mod gpw;
mod json;
mod list;
mod lookup;
mod suggest;
mod usage;

use std::ffi::OsString;
use std::io::{self, Write};
use std::panic::{self, AssertUnwindSafe};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use failure::{internal_error, Failure, Result};

/// Loss functions written as math, with derived gradients
#[derive(Debug, Parser)]
#[command(
    name = "losskit",
    version,
    override_usage = usage::SYNOPSIS,
    after_help = usage::EXIT_STATUS,
    subcommand_required = true,
    args_override_self = true
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The subcommands, one module each.
#[derive(Debug, Subcommand)]
enum Command {
    /// List every shipped loss: family, paper, inputs, hyper-parameters (`--all`: and every paper)
    List(list::ListArgs),
    /// Evaluate a loss and its gradients on a JSON case (`-` reads stdin)
    Eval(eval::EvalArgs),
    /// Show the pair weights W = dL/dS of a pairs loss on a synthetic batch
    ///
    /// The batch: N embeddings from C Gaussian clusters in D dimensions, labelled by
    /// cluster, drawn with seed S. Prints a table of the weights by similarity, or with
    /// --out draws a PNG scatter plot of weight against similarity, positive and negative
    /// pairs in two colours.
    Gpw(gpw::GpwArgs),
}

fn main() -> ExitCode {
    // any panic is reported as one line below, never with the default hook's backtrace
    panic::set_hook(Box::new(|_| {}));
    let args: Vec<OsString> = std::env::args_os().collect();
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| run(&args)))
        .unwrap_or_else(|payload| Err(internal_error(payload.as_ref())));
    match outcome.and_then(|out| print(&out)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            let _ = writeln!(io::stderr().lock(), "losskit: {}", failure.line());
            ExitCode::from(2)
        }
    }
}

/// Runs the command line (`args[0]` is the program); returns what to print on stdout.
fn run(args: &[OsString]) -> Result<String> {
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => return usage::outcome(&e, args),
    };
    match &cli.command {
        Command::List(args) => list::run(args),
        Command::Eval(args) => eval::run(args),
        Command::Gpw(args) => gpw::run(args),
    }
}

/// Writes the output; a closed pipe (`losskit list | head`) is not an error.
fn print(out: &str) -> Result<()> {
    let mut stdout = io::stdout().lock();
    match stdout
        .write_all(out.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => {
            Err(Failure(format!("cannot write the output: {e}")))
        }
        _ => Ok(()),
    }
}
