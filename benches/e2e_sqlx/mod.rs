//! The sqlx rows of the end-to-end comparison: pgbulk on sqlx beside pgbulk on tokio-postgres
//! and sqlx's own best ways to write many rows — `INSERT .. SELECT FROM UNNEST($1::int8[], ..)`
//! and multi-row `VALUES` through `QueryBuilder::push_values` — on narrow, users and wide, over
//! the unix socket and over TCP (`127.0.0.1`, what production uses, where Nagle's algorithm
//! shows).
//!
//! ```text
//! cargo bench --bench e2e -- sqlx           # only this section, written into BENCHMARKS.md
//! cargo bench --bench e2e -- sqlx --quick   # a smoke run, printed
//! ```
//!
//! Also the row "sqlx `copy_in_raw` as is": pgbulk's bytes through sqlx's raw COPY on a socket
//! left as sqlx sets it up — the ~40 ms per COPY over TCP that pgbulk on sqlx does not pay.

use crate::common::{Narrow, User, Wide};
use crate::{measure, ratio, simple_table, summarize, target, BoxError, Result_, Sample};
use pgbulk::{BulkExt, Plan, SqlxBulkExt};
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{Connection as _, Postgres, QueryBuilder};
use std::fmt::Write as _;
use tokio_postgres::Client;

/// How a contender reaches the server.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Transport {
    Unix,
    Tcp,
}

impl Transport {
    fn label(self) -> &'static str {
        match self {
            Transport::Unix => "unix socket",
            Transport::Tcp => "TCP 127.0.0.1",
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Contender {
    PgbulkSqlx,
    PgbulkTokio,
    Unnest,
    PushValues,
    RawCopy,
}

impl Contender {
    fn label(self) -> &'static str {
        match self {
            Contender::PgbulkSqlx => "pgbulk `copy_in` on sqlx `PgConnection`",
            Contender::PgbulkTokio => "pgbulk `copy_in` on tokio-postgres",
            Contender::Unnest => "sqlx `INSERT .. SELECT FROM UNNEST($1::int8[], ..)`",
            Contender::PushValues => "sqlx `QueryBuilder::push_values` (multi-row `VALUES`)",
            Contender::RawCopy => "sqlx `copy_in_raw` as is (pgbulk's bytes, sqlx's socket)",
        }
    }
}

/// What sqlx's own contenders need of a shape.
pub(crate) trait SqlxShape: crate::Shape {
    /// `INSERT .. SELECT FROM UNNEST(..)` of `rows` (`None`: array columns, which UNNEST
    /// would flatten).
    fn sqlx_unnest(
        conn: &mut PgConnection,
        rows: &[Self],
    ) -> impl std::future::Future<Output = Result<(), BoxError>>;
    /// Binds one row's values, in column order.
    fn push(b: &mut sqlx::query_builder::Separated<'_, Postgres, &'static str>, row: &Self);
}

impl SqlxShape for Narrow {
    async fn sqlx_unnest(conn: &mut PgConnection, rows: &[Self]) -> Result<(), BoxError> {
        let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
        let values: Vec<f64> = rows.iter().map(|r| r.value).collect();
        let names: Vec<&str> = rows.iter().map(|r| r.name.as_str()).collect();
        sqlx::query(
            "INSERT INTO bench_narrow (id, value, name) \
             SELECT * FROM UNNEST($1::int8[], $2::float8[], $3::varchar[])",
        )
        .bind(ids)
        .bind(values)
        .bind(names)
        .execute(conn)
        .await?;
        Ok(())
    }

    fn push(b: &mut sqlx::query_builder::Separated<'_, Postgres, &'static str>, r: &Self) {
        b.push_bind(r.id)
            .push_bind(r.value)
            .push_bind(r.name.clone());
    }
}

impl SqlxShape for User {
    async fn sqlx_unnest(conn: &mut PgConnection, rows: &[Self]) -> Result<(), BoxError> {
        let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
        let names: Vec<&str> = rows.iter().map(|r| r.name.as_str()).collect();
        let emails: Vec<&str> = rows.iter().map(|r| r.email.as_str()).collect();
        let created: Vec<chrono::DateTime<chrono::Utc>> =
            rows.iter().map(|r| r.created_at).collect();
        sqlx::query(
            "INSERT INTO bench_users (id, name, email, created_at) \
             SELECT * FROM UNNEST($1::int8[], $2::text[], $3::text[], $4::timestamptz[])",
        )
        .bind(ids)
        .bind(names)
        .bind(emails)
        .bind(created)
        .execute(conn)
        .await?;
        Ok(())
    }

