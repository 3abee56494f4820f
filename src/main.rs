//! The `todo-api` command: serve, create-user, migrate.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use secrecy::SecretString;
use tokio::net::TcpListener;

use todo_api::auth::schemas::RegisterRequest;
use todo_api::config::{Config, DatabaseArgs, ServeArgs, ServeSecrets, random_secret};
use todo_api::db::{Database, DatabaseUrl};
use todo_api::error::AppError;
use todo_api::telemetry::{self, LogFormat};
use todo_api::users::Role;
use todo_api::{AppState, ServeOptions, build_app};

/// The environment variable `create-user` reads the password from, when set.
const PASSWORD_VAR: &str = "TODO_API_PASSWORD";

#[derive(Parser)]
#[command(name = "todo-api", version, about = "A multi-user Todo API")]
struct Cli {
    #[command(subcommand)]
    command: Command,

    /// How to write log lines: `text` for people, `json` for log collectors.
    /// The level comes from RUST_LOG (default: info).
    #[arg(
        long,
        global = true,
        env = "TODO_API_LOG_FORMAT",
        value_enum,
        default_value_t
    )]
    log_format: LogFormat,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP server.
    #[command(
        after_help = "Environment: TODO_API_JWT_SECRET (required unless --demo) is the \
        token signing secret, at least 32 random bytes, e.g. \
        export TODO_API_JWT_SECRET=$(openssl rand -base64 48). TODO_API_MFA_KEY (32 \
        random bytes, base64: openssl rand -base64 32) seals two-step login secrets; \
        without it two-step login cannot be turned on (--demo makes a throwaway one), \
        and TODO_API_MFA_PREVIOUS_KEYS (comma separated) still opens secrets sealed \
        before a key change. Secrets are read from the environment only, never from \
        a flag. Every flag above can also be set by the variable in its [env: ...]."
    )]
    Serve(ServeArgs),
    /// Create an account, for example the first admin. The password is read
    /// from TODO_API_PASSWORD or asked for at the terminal.
    CreateUser {
        /// 3 to 32 ASCII letters, digits, '_', '.' or '-'; unique in any case.
        #[arg(long)]
        username: String,
        /// The name shown to people, 1 to 100 characters.
        #[arg(long)]
        name: String,
        /// An email address (optional).
        #[arg(long)]
        email: Option<String>,
        /// Give the account the admin role.
        #[arg(long)]
        admin: bool,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Create the database if needed and bring its schema up to date.
    Migrate {
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Copy a SQLite database, consistently, while the server keeps
    /// serving; to restore, start `serve` on the copy. (PostgreSQL: use
    /// pg_dump, see the README.)
    Backup {
        /// The new file to write; an existing one is never overwritten.
        file: std::path::PathBuf,
        #[command(flatten)]
        database: DatabaseArgs,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    telemetry::init(cli.log_format);
    let result = match todo_api::runtime::build() {
        Ok(runtime) => runtime.block_on(run(cli.command)),
        Err(e) => Err(format!("cannot start the runtime: {e}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("todo-api: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> Result<(), String> {
    match command {
        Command::Serve(args) => serve(args).await,
        Command::CreateUser {
            username,
            name,
            email,
            admin,
            database,
        } => create_user(username, name, email, admin, database).await,
        Command::Migrate { database } => migrate(database).await,
        Command::Backup { file, database } => backup(&file, &database),
    }
}

async fn serve(args: ServeArgs) -> Result<(), String> {
    let bind = args.bind;
    let metrics_bind = args.metrics_bind;
    let demo = args.demo;
    let config = args.into_config(ServeSecrets::from_env())?;
    let options = ServeOptions::from_config(&config);
    // Both addresses are taken before the database is touched: a port in
    // use must not leave a new, migrated (or seeded) database behind.
    let listener = TcpListener::bind(bind)
        .await
        .map_err(|e| format!("cannot listen on {bind}: {e}"))?;
    let metrics_listener = match metrics_bind {
        Some(metrics_bind) => Some((
            TcpListener::bind(metrics_bind)
                .await
                .map_err(|e| format!("cannot listen on {metrics_bind} for metrics: {e}"))?,
            metrics_bind,
        )),
        None => None,
    };
    let state = AppState::new(config).await?;
    if demo
        && todo_api::demo::seed_demo(state.db.users.as_ref(), &state.passwords)
            .await
            .map_err(|error| format!("cannot seed the demo users: {error}"))?
    {
        tracing::warn!("seeded the demo users alice and admin (their passwords are in the README)");
    }
    if let Some((metrics_listener, metrics_bind)) = metrics_listener {
        let address = metrics_listener.local_addr().unwrap_or(metrics_bind);
        tracing::info!("metrics on http://{address}/metrics");
        // Ends with the process; scrapes need no graceful shutdown.
        tokio::spawn(todo_api::serve_with(
            metrics_listener,
            todo_api::metrics_app(&state),
            std::future::pending(),
            options,
        ));
    }
    let address = listener.local_addr().unwrap_or(bind);
    tracing::info!("listening on http://{address}");
    todo_api::serve_with(listener, build_app(state), shutdown_signal(), options)
        .await
        .map_err(|e| format!("server error: {e}"))?;
    tracing::info!("stopped");
    Ok(())
}

async fn create_user(
    username: String,
    name: String,
    email: Option<String>,
    admin: bool,
    database: DatabaseArgs,
) -> Result<(), String> {
    let password = match std::env::var(PASSWORD_VAR) {
        Ok(password) => password,
        Err(_) => prompt_password()?,
    };
    let account = RegisterRequest {
        username,
        password: SecretString::from(password),
        name,
        email,
    }
    .validate()
    .map_err(|error| describe(error.into()))?;
    let state = cli_state(database).await?;
    let role = if admin { Role::Admin } else { Role::User };
    let user = state
        .accounts()
        .create_account(account, role)
        .await
        .map_err(|error| describe(error.into()))?;
    println!(
        "created {} {:?} with id {}",
        role.as_str(),
        user.username,
        user.id
    );
    Ok(())
}

fn backup(file: &std::path::Path, database: &DatabaseArgs) -> Result<(), String> {
    let DatabaseUrl::Sqlite(source) = database.url()? else {
        return Err(
            "backup copies SQLite databases; back up PostgreSQL with pg_dump \
                    (see the README's Deploying section)"
                .into(),
        );
    };
    let report = todo_api::db::sqlite::backup::backup(&source, file)?;
    println!(
        "backed up {} ({} pages) to {}",
        source.display(),
        report.pages,
        file.display()
    );
    Ok(())
}

async fn migrate(database: DatabaseArgs) -> Result<(), String> {
    let mut config = Config::with_defaults(database.url()?, SecretString::from(random_secret()));
    database.apply_to(&mut config);
    Database::connect(&config.database_url, &config.db_settings())
        .await
        .map_err(|e| format!("cannot migrate the database: {e}"))?;
    println!("the database is up to date");
    Ok(())
}

/// State for a one-off command: no tokens are signed, so the key is random.
async fn cli_state(database: DatabaseArgs) -> Result<AppState, String> {
    let mut config = Config::with_defaults(database.url()?, SecretString::from(random_secret()));
    database.apply_to(&mut config);
    AppState::new(config).await
}

fn prompt_password() -> Result<String, String> {
    let first = rpassword::prompt_password("Password: ").map_err(|e| e.to_string())?;
    let second = rpassword::prompt_password("Repeat it: ").map_err(|e| e.to_string())?;
    if first != second {
        return Err("the two passwords differ".into());
    }
    Ok(first)
}

fn describe(error: AppError) -> String {
    match error {
        AppError::Validation(details) => details
            .iter()
            .map(|d| format!("{} {}", d.field, d.message))
            .collect::<Vec<_>>()
            .join("; "),
        other => other.to_string(),
    }
}

async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
    tracing::info!("shutting down");
}
