//! What an upsert is asked to do ([`UpsertOptions`]) and what it did ([`UpsertCounts`]).

use std::fmt;

/// What an [`upsert_via_staging`](crate::Bulk::upsert_via_staging) did, counted over the distinct keys
/// of the batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct UpsertCounts {
    /// Rows whose key was not in the table: inserted.
    pub inserted: u64,
    /// Rows whose key was in the table with different values: rewritten.
    pub updated: u64,
    /// Rows whose key was in the table and whose values were already equal (not rewritten: no
    /// dead tuple, no WAL), or, with `DO NOTHING`, every row whose key was in the table.
    pub unchanged: u64,
    /// Input rows dropped because a later row of the same batch had the same key.
    pub duplicates: u64,
}

impl UpsertCounts {
    /// Rows passed in: `inserted + updated + unchanged + duplicates`.
    ///
    /// ```no_run
    /// # extern crate bulk_core as pgbulk;
    /// # use bulk_derive::CopyRow;
    /// # use pgbulk::BulkExt;
    /// # #[derive(CopyRow)] #[copy(table = "users")] struct User { #[copy(key)] id: i64, name: String }
    /// # async fn f(client: &tokio_postgres::Client, users: Vec<User>) -> pgbulk::Result<()> {
    /// let counts = client.bulk().upsert_via_staging(&users).await?;
    /// assert_eq!(counts.total(), users.len() as u64);
    /// # Ok(()) }
    /// ```
    pub fn total(&self) -> u64 {
        self.inserted + self.updated + self.unchanged + self.duplicates
    }
}

impl fmt::Display for UpsertCounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} inserted, {} updated, {} unchanged",
            self.inserted, self.updated, self.unchanged
        )?;
        if self.duplicates > 0 {
            write!(f, ", {} in-batch duplicates dropped", self.duplicates)?;
        }
        Ok(())
    }
}

/// The conflict target.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) enum Conflict {
    /// The `#[copy(key)]` fields.
    #[default]
    Keys,
    /// These columns (a unique index or constraint over exactly them must exist).
    Columns(Vec<String>),
    /// `ON CONFLICT ON CONSTRAINT name`.
    Constraint(String),
}

/// What happens to rows whose key exists.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) enum Action {
    /// `DO UPDATE SET` every copied non-key column.
    #[default]
    UpdateAll,
    /// `DO UPDATE SET` these columns.
    Update(Vec<String>),
    /// `DO NOTHING`.
    Nothing,
}

/// Options of an upsert: the conflict target and what to do on conflict.
///
/// The defaults: the `#[copy(key)]` fields are the conflict target, and every other copied
/// column is updated. The async builder [`Upsert`](crate::Upsert) has the same methods; the blocking API
/// (`sync` feature) takes this struct.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UpsertOptions {
    pub(crate) conflict: Conflict,
    pub(crate) action: Action,
    pub(crate) overriding_system_value: bool,
}

impl UpsertOptions {
    /// The defaults: conflict on the `#[copy(key)]` fields, update every other column.
    ///
    /// ```
    /// # extern crate bulk_core as pgbulk;
    /// use pgbulk::UpsertOptions;
    ///
    /// assert_eq!(UpsertOptions::new(), UpsertOptions::default());
    /// ```
    pub fn new() -> Self {
        UpsertOptions::default()
    }

    /// Conflict on these columns instead of the `#[copy(key)]` fields: `ON CONFLICT (a, b)`.
    /// A unique index or constraint over exactly these columns must exist, and the struct must
    /// carry them (they are also the key for in-batch duplicates).
    ///
    /// ```
    /// # extern crate bulk_core as pgbulk;
    /// use pgbulk::UpsertOptions;
    ///
    /// // ON CONFLICT ("tenant_id", "email")
    /// let options = UpsertOptions::new().conflict_columns(["tenant_id", "email"]);
    /// ```
    #[must_use]
    pub fn conflict_columns<S: Into<String>>(
        mut self,
        columns: impl IntoIterator<Item = S>,
    ) -> Self {
        self.conflict = Conflict::Columns(columns.into_iter().map(Into::into).collect());
        self
    }

    /// Conflict on a named unique or primary key constraint: `ON CONFLICT ON CONSTRAINT name`.
    /// Its columns (looked up in `pg_constraint`) are the key for in-batch duplicates and must
    /// be carried by the struct.
    ///
    /// ```
    /// # extern crate bulk_core as pgbulk;
    /// use pgbulk::UpsertOptions;
    ///
    /// let options = UpsertOptions::new().conflict_constraint("users_email_key");
    /// ```
    #[must_use]
    pub fn conflict_constraint(mut self, name: impl Into<String>) -> Self {
        self.conflict = Conflict::Constraint(name.into());
        self
    }

    /// Update only these columns of an existing row (default: every copied non-key column).
    /// Rows whose values in these columns are already equal are left alone.
    ///
    /// ```
    /// # extern crate bulk_core as pgbulk;
    /// use pgbulk::UpsertOptions;
    ///
    /// // Existing rows get the new name and updated_at; every other column stays.
    /// let options = UpsertOptions::new().update_columns(["name", "updated_at"]);
    /// ```
    #[must_use]
    pub fn update_columns<S: Into<String>>(mut self, columns: impl IntoIterator<Item = S>) -> Self {
        self.action = Action::Update(columns.into_iter().map(Into::into).collect());
        self
    }

    /// `ON CONFLICT .. DO NOTHING`: existing rows are never changed (counted as unchanged).
    ///
    /// ```
    /// # extern crate bulk_core as pgbulk;
    /// use pgbulk::UpsertOptions;
    ///
    /// // Insert the new keys only: ON CONFLICT (..) DO NOTHING.
    /// let options = UpsertOptions::new().do_nothing();
    /// ```
    #[must_use]
    pub fn do_nothing(mut self) -> Self {
        self.action = Action::Nothing;
        self
    }

    /// Writes the struct's values into `GENERATED ALWAYS AS IDENTITY` columns too
    /// (`INSERT .. OVERRIDING SYSTEM VALUE`), e.g. when such a column is the conflict key.
    /// Without it, PostgreSQL refuses any value for such a column, and the call fails with a
    /// [`Usage`](crate::ErrorKind::Usage) error that names this option.
    ///
    /// ```
    /// # extern crate bulk_core as pgbulk;
    /// use pgbulk::UpsertOptions;
    ///
    /// // The key `id` is GENERATED ALWAYS AS IDENTITY; write the struct's ids into it.
    /// let options = UpsertOptions::new().overriding_system_value();
    /// ```
    #[must_use]
    pub fn overriding_system_value(mut self) -> Self {
        self.overriding_system_value = true;
        self
    }

    /// The constraint name, when the conflict target is one (its columns must be looked up).
    pub(crate) fn constraint(&self) -> Option<&str> {
        match &self.conflict {
            Conflict::Constraint(name) => Some(name),
            _ => None,
        }
    }
}