    fn push(b: &mut sqlx::query_builder::Separated<'_, Postgres, &'static str>, r: &Self) {
        b.push_bind(r.id)
            .push_bind(r.name.clone())
            .push_bind(r.email.clone())
            .push_bind(r.created_at);
    }
}

impl SqlxShape for Wide {
    async fn sqlx_unnest(_conn: &mut PgConnection, _rows: &[Self]) -> Result<(), BoxError> {
        Err("UNNEST flattens the text[] and int4[] columns: not applicable".into())
    }

    fn push(b: &mut sqlx::query_builder::Separated<'_, Postgres, &'static str>, r: &Self) {
        b.push_bind(r.id)
            .push_bind(r.uid)
            .push_bind(r.amount)
            .push_bind(r.tags.clone())
            .push_bind(r.scores.clone())
            .push_bind(r.payload.clone())
            .push_bind(r.created)
            .push_bind(r.day)
            .push_bind(r.flag)
            .push_bind(r.note.clone());
    }
}

/// The connections of one transport: pgbulk's sqlx and tokio-postgres ones, and a sqlx one
/// pgbulk never touches, so its socket stays as sqlx sets it up (Nagle on).
struct Conns {
    sqlx: PgConnection,
    sqlx_as_is: PgConnection,
    tokio: Client,
}

async fn connect(
    options: &PgConnectOptions,
    config: &tokio_postgres::Config,
) -> Result<Conns, BoxError> {
    let sqlx = PgConnection::connect_with(options).await?;
    let sqlx_as_is = PgConnection::connect_with(options).await?;
    let (tokio, conn) = config.connect(tokio_postgres::NoTls).await?;
    tokio::spawn(conn);
    Ok(Conns {
        sqlx,
        sqlx_as_is,
        tokio,
    })
}

/// One write of `batches` by `how` on `conns`.
async fn write<T: SqlxShape>(
    conns: &mut Conns,
    how: Contender,
    plan: &Plan<T>,
    batches: &[&[T]],
) -> Result<(), BoxError> {
    let cols = crate::column_list::<T>();
    for b in batches {
        match how {
            Contender::PgbulkSqlx => {
                conns.sqlx.bulk().copy_in_with_plan(plan, *b).await?;
            }
            Contender::PgbulkTokio => {
                conns.tokio.bulk().copy_in_with_plan(plan, *b).await?;
            }
            Contender::Unnest => T::sqlx_unnest(&mut conns.sqlx, b).await?,
            Contender::PushValues => {
                let per = 65_535 / pgbulk::columns_of::<T>().len();
                let statement = |chunk: &[T]| {
                    let mut q = QueryBuilder::<Postgres>::new(format!(
                        "INSERT INTO {} ({cols}) ",
                        pgbulk::table_of::<T>()
                    ));
                    q.push_values(chunk, |mut s, row| T::push(&mut s, row));
                    q
                };
                if b.len() <= per {
                    statement(b).build().execute(&mut conns.sqlx).await?;
                } else {
                    // More rows than one statement's 65,535 parameters: one transaction.
                    let mut tx = conns.sqlx.begin().await?;
                    for chunk in b.chunks(per) {
                        statement(chunk).build().execute(&mut *tx).await?;
                    }
                    tx.commit().await?;
                }
            }
            Contender::RawCopy => {
                let mut w = pgbulk::pgcopy::Writer::with_plan(Vec::new(), plan);
                w.write_all(b.iter())?;
                let bytes = w.finish()?;
                let mut copy = conns
                    .sqlx_as_is
                    .copy_in_raw(&format!(
                        "COPY {} ({cols}) FROM STDIN (FORMAT binary)",
                        pgbulk::table_of::<T>()
                    ))
                    .await?;
                copy.send(bytes).await?;
                copy.finish().await?;
            }
        }
    }
    Ok(())
}

/// Every contender on `rows` in batches of `batch` over `transport`, warm-up + reps, rotating.
async fn bench<T: SqlxShape>(
    env: &crate::Env,
    conns: &mut Conns,
    transport: Transport,
    shape: &str,
    rows: &[T],
    batch: usize,
) -> Result<Table, BoxError> {
    let plan = env.client.bulk().plan::<T>().await?;
    let batches: Vec<&[T]> = rows.chunks(batch).collect();
    let mut contenders = vec![
        Contender::PgbulkSqlx,
        Contender::PgbulkTokio,
        Contender::Unnest,
        Contender::PushValues,
        Contender::RawCopy,
    ];
    if T::sqlx_unnest(&mut conns.sqlx, &[]).await.is_err() {
        contenders.retain(|c| *c != Contender::Unnest);
    }
    let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); contenders.len()];
    for rep in 0..=env.reps {
        for k in 0..contenders.len() {
            let i = (k + rep) % contenders.len();
            let how = contenders[i];
            env.reset(pgbulk::table_of::<T>()).await?;
            let s = measure(false, || write(conns, how, &plan, &batches)).await?;
            let n: i64 = env
                .client
                .query_one(
                    &format!("SELECT count(*) FROM {}", pgbulk::table_of::<T>()),
                    &[],
                )
                .await?
                .get(0);
            assert_eq!(n as usize, rows.len(), "{how:?} wrote every row");
            if rep > 0 {
                samples[i].push(s);
            }
        }
    }
    let per_batch = batches.len() as u32;
    let results = contenders
        .iter()
        .zip(&samples)
        .map(|(c, s)| {
            let mut r = summarize(c.label(), s);
            // Per batch, so the small-batch tables read as latency per COPY / statement.
            r.wall /= per_batch;
            r.cpu /= per_batch;
            (*c, r)
        })
        .collect();
    let title = if batches.len() > 1 {
        format!(
            "{shape}, batches of {batch} ({} per repetition), {}: per batch",
            batches.len(),
            transport.label()
        )
    } else {
        format!("{shape}, {} rows, {}", rows.len(), transport.label())
    };
    eprintln!("done: sqlx {title}");
    Ok(Table {
        title,
        batch,
        results,
    })
}

