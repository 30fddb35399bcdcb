//! Tools that drive the pipeline on files: scoring it on labelled data ([`eval`]) and
//! generating the synthetic corpora that tests, benchmarks and the demo use ([`corpus`]).

pub mod corpus;
pub mod eval;
