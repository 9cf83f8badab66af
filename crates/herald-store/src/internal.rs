//! The names both backends' modules work with, imported once: each backend's `mod.rs` takes them
//! with `use crate::internal::*;` and adds only what is its own (its driver, its helpers). Only
//! re-exports live here; nothing is defined, and nothing outside the backends should need it.

pub(crate) use async_trait::async_trait;
pub(crate) use herald_core::breaker::BreakerState;
pub(crate) use herald_core::crypto::SecretBox;
pub(crate) use herald_core::ids::{AppId, EndpointId, MessageId, SourceId, TokenId};
pub(crate) use herald_core::model::{
    Application, Attempt, Endpoint, EventType, InboundRequest, Message, Ordering, Source,
    StoredSecret,
};
pub(crate) use herald_core::{now_millis, Millis};

pub(crate) use crate::backend::{
    AppHooks, Backend, InboundHooks, Ingestion, MessageHooks, OpsHooks, Reading, Recall, Record,
    Recover, Resend, Step,
};
pub(crate) use crate::cols::*;
pub(crate) use crate::common::{self, NewDelivery};
pub(crate) use crate::page::{finish_page, Arg, Listing};
pub(crate) use crate::prelude::*;
pub(crate) use crate::status::*;
pub(crate) use crate::{
    AttemptRecord, Claim, ClaimBatch, Claimed, DedupCheck, DisabledEndpoint, ForDelivery,
    IngestOutcome, ListQuery, OrderCheck, Page, PollPage, PollRequest, PollToken, Published,
    Result, StoreError, TokenRecord,
};
