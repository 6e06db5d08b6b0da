//! The async builders of the staged operations: [`Upsert`], [`UpsertReturning`] and
//! [`CopyInReturning`]. What they run is `ops::upsert`.

use crate::bulk::Bulk;
use crate::error::Result;
use crate::ops::upsert::{self, options::UpsertCounts, options::UpsertOptions};
use crate::row::{CopyRow, FromCopyRow};
use crate::trace::{self, Op, OpKind};
use std::fmt;
use std::future::{Future, IntoFuture};
use std::marker::PhantomData;
use std::pin::Pin;

type BoxFuture<'c, O> = Pin<Box<dyn Future<Output = O> + Send + 'c>>;

impl<'c> Bulk<'c> {
    /// Inserts `rows`, or updates the rows with the same key, at COPY speed: the rows are
    /// copied into a temporary staging table, then merged with one
    /// `INSERT .. SELECT .. ON CONFLICT (key) DO UPDATE`. Await it for the [`UpsertCounts`].
    ///
    /// - The conflict target is the `#[copy(key)]` fields, or
    ///   [`conflict_columns`](Upsert::conflict_columns) /
    ///   [`conflict_constraint`](Upsert::conflict_constraint). Existing rows get every copied
    ///   non-key column, or [`update_columns`](Upsert::update_columns), or nothing
    ///   ([`do_nothing`](Upsert::do_nothing)).
    /// - A row equal to the existing one is not rewritten (no dead tuple, no WAL) and counts
    ///   as unchanged.
    /// - A batch that says it holds fewer than 2,000 rows (a slice, a `Vec`, any iterator
    ///   whose `size_hint` has an upper bound) is not staged: its rows are bound to the merge
    ///   statement as one array per column (`unnest($1, ..)`), sent with the transaction's
    ///   `BEGIN` and `COMMIT` in one round trip. The result, counts and errors are the staging
    ///   path's; batches it does not suit go through the staging table — a key repeated in
    ///   the batch, a column of an enum, domain, composite or array type, a Citus table — and
    ///   so does a batch whose merge the server refuses for a value, to name the failing row.
    /// - On PostgreSQL 15 and later a batch of 2,000 rows or more into a plain table at most
    ///   about twice its size is merged with `MERGE` instead, with the same result and counts,
    ///   faster (no speculative insertion of new rows, no lock on identical rows). If
    ///   it fails — a key inserted by another session meanwhile, a deadlock (it does not take
    ///   rows in key order) — it is undone and the rows are merged with `ON CONFLICT` after
    ///   all.
    /// - **Duplicate keys in one batch: the last occurrence in input order wins**; the others
    ///   are dropped before the merge and counted in [`UpsertCounts::duplicates`]. Rows with a
    ///   NULL in the key follow the unique index, as a plain `INSERT` would: all kept (NULLs
    ///   are distinct), or one key under `NULLS NOT DISTINCT`. A NULL in a `NOT NULL` key fails
    ///   the call with an error naming the first such input row.
    /// - A `GENERATED ALWAYS AS IDENTITY` column among the struct's columns needs
    ///   [`overriding_system_value`](Upsert::overriding_system_value).
    /// - On a `Client` the merge is one statement inside a short transaction of its own: all or
    ///   nothing. If a transaction block is already open on that client (a `BEGIN` sent as SQL,
    ///   which tokio-postgres does not track), the call refuses with
    ///   [`ErrorKind::Usage`](crate::ErrorKind::Usage) instead of committing it. On a `Transaction` it runs inside the caller's transaction (a savepoint), and
    ///   a rollback undoes it; a failed call rolls back to the savepoint, so the caller's
    ///   transaction stays usable.
    /// - The staging table (only the struct's columns, typed like the target's; generated,
    ///   identity and default columns the struct does not carry are left to the target) is gone
    ///   when the call returns, on success or error, and when the future is dropped (the scope
    ///   is rolled back).
    ///
    /// Do not run other statements on the same connection while the call runs: they would land
    /// inside its scope. (Through PgBouncer in transaction pooling mode, call it on a
    /// `Transaction`: the describe step prepares a named statement.)
    ///
    /// ```no_run
    /// # extern crate bulk_core as pgbulk;
    /// # use bulk_derive::CopyRow;
    /// use pgbulk::BulkExt;
    ///
    /// #[derive(CopyRow)]
    /// #[copy(table = "users")]
    /// struct User { #[copy(key)] id: i64, email: String, name: String }
    ///
    /// # async fn f(client: &tokio_postgres::Client, users: Vec<User>) -> pgbulk::Result<()> {
    /// // INSERT .. ON CONFLICT (id) DO UPDATE SET email, name
    /// let counts = client.bulk().upsert_via_staging(&users).await?;
    /// println!("{} inserted, {} updated, {} unchanged", counts.inserted, counts.updated, counts.unchanged);
    /// # Ok(()) }
    /// ```
    pub fn upsert_via_staging<T, I>(&self, rows: I) -> Upsert<'c, T, I>
    where
        T: CopyRow,
        I: IntoIterator<Item = T>,
    {
        Upsert {
            bulk: self.clone(),
            rows,
            options: UpsertOptions::default(),
            _row: PhantomData,
        }
    }

