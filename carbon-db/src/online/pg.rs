//! PostgreSQL following. (To be written: see the module docs of `online`.)

use std::sync::atomic::AtomicBool;

use super::{FollowReport, Lag, OnlineError, OnlineOptions, Proof, State, Stream, Unmet, Until};
use crate::{DbUrl, Progress};

fn todo(what: &str) -> OnlineError {
    OnlineError::Phase {
        name: "pg".into(),
        what: format!("{what} is not written yet"),
    }
}

pub(super) fn requirements(_from: &DbUrl) -> Result<Vec<Unmet>, OnlineError> {
    Err(todo("requirements"))
}

pub(super) fn begin(
    _stream: &Stream,
    _opts: &OnlineOptions,
    _progress: &dyn Progress,
) -> Result<State, OnlineError> {
    Err(todo("begin"))
}

pub(super) fn begin_equal(_stream: &Stream, _opts: &OnlineOptions) -> Result<State, OnlineError> {
    Err(todo("begin_equal"))
}

pub(super) fn follow(
    _stream: &Stream,
    _opts: &OnlineOptions,
    _until: Until,
    _stop: &AtomicBool,
    _progress: &dyn Progress,
) -> Result<FollowReport, OnlineError> {
    Err(todo("follow"))
}

pub(super) fn lag(_stream: &Stream) -> Result<Lag, OnlineError> {
    Err(todo("lag"))
}

pub(super) fn prove(
    _stream: &Stream,
    _opts: &OnlineOptions,
    _full: bool,
    _progress: &dyn Progress,
) -> Result<Proof, OnlineError> {
    Err(todo("prove"))
}

pub(super) fn remove(_stream: &Stream) -> Result<State, OnlineError> {
    Err(todo("remove"))
}

pub(super) fn leftovers(_url: &DbUrl) -> Result<Vec<String>, OnlineError> {
    Err(todo("leftovers"))
}
