//! Tokens, enrollment tokens and the audit log: the rows behind `crate::auth`.
//!
//! These tables sit beside the objects but outside the resourceVersion counter: a token or an
//! audit record is not a resource and is never watched. Writes go through the write pool (one
//! connection on SQLite, so they queue in the process like object writes).

use sqlx::any::AnyRow;
use sqlx::{AnyPool, Connection as _, Row as _};

use super::error::Context as _;
use super::lease::Lease;
use super::{Store, StoreError};

/// A bearer token as stored: everything but the secret, which is kept only as its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRow {
    /// The public part of the token; also its name in the API.
    pub id: String,
    /// Lower-case hex SHA-256 of the secret part.
    pub secret_sha256: String,
    /// The name its creator gave it.
    pub name: String,
    /// The JSON of the token's role (`auth::Role`).
    pub role: String,
    /// The principal that created it (`system` for the bootstrap token and enrollments).
    pub created_by: String,
    /// Creation time, milliseconds since the epoch.
    pub created_at_ms: i64,
    /// When it stops working, if ever.
    pub expires_at_ms: Option<i64>,
    /// When it was revoked, if it was.
    pub revoked_at_ms: Option<i64>,
}

/// A one-time enrollment token of a site, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrollmentRow {
    /// The public part of the token.
    pub id: String,
    /// Lower-case hex SHA-256 of the secret part.
    pub secret_sha256: String,
    /// The site an appliance enrolled with it joins.
    pub site: String,
    /// Who created it.
    pub created_by: String,
    /// Creation time, milliseconds since the epoch.
    pub created_at_ms: i64,
    /// When it stops working.
    pub expires_at_ms: i64,
    /// Set once by the enrollment that used it.
    pub used: Option<EnrollmentUse>,
}

/// What an enrollment recorded on the token it consumed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrollmentUse {
    /// When.
    pub at_ms: i64,
    /// The Appliance's name.
    pub appliance: String,
    /// The appliance's public key (base64), so that only a retry with the same key is answered.
    pub public_key: String,
    /// The id of the bearer token issued to the appliance.
    pub appliance_token: String,
}

/// One mutating request, as the audit log keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    /// Position in the log (assigned by the database; ignored on append).
    pub id: i64,
    /// When the request finished, milliseconds since the epoch.
    pub at_ms: i64,
    /// Who: the principal's name.
    pub principal: String,
    /// With which token.
    pub token_id: String,
    /// The HTTP method.
    pub method: String,
    /// The path and query.
    pub path: String,
    /// The HTTP status code of the answer.
    pub code: i64,
}

/// Which audit records to read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditQuery {
    /// Only records after this id (for paging).
    pub after: Option<i64>,
    /// Only this principal's.
    pub principal: Option<String>,
    /// Only records at or after this time (ms).
    pub since_ms: Option<i64>,
    /// At most this many (1 to 1000; the store caps it).
    pub limit: u32,
}

/// The most audit records one query returns.
pub const AUDIT_PAGE_MAX: u32 = 1000;

/// The columns [`token_row`] reads, in its order (a macro, so that queries stay `'static`).
macro_rules! token_columns {
    () => {
        "id, secret_sha256, name, role, created_by, created_at_ms, expires_at_ms, revoked_at_ms"
    };
}

/// The columns [`enrollment_row`] reads, in its order.
macro_rules! enrollment_columns {
    () => {
        "id, secret_sha256, site, created_by, created_at_ms, expires_at_ms, used_at_ms, \
         appliance, public_key, appliance_token"
    };
}

impl Store {
    /// Stores a new token.
    pub async fn insert_token(&self, token: &TokenRow) -> Result<(), StoreError> {
        let operation = || format!("storing token {}", token.id);
        let sql = concat!(
            "INSERT INTO tokens (",
            token_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        );
        self.execute(sql, operation, |query| {
            query
                .bind(&token.id)
                .bind(&token.secret_sha256)
                .bind(&token.name)
                .bind(&token.role)
                .bind(&token.created_by)
                .bind(token.created_at_ms)
                .bind(token.expires_at_ms)
                .bind(token.revoked_at_ms)
        })
        .await
        .map(drop)
    }

    /// The token with this id, revoked or not.
    pub async fn token(&self, id: &str) -> Result<Option<TokenRow>, StoreError> {
        let sql = concat!("SELECT ", token_columns!(), " FROM tokens WHERE id = $1");
        let rows = self
            .fetch(
                &self.inner.reads,
                sql,
                || format!("reading token {id}"),
                |q| q.bind(id),
            )
            .await?;
        rows.first().map(token_row).transpose()
    }

