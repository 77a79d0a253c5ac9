//! The JSON log format: one object per line, every field at the top level
//! under a stable name. Fields of the spans in scope come first, outermost
//! first (a session's `conn_id`, `client`, `backend_conn_id`; a batch's
//! `batch_id`), then the event's own; a name given twice keeps the
//! innermost value.
//!
//! ```json
//! {"timestamp":"2026-12-06T17:03:11.52Z","level":"WARN","target":"sluice_proxy::listener",
//!  "conn_id":7,"client":"10.0.0.5:51234","suppressed":0,"error":"…","message":"login failed"}
//! ```

use std::fmt;

use serde_json::Value;
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::{JsonFields, Writer};
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

/// Formats events as flat JSON objects (span fields formatted by
/// [`JsonFields`]).
pub struct FlatJson;

impl<S> FormatEvent<S, JsonFields> for FlatJson
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, JsonFields>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut timestamp = String::new();
        SystemTime.format_time(&mut Writer::new(&mut timestamp))?;
        let metadata = event.metadata();
        let mut line = Line(vec![
            ("timestamp".to_owned(), Value::String(timestamp)),
            (
                "level".to_owned(),
                Value::String(metadata.level().to_string()),
            ),
            (
                "target".to_owned(),
                Value::String(metadata.target().to_owned()),
            ),
        ]);
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                let extensions = span.extensions();
                let Some(fields) = extensions.get::<FormattedFields<JsonFields>>() else {
                    continue;
                };
                if let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(fields) {
                    for (name, value) in fields {
                        line.set(name, value);
                    }
                }
            }
        }
        event.record(&mut line);
        writeln!(writer, "{}", line.to_json())
    }
}

/// The fields of one line, in order, each name once.
struct Line(Vec<(String, Value)>);

impl Line {
    /// `{"name":value,…}` in the order the fields came.
    fn to_json(&self) -> String {
        let mut out = String::from("{");
        for (i, (name, value)) in self.0.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            // A string and a JSON value always serialize.
            out.push_str(&Value::String(name.clone()).to_string());
            out.push(':');
            out.push_str(&value.to_string());
        }
        out.push('}');
        out
    }

    fn set(&mut self, name: String, value: Value) {
        match self.0.iter_mut().find(|(n, _)| *n == name) {
            Some(slot) => slot.1 = value,
            None => self.0.push((name, value)),
        }
    }
}

impl Visit for Line {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.set(field.name().to_owned(), Value::String(value.to_owned()));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.set(field.name().to_owned(), Value::Bool(value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.set(field.name().to_owned(), Value::from(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.set(field.name().to_owned(), Value::from(value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.set(field.name().to_owned(), Value::from(value));
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.set(field.name().to_owned(), Value::String(value.to_string()));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.set(field.name().to_owned(), Value::String(format!("{value:?}")));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_keeps_its_order_and_one_value_per_name() {
        let mut line = Line(Vec::new());
        line.set("level".into(), Value::from("WARN"));
        line.set("conn_id".into(), Value::from(7u64));
        line.set("message".into(), Value::from("say \"hi\"\n"));
        line.set("conn_id".into(), Value::from(8u64));
        assert_eq!(
            line.to_json(),
            r#"{"level":"WARN","conn_id":8,"message":"say \"hi\"\n"}"#
        );
        let parsed: Value = serde_json::from_str(&line.to_json()).unwrap();
        assert_eq!(parsed["conn_id"], 8);
    }
}
