//! The upsert comparison: `upsert_via_staging` beside the statements users write for the same
//! job, at 500 / 5,000 / 50,000 rows (and 1,000,000 with `PGBULK_E2E_UPSERT_1M=1`).
//!
//! Table `bench_users` (bigint primary key + unique email). Each batch, in key order: 25% new
//! keys (`id % 4 == 0`), 25% changed (`id % 4 == 1`, a new name), 50% identical to the stored row.
//! Before each measurement the table holds exactly the stored 75%, vacuumed and analyzed, then a
//! `CHECKPOINT`; afterwards the table is checked (row count, changed rows). The peers'
//! statements are prepared before the timed section (once per connection, as a pool would), and
//! each peer runs in one transaction. The peers `DO UPDATE` every conflicting row, as their
//! usual forms do; pgbulk skips identical rows and counts.

use super::{common, measure, summarize, BoxError, Env, Result_, Sample};
use common::{Params, User};
use futures_util::future::try_join_all;
use pgbulk::BulkExt;
use std::collections::HashMap;
use std::fmt::Write as _;
use tokio_postgres::types::ToSql;

/// One way of writing the batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Contender {
    /// `upsert_via_staging`, awaited for its counts.
    Pgbulk,
    /// The merge statement of the previous version (`DISTINCT ON` dedupe, `MATERIALIZED` CTE,
    /// `RETURNING (xmax = 0)` counts) on the same staging table: the before of the change.
    Before,
    /// `copy_in` of the same rows into the empty table: the floor.
    CopyIn,
    Unnest,
    Values,
    PerRow,
    /// Temp table + `INSERT .. SELECT .. ON CONFLICT`, no dedupe, no counts (asyncpg's usual).
    TempTable,
    /// `upsert_via_staging_returning`: the ids of the rows inserted or changed, and which.
    PgbulkReturning,
    /// [`Contender::Unnest`] with `RETURNING id, (xmax = 0)`: every row's id (identical rows
    /// are rewritten and returned too).
    UnnestReturning,
}

/// What `upsert_via_staging_returning` hands back here.
#[derive(pgbulk::CopyRow, Debug)]
struct Changed {
    id: i64,
    inserted: bool,
}

pub const ALL: [Contender; 9] = [
    Contender::Pgbulk,
    Contender::CopyIn,
    Contender::Before,
    Contender::Unnest,
    Contender::Values,
    Contender::PerRow,
    Contender::TempTable,
    Contender::PgbulkReturning,
    Contender::UnnestReturning,
];

impl Contender {
    pub fn label(self) -> &'static str {
        match self {
            Contender::Pgbulk => "pgbulk `upsert_via_staging` (counts)",
            Contender::Before => "previous merge statement (xmax counts, `DISTINCT ON`)",
            Contender::CopyIn => "plain `copy_in` of the same rows, empty table",
            Contender::Unnest => "`INSERT .. SELECT FROM unnest($1::int8[], ..) ON CONFLICT`",
            Contender::Values => "multi-row `INSERT .. VALUES .. ON CONFLICT`",
            Contender::PerRow => "per-row `INSERT .. ON CONFLICT`, pipelined",
            Contender::TempTable => "temp table + `INSERT .. SELECT .. ON CONFLICT`",
            Contender::PgbulkReturning => {
                "pgbulk `upsert_via_staging_returning` (ids of the new and changed rows)"
            }
            Contender::UnnestReturning => {
                "`unnest(..) ON CONFLICT .. RETURNING id, (xmax = 0)` (every row's id)"
            }
        }
    }
}

/// The batch sizes measured: 1,000,000 too with `PGBULK_E2E_UPSERT_1M=1`.
pub fn sizes(quick: bool) -> Vec<i64> {
    let mut sizes = if quick {
        vec![500, 5_000]
    } else {
        vec![500, 5_000, 50_000]
    };
    if std::env::var_os("PGBULK_E2E_UPSERT_1M").is_some_and(|v| v == "1") {
        sizes.push(1_000_000);
    }
    sizes
}

