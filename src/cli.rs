//! The command line: `serve` and `check-config`.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use tokio::net::TcpListener;

use crate::bridge;
use crate::client;
use crate::config::{self, Config};
use crate::discovery;
use crate::runtimes;
use crate::server;

#[derive(Parser)]
#[command(
    name = "switchboard",
    version,
    about = "One MCP endpoint in front of many MCP servers"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log lines as text (default) or JSON, on stderr; filter with RUST_LOG.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the gateway (the embedded default config unless --config is given).
    Serve {
        /// YAML config file.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Listen address, overriding the file's `listen`.
        #[arg(long)]
        listen: Option<SocketAddr>,
        /// Serve a non-loopback address without client authentication
        /// (only behind something that authenticates, e.g. a NetworkPolicy
        /// that admits trusted pods alone).
        #[arg(long)]
        insecure_no_auth: bool,
    },
    /// Mint an HS256 JWT for a gateway whose `auth.jwt` has a `secret`.
    Token {
        /// File holding the shared secret (the same as the gateway's).
        #[arg(long)]
        secret_file: PathBuf,
        /// The subject (`sub`) the token names.
        #[arg(long)]
        sub: String,
        /// Lifetime, like 30m, 1h or 7d... (units ms, s, m, h).
        #[arg(long, default_value = "1h")]
        ttl: String,
        /// Audience (`aud`): the gateway's configured audience.
        #[arg(long)]
        aud: Option<String>,
        /// Issuer (`iss`): the gateway's configured issuer.
        #[arg(long)]
        iss: Option<String>,
        /// Groups, comma-separated.
        #[arg(long, value_delimiter = ',')]
        groups: Vec<String>,
    },
    /// Validate a config file without serving.
    CheckConfig { file: PathBuf },
    /// List the tools behind any MCP endpoint (either protocol era).
    Tools {
        /// The endpoint, e.g. http://127.0.0.1:8080/mcp
        url: String,
        #[command(flatten)]
        connection: Connection,
        /// Print the tools as JSON.
        #[arg(long)]
        json: bool,
    },
    /// A stdio MCP server that forwards to a remote endpoint (for clients
    /// that can only launch local processes).
    Stdio(StdioArgs),
    /// Call one tool and print its result.
    Call {
        url: String,
        tool: String,
        /// The arguments, a JSON object.
        #[arg(default_value = "{}")]
        arguments: String,
        #[command(flatten)]
        connection: Connection,
        /// Print the whole CallToolResult as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(clap::Args)]
struct StdioArgs {
    /// The remote MCP endpoint, e.g. https://mcp.example.com/mcp
    url: String,
    #[command(flatten)]
    connection: Connection,
}

#[derive(clap::Args)]
struct Connection {
    /// A header sent with every request, as "Name: value" (repeatable).
    #[arg(long = "header", short = 'H')]
    headers: Vec<String>,
    /// A PEM CA bundle to trust besides the system's (a private CA).
    #[arg(long)]
    ca_file: Option<PathBuf>,
}

pub fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // The client commands print results; only problems go to the log.
    let default_filter = match cli.command {
        Command::Tools { .. } | Command::Call { .. } => "switchboard=error",
        Command::Stdio(_) => "switchboard=warn",
        _ => "switchboard=info",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| default_filter.into());
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().init(),
    }
    match cli.command {
        Command::CheckConfig { file } => {
            let config = config::load(&file, &config::process_env)?;
            println!(
                "{}: ok ({} upstream{})",
                file.display(),
                config.upstreams.len(),
                if config.upstreams.len() == 1 { "" } else { "s" }
            );
            // What each child process will see of the environment: names
            // only, as values may be credentials.
            for upstream in &config.upstreams {
                if let config::TransportSpec::Stdio { env, .. } = &upstream.transport {
                    let names: Vec<&str> = env.keys().map(String::as_str).collect();
                    println!(
                        "  {}: stdio child environment: {}",
                        upstream.name,
                        if names.is_empty() {
                            "(empty)".to_string()
                        } else {
                            names.join(", ")
                        }
                    );
                }
            }
            Ok(())
        }
        Command::Tools {
            url,
            connection,
            json,
        } => current_thread_runtime()?.block_on(async {
            let headers = client::parse_headers(&connection.headers)?;
            let remote = client::connect(&url, headers, connection.ca_file.as_deref()).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&remote.listing.tools)?);
            } else {
                print!("{}", client::tool_lines(&remote.listing.tools));
            }
            remote.upstream.shutdown().await;
            Ok(())
        }),
        Command::Stdio(StdioArgs { url, connection }) => {
            current_thread_runtime()?.block_on(async {
                let headers = client::parse_headers(&connection.headers)?;
                let ca_pem =
                    match &connection.ca_file {
                        None => None,
                        Some(path) => Some(std::fs::read_to_string(path).with_context(|| {
                            format!("--ca-file {}: cannot read", path.display())
                        })?),
                    };
                bridge::run(&url, headers, ca_pem).await
            })
        }
        Command::Call {
            url,
            tool,
            arguments,
            connection,
            json,
        } => current_thread_runtime()?.block_on(async {
            let arguments: serde_json::Value = serde_json::from_str(&arguments)
                .context("the arguments must be a JSON object, e.g. '{\"text\": \"hi\"}'")?;
            if !arguments.is_object() {
                anyhow::bail!("the arguments must be a JSON object, e.g. '{{\"text\": \"hi\"}}'");
            }
            let headers = client::parse_headers(&connection.headers)?;
            let remote = client::connect(&url, headers, connection.ca_file.as_deref()).await?;
            if !remote
                .listing
                .tools
                .iter()
                .any(|t| t["name"] == tool.as_str())
            {
                remote.upstream.shutdown().await;
                anyhow::bail!("{url} has no tool {tool:?}; `switchboard tools {url}` lists them");
            }
            let result = remote.upstream.call_tool(&tool, arguments).await;
            remote.upstream.shutdown().await;
            let result = result.map_err(|e| client::advice(&url, &e))?;
            if json {
                println!("{}", serde_json::to_string_pretty(&result)?);
            } else {
                print!("{}", client::result_text(&result));
            }
            if result["isError"] == true {
                // The tool ran and reported a failure: scripts see it.
                std::process::exit(1);
            }
            Ok(())
        }),
        Command::Token {
            secret_file,
            sub,
            ttl,
            aud,
            iss,
            groups,
        } => {
            let secret = std::fs::read_to_string(&secret_file)
                .with_context(|| format!("--secret-file {}: cannot read", secret_file.display()))?;
            let ttl = config::parse_duration(&ttl)
                .filter(|d| !d.is_zero())
                .with_context(|| format!("--ttl {ttl:?}: use a duration like 30m or 1h"))?;
            let token = crate::auth::jwt::mint(
                secret.trim(),
                &sub,
                ttl,
                aud.as_deref(),
                iss.as_deref(),
                &groups,
            )
            .map_err(anyhow::Error::msg)?;
            println!("{token}");
            Ok(())
        }
        Command::Serve {
            config: path,
            listen,
            insecure_no_auth,
        } => {
            let mut config = match &path {
                Some(path) => config::load(path, &config::process_env)?,
                None => config::parse(
                    config::EMBEDDED_DEFAULT,
                    config::EMBEDDED_DEFAULT_NAME,
                    &config::process_env,
                )?,
            };
            // The file is watched for edits, compared with what it said
            // (not with command-line overrides).
            let watched = path.map(|path| (path, config.clone()));
            if let Some(listen) = listen {
                config.listen = listen;
            }
            if config.security.auth.is_none()
                && !config.listen.ip().is_loopback()
                && !insecure_no_auth
            {
                anyhow::bail!(
                    "refusing to serve {} without client authentication: anyone who can reach it \
                     could call every tool. Configure `auth` (README, Security), listen on \
                     127.0.0.1, or pass --insecure-no-auth if something in front authenticates",
                    config.listen
                );
            }
            let shards = runtimes::Shards::start(runtimes::wanted())
                .context("starting the serving runtimes")?;
            let runtime = current_thread_runtime()?;
            let served = runtime.block_on(serve(config, watched, &shards));
            shards.stop();
            served
        }
    }
}