    /// Every token, oldest first.
    pub async fn tokens(&self) -> Result<Vec<TokenRow>, StoreError> {
        let sql = concat!(
            "SELECT ",
            token_columns!(),
            " FROM tokens ORDER BY created_at_ms, id"
        );
        let rows = self
            .fetch(
                &self.inner.reads,
                sql,
                || "listing tokens".to_owned(),
                |q| q,
            )
            .await?;
        rows.iter().map(token_row).collect()
    }

    /// Marks the token revoked at `at_ms` (a second revocation keeps the first time) and returns
    /// it, or `None` when there is no such token.
    pub async fn revoke_token(&self, id: &str, at_ms: i64) -> Result<Option<TokenRow>, StoreError> {
        let sql = "UPDATE tokens SET revoked_at_ms = COALESCE(revoked_at_ms, $2) WHERE id = $1";
        self.execute(
            sql,
            || format!("revoking token {id}"),
            |q| q.bind(id).bind(at_ms),
        )
        .await?;
        self.token(id).await
    }

    /// Stores a new enrollment token.
    pub async fn insert_enrollment(&self, token: &EnrollmentRow) -> Result<(), StoreError> {
        let operation = || format!("storing enrollment token {}", token.id);
        let sql = "INSERT INTO enrollment_tokens \
                   (id, secret_sha256, site, created_by, created_at_ms, expires_at_ms) \
                   VALUES ($1, $2, $3, $4, $5, $6)";
        self.execute(sql, operation, |query| {
            query
                .bind(&token.id)
                .bind(&token.secret_sha256)
                .bind(&token.site)
                .bind(&token.created_by)
                .bind(token.created_at_ms)
                .bind(token.expires_at_ms)
        })
        .await
        .map(drop)
    }

    /// The enrollment token with this id.
    pub async fn enrollment(&self, id: &str) -> Result<Option<EnrollmentRow>, StoreError> {
        let sql = concat!(
            "SELECT ",
            enrollment_columns!(),
            " FROM enrollment_tokens WHERE id = $1"
        );
        let rows = self
            .fetch(
                &self.inner.writes,
                sql,
                || format!("reading enrollment token {id}"),
                |q| q.bind(id),
            )
            .await?;
        rows.first().map(enrollment_row).transpose()
    }

    /// Records `usage` on the enrollment token `id` if it is still unused, atomically; returns
    /// whether this call recorded it (false: another enrollment used it first).
    pub async fn use_enrollment(
        &self,
        id: &str,
        usage: &EnrollmentUse,
    ) -> Result<bool, StoreError> {
        let sql = "UPDATE enrollment_tokens \
                   SET used_at_ms = $2, appliance = $3, public_key = $4, appliance_token = $5 \
                   WHERE id = $1 AND used_at_ms IS NULL";
        let changed = self
            .execute(
                sql,
                || format!("using enrollment token {id}"),
                |query| {
                    query
                        .bind(id)
                        .bind(usage.at_ms)
                        .bind(&usage.appliance)
                        .bind(&usage.public_key)
                        .bind(&usage.appliance_token)
                },
            )
            .await?;
        Ok(changed == 1)
    }

    /// Points a used enrollment token at the bearer token a retry issued in place of the first.
    pub async fn reissue_enrollment(
        &self,
        id: &str,
        appliance_token: &str,
    ) -> Result<(), StoreError> {
        let sql = "UPDATE enrollment_tokens SET appliance_token = $2 WHERE id = $1";
        self.execute(
            sql,
            || format!("updating enrollment token {id}"),
            |q| q.bind(id).bind(appliance_token),
        )
        .await
        .map(drop)
    }