    /// [`upsert_via_staging`](Bulk::upsert_via_staging), handing back one `R` per inserted or
    /// updated row (unchanged rows are not returned) instead of counts. `R`'s fields name
    /// columns of the target (e.g. a generated `id`), and a field `inserted: bool` that is not
    /// a column reads whether the row was inserted (exact on partitioned tables and under
    /// column-level privileges too: it does not read `xmax`, except on a Citus table, whose
    /// shards do not see the session's counter). The rows come back in binary
    /// through `COPY (INSERT .. RETURNING ..) TO STDOUT`; in input order with
    /// [`in_input_order`](UpsertReturning::in_input_order). A batch small enough for
    /// [`upsert_via_staging`](Bulk::upsert_via_staging) to bind is bound here too: the same
    /// statement over the bound arrays, its rows read by the same decoder, committed once they
    /// were all read into `R`.
    ///
    /// The options of [`Upsert`] apply (see the methods of [`UpsertReturning`]).
    ///
    /// ```no_run
    /// # extern crate bulk_core as pgbulk;
    /// # use bulk_derive::CopyRow;
    /// use pgbulk::BulkExt;
    ///
    /// #[derive(CopyRow)]
    /// #[copy(table = "users")]
    /// struct User { #[copy(key)] id: i64, email: String, name: String }
    ///
    /// #[derive(CopyRow)]
    /// struct Changed { id: i64, inserted: bool } // `inserted` is not a column
    ///
    /// # async fn f(client: &tokio_postgres::Client, users: Vec<User>) -> pgbulk::Result<()> {
    /// let changed: Vec<Changed> = client.bulk().upsert_via_staging_returning(&users).await?;
    /// let new = changed.iter().filter(|c| c.inserted).count();
    /// # Ok(()) }
    /// ```
    pub fn upsert_via_staging_returning<R, T, I>(&self, rows: I) -> UpsertReturning<'c, T, I, R>
    where
        R: FromCopyRow,
        T: CopyRow,
        I: IntoIterator<Item = T>,
    {
        self.upsert_via_staging(rows).returning::<R>()
    }

