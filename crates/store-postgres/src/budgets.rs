//! TODO: budgets for PgStore.
#![allow(unused_variables)]

use crate::PgStore;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use patchbay_store::*;

#[async_trait]
impl BudgetStore for PgStore {
    async fn gcra(&self, key: &BucketKey, step: GcraStep, now: DateTime<Utc>) -> StoreResult<GcraVerdict> {
        todo!()
    }

    async fn acquire_slot(
        &self,
        key: &BucketKey,
        slots: u32,
        holder: uuid::Uuid,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        todo!()
    }

    async fn release_slot(&self, key: &BucketKey, holder: uuid::Uuid) -> StoreResult<()> {
        todo!()
    }

    async fn breaker(&self, key: &str) -> StoreResult<Option<Breaker>> {
        todo!()
    }

    async fn breaker_failure(&self, key: &str, policy: BreakerPolicy, now: DateTime<Utc>) -> StoreResult<Breaker> {
        todo!()
    }

    async fn breaker_try_probe(&self, key: &str, now: DateTime<Utc>) -> StoreResult<bool> {
        todo!()
    }

    async fn breaker_success(&self, key: &str, now: DateTime<Utc>) -> StoreResult<()> {
        todo!()
    }
}
