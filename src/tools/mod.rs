//! Tools that drive the pipeline on files: scoring it on labelled data ([`eval`]), explaining
//! what it does to an article and why two were or were not merged ([`explain`]), and
//! generating the synthetic corpora that tests, benchmarks and the demo use ([`corpus`]), and
//! reading articles from files, directories and compressed files ([`input`]), prepared on
//! several threads in input order ([`parallel`]).

pub mod corpus;
pub mod eval;
pub mod explain;
pub mod input;
pub mod parallel;
