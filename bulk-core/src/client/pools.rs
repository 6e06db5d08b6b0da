//! [`BulkExt`] for pooled clients: deadpool-postgres (feature `deadpool`) and bb8-postgres
//! (feature `bb8`).
//!
//! `pooled.bulk()` already works without these features, through auto-deref to the
//! `tokio_postgres::Client` or `Transaction` inside. The impls here make the pooled types
//! themselves implement [`BulkExt`], so they can be passed to code generic over
//! `impl BulkExt`.

use crate::bulk::{Bulk, BulkExt};

#[cfg(feature = "deadpool")]
impl BulkExt for deadpool_postgres::ClientWrapper {
    fn bulk(&self) -> Bulk<'_> {
        let client: &tokio_postgres::Client = self;
        client.bulk()
    }
}

#[cfg(feature = "deadpool")]
impl BulkExt for deadpool_postgres::Object {
    fn bulk(&self) -> Bulk<'_> {
        let client: &tokio_postgres::Client = self;
        client.bulk()
    }
}

#[cfg(feature = "deadpool")]
impl BulkExt for deadpool_postgres::Transaction<'_> {
    fn bulk(&self) -> Bulk<'_> {
        let tx: &tokio_postgres::Transaction<'_> = self;
        tx.bulk()
    }
}

#[cfg(feature = "bb8")]
impl<M> BulkExt for bb8::PooledConnection<'_, M>
where
    M: bb8::ManageConnection<Connection = tokio_postgres::Client>,
{
    fn bulk(&self) -> Bulk<'_> {
        let client: &tokio_postgres::Client = self;
        client.bulk()
    }
}
