//! `flotillad`'s parts: who this machine is ([`identity`]), and the loops that keep it in the
//! cluster.

pub mod identity;
pub mod leader;