    /// Inserts `rows` (through a staging table) and hands back one `R` per row, e.g. the ids
    /// the table generated: `COPY (INSERT INTO t SELECT .. FROM stage RETURNING ..) TO STDOUT`.
    /// `R` is read like [`upsert_via_staging_returning`](Bulk::upsert_via_staging_returning)'s.
    /// All or nothing; in input order with [`in_input_order`](CopyInReturning::in_input_order)
    /// (rows are then inserted in input order, so serial and identity values follow it too).
    ///
    /// A batch that says it holds fewer than 1,000 rows (built-in column types other than
    /// arrays, not a Citus table) skips the staging table: one
    /// `INSERT .. SELECT FROM unnest($1, ..) RETURNING ..` with each column bound as an array,
    /// in a transaction (a savepoint inside the caller's) committed once every returned row was
    /// read into `R`. A batch the server refuses for a value is staged after all, so the error
    /// names its row, field and column.
    ///
    /// ```no_run
    /// # extern crate bulk_core as pgbulk;
    /// # use bulk_derive::CopyRow;
    /// use pgbulk::BulkExt;
    ///
    /// #[derive(CopyRow)]
    /// #[copy(table = "events")]
    /// struct NewEvent { kind: String } // `events.id` is a `bigserial`
    ///
    /// #[derive(CopyRow)]
    /// struct Id { id: i64 }
    ///
    /// # async fn f(client: &tokio_postgres::Client, events: Vec<NewEvent>) -> pgbulk::Result<()> {
    /// let ids: Vec<Id> = client.bulk().copy_in_returning(&events).await?;
    /// assert_eq!(ids.len(), events.len());
    /// # Ok(()) }
    /// ```
    pub fn copy_in_returning<R, T, I>(&self, rows: I) -> CopyInReturning<'c, T, I, R>
    where
        R: FromCopyRow,
        T: CopyRow,
        I: IntoIterator<Item = T>,
    {
        CopyInReturning {
            bulk: self.clone(),
            rows,
            input_order: false,
            _row: PhantomData,
        }
    }
}

/// An [`upsert_via_staging`](Bulk::upsert_via_staging) call being set up; `.await` it.
#[must_use = "an upsert does nothing until it is awaited"]
pub struct Upsert<'c, T, I> {
    bulk: Bulk<'c>,
    rows: I,
    options: UpsertOptions,
    _row: PhantomData<fn() -> T>,
}

impl<T, I> fmt::Debug for Upsert<'_, T, I> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Upsert")
            .field("bulk", &self.bulk)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// The doc example of an upsert option setter: `$option` on the builder from `$call`, awaited
/// into `$out`; `$decl` declares the returned row type, if any; `$ext`, `$param` and `$recv`
/// are the client's extension trait, the example function's client parameter, and the client.
macro_rules! setter_example {
    (
        $call:literal, $out:literal, $decl:literal, $ext:literal, $param:literal, $recv:literal,
        $comment:literal, $option:literal
    ) => {
        concat!(
            " ```no_run\n",
            " # extern crate bulk_core as pgbulk;\n",
            " # use bulk_derive::CopyRow;\n",
            " use pgbulk::",
            $ext,
            ";\n",
            "\n",
            " #[derive(CopyRow)]\n",
            " #[copy(table = \"users\")]\n",
            " struct User { #[copy(key)] id: i64, email: String, name: String }\n",
            $decl,
            "\n",
            " # async fn f(",
            $param,
            ", users: Vec<User>) -> pgbulk::Result<()> {\n",
            " // ",
            $comment,
            "\n",
            " let ",
            $out,
            " = ",
            $recv,
            "\n",
            "     .bulk()\n",
            "     .",
            $call,
            "\n",
            "     .",
            $option,
            "\n",
            "     .await?;\n",
            " # Ok(()) }\n",
            " ```"
        )
    };
}

