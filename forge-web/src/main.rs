//! The `forge` command: parses arguments and hands over to the library.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use forge_tools::backup;
use forge_tools::config::Config;
use forge_tools::mail_in::{self, Refused};
use forge_tools::names::Reserved;
use forge_tools::store::migrations;
use forge_tools::users::{self, NewUser};
use forge_web::analytics;
use forge_web::server::{self, Role, Services};

/// mimalloc rather than glibc's malloc: glibc keeps freed memory in one arena per thread that
/// ever allocated (tokio's workers and the blocking pool). After the side-by-side run of
/// `../shared/bench/peers` a node held 470 MB (peak 485 MB) with glibc, 106 MB (peak 225 MB)
/// with mimalloc, and served most pages faster. Built without transparent huge pages, which
/// took idle RSS from 48 MB to 66 MB.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "forge", version, about = "A self-hosted project forge")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the web app.
    Serve,
    /// Run background tasks from the broker (only with FORGE_AMQP_URL).
    Worker,
    /// Apply pending store migrations.
    Migrate {
        /// List migrations and whether they are applied, without applying any.
        #[arg(long)]
        status: bool,
    },
    /// Manage accounts.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Manage personal access tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Rebuild the search index beside the live one and swap it in (no downtime).
    Reindex {
        /// Re-index only this project (through the task runner).
        #[arg(long)]
        project: Option<String>,
    },
    /// Deliver one mail from standard input (for the MTA): a reply to a notification, or a
    /// mail to a forum's address. Exit codes: 0 delivered, 65 refused, 67 unknown address,
    /// 75 try again later.
    MailIn,
    /// Statistics: run or rebuild the aggregations over the event log.
    Analytics {
        #[command(subcommand)]
        command: AnalyticsCommand,
    },
    /// The event log.
    Events {
        #[command(subcommand)]
        command: EventsCommand,
    },
    /// Copy everything (store, repositories, attachments) into a new directory, consistent
    /// as of one moment, while the forge runs (with a progress bar).
    Backup {
        /// The directory to write (created; refused when it exists and is not empty).
        #[arg(long)]
        out: PathBuf,
    },
    /// Restore a backup into an empty data dir and database (refuses non-empty ones), then
    /// rebuild the search index (with a progress bar).
    Restore {
        /// The backup's directory (as `forge backup --out` wrote it).
        #[arg(long)]
        from: PathBuf,
    },
    /// Run by `git upload-pack` in place of `git pack-objects` (the pack cache of clones);
    /// not for people.
    #[command(hide = true, name = "pack-objects-hook")]
    PackObjectsHook {
        /// `git pack-objects` and its options, as git appends them.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<std::ffi::OsString>,
    },
}

#[derive(Subcommand)]
enum AnalyticsCommand {
    /// Process the events logged since the last run into every aggregate, now.
    Run,
    /// Recompute the aggregates from the whole event log beside the live ones, then swap
    /// them in (with a progress bar).
    Rebuild {
        /// Only this aggregation (project, user or site).
        #[arg(long)]
        agg: Option<String>,
    },
}

