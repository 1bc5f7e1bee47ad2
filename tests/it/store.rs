//! The DynamoDB store against the emulator runs the same conformance suite as the
//! in-memory store: its ConditionExpressions decide exactly as `decide_claim` does.

use crate::support::*;
use bedrock_denied_models::lambda::dynamo_store;
use bedrock_denied_models::store::conformance;

#[tokio::test]
#[ignore = "needs the emulator"]
async fn the_dynamodb_store_conforms() {
    let s = Stack::new("conformance").await;
    conformance::run_all(&dynamo_store(&s.sdk, &s.table)).await;
}
