//! SQLite representations: ids as hyphenated text, times as integer microseconds, JSON as text.

use chrono::{DateTime, SubsecRound, Utc};
use patchbay_store::{StoreError, StoreResult};
use sqlx::sqlite::SqliteRow;
use sqlx::Row;
use uuid::Uuid;

/// The current time at the precision the store keeps (microseconds), so what a write returns
/// equals what a later read returns.
pub(crate) fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// A time as stored.
pub(crate) fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

/// An optional time as stored.
pub(crate) fn opt_micros(t: Option<DateTime<Utc>>) -> Option<i64> {
    t.map(micros)
}

/// An id as stored (lowercase, hyphenated: sorts like the UUID's bytes).
pub(crate) fn id_text(id: Uuid) -> String {
    id.hyphenated().to_string()
}

fn column<'r, T>(row: &'r SqliteRow, name: &str) -> StoreResult<T>
where
    T: sqlx::Decode<'r, sqlx::Sqlite> + sqlx::Type<sqlx::Sqlite>,
{
    row.try_get(name).map_err(|e| StoreError::Corrupt(format!("column `{name}`: {e}")))
}

pub(crate) fn text(row: &SqliteRow, name: &str) -> StoreResult<String> {
    column(row, name)
}

pub(crate) fn opt_text(row: &SqliteRow, name: &str) -> StoreResult<Option<String>> {
    column(row, name)
}

pub(crate) fn int(row: &SqliteRow, name: &str) -> StoreResult<i64> {
    column(row, name)
}

pub(crate) fn int32(row: &SqliteRow, name: &str) -> StoreResult<i32> {
    let value = int(row, name)?;
    i32::try_from(value).map_err(|_| StoreError::Corrupt(format!("column `{name}` is out of range")))
}

pub(crate) fn opt_int(row: &SqliteRow, name: &str) -> StoreResult<Option<i64>> {
    column(row, name)
}

pub(crate) fn uuid(row: &SqliteRow, name: &str) -> StoreResult<Uuid> {
    parse_uuid(&text(row, name)?, name)
}

pub(crate) fn opt_uuid(row: &SqliteRow, name: &str) -> StoreResult<Option<Uuid>> {
    opt_text(row, name)?.map(|s| parse_uuid(&s, name)).transpose()
}

fn parse_uuid(s: &str, name: &str) -> StoreResult<Uuid> {
    Uuid::parse_str(s).map_err(|_| StoreError::Corrupt(format!("column `{name}` is not a UUID")))
}

pub(crate) fn time(row: &SqliteRow, name: &str) -> StoreResult<DateTime<Utc>> {
    to_time(int(row, name)?, name)
}

pub(crate) fn opt_time(row: &SqliteRow, name: &str) -> StoreResult<Option<DateTime<Utc>>> {
    opt_int(row, name)?.map(|v| to_time(v, name)).transpose()
}

fn to_time(value: i64, name: &str) -> StoreResult<DateTime<Utc>> {
    DateTime::from_timestamp_micros(value).ok_or_else(|| StoreError::Corrupt(format!("column `{name}` is not a time")))
}

pub(crate) fn json(row: &SqliteRow, name: &str) -> StoreResult<serde_json::Value> {
    serde_json::from_str(&text(row, name)?).map_err(|_| StoreError::Corrupt(format!("column `{name}` is not JSON")))
}

/// Decodes a text column through `FromStr` (status enums), reporting a bad value as corrupt.
pub(crate) fn parsed<T>(row: &SqliteRow, name: &str) -> StoreResult<T>
where
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    text(row, name)?.parse().map_err(|e: T::Err| StoreError::Corrupt(format!("column `{name}`: {e}")))
}

pub(crate) fn blob(row: &SqliteRow, name: &str) -> StoreResult<Vec<u8>> {
    column(row, name)
}

pub(crate) fn opt_blob(row: &SqliteRow, name: &str) -> StoreResult<Option<Vec<u8>>> {
    column(row, name)
}

/// A SHA-256 column (exactly 32 bytes).
pub(crate) fn hash32(row: &SqliteRow, name: &str) -> StoreResult<[u8; 32]> {
    blob(row, name)?.try_into().map_err(|_| StoreError::Corrupt(format!("column `{name}` is not 32 bytes")))
}

/// A vault key id (a u32 stored as INTEGER).
pub(crate) fn key_id(row: &SqliteRow, name: &str) -> StoreResult<u32> {
    u32::try_from(int(row, name)?).map_err(|_| StoreError::Corrupt(format!("column `{name}` is out of range")))
}
