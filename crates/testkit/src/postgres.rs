//! One fresh PostgreSQL database per test, on the test server.

use sqlx::{AssertSqlSafe, Connection as _, PgConnection};

/// Creates `mb_test_<uuid>` through `admin_url` and returns the URL of the new database.
pub(crate) async fn create_fresh_database(admin_url: &str) -> String {
    let name = format!("mb_test_{}", uuid::Uuid::now_v7().simple());
    let mut admin = PgConnection::connect(admin_url)
        .await
        .unwrap_or_else(|error| {
            panic!("connecting to the test PostgreSQL at {admin_url}: {error}")
        });
    // The name is made of [a-z0-9_] only, so it is safe to splice into the statement;
    // CREATE DATABASE takes no bind parameters.
    sqlx::raw_sql(AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin)
        .await
        .unwrap_or_else(|error| panic!("creating database {name}: {error}"));
    // Closing politely only saves the server a log line.
    let _ = admin.close().await;
    with_database(admin_url, &name)
}

/// `url` with its database (the path) replaced by `database`, query kept.
fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let server = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{server}/{database}?{query}"),
        None => format!("{server}/{database}"),
    }
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn with_database_cases() {
        let cases = [
            (
                "postgres://postgres@127.0.0.1:5432/postgres",
                "postgres://postgres@127.0.0.1:5432/db1",
            ),
            (
                "postgres://postgres@127.0.0.1:5432",
                "postgres://postgres@127.0.0.1:5432/db1",
            ),
            (
                "postgres://u:p@h:1/postgres?sslmode=disable",
                "postgres://u:p@h:1/db1?sslmode=disable",
            ),
        ];
        for (url, expected) in cases {
            assert_eq!(with_database(url, "db1"), expected, "{url}");
        }
    }
}
