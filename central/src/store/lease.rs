//! Pooled connections that go back to their pool only from an operation that finished with them.
//!
//! A store operation's future can be dropped at any of its awaits: an HTTP handler is dropped
//! when its client hangs up or the request times out, a watch stream is dropped in the middle of
//! its catch-up read. sqlx then hands the connection back to the pool as it is, and it may still
//! be inside a transaction: in sqlx 0.9.0 a future dropped while its `BEGIN` is in flight leaves
//! the session in the transaction with no `ROLLBACK` queued, and the pool's check on release
//! does not look at the transaction status (transact-rs/sqlx#4393; fixed by #4394, not yet
//! released). The next borrower then runs inside that transaction: after a read's
//! `BEGIN ... READ ONLY`, its writes fail with SQLSTATE 25006.
//!
//! Every store operation therefore takes its connection as a [`Lease`] and releases it once it
//! has ended its transaction; a lease dropped unreleased closes its connection, and the server
//! ends the session's transaction with it, whichever await the operation stopped at. A finished
//! operation pays nothing for this; a cancelled one costs the pool one reconnection.

use std::ops::{Deref, DerefMut};

use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyConnection, AnyPool};

/// A pooled connection held by one store operation.
pub(crate) struct Lease {
    /// The connection; closed rather than pooled again unless `released`.
    connection: PoolConnection<Any>,
    /// Whether the operation finished with the connection and left no transaction open.
    released: bool,
}

impl Lease {
    /// Takes a connection from `pool`.
    pub(crate) async fn acquire(pool: &AnyPool) -> Result<Self, sqlx::Error> {
        Ok(Self {
            connection: pool.acquire().await?,
            released: false,
        })
    }

    /// Gives the connection back to its pool. Call it only after the operation's transaction
    /// has committed or rolled back (or when it opened none) and its last statement has
    /// returned.
    pub(crate) fn release(mut self) {
        self.released = true;
    }
}

impl Deref for Lease {
    type Target = AnyConnection;

    fn deref(&self) -> &AnyConnection {
        &self.connection
    }
}

impl DerefMut for Lease {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        &mut self.connection
    }
}

/// Unreleased, the operation stopped part-way (its future was dropped, or it failed): the
/// session's state is unknown, so the connection is closed instead of reused.
impl Drop for Lease {
    fn drop(&mut self) {
        if !self.released {
            self.connection.close_on_drop();
        }
    }
}

#[cfg(test)]
mod tests {
    use sqlx::any::AnyPoolOptions;

    use super::*;

    /// A pool of one in-memory SQLite connection (each connection is its own database).
    async fn pool() -> AnyPool {
        sqlx::any::install_default_drivers();
        AnyPoolOptions::new()
            .max_connections(1)
            .connect("sqlite::memory:")
            .await
            .expect("an in-memory SQLite pool")
    }

    /// Whether the pool's connection is still the one a table was created on.
    async fn same_connection(pool: &AnyPool) -> bool {
        let mut lease = Lease::acquire(pool).await.unwrap();
        let tables: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'marker'",
        )
        .fetch_one(&mut *lease)
        .await
        .unwrap();
        lease.release();
        tables == 1
    }

    #[tokio::test]
    async fn only_a_released_lease_returns_its_connection_to_the_pool() {
        for (release, kept) in [(true, true), (false, false)] {
            let pool = pool().await;
            let mut lease = Lease::acquire(&pool).await.unwrap();
            sqlx::query("CREATE TABLE marker (id INTEGER)")
                .execute(&mut *lease)
                .await
                .unwrap();
            if release {
                lease.release();
            } else {
                drop(lease);
            }
            assert_eq!(same_connection(&pool).await, kept, "release: {release}");
        }
    }
}
