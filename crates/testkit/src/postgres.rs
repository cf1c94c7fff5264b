//! Throwaway PostgreSQL databases for tests, from `SLUICE_TEST_DATABASE_URL`.

use std::time::Duration;

/// The server tests may use. Unset: PostgreSQL tests are skipped with a notice, except
/// under CI (`CI` set), where that is a failure.
pub fn base_url() -> Option<String> {
    match std::env::var("SLUICE_TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var_os("CI").is_some() => {
            panic!("SLUICE_TEST_DATABASE_URL must be set under CI: PostgreSQL tests may not skip")
        }
        _ => {
            eprintln!("SLUICE_TEST_DATABASE_URL is not set: skipping a PostgreSQL test");
            None
        }
    }
}

/// `url` with its database name replaced.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, format!("?{query}")),
        None => (url, String::new()),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let host_end = base[scheme_end..]
        .find('/')
        .map(|i| i + scheme_end)
        .unwrap_or(base.len());
    format!("{}/{name}{query}", &base[..host_end])
}

fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(future)
}

/// A database of its own for one test; dropped (connections forced out) at the end.
pub struct TempDatabase {
    admin_url: String,
    name: String,
    pub url: String,
}

impl TempDatabase {
    /// `None` when PostgreSQL tests are skipped (see [`base_url`]). Panics if the server is
    /// unreachable: a configured database that does not answer is a failure, not a skip.
    pub fn create() -> Option<TempDatabase> {
        let admin_url = base_url()?;
        let name = format!("sluice_t_{}", uuid_like());
        let statement = format!("CREATE DATABASE {name}");
        let admin = admin_url.clone();
        std::thread::spawn(move || {
            block_on(async move {
                use sqlx::Connection;
                let mut conn = tokio::time::timeout(
                    Duration::from_secs(10),
                    sqlx::PgConnection::connect(&admin),
                )
                .await
                .expect("PostgreSQL answers within 10 s")
                .expect("connect to SLUICE_TEST_DATABASE_URL");
                sqlx::raw_sql(sqlx::AssertSqlSafe(statement))
                    .execute(&mut conn)
                    .await
                    .expect("CREATE DATABASE");
            })
        })
        .join()
        .unwrap();
        Some(TempDatabase {
            url: with_database(&admin_url, &name),
            admin_url,
            name,
        })
    }
}

impl Drop for TempDatabase {
    fn drop(&mut self) {
        let admin = self.admin_url.clone();
        let statement = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        let _ = std::thread::spawn(move || {
            block_on(async move {
                use sqlx::Connection;
                if let Ok(mut conn) = sqlx::PgConnection::connect(&admin).await {
                    let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(statement))
                        .execute(&mut conn)
                        .await;
                }
            })
        })
        .join();
    }
}

fn uuid_like() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos(),
    );
    hasher.write_u32(std::process::id());
    format!("{:016x}", hasher.finish())
}

/// The machine's PostgreSQL cluster, stopped and started with `pg_ctlcluster` for outage
/// tests. Dropping it starts the cluster again, so a failing test does not leave it down.
pub struct Cluster {
    version: String,
}

impl Cluster {
    /// The single cluster under /etc/postgresql (`<version>/main`).
    pub fn local() -> Cluster {
        let version = std::fs::read_dir("/etc/postgresql")
            .expect("/etc/postgresql (a local PostgreSQL cluster)")
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .next()
            .expect("a PostgreSQL version directory");
        Cluster { version }
    }

    fn ctl(&self, action: &str) {
        let status = std::process::Command::new("pg_ctlcluster")
            .args(["--skip-systemctl-redirect", &self.version, "main", action])
            .status()
            .expect("pg_ctlcluster runs");
        assert!(status.success(), "pg_ctlcluster {action} failed");
    }

    pub fn stop(&self) {
        self.ctl("stop");
    }

    pub fn start(&self) {
        self.ctl("start");
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = std::process::Command::new("pg_ctlcluster")
            .args(["--skip-systemctl-redirect", &self.version, "main", "start"])
            .status();
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn database_name_is_replaced() {
        assert_eq!(
            super::with_database("postgres://u@127.0.0.1:5432/test?sslmode=disable", "x"),
            "postgres://u@127.0.0.1:5432/x?sslmode=disable"
        );
        assert_eq!(super::with_database("postgres://h", "x"), "postgres://h/x");
    }
}