/// The option setters of an upsert builder, forwarding to the [`UpsertOptions`] at
/// `self.<path>`. `$call`, `$out` and `$decl` are for the examples (see `setter_example`), which
/// are on a tokio-postgres client unless `$ext`, `$param` and `$recv` say otherwise.
macro_rules! option_setters {
    ($($path:ident).+, $call:literal, $out:literal, $decl:literal) => {
        option_setters!(
            $($path).+,
            $call,
            $out,
            $decl,
            "BulkExt",
            "client: &tokio_postgres::Client",
            "client"
        );
    };
    (
        $($path:ident).+, $call:literal, $out:literal, $decl:literal, $ext:literal,
        $param:literal, $recv:literal
    ) => {
        /// See [`UpsertOptions::conflict_columns`].
        ///
        #[doc = setter_example!(
            $call,
            $out,
            $decl,
            $ext,
            $param,
            $recv,
            "Match users by email (a unique index on exactly \"email\" must exist), not by id.",
            "conflict_columns([\"email\"])"
        )]
        pub fn conflict_columns<S: Into<String>>(
            mut self,
            columns: impl IntoIterator<Item = S>,
        ) -> Self {
            self.$($path).+ = self.$($path).+.conflict_columns(columns);
            self
        }

        /// See [`UpsertOptions::conflict_constraint`].
        ///
        #[doc = setter_example!(
            $call,
            $out,
            $decl,
            $ext,
            $param,
            $recv,
            "ON CONFLICT ON CONSTRAINT users_email_key (a unique constraint on \"email\").",
            "conflict_constraint(\"users_email_key\")"
        )]
        pub fn conflict_constraint(mut self, name: impl Into<String>) -> Self {
            self.$($path).+ = self.$($path).+.conflict_constraint(name);
            self
        }

        /// See [`UpsertOptions::update_columns`].
        ///
        #[doc = setter_example!(
            $call,
            $out,
            $decl,
            $ext,
            $param,
            $recv,
            "Existing users get the new name; their email stays as it is.",
            "update_columns([\"name\"])"
        )]
        pub fn update_columns<S: Into<String>>(
            mut self,
            columns: impl IntoIterator<Item = S>,
        ) -> Self {
            self.$($path).+ = self.$($path).+.update_columns(columns);
            self
        }

        /// See [`UpsertOptions::do_nothing`].
        ///
        #[doc = setter_example!(
            $call,
            $out,
            $decl,
            $ext,
            $param,
            $recv,
            "Insert the new users; leave existing ones untouched (counted as unchanged).",
            "do_nothing()"
        )]
        pub fn do_nothing(mut self) -> Self {
            self.$($path).+ = self.$($path).+.do_nothing();
            self
        }

        /// See [`UpsertOptions::overriding_system_value`].
        ///
        #[doc = setter_example!(
            $call,
            $out,
            $decl,
            $ext,
            $param,
            $recv,
            "users.id is GENERATED ALWAYS AS IDENTITY: write the struct's ids into it anyway.",
            "overriding_system_value()"
        )]
        pub fn overriding_system_value(mut self) -> Self {
            self.$($path).+ = self.$($path).+.overriding_system_value();
            self
        }
    };
}
// The sqlx handle's builders have the same setters.
#[cfg(feature = "sqlx")]
pub(crate) use {option_setters, setter_example};

impl<'c, T, I> Upsert<'c, T, I> {
    option_setters!(options, "upsert_via_staging(&users)", "counts", "");

    /// Replaces all options at once, e.g. with an [`UpsertOptions`] kept for many calls.
    ///
    /// ```no_run
    /// # extern crate bulk_core as pgbulk;
    /// # use bulk_derive::CopyRow;
    /// use pgbulk::{BulkExt, UpsertOptions};
    ///
    /// #[derive(CopyRow)]
    /// #[copy(table = "users")]
    /// struct User { #[copy(key)] id: i64, email: String, name: String }
    ///
    /// # async fn f(client: &tokio_postgres::Client, batches: Vec<Vec<User>>) -> pgbulk::Result<()> {
    /// let by_email = UpsertOptions::new().conflict_columns(["email"]).update_columns(["name"]);
    /// for batch in &batches {
    ///     client.bulk().upsert_via_staging(batch).options(by_email.clone()).await?;
    /// }
    /// # Ok(()) }
    /// ```
    pub fn options(mut self, options: UpsertOptions) -> Self {
        self.options = options;
        self
    }