fn current_thread_runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    runtimes::build().context("starting the runtime")
}

async fn serve(
    config: Config,
    watched: Option<(PathBuf, Config)>,
    shards: &runtimes::Shards,
) -> anyhow::Result<()> {
    let tls = match &config.security.tls {
        None => None,
        Some(settings) => {
            let (acceptor, certificate) =
                crate::tls::acceptor(settings).map_err(anyhow::Error::msg)?;
            tokio::spawn(certificate.watch());
            Some(acceptor)
        }
    };
    let sockets = runtimes::bind(config.listen, runtimes::count())
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let address = sockets[0].local_addr()?;
    let edge = server::assemble(&config, address.ip().is_loopback(), tls.is_some()).await?;
    let pool = edge.front.pool.clone();
    let tracer = edge.front.tracer.clone();
    if let Some(kubernetes) = config.kubernetes.clone() {
        pool.await_discovery();
        tokio::spawn(discovery::kubernetes::run(kubernetes, pool.clone()));
    }
    if let Some((path, file_config)) = watched {
        tokio::spawn(discovery::config_file::watch(
            path,
            file_config,
            pool.clone(),
        ));
    }
    let (closing, closed) = tokio::sync::watch::channel(false);
    tokio::spawn({
        let front = edge.front.clone();
        async move {
            shutdown_signal().await;
            front.close_streams();
            let _ = closing.send(true);
        }
    });
    let scheme = if tls.is_some() { "https" } else { "http" };
    // Scripts and tests read this line to find the port.
    println!("switchboard listening on {scheme}://{address}/mcp");
    tracing::info!(%address, upstreams = config.upstreams.len(), auth = edge.auth.is_some(), tls = tls.is_some(), runtimes = sockets.len(), "serving");
    let mut serving = Vec::with_capacity(sockets.len());
    for (index, socket) in sockets.into_iter().enumerate() {
        let (edge, tls, mut closed) = (edge.clone(), tls.clone(), closed.clone());
        let limits = config.security.limits;
        let serve_socket = async move {
            // Registered with the reactor of the runtime that accepts on it.
            let tcp = match TcpListener::from_std(socket) {
                Ok(tcp) => tcp,
                Err(error) => {
                    tracing::error!("runtime {index} cannot accept: {error}");
                    return;
                }
            };
            let shutdown = async move {
                let _ = closed.wait_for(|closed| *closed).await;
            };
            server::run(server::Listener { tcp, tls, limits }, edge, shutdown).await;
        };
        serving.push(if index == 0 {
            tokio::spawn(serve_socket)
        } else {
            shards.handle(index).spawn(serve_socket)
        });
    }
    for runtime in serving {
        let _ = runtime.await;
    }
    tracing::info!("shutting down");
    pool.shutdown().await;
    if let Some(tracer) = tracer {
        // The last requests' spans would otherwise die with the process.
        tracer.flush().await;
    }
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing the SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
