//! Which end of a sealed session this is, as a type: it fixes what the session may send and
//! what it receives, so the agent cannot send a request and the companion cannot send an answer.

use crate::message::{AgentMessage, CompanionMessage, WireMessage};

/// One end of the sealed session. Implemented only by [`AgentSide`] and [`CompanionSide`].
pub trait Side: private::Sealed + Send + 'static {
    /// What this end sends.
    type Outbound: WireMessage;
    /// What this end receives (what the other end sends).
    type Inbound: WireMessage;
}

/// The agent's end: sends [`AgentMessage`], receives [`CompanionMessage`].
#[derive(Debug)]
pub enum AgentSide {}

/// The companion's end: sends [`CompanionMessage`], receives [`AgentMessage`].
#[derive(Debug)]
pub enum CompanionSide {}

impl Side for AgentSide {
    type Outbound = AgentMessage;
    type Inbound = CompanionMessage;
}

impl Side for CompanionSide {
    type Outbound = CompanionMessage;
    type Inbound = AgentMessage;
}

mod private {
    pub trait Sealed {}
    impl Sealed for super::AgentSide {}
    impl Sealed for super::CompanionSide {}
}