#[derive(Subcommand)]
enum EventsCommand {
    /// Append events, JSON lines `{type, timestamp?, context, extra}`, from standard input.
    /// Bad lines are reported by number and skipped; good ones are kept.
    Load,
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create an account; the password is read from standard input.
    Create {
        #[arg(long)]
        username: String,
        #[arg(long)]
        email: String,
        /// Make the account a site administrator.
        #[arg(long)]
        admin: bool,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Print a new personal access token for a user.
    Create {
        #[arg(long)]
        user: String,
        #[arg(long, default_value = "cli")]
        name: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::PackObjectsHook { args } = &cli.command {
        // Standard output is the pack: nothing else may be written there.
        return forge_tools::tools::repo::pack_cache::run_hook(args).unwrap_or_else(|e| {
            eprintln!("forge pack-objects-hook: {e}");
            ExitCode::FAILURE
        });
    }
    if matches!(cli.command, Command::MailIn) {
        // The MTA turns standard error into the bounce: only warnings and the reason.
        init_logging("warn");
        return match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(rt) => rt.block_on(mail_in()),
            Err(e) => bounce(&Refused::temp(e.to_string())),
        };
    }
    // Backup and restore show a progress bar and, on failure, one line of reason.
    if matches!(
        cli.command,
        Command::Backup { .. } | Command::Restore { .. }
    ) {
        init_logging("warn");
    } else {
        init_logging("info,tower_http=info");
    }
    // More async workers than cores: a handler that spends CPU on a large (bounded) input
    // then delays only its own worker, and the OS time-slices the rest (`/healthz`, the
    // accept loop) instead of queueing them behind it.
    let cores = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads((cores * 4).clamp(4, 64))
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(&e.to_string()),
    };
    match runtime.block_on(run(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => fail(&msg),
    }
}

fn fail(msg: &str) -> ExitCode {
    eprintln!("forge: {msg}");
    ExitCode::FAILURE
}

/// `forge mail-in`: reads the message (bounded), delivers it, and exits with the code the
/// MTA understands (see `forge_tools::mail_in`).
async fn mail_in() -> ExitCode {
    let config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => return bounce(&Refused::temp(e.to_string())),
    };
    let raw = match mail_in::read_limited(std::io::stdin().lock(), config.max_mail_bytes) {
        Ok(raw) => raw,
        Err(r) => return bounce(&r),
    };
    let services = match Services::open(config, Role::Command).await {
        Ok(s) => s,
        Err(e) => return bounce(&Refused::temp(e.to_string())),
    };
    let result = mail_in::deliver(&services.forge, &raw).await;
    services.close().await;
    match result {
        Ok(_) => ExitCode::SUCCESS,
        Err(r) => bounce(&r),
    }
}

fn bounce(r: &Refused) -> ExitCode {
    let line = r.message.replace(['\n', '\r'], " ");
    eprintln!("forge mail-in: {line}");
    ExitCode::from(r.bounce.exit_code())
}

