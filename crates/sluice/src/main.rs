//! `sluice`: the binary. CLI, wiring, signals. The only crate that uses `anyhow`.

mod account;
mod auth;
mod dev_key;
mod healthcheck;
mod keys;
mod logging;
mod metrics;
mod pop3;
mod reload;
mod send;
mod sendmail;
mod serve;

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use sluice_config::Config;

/// mimalloc instead of glibc's malloc: the accept and delivery paths allocate many small,
/// short-lived buffers across threads, where glibc's arenas showed ~10 % of the CPU in profiles.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "sluice", version, about = "Multi-tenant mail relay gateway")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Clone)]
pub(crate) struct ConfigArgs {
    /// The TOML config file (every key also settable as SLUICE_SECTION__KEY).
    #[arg(long, short, env = "SLUICE_CONFIG")]
    config: Option<PathBuf>,
    /// Development defaults: ./data, loopback listeners on 2587/2465/2525, capture provider,
    /// account dev@example.com / dev.
    #[arg(long)]
    dev: bool,
    /// With --dev: listen on every interface and trust the private ranges a container
    /// engine's bridge uses, so `-p 2525:2525`-style port mappings work (set in the image).
    #[arg(long, env = "SLUICE_DEV_CONTAINER")]
    dev_container: bool,
}

impl ConfigArgs {
    pub(crate) fn load(&self) -> anyhow::Result<Config> {
        let base = if self.dev {
            sluice_config::dev_defaults_on(if self.dev_container {
                sluice_config::DevNetwork::Container
            } else {
                sluice_config::DevNetwork::Loopback
            })
        } else {
            Config::default()
        };
        sluice_config::load(base, self.config.as_deref()).context("loading configuration")
    }
}

/// What a node does; `serve` runs every role unless told otherwise.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Role {
    /// The SMTP listeners (ingress).
    Smtp,
    /// Health, readiness and metrics.
    Http,
    /// Claims and delivers queued mail.
    Worker,
}

#[derive(Args, Clone)]
struct ServeArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// Roles of this node, comma-separated: any of smtp, http, worker.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "smtp,http,worker"
    )]
    roles: Vec<Role>,
}

#[derive(Subcommand)]
enum Command {
    /// Run Sluice: SMTP listeners, workers and the HTTP endpoint.
    Serve(ServeArgs),
    /// Create or upgrade the database schema, then exit.
    Migrate(ConfigArgs),
    /// Manage tenant accounts.
    Account {
        #[command(subcommand)]
        command: AccountCommand,
    },
    /// Manage system administrators (users of the REST API with access to every account).
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Send test mail over SMTP: a test client and load generator.
    Send(send::SendArgs),
    /// sendmail for applications: reads a message on stdin and submits it to the running
    /// Sluice over SMTP (`[-t] [-i] [-f sender] [--config PATH] [--server HOST:PORT]
    /// [recipients...]`); also runs as `sendmail` through a symlink. Exits as sendmail does.
    #[command(disable_help_flag = true)]
    Sendmail {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Configuration tools.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// The master key.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Exit 0 when the HTTP listener answers GET /healthz with 200, else 1 (the container
    /// image's HEALTHCHECK: the slim image has no curl).
    Healthcheck(healthcheck::HealthcheckArgs),
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Seal every stored message body again under the current `secrets.master_key`
    /// (those sealed under `secrets.previous_master_keys`, and clear ones when
    /// `storage.encrypt_bodies` is on), in small batches, beside a running server.
    Rotate(ConfigArgs),
}

#[derive(Subcommand)]
enum AccountCommand {
    /// Create an account; prints its id and a new API key (shown once).
    Create {
        #[command(flatten)]
        config: ConfigArgs,
        #[arg(long)]
        name: String,
        /// Login for SMTP AUTH.
        #[arg(long)]
        email: String,
        #[arg(long, env = "SLUICE_ACCOUNT_PASSWORD")]
        password: String,
        /// A domain the account may send from, added verified (the operator vouches for
        /// it); repeat for more.
        #[arg(long = "domain", required = true)]
        domains: Vec<String>,
        /// Messages a calendar month (default 10,000).
        #[arg(long)]
        monthly_limit: Option<i64>,
        /// Sandbox mode: everything the account sends is captured (status `captured`),
        /// whatever its providers and rules say, until an owner or admin turns it off.
        #[arg(long)]
        sandbox: bool,
        /// When an account with this --email exists already, say so and exit 0 without
        /// changing it (a seeding step run at every start).
        #[arg(long)]
        if_missing: bool,
    },
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Create a system admin.
    Create {
        #[command(flatten)]
        config: ConfigArgs,
        #[arg(long)]
        email: String,
        #[arg(long, env = "SLUICE_ADMIN_PASSWORD", hide_env_values = true)]
        password: String,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Validate the configuration and print it with secrets masked.
    Check(ConfigArgs),
}

fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    // `sendmail` (a symlink to this binary) and `sluice sendmail` take sendmail's own
    // command line, which clap cannot parse (-oi, -fsender, -F name, ...).
    let argv: Vec<String> = std::env::args().collect();
    if let Some(sendmail_args) = sendmail_args(&argv) {
        std::process::exit(sendmail::main(sendmail_args));
    }
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    runtime.block_on(run(cli.command))
}

/// sendmail's arguments when this binary was called as `sendmail` or `sluice sendmail`.
fn sendmail_args(argv: &[String]) -> Option<&[String]> {
    let program = argv
        .first()
        .and_then(|a| std::path::Path::new(a).file_name())
        .and_then(|name| name.to_str())
        .unwrap_or_default();
    if program == "sendmail" {
        return Some(&argv[1..]);
    }
    if argv.get(1).map(String::as_str) == Some("sendmail") {
        return Some(&argv[2..]);
    }
    None
}

async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Serve(args) => serve::run(args.config, &args.roles).await,
        Command::Migrate(args) => migrate(&args).await,
        Command::Account { command } => create_account(command).await,
        Command::Admin {
            command:
                AdminCommand::Create {
                    config,
                    email,
                    password,
                },
        } => {
            let store = open_store_of_command(&config).await?;
            let id = account::create_admin(store.as_ref(), &email, &password).await?;
            println!("admin user id: {id}");
            Ok(())
        }
        Command::Send(args) => send::run(args).await,
        Command::Healthcheck(args) => healthcheck::run(args).await,
        // Taken before clap parses (see `main`); here for `sluice --help`.
        Command::Sendmail { args } => std::process::exit(sendmail::main(&args)),
        Command::Keys {
            command: KeysCommand::Rotate(args),
        } => rotate_keys(&args).await,
        Command::Config {
            command: ConfigCommand::Check(args),
        } => {
            let config = args.load()?;
            println!("{}", masked_toml(&config)?);
            Ok(())
        }
    }
}