const COLS: &str = "id, name, email, created_at";
const ON_CONFLICT: &str = "ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, \
                           email = EXCLUDED.email, created_at = EXCLUDED.created_at";

fn values_sql(n: usize) -> String {
    let mut s = format!("INSERT INTO bench_users ({COLS}) VALUES ");
    for r in 0..n {
        if r > 0 {
            s.push(',');
        }
        let b = r * 4;
        let _ = write!(s, "(${},${},${},${})", b + 1, b + 2, b + 3, b + 4);
    }
    s.push(' ');
    s.push_str(ON_CONFLICT);
    s
}

/// Rows per multi-row `VALUES` statement: as many as the 65,535 parameters allow.
const VALUES_ROWS: usize = 65_535 / 4;

/// Statements the peers prepare once per connection.
struct Prepared {
    unnest: tokio_postgres::Statement,
    unnest_returning: tokio_postgres::Statement,
    per_row: tokio_postgres::Statement,
    values: HashMap<usize, tokio_postgres::Statement>,
}

/// The previous version's merge, verbatim, on a staging table `s` with an ordinal column.
const BEFORE_MERGE: &str = "WITH src AS MATERIALIZED (SELECT id, name, email, created_at FROM \
     (SELECT DISTINCT ON (id) id, name, email, created_at, ord FROM s ORDER BY id, ord DESC) AS \
     \"pgbulk_source\" ORDER BY id), m AS (INSERT INTO bench_users AS \"pgbulk_target\" \
     (id, name, email, created_at) SELECT * FROM src ON CONFLICT (id) DO UPDATE SET \
     name = EXCLUDED.name, email = EXCLUDED.email, created_at = EXCLUDED.created_at WHERE \
     ROW(\"pgbulk_target\".name, \"pgbulk_target\".email, \"pgbulk_target\".created_at) IS \
     DISTINCT FROM ROW(EXCLUDED.name, EXCLUDED.email, EXCLUDED.created_at) RETURNING \
     (xmax = 0) AS ins) SELECT (SELECT count(*) FROM src), count(*) FILTER (WHERE ins), \
     count(*) FILTER (WHERE NOT ins) FROM m";

