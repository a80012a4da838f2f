//! `flotillad`'s parts: who this machine is ([`identity`]), its life in the cluster ([`run`]),
//! the scheduler it may be elected to be ([`leader`]), and its own units ([`node`]).

pub mod identity;
pub mod leader;
pub mod node;
pub mod run;