/// `sluice migrate`.
async fn migrate(args: &ConfigArgs) -> anyhow::Result<()> {
    let config = args.load()?;
    logging::init(&config.logging)?;
    serve::open_store(&config).await?;
    println!(
        "database is up to date: {}",
        redact_url(&config.database_url())
    );
    Ok(())
}

/// `sluice account create`.
async fn create_account(command: AccountCommand) -> anyhow::Result<()> {
    let AccountCommand::Create {
        config,
        name,
        email,
        password,
        domains,
        monthly_limit,
        sandbox,
        if_missing,
    } = command;
    let store = open_store_of_command(&config).await?;
    if if_missing && let Some(existing) = store.account_by_email(&email).await? {
        println!("account id: {} (exists; left as it is)", existing.id);
        return Ok(());
    }
    let created =
        account::create(store.as_ref(), &name, &email, &password, &domains, sandbox).await?;
    if let Some(limit) = monthly_limit {
        account::set_monthly_limit(store.as_ref(), created.id, limit).await?;
    }
    println!("account id: {}", created.id);
    println!("api key:    {}", created.api_key);
    if sandbox {
        println!("sandbox:    on (everything it sends is captured)");
    }
    println!("(the API key is shown once; store it now)");
    Ok(())
}

/// `sluice keys rotate`.
async fn rotate_keys(args: &ConfigArgs) -> anyhow::Result<()> {
    logging::init(&args.load()?.logging)?;
    let store = open_store_of_command(args).await?;
    let (looked, rewritten) = keys::rotate_bodies(store.as_ref()).await?;
    println!("message bodies: {looked} looked at, {rewritten} sealed again");
    Ok(())
}

/// Opens the database of a command that changes what a server uses (account, admin,
/// keys) and says which database on stderr. Run on the built-in defaults alone (no
/// `--config`, `SLUICE_CONFIG` or `--dev`), it refuses to make a new SQLite file, so a
/// command that forgot the server's config does not quietly write to a database no server
/// reads.
async fn open_store_of_command(
    args: &ConfigArgs,
) -> anyhow::Result<std::sync::Arc<dyn sluice_store::Store>> {
    let config = args.load()?;
    let url = config.database_url();
    if args.config.is_none()
        && !args.dev
        && let Some(path) = url.strip_prefix("sqlite://")
        && !std::path::Path::new(path).exists()
    {
        anyhow::bail!(
            "no database at {path} (the built-in default): give the server's --config, \
             or --dev to use `serve --dev`'s ./data"
        );
    }
    eprintln!("database: {}", redact_url(&url));
    serve::open_store(&config).await
}

/// The effective config as TOML, with every secret replaced.
fn masked_toml(config: &Config) -> anyhow::Result<String> {
    let mut value = toml::Value::try_from(config)?;
    fn mask(value: &mut toml::Value) {
        match value {
            toml::Value::Table(table) => {
                for (key, item) in table.iter_mut() {
                    if !is_secret_key(key) {
                        mask(item);
                        continue;
                    }
                    // Secrets are text; a number or a flag under such a name
                    // (`access_token_ttl_secs`) is not one.
                    match item {
                        toml::Value::String(_) => {
                            *item = toml::Value::String("********".into());
                        }
                        toml::Value::Array(items) => {
                            for secret in items.iter_mut().filter(|i| i.is_str()) {
                                *secret = toml::Value::String("********".into());
                            }
                        }
                        _ => mask(item),
                    }
                }
            }
            toml::Value::Array(items) => items.iter_mut().for_each(mask),
            _ => {}
        }
    }
    mask(&mut value);
    if let Some(db) = value.get_mut("database").and_then(|d| d.get_mut("url"))
        && let Some(url) = db.as_str()
    {
        *db = toml::Value::String(redact_url(url));
    }
    Ok(toml::to_string_pretty(&value)?)
}

/// Config keys whose text values are secrets: `password`, `secret`, `jwt_secret`,
/// `client_secret`, `secret_access_key`, `api_key`, `master_key`,
/// `previous_master_keys`, tokens.
fn is_secret_key(key: &str) -> bool {
    key.contains("secret")
        || key.contains("password")
        || key.contains("token")
        || key.contains("api_key")
        || key.contains("master_key")
}

/// Hides a password in `scheme://user:password@host/...`.
fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            match userinfo.find(':') {
                Some(colon) => format!(
                    "{}{}:********{}",
                    &url[..scheme_end + 3],
                    &userinfo[..colon],
                    &url[at..]
                ),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}
