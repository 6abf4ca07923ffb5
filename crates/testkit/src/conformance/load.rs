//! Concurrency under load: many writers at once must all succeed.

use super::*;
use std::sync::Arc;

/// 64 concurrent writers mixing enqueue, claim, complete, upsert_tenant and record_audit:
/// every single call succeeds (no `SQLITE_BUSY`, no pool timeout, no deadlock).
pub async fn sixty_four_concurrent_writers_all_succeed(store: Arc<dyn Store>) {
    let now = t0();
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..64u32 {
        let store = store.clone();
        tasks.spawn(async move {
            for round in 0..5u32 {
                let label = format!("writer {n} round {round}");
                match (n + round) % 5 {
                    0 => {
                        let dedup = NewJob { dedup_key: Some(format!("d{}", n % 4)), ..job("load", now) };
                        store.enqueue(dedup, now).await.map(drop)
                    }
                    1 => match store.claim(claim_any(&format!("w{n}"), now)).await {
                        Ok(Some(leased)) => store.complete(&leased.lease, now).await,
                        other => other.map(drop),
                    },
                    2 => store.upsert_tenant(&format!("org:load-{}", n % 8)).await.map(drop),
                    3 => {
                        let audit = NewAuditEvent {
                            tenant_id: None,
                            actor: "system".into(),
                            action: label.clone(),
                            target: None,
                            request_id: None,
                            ip: None,
                        };
                        store.record_audit(audit).await.map(drop)
                    }
                    _ => store
                        .enqueue(NewJob { concurrency_key: Some("one".into()), ..job("load", now) }, now)
                        .await
                        .map(drop),
                }
                .unwrap_or_else(|e| panic!("{label}: {e}"));
            }
        });
    }
    tasks.join_all().await;
    let tenants = tenants_present(&*store).await;
    assert_eq!(tenants, 8, "upserts of 8 keys made 8 tenants");
}

async fn tenants_present(store: &dyn Store) -> usize {
    let mut found = 0;
    for k in 0..8 {
        found += usize::from(store.find_tenant(&format!("org:load-{k}")).await.unwrap().is_some());
    }
    found
}
