//! `hv`: the Hypervisor command-line client (DESIGN §10). `main` parses and dispatches; each
//! command lives in `commands/`.

mod api;
mod commands;
mod config;
mod error;
mod explain;
mod follow;
mod output;
mod resolve;

use clap::{CommandFactory, Parser, Subcommand};
use commands::Ctx;
use output::Format;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "hv",
    version,
    about = "Share GPU and CPU clusters between teams: submit, wait for, explain."
)]
struct Cli {
    /// Output: a table for people, json or yaml for scripts.
    #[arg(short, long, global = true, value_enum, default_value = "table")]
    output: Format,
    /// The organization to act in (name or id), instead of `hv org use`'s.
    #[arg(long, global = true, env = "HV_ORG")]
    org: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Log in and keep the session under the config directory.
    Login {
        /// The API's address (default: HV_API_URL, the last one used, or http://127.0.0.1:3000).
        #[arg(long)]
        api: Option<String>,
        #[arg(long, short)]
        username: Option<String>,
        /// Read the password from standard input (for scripts) instead of prompting.
        #[arg(long)]
        password_stdin: bool,
    },
    /// End the session, server-side too.
    Logout,
    /// Create an account (then `hv login`).
    Register {
        #[arg(long, short)]
        username: String,
        #[arg(long)]
        email: String,
        /// Read the password from standard input instead of prompting.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Who the API thinks you are, and the current organization.
    Whoami,
    /// Organizations: list, create, use, join, members, invite.
    #[command(subcommand)]
    Org(commands::org::OrgCommand),
    /// Organization API tokens, for CI (HV_TOKEN).
    #[command(subcommand)]
    Token(commands::org::TokenCommand),
    /// Clusters of the current organization.
    #[command(subcommand)]
    Cluster(commands::cluster::ClusterCommand),
    /// Each cluster's allocated capacity, as bars.
    Top,
    /// Submit a deployment, from a YAML spec or flags.
    Submit(commands::deploy::SubmitArgs),
    /// List deployments, newest first.
    Ls {
        /// pending, running, succeeded, failed or cancelled.
        #[arg(long)]
        status: Option<String>,
        /// Keep watching: print each deployment again when it changes.
        #[arg(short, long)]
        watch: bool,
        /// Stop watching after this long (e.g. 30s, 5m).
        #[arg(long, value_parser = commands::deploy::parse_duration)]
        timeout: Option<std::time::Duration>,
    },
    /// One deployment.
    Get { deployment: String },
    /// A deployment's history.
    Events {
        deployment: String,
        /// Keep following until it finishes.
        #[arg(short, long)]
        follow: bool,
        #[arg(long, value_parser = commands::deploy::parse_duration)]
        timeout: Option<std::time::Duration>,
    },
    /// Why a deployment is where it is, in words, and what would change it.
    Explain { deployment: String },
    /// Cancel a pending or running deployment.
    Cancel { deployment: String },
    /// Report a running deployment's outcome.
    Complete {
        deployment: String,
        #[arg(long, value_enum)]
        outcome: commands::deploy::Outcome,
        #[arg(long)]
        message: Option<String>,
    },
    /// Print a shell completion script: `hv completions bash > /etc/bash_completion.d/hv`.
    Completions { shell: clap_complete::Shell },
}

fn run(cli: Cli) -> error::Result<()> {
    if let Command::Completions { shell } = cli.command {
        clap_complete::generate(shell, &mut Cli::command(), "hv", &mut std::io::stdout());
        return Ok(());
    }
    let ctx = Ctx {
        api: api::Api::new(config::ConfigFile::load()?)?,
        format: cli.output,
        org: cli.org,
    };
    use commands::{auth, cluster, deploy, org};
    match cli.command {
        Command::Login {
            api,
            username,
            password_stdin,
        } => auth::login(ctx, api, username, password_stdin),
        Command::Logout => auth::logout(&ctx),
        Command::Register {
            username,
            email,
            password_stdin,
        } => auth::register(&ctx, &username, &email, password_stdin),
        Command::Whoami => auth::whoami(&ctx),
        Command::Org(command) => org::org(&ctx, command),
        Command::Token(command) => org::token(&ctx, command),
        Command::Cluster(command) => cluster::cluster(&ctx, command),
        Command::Top => cluster::top(&ctx),
        Command::Submit(args) => deploy::submit(&ctx, args),
        Command::Ls {
            status,
            watch,
            timeout,
        } => deploy::ls(&ctx, status, watch, timeout),
        Command::Get { deployment } => deploy::get(&ctx, &deployment),
        Command::Events {
            deployment,
            follow,
            timeout,
        } => deploy::events(&ctx, &deployment, follow, timeout),
        Command::Explain { deployment } => explain::explain(&ctx, &deployment),
        Command::Cancel { deployment } => deploy::cancel(&ctx, &deployment),
        Command::Complete {
            deployment,
            outcome,
            message,
        } => deploy::complete(&ctx, &deployment, outcome, message),
        Command::Completions { .. } => Ok(()),
    }
}

fn main() -> ExitCode {
    // clap exits 2 on a usage error, which here means "cannot be placed": usage errors are 1.
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hv: {e}");
            ExitCode::from(e.exit_code() as u8)
        }
    }
}
