//! The port contracts (`shared::ports::contract`) against the DynamoDB adapters on LocalStack: the
//! same suite the in-memory adapters pass in the unit tests.

use e2e::{StackOptions, TestStack};
use shared::adapters::dynamodb::*;
use shared::ports::contract;

#[tokio::test]
async fn the_dynamodb_adapters_keep_the_contracts() {
    let stack = TestStack::start(StackOptions { delivery_pollers: 0, ..Default::default() }).await;
    let (ddb, config) = (stack.ddb.clone(), &stack.config);
    contract::subscriptions(&DynamoSubscriptions::new(ddb.clone(), config), &DynamoTenants::new(ddb.clone(), config)).await;
    contract::api_keys(&DynamoApiKeys::new(ddb.clone(), config)).await;
    contract::tenants(&DynamoTenants::new(ddb.clone(), config)).await;
    contract::events(&DynamoEvents::new(ddb.clone(), config)).await;
    contract::ledger(&DynamoLedger::new(ddb, config)).await;
}
