//! Pricing a request inside the engine: after parsing, note whether it is a mutation (write
//! budget) or a standalone `complexity` probe (0.1 daily call); after validation, charge the
//! engine's complexity (see [`super::cost`]) to the account's budget, or refuse the request unrun
//! with `COMPLEXITY_BUDGET_EXHAUSTED` / the per-query cap.

use super::errors::{app_error, budget_exhausted};
use super::limits::Charge;
use super::schema::Caller;
use super::Shared;
use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextParseQuery, NextValidation};
use async_graphql::parser::types::{DocumentOperations, ExecutableDocument, OperationType, Selection};
use async_graphql::{ServerError, ServerResult, ValidationResult, Variables};
use serde_json::json;
use std::sync::{Arc, Mutex};

/// What the engine learnt about one request.
#[derive(Debug, Default)]
pub(super) struct Meter {
    pub write: bool,
    /// The only root field is `complexity`.
    pub probe_only: bool,
    pub parse_failed: bool,
    /// Set once the budget paid for the request.
    pub charge: Charge,
    /// The HTTP status to answer with instead of 200 (budget exhausted, board locked).
    pub status: Option<u16>,
    /// Seconds for `Retry-After`.
    pub retry_after: Option<u64>,
    /// The budget refused the request: it costs 0.1 daily call, as rate-limited calls do.
    pub rate_limited: bool,
}

pub(super) struct Pricing;

impl ExtensionFactory for Pricing {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(PricingExtension)
    }
}

struct PricingExtension;

fn meter<'a>(ctx: &ExtensionContext<'a>) -> &'a Arc<Mutex<Meter>> {
    ctx.data_unchecked::<Arc<Mutex<Meter>>>()
}

#[async_graphql::async_trait::async_trait]
impl Extension for PricingExtension {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let result = next.run(ctx, query, variables).await;
        let mut meter = meter(ctx).lock().unwrap();
        match &result {
            Ok(doc) => {
                let operations: Vec<_> = match &doc.operations {
                    DocumentOperations::Single(op) => vec![&op.node],
                    DocumentOperations::Multiple(ops) => ops.values().map(|op| &op.node).collect(),
                };
                meter.write = operations.iter().any(|op| op.ty == OperationType::Mutation);
                meter.probe_only =
                    operations.iter().all(|op| {
                        op.selection_set.node.items.iter().all(
                            |s| matches!(&s.node, Selection::Field(f) if f.node.name.node.as_str() == "complexity"),
                        )
                    });
            }
            Err(_) => meter.parse_failed = true,
        }
        result
    }

    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        let result = next.run(ctx).await?;
        let account_id = ctx.data_unchecked::<Caller>().account_id;
        let cost = u64::try_from(result.complexity).unwrap_or(u64::MAX);
        let mut meter = meter(ctx).lock().unwrap();
        let mut st = ctx.data_unchecked::<Shared>().lock().unwrap();
        let now = st.clock.unix_ms();
        let limiter = &mut st.api.limiter;
        if cost > limiter.limits.per_query {
            let max = limiter.limits.per_query;
            let message = format!("Query has complexity of {cost}, which exceeds max complexity of {max}");
            let error = app_error("maxComplexityExceeded", &message, 200, json!({ "complexity": cost, "max": max }));
            return Err(vec![error.into_server_error(Default::default())]);
        }
        match limiter.charge(account_id, meter.write, cost, now) {
            Ok(charge) => {
                meter.charge = charge;
                Ok(result)
            }
            Err(e) => {
                meter.status = Some(st.api.budget_status);
                meter.rate_limited = true;
                meter.retry_after = Some(e.retry_in);
                let error = budget_exhausted(e.cost, e.remaining, e.limit, e.retry_in);
                Err(vec![error.into_server_error(Default::default())])
            }
        }
    }
}
