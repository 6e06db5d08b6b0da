//! pgbulk in a web backend: an axum endpoint that takes a JSON array or a CSV upload of products
//! and upserts it through a sqlx `PgPool` with `upsert_via_staging`, answering with the counts.
//!
//! ```text
//! cargo run --example axum_sqlx --features sqlx
//! curl -H 'content-type: application/json' --data '[{"sku":"A-1","name":"Lamp","price_cents":1999,"stock":4}]' \
//!      http://127.0.0.1:3000/products
//! curl -H 'content-type: text/csv' --data-binary @products.csv http://127.0.0.1:3000/products
//! ```
//!
//! Answers `{"received":1,"inserted":1,"updated":0,"unchanged":0,"duplicates":0}`; a row the
//! table refuses is a 422 with the server's words (naming the row), and nothing of that upload
//! is written. Without
//! `DATABASE_URL` it starts a throwaway PostgreSQL (`pgbulk::testkit`); `PORT` picks the port.
//! The whole upload is one atomic upsert on one pooled connection: a server under load gets
//! COPY speed instead of one `INSERT` per row, and the pool's other connections stay free.

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use pgbulk::{CopyRow, ErrorKind, SqlxBulkExt};
use serde::Deserialize;
use sqlx::PgPool;

/// The table the endpoint keeps.
pub const DDL: &str = "CREATE TABLE IF NOT EXISTS products (
    sku         text PRIMARY KEY,
    name        text NOT NULL,
    price_cents bigint NOT NULL CHECK (price_cents >= 0),
    stock       integer NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
)";

/// One product, as uploaded (JSON object or CSV record) and as copied.
#[derive(CopyRow, Deserialize, Debug, Clone, PartialEq)]
#[copy(table = "products")]
pub struct Product {
    /// The key: an upload's row with a known SKU updates that product.
    #[copy(key)]
    pub sku: String,
    /// Display name.
    pub name: String,
    /// Price in cents (the table refuses a negative one: a 422 naming the row).
    pub price_cents: i64,
    /// Units in stock.
    pub stock: i32,
}

/// What `POST /products` answers.
#[derive(serde::Serialize, Debug)]
pub struct Counts {
    received: usize,
    inserted: u64,
    updated: u64,
    unchanged: u64,
    duplicates: u64,
}

type Rejection = (StatusCode, String);

/// The rows of the request body: CSV for `text/csv`, else a JSON array.
fn parse(headers: &HeaderMap, body: &[u8]) -> Result<Vec<Product>, Rejection> {
    let csv = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/csv"));
    let bad = |e: String| (StatusCode::BAD_REQUEST, e);
    if csv {
        csv::Reader::from_reader(body)
            .deserialize()
            .enumerate()
            .map(|(i, r)| r.map_err(|e| bad(format!("CSV record {i}: {e}"))))
            .collect()
    } else {
        serde_json::from_slice(body).map_err(|e| bad(format!("JSON: {e}")))
    }
}

/// `POST /products`: upserts the uploaded rows (the key is `sku`), all or nothing.
async fn upload(
    State(pool): State<PgPool>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Counts>, Rejection> {
    let rows = parse(&headers, &body)?;
    let counts = pool.bulk().upsert_via_staging(&rows).await.map_err(|e| {
        // A value that cannot be encoded, or a row the table refuses (a constraint, SQLSTATE
        // class 23): the uploader's to fix. The message names the row where it is known.
        let refused =
            e.kind() == ErrorKind::Encode || e.code().is_some_and(|c| c.code().starts_with("23"));
        let status = if refused {
            StatusCode::UNPROCESSABLE_ENTITY
        } else {
            StatusCode::INTERNAL_SERVER_ERROR
        };
        (status, e.to_string())
    })?;
    Ok(Json(Counts {
        received: rows.len(),
        inserted: counts.inserted,
        updated: counts.updated,
        unchanged: counts.unchanged,
        duplicates: counts.duplicates,
    }))
}

/// The application: `POST /products` on `pool`, uploads up to 64 MiB.
pub fn app(pool: PgPool) -> Router {
    Router::new()
        .route("/products", post(upload))
        .layer(DefaultBodyLimit::max(64 << 20))
        .with_state(pool)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let (options, _throwaway) = if let Ok(url) = std::env::var("DATABASE_URL") {
        (url.parse()?, None)
    } else {
        eprintln!("no DATABASE_URL: starting a throwaway PostgreSQL (pgbulk::testkit)");
        let db = pgbulk::testkit::TestDb::new().await?;
        (db.sqlx_options(), Some(db))
    };
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(8)
        .connect_with(options)
        .await?;
    sqlx::raw_sql(DDL).execute(&pool).await?;
    let port = std::env::var("PORT").unwrap_or_else(|_| "3000".into());
    let listener = tokio::net::TcpListener::bind(format!("127.0.0.1:{port}")).await?;
    eprintln!("listening on http://{}/products", listener.local_addr()?);
    axum::serve(listener, app(pool)).await?;
    Ok(())
}
