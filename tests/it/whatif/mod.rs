//! `capstan simulate`: replays, reports and outcome guardrails.
mod simulate;

mod report;
