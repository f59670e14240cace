//! A PostgreSQL database of its own for a test, on the server
//! `HUSH_TEST_POSTGRES_URL` names, dropped afterwards.

use hush_store::PostgresOptions;

pub const URL_VAR: &str = "HUSH_TEST_POSTGRES_URL";

#[derive(Debug)]
pub struct TempDatabase {
    server: PostgresOptions,
    /// The connection URL of this database, for hush's `storage.url`.
    pub url: String,
    name: String,
}

impl TempDatabase {
    pub async fn create() -> Self {
        let base = std::env::var(URL_VAR).unwrap_or_else(|_| panic!("{URL_VAR} is not set"));
        let server = PostgresOptions::from_url(&base).unwrap_or_else(|e| panic!("{URL_VAR}: {e}"));
        let name = format!("hush_test_{}", uuid::Uuid::new_v4().simple());
        if let Err(e) = server.create_database(&name).await {
            panic!(
                "{URL_VAR} names a PostgreSQL server that cannot be used ({}): {e}",
                server.location()
            );
        }
        let mut url = reqwest::Url::parse(&base).unwrap();
        url.set_path(&format!("/{name}"));
        Self {
            server,
            url: url.to_string(),
            name,
        }
    }

    /// A plain connection, to look at the tables directly.
    pub async fn connection(&self) -> sqlx::PgConnection {
        self.server
            .clone()
            .with_database(&self.name)
            .connect_once()
            .await
            .unwrap()
    }
}

impl Drop for TempDatabase {
    /// Dropping needs I/O and may run inside the test's runtime: a thread
    /// with a runtime of its own does it.
    fn drop(&mut self) {
        let (server, name) = (self.server.clone(), self.name.clone());
        let outcome = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            runtime
                .block_on(server.drop_database(&name))
                .map_err(|e| e.to_string())
        })
        .join();
        match outcome {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("could not drop test database {}: {e}", self.name),
            Err(_) => eprintln!("dropping test database {} panicked", self.name),
        }
    }
}

/// A config for one instance on `url`, with the demo tenant's v3 key.
pub fn config_toml(url: &str) -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:0"
shutdown_timeout_secs = 5
[storage]
backend = "postgres"
url = "{url}"
pool_size = 4
[log]
format = "json"
[[tenants]]
id = "demo"
  [[tenants.keys]]
  api = "v3"
  token = "demo-v3-key"
  [[tenants.keys]]
  api = "postmark"
  token = "demo-postmark-token"
  [[tenants.keys]]
  api = "sendpost"
  token = "demo-sendpost-key"
"#
    )
}