async fn run_one(env: &Env, how: Contender, rows: &[User], p: &Prepared) -> Result<(), BoxError> {
    let client = &env.client;
    match how {
        Contender::Pgbulk => {
            let counts = client.bulk().upsert_via_staging(rows).await?;
            let n = rows.len() as u64;
            assert_eq!(
                (counts.inserted, counts.updated, counts.unchanged),
                (n / 4, n / 4, n / 2),
                "{counts:?}"
            );
        }
        Contender::CopyIn => {
            client.bulk().copy_in(rows).await?;
        }
        Contender::PgbulkReturning => {
            let back: Vec<Changed> = client
                .bulk()
                .upsert_via_staging_returning::<Changed, _, _>(rows)
                .await?;
            let n = rows.len();
            assert_eq!(back.len(), n / 4 + (n + 2) / 4, "inserted and changed rows");
            assert_eq!(back.iter().filter(|c| c.inserted).count(), n / 4);
        }
        Contender::UnnestReturning => {
            let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
            let names: Vec<&str> = rows.iter().map(|r| r.name.as_str()).collect();
            let emails: Vec<&str> = rows.iter().map(|r| r.email.as_str()).collect();
            let times: Vec<_> = rows.iter().map(|r| r.created_at).collect();
            let back = client
                .query(&p.unnest_returning, &[&ids, &names, &emails, &times])
                .await?;
            assert_eq!(back.len(), rows.len());
        }
        Contender::Before => {
            client
                .batch_execute(
                    "BEGIN; CREATE TEMP TABLE s ON COMMIT DROP AS SELECT id, name, email, \
                     created_at FROM bench_users WITH NO DATA; ALTER TABLE s ADD COLUMN ord \
                     int8 GENERATED ALWAYS AS IDENTITY",
                )
                .await?;
            client.bulk().table("s").copy_in(rows).await?;
            let out = client.simple_query(BEFORE_MERGE).await?;
            client.batch_execute("COMMIT").await?;
            assert!(out.len() >= 2, "the merge returned its counts");
        }
        Contender::TempTable => {
            client
                .batch_execute(
                    "BEGIN; CREATE TEMP TABLE t ON COMMIT DROP AS SELECT id, name, email, \
                     created_at FROM bench_users WITH NO DATA",
                )
                .await?;
            client.bulk().table("t").copy_in(rows).await?;
            client
                .batch_execute(&format!(
                    "INSERT INTO bench_users ({COLS}) SELECT {COLS} FROM t {ON_CONFLICT}; COMMIT"
                ))
                .await?;
        }
        Contender::Unnest => {
            let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
            let names: Vec<&str> = rows.iter().map(|r| r.name.as_str()).collect();
            let emails: Vec<&str> = rows.iter().map(|r| r.email.as_str()).collect();
            let times: Vec<_> = rows.iter().map(|r| r.created_at).collect();
            client
                .execute(&p.unnest, &[&ids, &names, &emails, &times])
                .await?;
        }
        Contender::Values => {
            client.batch_execute("BEGIN").await?;
            for chunk in rows.chunks(VALUES_ROWS) {
                let mut params: Vec<&(dyn ToSql + Sync)> = Vec::with_capacity(chunk.len() * 4);
                for row in chunk {
                    row.extend_params(&mut params);
                }
                client.execute(&p.values[&chunk.len()], &params).await?;
            }
            client.batch_execute("COMMIT").await?;
        }
        Contender::PerRow => {
            client.batch_execute("BEGIN").await?;
            for chunk in rows.chunks(2_000) {
                try_join_all(chunk.iter().map(|u| async move {
                    client
                        .execute(&p.per_row, &[&u.id, &u.name, &u.email, &u.created_at])
                        .await
                }))
                .await?;
            }
            client.batch_execute("COMMIT").await?;
        }
    }
    Ok(())
}

/// Measures every contender on a batch of `n` rows.
pub async fn bench(env: &Env, n: i64) -> Result<Vec<(Contender, Result_)>, BoxError> {
    let stored: Vec<User> = (0..n)
        .filter(|i| i % 4 != 0)
        .map(|i| common::user(i, 0))
        .collect();
    let rows: Vec<User> = (0..n)
        .map(|i| common::user(i, u32::from(i % 4 == 1)))
        .collect();
    let client = &env.client;
    let mut values = HashMap::new();
    for chunk in rows.chunks(VALUES_ROWS) {
        if let std::collections::hash_map::Entry::Vacant(slot) = values.entry(chunk.len()) {
            slot.insert(client.prepare(&values_sql(chunk.len())).await?);
        }
    }
    let p = Prepared {
        unnest: client
            .prepare(&format!(
                "INSERT INTO bench_users ({COLS}) SELECT * FROM unnest($1::int8[], $2::text[], \
                 $3::text[], $4::timestamptz[]) {ON_CONFLICT}"
            ))
            .await?,
        unnest_returning: client
            .prepare(&format!(
                "INSERT INTO bench_users ({COLS}) SELECT * FROM unnest($1::int8[], $2::text[], \
                 $3::text[], $4::timestamptz[]) {ON_CONFLICT} RETURNING id, (xmax = 0) AS inserted"
            ))
            .await?,
        per_row: client
            .prepare(&format!(
                "INSERT INTO bench_users ({COLS}) VALUES ($1, $2, $3, $4) {ON_CONFLICT}"
            ))
            .await?,
        values,
    };
    // Small batches are quick and noisy: more repetitions.
    let reps = if n <= 5_000 { env.reps * 3 } else { env.reps };
    let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); ALL.len()];
    for rep in 0..=reps {
        for k in 0..ALL.len() {
            let i = (k + rep) % ALL.len();
            let how = ALL[i];
            env.exec("TRUNCATE bench_users").await?;
            if how != Contender::CopyIn {
                client.bulk().copy_in(&stored).await?;
            }
            env.exec("VACUUM ANALYZE bench_users").await?;
            env.exec("CHECKPOINT").await?;
            let s = measure(false, || run_one(env, how, &rows, &p)).await?;
            let check = client
                .query_one(
                    "SELECT count(*), count(*) FILTER (WHERE name LIKE '% v1') FROM bench_users",
                    &[],
                )
                .await?;
            let (total, changed): (i64, i64) = (check.get(0), check.get(1));
            assert_eq!((total, changed), (n, (n + 2) / 4), "{}", how.label());
            if rep > 0 {
                samples[i].push(s);
            }
        }
    }
    eprintln!("done: upsert {n}");
    Ok(ALL
        .iter()
        .zip(&samples)
        .map(|(c, s)| (*c, summarize(c.label(), s)))
        .collect())
}