struct Table {
    title: String,
    batch: usize,
    results: Vec<(Contender, Result_)>,
}

/// Runs the sqlx section; returns its markdown. `tcp` is the server over TCP (the testkit's
/// `127.0.0.1` listener, or `DATABASE_URL` when it names a TCP host).
pub(crate) async fn run(
    env: &crate::Env,
    unix: tokio_postgres::Config,
    tcp: Option<tokio_postgres::Config>,
) -> Result<String, BoxError> {
    let scale = if env.quick { 10 } else { 1 };
    let narrow = crate::common::narrows(200_000 / scale);
    let wide = crate::common::wides(50_000 / scale);
    let mut tables = Vec::new();
    let mut transports = vec![(Transport::Unix, unix)];
    transports.extend(tcp.map(|t| (Transport::Tcp, t)));
    for (transport, config) in &transports {
        let mut conns = connect(&pgbulk::testkit::sqlx_options(config), config).await?;
        tables.push(bench(env, &mut conns, *transport, "narrow", &narrow, narrow.len()).await?);
        tables.push(bench(env, &mut conns, *transport, "wide", &wide, wide.len()).await?);
        // 100 batches of 500 rows: with 20, the 500-row ratios moved by ±0.3 between runs.
        for (batch, count) in [(5, 100), (500, 100), (5_000, 4), (50_000, 1)] {
            let count = if env.quick { count.min(2) } else { count };
            let rows = crate::common::users(0..batch * count, 0);
            tables.push(bench(env, &mut conns, *transport, "users", &rows, batch as usize).await?);
        }
    }

    let mut out = String::new();
    let _ = writeln!(out, "## sqlx\n");
    let _ = writeln!(
        out,
        "Command: `cargo bench --bench e2e -- sqlx`. One sqlx `PgConnection` and one \
         tokio-postgres `Client` per transport; the plan is made once (`copy_in_with_plan` on \
         both clients), so each batch is one COPY (or one statement) and its commit. Median of \
         {} repetitions after one warm-up, contenders alternating, TRUNCATE and CHECKPOINT \
         before each.{}\n",
        env.reps,
        if transports.len() == 1 {
            " **No TCP server was reachable: TCP rows are missing.**"
        } else {
            ""
        }
    );
    let mut targets = String::new();
    let _ = writeln!(targets, "### Targets (sqlx)\n");
    let _ = writeln!(targets, "| target | measured | limit | |");
    let _ = writeln!(targets, "|---|---:|---:|---|");
    for t in &tables {
        let get = |c| t.results.iter().find(|(k, _)| *k == c).map(|(_, r)| r.wall);
        let (Some(sx), Some(tp)) = (get(Contender::PgbulkSqlx), get(Contender::PgbulkTokio)) else {
            continue;
        };
        let r = ratio(sx, tp);
        target(
            &mut targets,
            &format!("{}: pgbulk on sqlx × on tokio-postgres", t.title),
            r,
            "≤ 1.10",
            r <= 1.10,
        );
        if let (true, Some(un)) = (t.batch >= 500, get(Contender::Unnest)) {
            let r = ratio(sx, un);
            target(
                &mut targets,
                &format!("{}: pgbulk on sqlx × UNNEST", t.title),
                r,
                "< 1.00",
                r < 1.0,
            );
        }
    }
    out.push_str(&targets);
    out.push('\n');
    for t in &tables {
        let rows: Vec<(String, Result_)> = t
            .results
            .iter()
            .map(|(c, r)| (c.label().to_owned(), r.clone()))
            .collect();
        simple_table(&mut out, &t.title, t.batch, &rows);
    }
    Ok(out)
}
