//! clap's outcomes in losskit's terms: help and version are printed like any output,
//! and every usage error becomes one [`Failure`] line that names the subcommand, the
//! argument and what would have been right.

use std::ffi::OsString;

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::CommandFactory;

use crate::failure::{shown, Failure, Result};
use crate::suggest::did_you_mean;
use crate::Cli;

/// The synopsis `losskit --help` shows.
pub const SYNOPSIS: &str = "\
losskit list [--json]
       losskit eval CASE.json
       losskit gpw LOSS [--out weights.png] [--n N] [--classes C] [--dim D] [--seed S]";

/// What `losskit --help` ends with.
pub const EXIT_STATUS: &str = "\
Run `losskit <COMMAND> --help` for a command's options (`losskit eval --help` shows the
case format).

Exit status: 0 on success, 2 on any problem (described in one line on stderr).";

/// What parsing `args` ended with, when it did not give a [`Cli`]: the help or version
/// text to print, or the failure to report.
pub fn outcome(e: &clap::Error, args: &[OsString]) -> Result<String> {
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => Ok(e.to_string()),
        _ => Err(failure(e, args)),
    }
}

/// The subcommand that `args` names (its first argument after the program), if any.
fn subcommand(args: &[OsString]) -> Option<clap::Command> {
    let name = args.get(1)?.to_str()?;
    Cli::command().find_subcommand(name).cloned()
}

/// A context value of `e` as one string (the first of several).
fn context(e: &clap::Error, kind: ContextKind) -> Option<String> {
    match e.get(kind)? {
        ContextValue::String(s) => Some(s.clone()),
        ContextValue::Strings(list) => list.first().cloned(),
        ContextValue::StyledStr(s) => Some(s.to_string()),
        _ => None,
    }
}

/// The flag of an argument as clap names it in context (`--n <N>` → `--n`).
fn flag(arg: &str) -> &str {
    arg.split([' ', '=']).next().unwrap_or(arg)
}

/// What each subcommand's operand is, in words.
fn operand(command: &str) -> Option<&'static str> {
    match command {
        "eval" => Some("case file"),
        "gpw" => Some("pairs loss"),
        _ => None,
    }
}

/// The long options of `command`, as `` `--a`, `--b` and `--c` `` (`--help` aside).
fn options(command: &clap::Command) -> String {
    let names: Vec<String> = command
        .get_arguments()
        .filter_map(clap::Arg::get_long)
        .filter(|long| !matches!(*long, "help" | "version"))
        .map(|long| format!("`--{long}`"))
        .collect();
    match names.split_last() {
        None => "only `--help`".to_string(),
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
    }
}

/// One line for a usage error of clap's.
fn failure(e: &clap::Error, args: &[OsString]) -> Failure {
    let sub = subcommand(args);
    let name = sub.as_ref().map(|c| c.get_name().to_string());
    let who = name
        .as_deref()
        .map_or_else(|| "losskit".to_string(), |n| format!("losskit {n}"));
    let arg = context(e, ContextKind::InvalidArg).unwrap_or_default();
    let help = format!("see `{who} --help`");
    let message = match e.kind() {
        ErrorKind::MissingSubcommand | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            "missing command; usage: `losskit list [--json]`, `losskit eval CASE.json` or `losskit gpw LOSS` (see `losskit --help`)"
                .to_string()
        }
        ErrorKind::InvalidSubcommand => {
            let given = context(e, ContextKind::InvalidSubcommand).unwrap_or_default();
            let commands: Vec<String> = Cli::command()
                .get_subcommands()
                .map(|c| c.get_name().to_string())
                .chain(["--help", "--version"].map(String::from))
                .collect();
            format!(
                "unknown command `{}`{}; run `losskit --help` for usage",
                shown(&given),
                did_you_mean(&given, commands.iter().map(String::as_str))
            )
        }
        ErrorKind::UnknownArgument if arg.starts_with('-') => {
            let flag = flag(&arg);
            let (takes, longs) = match &sub {
                Some(c) => (options(c), longs(c)),
                None => ("`--help` and `--version`".to_string(), vec![]),
            };
            let longs = longs.iter().map(String::as_str).chain(["--help"]);
            format!(
                "unknown option `{}` to `{who}`{}; it takes {takes}",
                shown(flag),
                did_you_mean(flag, longs)
            )
        }
        ErrorKind::UnknownArgument => match name.as_deref().and_then(operand) {
            Some(what) => format!("`{who}` takes one {what}, not also `{}`", shown(&arg)),
            None => format!("unexpected argument `{}` to `{who}`; {help}", shown(&arg)),
        },
        ErrorKind::MissingRequiredArgument => {
            let what = name.as_deref().and_then(operand).unwrap_or("argument");
            let usage = context(e, ContextKind::Usage).unwrap_or_default();
            let usage = usage.trim().trim_start_matches("Usage:").trim();
            format!("`{who}` needs a {what}: `{usage}` ({help})")
        }
        ErrorKind::InvalidValue if context(e, ContextKind::InvalidValue).as_deref() == Some("") => {
            format!("`{}` needs a value", flag(&arg))
        }
        ErrorKind::ValueValidation => match std::error::Error::source(e) {
            Some(why) => format!("`{}` {why}", flag(&arg)),
            None => generic(e, &help),
        },
        ErrorKind::InvalidUtf8 => {
            let bad = args.iter().skip(1).find(|a| a.to_str().is_none());
            let bad = bad.map(|a| a.to_string_lossy()).unwrap_or_default();
            format!("argument `{}` is not valid UTF-8", shown(&bad))
        }
        _ => generic(e, &help),
    };
    Failure(message)
}

/// The long option names of `command`, with their dashes.
fn longs(command: &clap::Command) -> Vec<String> {
    command
        .get_arguments()
        .filter_map(clap::Arg::get_long)
        .map(|long| format!("--{long}"))
        .collect()
}

/// clap's own first line, for the kinds of error losskit words no better.
fn generic(e: &clap::Error, help: &str) -> String {
    let rendered = e.to_string();
    let first = rendered.lines().next().unwrap_or("invalid arguments");
    let first = first.strip_prefix("error: ").unwrap_or(first);
    format!("{first}; {help}")
}