/// Every size of [`sizes`].
pub async fn bench_all(env: &Env) -> Result<Vec<(i64, Vec<(Contender, Result_)>)>, BoxError> {
    let mut out = Vec::new();
    for n in sizes(env.quick) {
        let results = bench(env, n).await?;
        // Each size's table as soon as it is measured: the 1M size takes long.
        let (mut table, mut targets) = (String::new(), String::new());
        report(&mut table, &mut targets, &[(n, results.clone())]);
        eprintln!("{targets}\n{table}");
        out.push((n, results));
    }
    Ok(out)
}

/// Wall of `how` over the plain `copy_in`'s.
pub fn vs_copy(results: &[(Contender, Result_)], how: Contender) -> f64 {
    let of = |c: Contender| results.iter().find(|(x, _)| *x == c).map(|(_, r)| r.wall);
    match (of(how), of(Contender::CopyIn)) {
        (Some(a), Some(b)) => a.as_secs_f64() / b.as_secs_f64(),
        _ => f64::NAN,
    }
}

/// Whether pgbulk is faster than every peer users write (not the floor, not the before).
pub fn fastest(results: &[(Contender, Result_)]) -> (bool, &'static str, f64) {
    let ours = results
        .iter()
        .find(|(c, _)| *c == Contender::Pgbulk)
        .map(|(_, r)| r.wall);
    let best_peer = results
        .iter()
        .filter(|(c, _)| {
            !matches!(
                c,
                Contender::Pgbulk
                    | Contender::CopyIn
                    | Contender::Before
                    | Contender::PgbulkReturning
                    | Contender::UnnestReturning
            )
        })
        .min_by_key(|(_, r)| r.wall);
    match (ours, best_peer) {
        (Some(o), Some((c, r))) => (
            o < r.wall,
            c.label(),
            o.as_secs_f64() / r.wall.as_secs_f64(),
        ),
        _ => (false, "", f64::NAN),
    }
}

/// The tables and the target lines of the upsert section.
pub fn report(out: &mut String, targets: &mut String, tables: &[(i64, Vec<(Contender, Result_)>)]) {
    for (n, results) in tables {
        let (ok, peer, r) = fastest(results);
        super::target(
            targets,
            &format!("upsert {n}: wall × fastest peer ({peer})"),
            r,
            "< 1.00",
            ok,
        );
        if *n >= 50_000 {
            let v = vs_copy(results, Contender::Pgbulk);
            super::target(
                targets,
                &format!("upsert {n}: wall × plain copy_in"),
                v,
                "≤ 1.60",
                v <= 1.6,
            );
        }
        let _ = writeln!(
            out,
            "### users, {n} rows: 25% new, 25% changed, 50% identical\n"
        );
        let _ = writeln!(
            out,
            "| contender | median wall | × plain copy_in | client CPU |\n|---|---:|---:|---:|"
        );
        for (c, r) in results {
            let _ = writeln!(
                out,
                "| {} | {} | {:.2}× | {} |",
                c.label(),
                super::secs(r.wall),
                vs_copy(results, *c),
                super::secs(r.cpu)
            );
        }
        out.push('\n');
    }
}