    /// Hands back one `R` per inserted or updated row instead of counts; see
    /// [`Bulk::upsert_via_staging_returning`].
    ///
    /// ```no_run
    /// # extern crate bulk_core as pgbulk;
    /// # use bulk_derive::CopyRow;
    /// use pgbulk::BulkExt;
    ///
    /// #[derive(CopyRow)]
    /// #[copy(table = "users")]
    /// struct User { #[copy(key)] id: i64, email: String, name: String }
    ///
    /// #[derive(CopyRow)]
    /// struct Id { id: i64 }
    ///
    /// # async fn f(client: &tokio_postgres::Client, users: Vec<User>) -> pgbulk::Result<()> {
    /// // With DO NOTHING, only the inserted users come back.
    /// let new: Vec<Id> = client.bulk().upsert_via_staging(&users).do_nothing().returning().await?;
    /// # Ok(()) }
    /// ```
    pub fn returning<R: FromCopyRow>(self) -> UpsertReturning<'c, T, I, R> {
        UpsertReturning {
            upsert: self,
            input_order: false,
            _row: PhantomData,
        }
    }
}

impl<'c, T, I> IntoFuture for Upsert<'c, T, I>
where
    T: CopyRow + Send + 'c,
    I: IntoIterator<Item = T> + Send + 'c,
    I::IntoIter: Send,
{
    type Output = Result<UpsertCounts>;
    type IntoFuture = BoxFuture<'c, Result<UpsertCounts>>;

    fn into_future(self) -> Self::IntoFuture {
        let op = Op::start(OpKind::Upsert, self.bulk.table_for::<T>());
        let Bulk {
            mut driver,
            options,
        } = self.bulk;
        Box::pin(trace::traced_rows(
            op,
            async move { upsert::counts(&mut driver, &options, &self.options, self.rows).await },
            UpsertCounts::total,
        ))
    }
}

/// An [`upsert_via_staging_returning`](Bulk::upsert_via_staging_returning) call being set up;
/// `.await` it for the rows.
#[must_use = "an upsert does nothing until it is awaited"]
pub struct UpsertReturning<'c, T, I, R> {
    upsert: Upsert<'c, T, I>,
    input_order: bool,
    _row: PhantomData<fn() -> R>,
}

impl<T, I, R> fmt::Debug for UpsertReturning<'_, T, I, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UpsertReturning")
            .field("upsert", &self.upsert)
            .field("input_order", &self.input_order)
            .finish()
    }
}

impl<T, I, R> UpsertReturning<'_, T, I, R> {
    /// Returns the rows in the input order of the rows that won (the last of each key), rather
    /// than in key order. Rows are then also locked in that order, which makes deadlocks with
    /// concurrent upserts of overlapping keys possible; key order (the default) avoids them.
    ///
    /// The order is proven, not assumed: when the conflict key is a primary key or unique
    /// constraint of `NOT NULL` columns, each returned row is matched by it to its staged input
    /// row and the rows are sorted by input position. Without such a key, on one server the
    /// rows are inserted and returned in input order by the one executor; on a Citus table
    /// (where every shard returns its own rows) the call fails with
    /// [`ErrorKind::Usage`](crate::ErrorKind::Usage) before anything is sent.
    ///
    /// ```no_run
    /// # extern crate bulk_core as pgbulk;
    /// # use bulk_derive::CopyRow;
    /// use pgbulk::BulkExt;
    ///
    /// #[derive(CopyRow)]
    /// #[copy(table = "users")]
    /// struct User { #[copy(key)] id: i64, email: String, name: String }
    ///
    /// #[derive(CopyRow)]
    /// struct Changed { id: i64, inserted: bool }
    ///
    /// # async fn f(client: &tokio_postgres::Client, users: Vec<User>) -> pgbulk::Result<()> {
    /// let changed: Vec<Changed> =
    ///     client.bulk().upsert_via_staging_returning(&users).in_input_order().await?;
    /// # Ok(()) }
    /// ```
    pub fn in_input_order(mut self) -> Self {
        self.input_order = true;
        self
    }

    option_setters!(
        upsert.options,
        "upsert_via_staging_returning(&users)",
        "changed: Vec<Changed>",
        "\n #[derive(CopyRow)]\n struct Changed { id: i64, inserted: bool }\n"
    );
}

