pub mod calls;
pub mod dynamodb;
pub mod memory;
pub mod sqs;