fn init_logging(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("FORGE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

async fn run(command: Command) -> Result<(), String> {
    let config = Config::from_env().map_err(|e| e.to_string())?;
    match command {
        Command::Serve => server::serve(config).await.map_err(|e| e.to_string()),
        Command::Worker => server::worker(config).await.map_err(|e| e.to_string()),
        // Handled in `main`, with its own exit codes.
        Command::MailIn => Ok(()),
        Command::Reindex { project } => {
            let summary = server::reindex(config, project.as_deref())
                .await
                .map_err(|e| e.to_string())?;
            println!("{summary}");
            Ok(())
        }
        Command::Analytics { command } => {
            let services = Services::open(config, Role::Command)
                .await
                .map_err(|e| e.to_string())?;
            let result = match command {
                AnalyticsCommand::Run => analytics::run_now(&services.forge).await,
                AnalyticsCommand::Rebuild { agg } => {
                    analytics::rebuild(&services.forge, agg.as_deref()).await
                }
            };
            services.close().await;
            println!("{}", result?);
            Ok(())
        }
        Command::Events {
            command: EventsCommand::Load,
        } => {
            let services = Services::open(config, Role::Command)
                .await
                .map_err(|e| e.to_string())?;
            let bar = indicatif::ProgressBar::new_spinner().with_style(
                indicatif::ProgressStyle::with_template(
                    "{spinner} {pos} events loaded ({per_sec})",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
            );
            bar.enable_steady_tick(std::time::Duration::from_millis(200));
            let stdin = tokio::io::BufReader::with_capacity(1 << 20, tokio::io::stdin());
            let result = analytics::load(&services.forge, stdin, &bar).await;
            bar.finish_and_clear();
            services.close().await;
            let loaded = result?;
            for line in &loaded.refused {
                eprintln!("{line}");
            }
            println!("loaded {} events", loaded.written);
            if loaded.refused_count > 0 {
                return Err(format!(
                    "{} lines refused (the other lines were loaded)",
                    loaded.refused_count
                ));
            }
            Ok(())
        }
        Command::Backup { out } => {
            let services = Services::open(config, Role::Command)
                .await
                .map_err(|e| e.to_string())?;
            let bar = Bar::new();
            let result = backup::backup(&services.forge, &out, bar.clone()).await;
            bar.0.finish_and_clear();
            services.close().await;
            let m = result.map_err(|e| one_line(&e.to_string()))?;
            println!(
                "backed up {} collections ({} documents), {} repositories and {} attachment files into {}",
                m.all_collections().count(),
                m.all_collections().map(|(_, c)| c.count).sum::<u64>(),
                m.repositories.len(),
                m.attachments.files,
                out.display()
            );
            Ok(())
        }
        Command::Restore { from } => {
            let bar = Bar::new();
            let restored = backup::restore(&config, &from, bar.clone())
                .await
                .map_err(|e| {
                    bar.0.finish_and_clear();
                    one_line(&e.to_string())
                })?;
            let services = Services::open(config, Role::Command)
                .await
                .map_err(|e| e.to_string())?;
            let result = backup::finish_restore(&services.forge, &restored, bar.clone()).await;
            bar.0.finish_and_clear();
            services.close().await;
            let indexed = result.map_err(|e| one_line(&e.to_string()))?;
            println!(
                "restored {} documents, {} repositories and {} attachment files from {}; search index rebuilt ({indexed} documents)",
                restored.documents,
                restored.repositories,
                restored.attachments,
                from.display()
            );
            Ok(())
        }
        Command::PackObjectsHook { .. } => Err("pack-objects-hook is run by git".into()),
        Command::Migrate { status } => {
            let services = Services::open(config, Role::Command)
                .await
                .map_err(|e| e.to_string())?;
            let db = services.forge.db().clone();
            let result = if status {
                migrations::status(&db).await.map(|list| {
                    for (name, description, applied) in list {
                        let state = applied
                            .map_or_else(|| "pending".to_owned(), |d| format!("applied {d}"));
                        println!("{name}\t{state}\t{description}");
                    }
                })
            } else {
                migrations::apply_pending(&db).await.map(|done| {
                    if done.is_empty() {
                        println!("no pending migrations");
                    }
                    for name in done {
                        println!("applied {name}");
                    }
                })
            };
            services.close().await;
            result.map_err(|e| e.to_string())
        }
        Command::User {
            command:
                UserCommand::Create {
                    username,
                    email,
                    admin,
                },
        } => {
            let mut password = String::new();
            std::io::stdin()
                .read_to_string(&mut password)
                .map_err(|e| format!("reading the password: {e}"))?;
            let password = password.trim_end_matches(['\n', '\r']).to_owned();
            let services = Services::open(config, Role::Command)
                .await
                .map_err(|e| e.to_string())?;
            let new = NewUser {
                username,
                email,
                display_name: String::new(),
                password,
                site_admin: admin,
            };
            // The operator may create names that sign-up refuses (e.g. `admin`).
            let result = services
                .forge
                .sign_up_as(&forge_tools::Viewer::default(), new, Reserved::Allow)
                .await;
            services.close().await;
            match result {
                Ok(u) => {
                    println!(
                        "created user {}{}",
                        u.username,
                        if u.site_admin { " (site admin)" } else { "" }
                    );
                    Ok(())
                }
                Err(e) => Err(e.to_string()),
            }
        }
        Command::Token {
            command: TokenCommand::Create { user, name },
        } => {
            let services = Services::open(config, Role::Command)
                .await
                .map_err(|e| e.to_string())?;
            let db = services.forge.db().clone();
            let result = async {
                let u = users::by_username(&db, &user).await?.ok_or_else(|| {
                    forge_tools::Error::invalid("user", format!("no user named {user:?}"))
                })?;
                forge_tools::tokens::create(&db, u.id, &name).await
            }
            .await;
            services.close().await;
            let (_, secret) = result.map_err(|e| e.to_string())?;
            println!("{secret}");
            Ok(())
        }
    }
}

/// A message on one line (the contract: a one-line reason on standard error).
fn one_line(msg: &str) -> String {
    msg.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The progress of a backup or a restore as a bar (drawn only on a terminal).
#[derive(Clone)]
struct Bar(indicatif::ProgressBar);

impl Bar {
    fn new() -> Arc<Self> {
        let bar = indicatif::ProgressBar::new(0).with_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} {msg:12} [{bar:40}] {pos}/{len} ({eta})",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar.enable_steady_tick(std::time::Duration::from_millis(200));
        Arc::new(Self(bar))
    }
}

impl backup::Progress for Bar {
    fn phase(&self, name: &str, total: u64) {
        self.0.set_message(name.to_owned());
        self.0.set_length(total);
        self.0.set_position(0);
    }

    fn advance(&self, n: u64) {
        self.0.inc(n);
    }
}
