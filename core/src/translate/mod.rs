//! Provider wire formats and the conversions between them. Anthropic and Bedrock types meet
//! only here. Everything in this module is pure: bytes in, bytes or values out.

pub mod errors;
pub mod eventstream;
pub mod models;
pub mod request;
pub mod response;
pub mod stream;
