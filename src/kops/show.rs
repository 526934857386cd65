//! Plans and outcomes for people: terraform-style lines (`+` create, `~` change, `-` delete),
//! coloured when asked.

use std::fmt::Write;

use serde_json::Value;

use super::apply::Outcome;
use super::diff::FieldChange;
use super::plan::{Action, Plan};

#[derive(Debug, Clone, Copy)]
pub struct Style {
    pub color: bool,
}

impl Style {
    fn paint(self, code: &str, text: &str) -> String {
        if self.color { format!("\x1b[{code}m{text}\x1b[0m") } else { text.to_string() }
    }
    fn green(self, t: &str) -> String {
        self.paint("32", t)
    }
    fn yellow(self, t: &str) -> String {
        self.paint("33", t)
    }
    fn red(self, t: &str) -> String {
        self.paint("31", t)
    }
}

fn compact(v: &Value) -> String {
    serde_json::to_string(v).expect("JSON values serialise")
}

fn field_line(f: &FieldChange, style: Style) -> String {
    let drift = if f.drift { "  (changed in the store outside Git; Git's value is restored)" } else { "" };
    match (&f.before, &f.after) {
        (None, Some(a)) => format!("      {} {}: {}", style.green("+"), f.path, compact(a)),
        (Some(b), Some(a)) => format!("      {} {}: {} → {}{drift}", style.yellow("~"), f.path, compact(b), compact(a)),
        (Some(b), None) => format!("      {} {}: {}", style.red("-"), f.path, compact(b)),
        (None, None) => String::new(),
    }
}

pub fn plan_text(plan: &Plan, style: Style) -> String {
    let mut out = String::new();
    for c in &plan.changes {
        let (mark, what) = match c.action {
            Action::Create => (style.green("+"), "create"),
            Action::Update => (style.yellow("~"), "update"),
            Action::Delete => (style.red("-"), "delete"),
        };
        let reason = c.reason.as_deref().map(|r| format!(": {r}")).unwrap_or_default();
        let _ = writeln!(out, "  {mark} instancegroup/{} ({what}){reason}", c.name);
        for f in &c.fields {
            let _ = writeln!(out, "{}", field_line(f, style));
        }
    }
    for k in &plan.kept {
        let _ = writeln!(out, "  = instancegroup/{} kept: {}", k.name, k.reason);
    }
    for w in &plan.warnings {
        let _ = writeln!(out, "{} {w}", style.yellow("warning:"));
    }
    for e in &plan.errors {
        let _ = writeln!(out, "{} {e}", style.red("error:"));
    }
    let _ = writeln!(
        out,
        "Plan: {} to create, {} to change, {} to delete; {} unchanged.",
        plan.count(Action::Create),
        plan.count(Action::Update),
        plan.count(Action::Delete),
        plan.unchanged.len()
    );
    out
}

pub fn outcome_text(outcome: &Outcome, style: Style) -> String {
    let mut out = String::new();
    for a in &outcome.applied {
        let merged = if a.attempts > 1 {
            format!(", merged with a concurrent edit after {} writes", a.attempts)
        } else {
            String::new()
        };
        let verb = match a.action {
            Action::Create => "created",
            Action::Update => "updated",
            Action::Delete => "deleted",
        };
        let _ = writeln!(out, "  {verb} instancegroup/{} ({} field(s){merged})", a.name, a.fields);
    }
    for r in &outcome.conflicts {
        let _ = writeln!(out, "{} instancegroup/{}: {}; not written", style.red("conflict:"), r.name, r.message);
        for c in &r.conflicts {
            let show = |v: &Option<Value>| v.as_ref().map_or_else(|| "(absent)".to_string(), compact);
            let _ = writeln!(
                out,
                "      {}: was {}, the store now has {}, this revision wants {}",
                c.path,
                show(&c.base),
                show(&c.theirs),
                show(&c.ours)
            );
        }
        let _ = writeln!(out, "      resolve it in Git (or revert the edit in the store); the next pass retries");
    }
    for e in &outcome.errors {
        let _ = writeln!(out, "{} {e}", style.red("error:"));
    }
    out
}