impl<'c, T, I, R> IntoFuture for UpsertReturning<'c, T, I, R>
where
    T: CopyRow + Send + 'c,
    I: IntoIterator<Item = T> + Send + 'c,
    I::IntoIter: Send,
    R: FromCopyRow + Send + 'c,
{
    type Output = Result<Vec<R>>;
    type IntoFuture = BoxFuture<'c, Result<Vec<R>>>;

    fn into_future(self) -> Self::IntoFuture {
        let op = Op::start(OpKind::Upsert, self.upsert.bulk.table_for::<T>());
        let Bulk {
            mut driver,
            options,
        } = self.upsert.bulk;
        let (upsert, rows, input_order) = (self.upsert.options, self.upsert.rows, self.input_order);
        Box::pin(trace::traced_rows(
            op,
            async move { upsert::returning(&mut driver, &options, &upsert, input_order, rows).await },
            |rows: &Vec<R>| rows.len() as u64,
        ))
    }
}

/// A [`copy_in_returning`](Bulk::copy_in_returning) call being set up; `.await` it for the
/// rows.
#[must_use = "copy_in_returning does nothing until it is awaited"]
pub struct CopyInReturning<'c, T, I, R> {
    bulk: Bulk<'c>,
    rows: I,
    input_order: bool,
    _row: PhantomData<fn() -> (T, R)>,
}

impl<T, I, R> fmt::Debug for CopyInReturning<'_, T, I, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CopyInReturning")
            .field("bulk", &self.bulk)
            .field("input_order", &self.input_order)
            .finish_non_exhaustive()
    }
}

impl<T, I, R> CopyInReturning<'_, T, I, R> {
    /// Inserts the rows in input order and returns them in that order: the `n`-th returned
    /// row belongs to the `n`-th input row.
    ///
    /// The order is proven, not assumed: when the table has a primary key or unique constraint
    /// whose columns are all `NOT NULL` and copied by `T`, each returned row is matched by it
    /// to its staged input row and the rows are sorted by input position. Without one, on one
    /// server the rows are inserted and returned in input order by the one executor; on a
    /// Citus table (where every shard returns its own rows) the call fails with
    /// [`ErrorKind::Usage`](crate::ErrorKind::Usage) before anything is sent.
    ///
    /// ```no_run
    /// # extern crate bulk_core as pgbulk;
    /// # use bulk_derive::CopyRow;
    /// use pgbulk::BulkExt;
    ///
    /// #[derive(CopyRow)]
    /// #[copy(table = "events")]
    /// struct NewEvent { kind: String }
    ///
    /// #[derive(CopyRow)]
    /// struct Id { id: i64 }
    ///
    /// # async fn f(client: &tokio_postgres::Client, events: Vec<NewEvent>) -> pgbulk::Result<()> {
    /// let ids: Vec<Id> = client.bulk().copy_in_returning(&events).in_input_order().await?;
    /// // ids[i] is the id generated for events[i].
    /// # Ok(()) }
    /// ```
    pub fn in_input_order(mut self) -> Self {
        self.input_order = true;
        self
    }
}

impl<'c, T, I, R> IntoFuture for CopyInReturning<'c, T, I, R>
where
    T: CopyRow + Send + 'c,
    I: IntoIterator<Item = T> + Send + 'c,
    I::IntoIter: Send,
    R: FromCopyRow + Send + 'c,
{
    type Output = Result<Vec<R>>;
    type IntoFuture = BoxFuture<'c, Result<Vec<R>>>;

    fn into_future(self) -> Self::IntoFuture {
        let op = Op::start(OpKind::CopyInReturning, self.bulk.table_for::<T>());
        let Bulk {
            mut driver,
            options,
        } = self.bulk;
        let (rows, input_order) = (self.rows, self.input_order);
        Box::pin(trace::traced_rows(
            op,
            async move { upsert::insert_returning(&mut driver, &options, input_order, rows).await },
            |rows: &Vec<R>| rows.len() as u64,
        ))
    }
}
