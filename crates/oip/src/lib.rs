//! The Open Inference Protocol (KServe v2, Triton's HTTP/REST) on the wire: what an
//! infer request carries and how an answer is laid out, as `tritonclient` and other
//! clients of Triton, KServe, MLServer and Seldon speak it. Nothing here knows about
//! models or HTTP frameworks: [`request::parse`] turns a body (and its
//! `Inference-Header-Content-Length`) into named input tensors of numbers, and
//! [`response::encode`] lays output tensors out as JSON or binary.
//!
//! The binary tensor data extension: the body is a JSON header of
//! `Inference-Header-Content-Length` bytes followed by each binary input's raw
//! little-endian, row-major bytes, in input order, each input saying its byte count in
//! `parameters.binary_data_size`. Answers are framed the same way.

pub mod datatype;
pub mod error;
pub mod request;
pub mod response;
mod tensor;

pub use datatype::DataType;
pub use error::RequestError;
pub use request::{InferRequest, InputTensor, RequestedOutput};
pub use response::{Encoded, OutputData, OutputTensor};

/// The request and response header that gives the JSON part's length in bytes.
pub const HEADER_LENGTH: &str = "inference-header-content-length";
