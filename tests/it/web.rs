//! `examples/axum_sqlx.rs` served on a real socket: JSON and CSV uploads through HTTP, upserted
//! through a sqlx `PgPool` into the testkit server.

#[allow(dead_code, unreachable_pub)] // the example's `main` is not used here
#[path = "../../examples/axum_sqlx.rs"]
mod axum_sqlx;

use crate::{count, db};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One HTTP/1.1 request on a fresh TCP connection; returns the status code and the body.
async fn post(addr: std::net::SocketAddr, content_type: &str, body: &str) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "POST /products HTTP/1.1\r\nHost: {addr}\r\nContent-Type: {content_type}\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    s.read_to_string(&mut response).await.unwrap();
    let status = response[9..12].parse().unwrap();
    let body = response.split_once("\r\n\r\n").unwrap().1.to_owned();
    (status, body)
}

#[tokio::test]
async fn json_and_csv_uploads_are_upserted_with_counts() {
    let db = db().await;
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(4)
        .connect_with(db.sqlx_options())
        .await
        .unwrap();
    sqlx::raw_sql(axum_sqlx::DDL).execute(&pool).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum_sqlx::app(pool);
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let json = r#"[{"sku":"A-1","name":"Lamp","price_cents":1999,"stock":4},
                   {"sku":"A-2","name":"Desk","price_cents":15000,"stock":1}]"#;
    let (status, body) = post(addr, "application/json", json).await;
    assert_eq!(status, 200, "{body}");
    let counts: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(counts["received"], 2);
    assert_eq!(counts["inserted"], 2);
    assert_eq!(counts["updated"], 0);

    let csv = "sku,name,price_cents,stock\nA-1,Lamp,1999,4\nA-2,Desk,14000,1\nB-7,Chair,4500,12\n";
    let (status, body) = post(addr, "text/csv", csv).await;
    assert_eq!(status, 200, "{body}");
    let counts: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (
            &counts["inserted"],
            &counts["updated"],
            &counts["unchanged"]
        ),
        (&1.into(), &1.into(), &1.into()),
        "{body}"
    );
    assert_eq!(count(&db, "products").await, 3);

    // A row the table refuses: 422 naming it, and nothing of that upload is written.
    let bad = "sku,name,price_cents,stock\nC-1,Rug,100,1\nC-2,Vase,-5,2\n";
    let (status, body) = post(addr, "text/csv", bad).await;
    assert_eq!(status, 422, "{body}");
    assert!(body.contains("C-2"), "{body}");
    assert_eq!(count(&db, "products").await, 3);
    let (status, _) = post(addr, "application/json", "[{\"sku\": 1}]").await;
    assert_eq!(status, 400);
    server.abort();
}