    /// Appends `records` to the audit log in one transaction, in order: all or none.
    pub async fn append_audit(&self, records: &[AuditRecord]) -> Result<(), StoreError> {
        let operation = || format!("appending {} record(s) to the audit log", records.len());
        let mut connection = Lease::acquire(&self.inner.writes)
            .await
            .context(operation)?;
        let mut tx = connection
            .begin_with(self.inner.backend.begin_write())
            .await
            .context(operation)?;
        for record in records {
            sqlx::query(
                "INSERT INTO audit_log (at_ms, principal, token_id, method, path, code) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(record.at_ms)
            .bind(&record.principal)
            .bind(&record.token_id)
            .bind(&record.method)
            .bind(&record.path)
            .bind(record.code)
            .execute(&mut *tx)
            .await
            .context(operation)?;
        }
        tx.commit().await.context(operation)?;
        connection.release();
        Ok(())
    }

    /// Audit records matching `query`, oldest first.
    pub async fn audit(&self, query: &AuditQuery) -> Result<Vec<AuditRecord>, StoreError> {
        let sql = "SELECT id, at_ms, principal, token_id, method, path, code FROM audit_log \
                   WHERE id > $1 AND at_ms >= $2 AND ($3 = '' OR principal = $3) \
                   ORDER BY id LIMIT $4";
        let limit = i64::from(query.limit.clamp(1, AUDIT_PAGE_MAX));
        let rows = self
            .fetch(
                &self.inner.reads,
                sql,
                || "reading the audit log".to_owned(),
                |q| {
                    q.bind(query.after.unwrap_or(0))
                        .bind(query.since_ms.unwrap_or(i64::MIN))
                        .bind(query.principal.clone().unwrap_or_default())
                        .bind(limit)
                },
            )
            .await?;
        let operation = || "reading the audit log".to_owned();
        rows.iter()
            .map(|row| {
                Ok(AuditRecord {
                    id: row.try_get(0).context(operation)?,
                    at_ms: row.try_get(1).context(operation)?,
                    principal: row.try_get(2).context(operation)?,
                    token_id: row.try_get(3).context(operation)?,
                    method: row.try_get(4).context(operation)?,
                    path: row.try_get(5).context(operation)?,
                    code: row.try_get(6).context(operation)?,
                })
            })
            .collect()
    }

    /// Runs one statement on the write pool in its own implicit transaction; returns the number
    /// of rows it changed.
    async fn execute<'q, F>(
        &self,
        sql: &'static str,
        operation: impl Fn() -> String,
        bind: F,
    ) -> Result<u64, StoreError>
    where
        F: FnOnce(AnyQuery<'q>) -> AnyQuery<'q>,
    {
        let mut connection = Lease::acquire(&self.inner.writes)
            .await
            .context(&operation)?;
        let result = bind(sqlx::query(sql))
            .execute(&mut *connection)
            .await
            .context(&operation)?;
        connection.release();
        Ok(result.rows_affected())
    }

    /// Runs one query on `pool` and returns its rows.
    async fn fetch<'q, F>(
        &self,
        pool: &AnyPool,
        sql: &'static str,
        operation: impl Fn() -> String,
        bind: F,
    ) -> Result<Vec<AnyRow>, StoreError>
    where
        F: FnOnce(AnyQuery<'q>) -> AnyQuery<'q>,
    {
        let mut connection = Lease::acquire(pool).await.context(&operation)?;
        let rows = bind(sqlx::query(sql))
            .fetch_all(&mut *connection)
            .await
            .context(&operation)?;
        connection.release();
        Ok(rows)
    }
}

/// A query on the `Any` driver, before it runs.
type AnyQuery<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>;

/// Reads a row of `token_columns!()`.
fn token_row(row: &AnyRow) -> Result<TokenRow, StoreError> {
    let operation = || "reading a token row".to_owned();
    Ok(TokenRow {
        id: row.try_get(0).context(operation)?,
        secret_sha256: row.try_get(1).context(operation)?,
        name: row.try_get(2).context(operation)?,
        role: row.try_get(3).context(operation)?,
        created_by: row.try_get(4).context(operation)?,
        created_at_ms: row.try_get(5).context(operation)?,
        expires_at_ms: row.try_get(6).context(operation)?,
        revoked_at_ms: row.try_get(7).context(operation)?,
    })
}

/// Reads a row of `enrollment_columns!()`.
fn enrollment_row(row: &AnyRow) -> Result<EnrollmentRow, StoreError> {
    let operation = || "reading an enrollment token row".to_owned();
    let used_at_ms: Option<i64> = row.try_get(6).context(operation)?;
    let used = match used_at_ms {
        Some(at_ms) => Some(EnrollmentUse {
            at_ms,
            appliance: row.try_get(7).context(operation)?,
            public_key: row.try_get(8).context(operation)?,
            appliance_token: row.try_get(9).context(operation)?,
        }),
        None => None,
    };
    Ok(EnrollmentRow {
        id: row.try_get(0).context(operation)?,
        secret_sha256: row.try_get(1).context(operation)?,
        site: row.try_get(2).context(operation)?,
        created_by: row.try_get(3).context(operation)?,
        created_at_ms: row.try_get(4).context(operation)?,
        expires_at_ms: row.try_get(5).context(operation)?,
        used,
    })
}
